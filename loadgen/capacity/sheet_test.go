package capacity

import (
	"strings"
	"testing"

	"github.com/aspstate/aspstate/scenarios"
)

// TestSheetTrueToTheTarget: memory and heap advice only for the reference
// server or from the target's own metrics; otherwise "unknown for this
// target"; partitions as many as targets.
func TestSheetTrueToTheTarget(t *testing.T) {
	t.Parallel()
	sc := scenarios.DefaultScenario()
	at := StepResult{Rate: 1000, Achieved: 1000, RequestsPerSecond: 1500}

	other := NewSheet(sc, at, TargetMemory(at), 1)
	if other.Memory.Known || other.MemoryBytes != 0 || other.OverheadBytes != 0 || other.BodyBytes <= 0 {
		t.Fatalf("a target without metrics: memory %+v, %v bytes", other.Memory, other.MemoryBytes)
	}
	text := sheetText(other)
	for _, want := range []string{"unknown for this target", "session bodies alone", "1 partition"} {
		if !strings.Contains(text, want) {
			t.Errorf("sheet lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Go heap") || strings.Contains(text, "308") {
		t.Errorf("the reference server's figures on another target:\n%s", text)
	}

	// The reference server behind tcp://, seen through its aspstate_ metrics.
	at.Server = &ServerSample{Source: "prometheus http://x/metrics", Reference: true}
	ref := NewSheet(sc, at, TargetMemory(at), 2)
	if !ref.Memory.Known || ref.OverheadBytes != DefaultOverheadBytes || ref.Partitions != 2 || !strings.Contains(sheetText(ref), "Go heap") {
		t.Errorf("reference server: %+v, %d partitions", ref.Memory, ref.Partitions)
	}

	// Another server whose metrics show its resident memory grow with the
	// step's sessions: measured, body taken out.
	at.Server = &ServerSample{Source: "prometheus http://y/metrics", SessionsCreated: 10000,
		ResidentBefore: 100 << 20, ResidentAfter: 100<<20 + 10000*5000}
	meas := NewSheet(sc, at, TargetMemory(at), 1)
	if !meas.Memory.Known || meas.Memory.Reference {
		t.Fatalf("measured: %+v", meas.Memory)
	}
	if want := 5000 - meas.BytesPerSession; meas.OverheadBytes < want-1 || meas.OverheadBytes > want+1 {
		t.Errorf("measured overhead %.0f, want %.0f (5000 B per session less the body)", meas.OverheadBytes, want)
	}
	if strings.Contains(sheetText(meas), "Go heap") {
		t.Error("heap advice for a server that is not the reference")
	}
}

func sheetText(s Sheet) string {
	var b strings.Builder
	for _, r := range s.rows() {
		b.WriteString(r[0] + ": " + r[1] + "\n")
	}
	b.WriteString(strings.Join(s.Assumptions, "\n"))
	return b.String()
}
