package capacity

import (
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/results/compare"
	"github.com/aspstate/aspstate/scenarios"
)

func TestDefaultSLOsParseAndFitEveryBuiltin(t *testing.T) {
	t.Parallel()
	slos, err := ParseSLOs(DefaultSLOs)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range scenarios.Builtin() {
		sc, err := scenarios.Load(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckScenario(slos, sc); err != nil {
			t.Errorf("%s: the default objectives are refused: %v", info.Name, err)
		}
	}
}

func TestPageObjectiveBelowExecTimeIsRefused(t *testing.T) {
	t.Parallel()
	sc := scenarios.DefaultScenario()
	p99 := ExecQuantile(sc, compare.Scope{Kind: compare.ScopePage, Name: "modify"}, compare.P99)
	mean := sc.Pages.ExecTime.MeanDuration()
	if p99 <= mean {
		t.Fatalf("exec p99 %s is not above its mean %s", p99, mean)
	}
	all := ExecQuantile(sc, compare.Scope{Kind: compare.ScopeAll}, compare.P99)
	if all > p99 || all <= 0 {
		t.Errorf("exec p99 over every page %s: want in (0, %s] (read-only and sessionless pages have none)", all, p99)
	}
	if q := ExecQuantile(sc, compare.Scope{Kind: compare.ScopePage, Name: "read-only"}, compare.P99); q != 0 {
		t.Errorf("read-only pages do not run an execution time, got p99 %s", q)
	}
	below := "page:modify p99 < " + (p99 / 2).Round(time.Millisecond).String()
	slos, err := ParseSLOs([]string{below, "page-state:modify p99 < 1ms", "page:modify p99 < " + (2 * p99).String()})
	if err != nil {
		t.Fatal(err)
	}
	err = CheckScenario(slos, sc)
	if err == nil {
		t.Fatalf("%q lies below the scenario's exec-time p99 %s and was accepted", below, p99)
	}
	for _, want := range []string{below, "execution time", "page-state:modify p99 <"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := strings.Count(err.Error(), "--slo"); n != 1 {
		t.Errorf("only %q should be refused, got %d errors: %v", below, n, err)
	}
}

func TestEachOpObjectiveJudgesTheWorstOperation(t *testing.T) {
	t.Parallel()
	s, err := ParseSLO("op p99 < 10ms")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Scope.EachOp() {
		t.Fatalf("scope %v, want every operation", s.Scope)
	}
	start := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	run := &results.Run{Start: start, Ops: map[string]*results.Stats{"get": {Count: 1}, "set": {Count: 1}}}
	for name, v := range map[string]time.Duration{"get": time.Millisecond, "set": 30 * time.Millisecond} {
		h := results.NewHistogram()
		_ = h.RecordValue(int64(v))
		e, err := results.NewLogEntry(true, "op."+name, start, start.Add(time.Second), h)
		if err != nil {
			t.Fatal(err)
		}
		run.Logs = append(run.Logs, e)
	}
	w, err := measure(run, 0)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := w.value(run, s.Scope, s.Metric)
	r := s.check(v, ok)
	if r.Pass || v < float64(29*time.Millisecond) {
		t.Errorf("op p99 judged %v (pass %v): want the slow set's 30ms, failing", time.Duration(v), r.Pass)
	}
}
