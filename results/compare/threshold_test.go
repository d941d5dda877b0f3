package compare

import (
	"strings"
	"testing"
	"time"
)

func TestParseThreshold(t *testing.T) {
	all := Scope{Kind: ScopeAll}
	for _, tc := range []struct {
		in   string
		want Threshold
	}{
		{"p99 < 5ms", Threshold{Scope: all, Metric: P99, Op: "<", Limit: 5e6}},
		{"p99<5ms", Threshold{Scope: all, Metric: P99, Op: "<", Limit: 5e6}},
		{"  op:get p99.9 < 2ms ", Threshold{Scope: Scope{ScopeOp, "get"}, Metric: P999, Op: "<", Limit: 2e6}},
		{"op:get-exclusive p999 <= 1.5ms", Threshold{Scope: Scope{ScopeOp, "get-exclusive"}, Metric: P999, Op: "<=", Limit: 1.5e6}},
		{"page:modify p99 <= +10%", Threshold{Scope: Scope{ScopePage, "modify"}, Metric: P99, Op: "<=", Limit: 0.10, Relative: true}},
		{"all max < 250us", Threshold{Scope: all, Metric: Max, Op: "<", Limit: 250e3}},
		{"errors < 0.1%", Threshold{Scope: all, Metric: Errors, Op: "<", Limit: 0.001}},
		{"page:read-only errors <= +50%", Threshold{Scope: Scope{ScopePage, "read-only"}, Metric: Errors, Op: "<=", Limit: 0.5, Relative: true}},
		{"throughput >= 200/s", Threshold{Scope: all, Metric: Throughput, Op: ">=", Limit: 200}},
		{"throughput > 150", Threshold{Scope: all, Metric: Throughput, Op: ">", Limit: 150}},
		{"throughput >= -5%", Threshold{Scope: all, Metric: Throughput, Op: ">=", Limit: -0.05, Relative: true}},
		{"P50 < 1s", Threshold{Scope: all, Metric: P50, Op: "<", Limit: 1e9}},
	} {
		got, err := ParseThreshold(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		tc.want.Text = strings.TrimSpace(tc.in)
		if got != tc.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseThresholdErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"", "want [SCOPE] METRIC OP VALUE"},
		{"p99", "want [SCOPE] METRIC OP VALUE"},
		{"p99 = 5ms", "want [SCOPE] METRIC OP VALUE"},
		{"p98 < 5ms", `unknown metric "p98"`},
		{"page:checkout p99 < 5ms", `unknown page type "checkout" (want one of modify, read-unchanged`},
		{"op:fetch p99 < 5ms", `unknown operation "fetch" (want one of get, get-exclusive`},
		{"host:web1 p99 < 5ms", `unknown scope "host:web1"`},
		{"p99 < 5", `needs a unit, such as 5ms`},
		{"p99 < fast", `not a duration`},
		{"p99 < 0ms", `must be positive`},
		{"p99 < 5%", `takes a duration (5ms) or a signed change`},
		{"errors < 3", `must be a percentage such as 0.1%`},
		{"errors < 120%", `between 0% and 100%`},
		{"throughput > lots", `not a rate such as 200/s`},
		{"p99 <= +ten%", `not a number of percent`},
	} {
		_, err := ParseThreshold(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v; want it to contain %q", tc.in, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "threshold") {
			t.Errorf("%q: error %q should name the threshold", tc.in, err)
		}
	}
}

func TestParseThresholdPageStateAndEachOp(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Scope{
		"page-state p99 < 50ms":        {Kind: ScopePageState},
		"page-state:modify p99 < 50ms": {Kind: ScopePageState, Name: "modify"},
		"op p99 < 10ms":                {Kind: ScopeOp},
	} {
		th, err := ParseThreshold(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if th.Scope != want {
			t.Errorf("%q: scope %+v, want %+v", in, th.Scope, want)
		}
		if got := th.Scope.String() + " p99"; !strings.HasPrefix(in, got) {
			t.Errorf("%q: scope spelled %q", in, th.Scope.String())
		}
	}
	if _, err := ParseThreshold("page-state:nosuch p99 < 5ms"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown page kind accepted or not named: %v", err)
	}
}

func TestThresholdsEvaluate(t *testing.T) {
	t.Parallel()
	base, slow := synthetic(1, 0), synthetic(2, 2*time.Millisecond)
	parse := func(ss ...string) []Threshold {
		var out []Threshold
		for _, s := range ss {
			th, err := ParseThreshold(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, th)
		}
		return out
	}
	ths := parse("op:get p50 < 1s", "page:modify p99 <= +10000%", "errors < 0.1%", "throughput >= 30/s",
		"op:remove p99 < 1s", "page:modify p50 <= +5%", "p50 < 1ns")
	res, err := Compare(side("base", base), side("slow", slow), DefaultOptions(), ths)
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, true, true, true, false, false, false}
	for i, tr := range res.Thresholds {
		if tr.Pass != want[i] {
			t.Errorf("%q: pass = %v, want %v (%s)", tr.Text, tr.Pass, want[i], tr.Reason)
		}
	}
	if r := res.Thresholds[4]; !strings.Contains(r.Reason, "no samples") {
		t.Errorf("op:remove (never sent): want a no-samples failure, got %q", r.Reason)
	}
	if res.Broken() != 3 || res.Pass() {
		t.Errorf("broken %d, pass %v; want 3 broken thresholds and a failed comparison", res.Broken(), res.Pass())
	}
	// Against the same build, the relative limit holds.
	res, err = Compare(side("base", base), side("same", synthetic(2, 0)), DefaultOptions(), parse("page:modify p50 <= +20%"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Thresholds[0].Pass {
		t.Errorf("same build: %s", res.Thresholds[0].Reason)
	}
}
