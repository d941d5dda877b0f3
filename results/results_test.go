package results

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/scenarios"
)

func latencyOf(t *testing.T, values ...time.Duration) Latency {
	t.Helper()
	h := NewHistogram()
	for _, v := range values {
		if err := h.RecordValue(int64(v)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := NewLatency(h)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func sampleRun(t *testing.T) *Run {
	t.Helper()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	scen := &scenarios.Scenario{Name: "demo", Description: "a farm", Duration: scenarios.Duration(3 * time.Second),
		Farm: scenarios.Farm{WebServers: 2, Partitions: 1},
		Rate: scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: 100}}
	h := NewHistogram()
	_ = h.RecordValue(int64(2 * time.Millisecond))
	r := &Run{
		Schema:  Schema,
		Harness: Harness{Version: "dev", Revision: "abc", Go: "go1.26"},
		Start:   start,
		End:     start.Add(3 * time.Second),
		Config: Config{
			Mode: ModeOpen, Shape: "constant", Rate: 100, Duration: Duration(3 * time.Second),
			Minute: Duration(time.Minute), ScenarioName: "demo", Scenario: scen,
			Options: map[string]string{"workers": "64"},
			Targets: []Target{{Spec: "inproc", Kind: "inproc", Addr: "127.0.0.1:1", Description: "reference"}},
		},
		Ops: map[string]*Stats{
			"get-exclusive": {Count: 3, Statuses: map[string]int64{"200": 2, "423": 1}, Errors: map[string]int64{},
				Corrected: latencyOf(t, time.Millisecond, 2*time.Millisecond, 900*time.Millisecond), Uncorrected: latencyOf(t, time.Millisecond, 2*time.Millisecond, 3*time.Millisecond)},
		},
		Pages: map[string]*Stats{
			"cart": {Count: 1, Errors: map[string]int64{"timeout": 1}, Statuses: map[string]int64{}, Corrected: latencyOf(t, time.Second), Uncorrected: latencyOf(t, time.Millisecond)},
		},
		Errors:      map[string]int64{"timeout": 1},
		Locks:       Locks{Acquires: 3, Locked: 1, Polls: 1, PollsPerAcquire: 1.0 / 3, Waited: 1, Wait: latencyOf(t, 500*time.Millisecond)},
		Correctness: Correctness{Checks: 10, Violations: map[string]int64{}},
		Rate:        Rate{Intended: 100, Achieved: 99.5, Scheduled: 300, Started: 300, Completed: 299, LateThreshold: Duration(time.Millisecond)},
		Intervals:   []Interval{{Elapsed: Duration(time.Second), Pages: 100, Ops: 300, Throughput: 100, P99: 3e6}},
	}
	for i, tag := range []string{"op.get", "page.cart"} {
		e, err := NewLogEntry(i == 0, tag, start.Add(time.Duration(i)*time.Second), start.Add(time.Duration(i+1)*time.Second), h)
		if err != nil {
			t.Fatal(err)
		}
		r.Logs = append(r.Logs, e)
	}
	return r
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	r := sampleRun(t)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ResultFile, SummaryFile, CorrectedLog, UncorrectedLog} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s missing or empty: %v", f, err)
		}
	}
	got, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Logs) != 2 {
		t.Fatalf("read %d log entries, want 2", len(got.Logs))
	}
	for i, e := range got.Logs {
		w := r.Logs[i]
		gh, err1 := e.Decode()
		wh, err2 := w.Decode()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if e.Tag != w.Tag || e.Corrected != w.Corrected || !e.Start.Equal(w.Start) || !e.End.Equal(w.End) || !gh.Equals(wh) {
			t.Errorf("log entry %d: got %s %v %s-%s, want %s %v %s-%s", i, e.Tag, e.Corrected, e.Start, e.End, w.Tag, w.Corrected, w.Start, w.End)
		}
	}
	// Everything in result.json survives a round trip byte for byte.
	a, _ := Marshal(r)
	b, _ := Marshal(got)
	if !bytes.Equal(a, b) {
		t.Fatalf("round trip changed result.json:\n%s\n---\n%s", a, b)
	}
	if !reflect.DeepEqual(got.Config.Scenario, r.Config.Scenario) {
		t.Fatalf("scenario changed in the round trip: %+v, want %+v", got.Config.Scenario, r.Config.Scenario)
	}
	if !reflect.DeepEqual(got.Ops["get-exclusive"].Statuses, r.Ops["get-exclusive"].Statuses) {
		t.Fatal("statuses differ after round trip")
	}
}

func TestReadRejectsOtherSchema(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ResultFile), []byte(`{"schema":"aspstate/result/v9"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Read(dir)
	if err == nil || !strings.Contains(err.Error(), "aspstate/result/v9") {
		t.Fatalf("got %v, want an error naming the schema", err)
	}
}

func TestLatencyPercentilesAndMerge(t *testing.T) {
	var a, b []time.Duration
	for i := 1; i <= 1000; i++ {
		a = append(a, time.Duration(i)*time.Millisecond)
	}
	for i := 0; i < 1000; i++ {
		b = append(b, 5*time.Second)
	}
	la, lb := latencyOf(t, a...), latencyOf(t, b...)
	if la.P50 < int64(495*time.Millisecond) || la.P50 > int64(505*time.Millisecond) {
		t.Fatalf("p50 = %d, want ≈ 500ms (ValueAtQuantile takes 0–100)", la.P50)
	}
	m, err := MergeLatency(la, lb)
	if err != nil {
		t.Fatal(err)
	}
	h, err := m.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalCount() != 2000 {
		t.Fatalf("merged count %d, want 2000", h.TotalCount())
	}
	if m.P90 < int64(4900*time.Millisecond) || m.P50 > int64(1001*time.Millisecond) {
		t.Fatalf("merged p50 %d p90 %d: want p50 ≤ 1s and p90 ≈ 5s", m.P50, m.P90)
	}
	if m.Max < int64(5*time.Second) || m.Max > int64(5010*time.Millisecond) {
		t.Fatalf("merged max %d, want ≈ 5s", m.Max)
	}
}

func TestSummaryShowsViolationsAndInterruption(t *testing.T) {
	r := sampleRun(t)
	r.Interrupted = true
	r.Correctness.Violations = map[string]int64{"lost-update": 2}
	r.Correctness.Total = 2
	r.Correctness.Examples = []string{"session x: version 3 after 5"}
	var b bytes.Buffer
	Summary(&b, r)
	s := b.String()
	for _, want := range []string{"INTERRUPTED", "2 VIOLATIONS", "lost-update=2", "session x", "page cart", "op get-exclusive", "intended 100.0/s"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

// TestSummaryGeneratorCPU: the generator's CPU over the run is in the
// summary, and says when an in-process server's is in it too.
func TestSummaryGeneratorCPU(t *testing.T) {
	r := sampleRun(t)
	r.Generator = &Generator{CPUUser: Duration(3 * time.Second), CPUSystem: Duration(2 * time.Second), Wall: Duration(10 * time.Second)}
	r.Config.Targets = []Target{{Kind: "tcp", Addr: "127.0.0.1:42424"}}
	var b bytes.Buffer
	Summary(&b, r)
	if want := "\nload generator: 5s CPU (3s user, 2s system) over 10s, 50% of one core\n"; !strings.Contains(b.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, b.String())
	}
	r.Config.Targets = []Target{{Kind: "inproc"}}
	b.Reset()
	Summary(&b, r)
	if !strings.Contains(b.String(), "load generator and its in-process server: 5s CPU") {
		t.Errorf("in-process target not said:\n%s", b.String())
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	r := &Run{Schema: "x", Config: Config{Mode: "fast"}, Start: time.Unix(10, 0), End: time.Unix(5, 0),
		Ops: map[string]*Stats{"get": {Corrected: Latency{Histogram: "not-a-histogram"}}}}
	err := r.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken run")
	}
	for _, want := range []string{"schema", "mode", "before start", `ops "get"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
