package conformance

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/junit"
	"github.com/aspstate/aspstate/servers/target"
)

func sampleMatrix() *Matrix {
	pass := RuleResult{ID: "2.1-keepalive", Level: LevelMust, Description: "keep-alive", Result: ResultPassed, Duration: Millis(3 * time.Millisecond),
		Specs: []SpecResult{{Text: "answers", State: "passed"}}}
	fail := RuleResult{ID: "2.2.4-status-line", Level: LevelRef, Description: "bare <status> lines", Result: ResultFailed,
		Specs: []SpecResult{{Text: "writes bare status lines", State: "failed", Failure: "Expected\n    <string>: HTTP/1.1\nto be empty",
			Location: "x.go:1", Transcript: "#1 0.1ms  ← HTTP/1.1 200 OK\\r\\n\x00\n<script>alert(1)</script>"}}}
	dev := RuleResult{ID: "2.2.3.13-key-decoding", Level: LevelRef, Result: ResultDeviation, Reason: "P2P does not decode",
		Specs: []SpecResult{{Text: "decodes", State: "failed", Failure: "404"}}}
	skip := RuleResult{ID: "ops-restart-loses-state", Level: LevelRef, Result: ResultSkipped, Reason: "cannot restart"}
	r1 := &RunReport{Format: ReportFormat, Target: target.Info{Spec: "inproc", Kind: "inproc"}, Minute: "600ms", Rules: []RuleResult{pass, fail, dev, skip}}
	r1.count()
	r2 := &RunReport{Format: ReportFormat, Target: target.Info{Spec: "tcp://127.0.0.1:1", Kind: "tcp"}, Error: "no answer"}
	return NewMatrix(r1, r2)
}

func TestMatrixJSONRoundTrip(t *testing.T) {
	m := sampleMatrix()
	path := filepath.Join(t.TempDir(), "r.json")
	f, _ := os.Create(path)
	if err := m.WriteJSON(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := ReadMatrix(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Reports) != 2 || got.Reports[0].Failed != 1 || got.Reports[0].Deviations != 1 || got.Reports[1].Error != "no answer" {
		t.Errorf("round trip: %+v", got.Reports)
	}
	if d := time.Duration(got.Reports[0].Rules[0].Duration); d != 3*time.Millisecond {
		t.Errorf("duration %v", d)
	}
	os.WriteFile(path, []byte(`{"format":"other/9"}`), 0o644)
	if _, err := ReadMatrix(path); err == nil || !strings.Contains(err.Error(), "other/9") {
		t.Errorf("ReadMatrix of a foreign format: %v", err)
	}
}

func TestMatrixSummaryAndTable(t *testing.T) {
	m := sampleMatrix()
	if got := m.Summary(); got != "conformance: 1 passed, 1 failed, 1 skipped" {
		t.Errorf("Summary = %q", got)
	}
	var b bytes.Buffer
	m.WriteTable(&b)
	for _, want := range []string{"T1", "T2", "2.2.4-status-line", "deviation", "target error: no answer"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	NewMatrix(m.Reports[0]).WriteTable(&b)
	if !strings.HasPrefix(b.String(), "RULE") || !strings.Contains(b.String(), "failed") {
		t.Errorf("single-target table:\n%s", b.String())
	}
	line := LiveLine(m.Reports[0].Rules[1])
	if !strings.HasPrefix(line, "FAIL 2.2.4-status-line") || !strings.Contains(line, "Expected") {
		t.Errorf("live line %q", line)
	}
	if line := LiveLine(m.Reports[0].Rules[2]); !strings.HasPrefix(line, "DEVN") || !strings.Contains(line, "P2P does not decode") {
		t.Errorf("deviation live line %q", line)
	}
}

func TestMatrixJUnit(t *testing.T) {
	var b bytes.Buffer
	if err := sampleMatrix().WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	var doc junit.Suites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b.String())
	}
	if doc.Tests != 5 || doc.Failures != 2 || doc.Skipped != 1 || len(doc.Suites) != 2 {
		t.Errorf("counts: tests %d failures %d skipped %d suites %d", doc.Tests, doc.Failures, doc.Skipped, len(doc.Suites))
	}
	if !strings.Contains(b.String(), "HTTP/1.1 200 OK") || strings.Contains(b.String(), "\x00") {
		t.Error("the transcript is missing or carries a NUL byte into the XML")
	}
}

func TestMatrixHTMLSelfContainedAndEscaped(t *testing.T) {
	var b bytes.Buffer
	if err := sampleMatrix().WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, bad := range []string{"<script", "http://", "https://", "src="} {
		if strings.Contains(h, bad) {
			t.Errorf("HTML contains %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;", "expected vs observed", "wire transcript", `href="#t1-2.2.4-status-line"`, "no answer", "bare &lt;status&gt; lines",
		"white-space:pre-wrap", "failures by cause", "fix:"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	// Failures first: the failed rule's row comes before the passed one's.
	if f, p := strings.Index(h, "<td><code>2.2.4-status-line"), strings.Index(h, "<td><code>2.1-keepalive"); f < 0 || p < 0 || f > p {
		t.Errorf("the failed rule's row (at %d) does not come before the passed rule's (at %d)", f, p)
	}
}

func TestRuleFinish(t *testing.T) {
	dev := map[string]string{"3.1.5.4/release-wrong": "known"}
	for _, tc := range []struct {
		states  []string
		msgs    []string
		id      string
		want    string
		wantWhy string
	}{
		{[]string{"passed", "passed"}, []string{"", ""}, "x", ResultPassed, ""},
		{[]string{"passed", "failed"}, []string{"", "boom"}, "x", ResultFailed, ""},
		{[]string{"timedout"}, []string{"slow"}, "x", ResultFailed, ""},
		{[]string{"failed"}, []string{"boom"}, "3.1.5.4-release-wrong", ResultDeviation, "known"},
		{[]string{"skipped", "skipped"}, []string{"no restart", "no restart"}, "x", ResultSkipped, "no restart"},
		{[]string{"skipped", "passed"}, []string{"", ""}, "x", ResultPassed, ""},
		{[]string{"skipped"}, []string{""}, "x", ResultNotRun, ""},
	} {
		rr := RuleResult{ID: tc.id}
		for i, s := range tc.states {
			rr.Specs = append(rr.Specs, SpecResult{State: s, Failure: tc.msgs[i]})
		}
		rr.finish(dev)
		if rr.Result != tc.want || rr.Reason != tc.wantWhy {
			t.Errorf("%v: %s (%q), want %s (%q)", tc.states, rr.Result, rr.Reason, tc.want, tc.wantWhy)
		}
	}
}

func TestTranscriptRendering(t *testing.T) {
	r := newRecorder()
	id, tap := r.newConn()
	tap(true, []byte("PUT a HTTP/1.1\r\nTimeout:20\r\n"))
	tap(true, []byte("\r\n\x00\xff"))
	tap(false, []byte("200 OK\r\n"))
	r.note(id, "server closed the connection")
	out := r.render()
	for _, want := range []string{`→ PUT a HTTP/1.1\r\n`, `→ Timeout:20\r\n`, `→ \x00\xff`, `← 200 OK\r\n`, "·· server closed"} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
	big := newRecorder()
	_, tap = big.newConn()
	for i := 0; i < 300; i++ {
		tap(true, bytes.Repeat([]byte("x"), 1024))
	}
	if out := big.render(); !strings.Contains(out, "truncated") || len(out) > 2*maxTranscript {
		t.Errorf("a huge transcript is not bounded (%d bytes)", len(out))
	}
}
