package conformance

import (
	"bytes"
	"strings"
	"testing"
)

func failedRule(id, failure, transcript string) RuleResult {
	info, _ := ruleByID(id)
	return RuleResult{ID: id, Level: info.Level, Description: info.Description, Timing: info.Timing, Result: ResultFailed,
		Specs: []SpecResult{{Text: "does it", State: "failed", Failure: failure, Transcript: transcript}}}
}

// TestCausesGroupFailures: failures that share a cause are grouped under it
// with its fix; the rest are listed apart with the rule as the fix.
func TestCausesGroupFailures(t *testing.T) {
	t.Parallel()
	noVersion := "#1 0.1ms  → GET x HTTP/1.1\\r\\n\n#1 0.2ms  ← 200 OK\\r\\n\n#1 0.2ms  ← Cache-Control: private\\r\\n\n"
	r := &RunReport{LabelFilter: "!slow", NotRun: []string{"3.1.5.3-expiry"}, Rules: []RuleResult{
		failedRule("2.2.3.5-timeout-nonnumeric", "PUT Timeout:abc: expected status 400, observed reply: 200 OK", ""),
		failedRule("c.2-1-timeout-invalid", "PUT Timeout:-1: expected status 400, observed reply: 200 OK", ""),
		failedRule("robustness-numbers", "Timeout:1e3: expected 400 or a clean close, observed the reply 200 OK", ""),
		failedRule("2.2.3.4-version-header", "X-AspNet-Version of the 404: expected 4.x, observed <absent>", noVersion),
		failedRule("2.2.3.4-first-request", "first request: Need v2", noVersion),
		failedRule("robustness-unknown-verb", "POST: the server neither answered nor closed the connection within 2s", ""),
		failedRule("3.1.5.1-get-unlocked", "second plain GET: expected status 200, observed reply: 423 Locked", ""),
		{ID: "2.1-keepalive", Level: LevelMust, Result: ResultPassed},
	}}
	groups, other := r.Causes()
	want := map[string]int{"lenient-numbers": 3, "no-version-header": 2, "waits-instead-of-refusing": 1}
	if len(groups) != len(want) {
		t.Fatalf("groups %+v", groups)
	}
	for _, g := range groups {
		if want[g.Cause.ID] != len(g.Rules) {
			t.Errorf("cause %s groups %v, want %d rules", g.Cause.ID, g.Rules, want[g.Cause.ID])
		}
	}
	if groups[0].Cause.ID != "lenient-numbers" {
		t.Errorf("the largest group comes first, got %s", groups[0].Cause.ID)
	}
	if len(other) != 1 || other[0] != "3.1.5.1-get-unlocked" {
		t.Errorf("unexplained %v", other)
	}
	var b bytes.Buffer
	r.WriteFailures(&b)
	out := b.String()
	for _, w := range []string{
		"lenient number parsing: 3 rules (ref 2, advice 1)",
		"no X-AspNet-Version header: 2 rules (must 2)", "KB 2836759",
		"    second plain GET: expected status 200, observed reply: 423 Locked",
		"fix: make the server do what the rule says: a plain GET never locks",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("failures text lacks %q:\n%s", w, out)
		}
	}
	if got := r.LevelSummary(); !strings.Contains(got, "must 1 passed, 3 failed") || !strings.Contains(got, "1 not run (left out by --label-filter '!slow')") ||
		!strings.Contains(got, "advice 0 passed, 2 failed (advice: does not fail the run)") {
		t.Errorf("LevelSummary = %q", got)
	}
	if n := r.BlockingFailures(); n != 5 {
		t.Errorf("BlockingFailures = %d, want 5 (advice excluded)", n)
	}
}

// TestMinuteProbeExplainsTimingFailures: with a minute mismatch found, the
// timing rules' failures are grouped under it.
func TestMinuteProbeExplainsTimingFailures(t *testing.T) {
	t.Parallel()
	r := &RunReport{MinuteProbe: "the target's minute is about 600ms, not 1m", Rules: []RuleResult{
		failedRule("3.1.5.3-expiry", "GET: expected status 404, observed reply: 200 OK", ""),
		failedRule("3.1.5.3-get-extends", "GET: expected status 200, observed reply: 404 Not Found", ""),
	}}
	groups, other := r.Causes()
	if len(groups) != 1 || groups[0].Cause.ID != "minute-mismatch" || len(groups[0].Rules) != 2 || len(other) != 0 {
		t.Errorf("groups %+v, other %v", groups, other)
	}
}
