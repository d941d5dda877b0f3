package compare

import (
	"bytes"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/results/resultstest"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

func side(name string, runs ...*results.Run) Side {
	s := Side{Runs: runs}
	for range runs {
		s.Names = append(s.Names, name)
	}
	return s
}

// synthetic is a run of twelve 500ms intervals (resultstest.DefaultSpec's
// page types and operations) drawn with seed, every latency shift longer.
// Two seeds are the same build measured twice; the same seed with a shift
// is that run as a build adding shift to every request would have made it.
// Runs are built once per seed and shift and shared (Compare only reads
// them): building one encodes some hundred histograms.
func synthetic(seed uint64, shift time.Duration) *results.Run {
	type key struct {
		seed  uint64
		shift time.Duration
	}
	v, _ := syntheticRuns.LoadOrStore(key{seed, shift}, sync.OnceValue(func() *results.Run {
		s := resultstest.DefaultSpec()
		s.Seed, s.Intervals, s.Interval, s.Shift = seed, 12, 500*time.Millisecond, shift
		return resultstest.Run(s)
	}))
	return v.(func() *results.Run)()
}

var syntheticRuns sync.Map

// compareBoth compares new against base, fails t on an error, and logs the
// text form.
func compareBoth(t *testing.T, base, new Side, ths ...Threshold) *Result {
	t.Helper()
	res, err := Compare(base, new, DefaultOptions(), ths)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := res.Text(&text); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + text.String())
	return res
}

func TestSameBuildIsNoChange(t *testing.T) {
	t.Parallel()
	base, same := synthetic(1, 0), synthetic(2, 0)
	res := compareBoth(t, side("base", base), side("same", same))
	if !res.Pass() || res.Count(Improvement) != 0 {
		t.Fatalf("same build: want no change, got %d regressions, %d improvements", res.Count(Regression), res.Count(Improvement))
	}
	// Either run may be the base: no change both ways.
	if rev := compareBoth(t, side("same", same), side("base", base)); !rev.Pass() {
		t.Fatalf("same build, reversed: want no regression, got %d", rev.Count(Regression))
	}
	row, ok := res.Row(Scope{Kind: ScopeAll}, P50)
	if !ok || row.NBase != 12 || row.NNew != 12 {
		t.Fatalf("all p50: want a row with the 12 interval samples per side, got %+v", row)
	}
	if row.Verdict != NoChange || math.IsNaN(row.P) {
		t.Fatalf("all p50: want a tested no change, got %+v", row)
	}
	// The scopes are every page type and operation of the runs, and all.
	for _, s := range []Scope{{Kind: ScopeAll}, {ScopePage, "modify"}, {ScopePage, "read-only"},
		{ScopeOp, "get-exclusive"}, {ScopeOp, "set"}, {ScopeOp, "get"}} {
		for _, m := range Metrics {
			if _, ok := res.Row(s, m); !ok {
				t.Errorf("no row for %s %s", s, m)
			}
		}
	}
	if want := 6 * len(Metrics); len(res.Rows) != want {
		t.Errorf("%d rows, want %d", len(res.Rows), want)
	}
}

func TestShiftedBuildIsRegression(t *testing.T) {
	t.Parallel()
	const shift = 2 * time.Millisecond
	base, slow := synthetic(1, 0), synthetic(1, shift)
	res := compareBoth(t, side("base", base), side("base+2ms", slow))
	if res.Pass() {
		t.Fatal("every latency 2ms longer: want a regression")
	}
	for _, s := range []Scope{{Kind: ScopeAll}, {ScopePage, "modify"}, {ScopeOp, "get-exclusive"}} {
		row, ok := res.Row(s, P50)
		if !ok || row.Verdict != Regression || math.Abs(row.New-row.Base-float64(shift)) > 0.01*float64(shift) {
			t.Errorf("%s p50: want a regression of +%s, got %+v", s, shift, row)
		}
	}
	// Latency only: throughput and errors are unchanged.
	for _, m := range []Metric{Throughput, Errors} {
		if row, _ := res.Row(Scope{Kind: ScopeAll}, m); row.Verdict != NoChange {
			t.Errorf("%s: want no change, got %+v", m, row)
		}
	}
	// The reverse comparison is an improvement, and passes.
	rev := compareBoth(t, side("base+2ms", slow), side("base", base))
	if row, _ := rev.Row(Scope{Kind: ScopeAll}, P50); row.Verdict != Improvement {
		t.Errorf("reverse: want an improvement, got %+v", row)
	}
	if !rev.Pass() {
		t.Errorf("reverse: an improvement passes; got %d regressions", rev.Count(Regression))
	}
}

// TestShiftBelowMinEffectIsNoChange: a shift every interval shows (q <
// alpha) but smaller than the minimum effect asked for is no change.
func TestShiftBelowMinEffectIsNoChange(t *testing.T) {
	t.Parallel()
	opts := DefaultOptions()
	const minEffect = 1.5 // +150%; modify's p50 moves by +100%
	for _, m := range Metrics {
		opts.MinEffects[m] = Effect{Rel: minEffect}
	}
	res, err := Compare(side("base", synthetic(1, 0)), side("base+2ms", synthetic(1, 2*time.Millisecond)), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	row, _ := res.Row(Scope{ScopePage, "modify"}, P50)
	if row.Verdict != NoChange || !(row.Q < opts.Alpha) || row.Delta < 0.9 || row.Delta >= minEffect {
		t.Fatalf("modify p50 +100%% with a 150%% minimum effect: want a significant change below it, no change; got %+v", row)
	}
	// The operations (around 0.8ms) moved by more than 150%: those are
	// regressions, and only those.
	for _, r := range res.Rows {
		if (r.Verdict == Regression) != (r.Metric.IsLatency() && r.Delta >= minEffect && r.Q < opts.Alpha) {
			t.Errorf("%s %s: %s with delta %s, q %.3g", r.Scope, r.Metric, r.Verdict, FormatDelta(r.Delta), r.Q)
		}
	}
}

// TestMoreErrorsIsRegression: the error rate is compared as a proportion
// over the counts.
func TestMoreErrorsIsRegression(t *testing.T) {
	t.Parallel()
	s := resultstest.DefaultSpec()
	s.Seed, s.Intervals = 1, 12
	base := resultstest.Run(s)
	s.Pages[0].Errors, s.Ops[1].Errors = 3, 3 // 10% of modify pages and of SETs
	worse := resultstest.Run(s)
	res := compareBoth(t, side("base", base), side("errors", worse))
	for _, sc := range []Scope{{Kind: ScopeAll}, {ScopePage, "modify"}, {ScopeOp, "set"}} {
		if row, _ := res.Row(sc, Errors); row.Verdict != Regression || row.Test != "two-proportion-z" {
			t.Errorf("%s errors 0 → 10%%: want a regression by the two-proportion test, got %+v", sc, row)
		}
	}
	if row, _ := res.Row(Scope{ScopePage, "read-only"}, Errors); row.Verdict != NoChange {
		t.Errorf("read-only errors unchanged: got %+v", row)
	}
}

func TestCompareRejectsBadInput(t *testing.T) {
	t.Parallel()
	if _, err := Compare(Side{}, Side{}, DefaultOptions(), nil); err == nil {
		t.Error("empty sides: want an error")
	}
	bad := DefaultOptions()
	bad.Alpha = 2
	bad.MinSamples = 1
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "Alpha") || !strings.Contains(err.Error(), "MinSamples") {
		t.Errorf("bad options: want both problems reported, got %v", err)
	}
}

// realScenario is a short open-model load of every page type.
const realScenario = `
name: compare-real
description: short open-model load for the compare wiring test
duration: 2s
farm: {web_servers: 2}
users:
  pages_per_session: {dist: constant, value: 5}
  think_time: {dist: constant, value: 100ms}
pages:
  mix: {modify: 2, read-unchanged: 2, read-only: 1, sessionless: 1}
rate: {shape: constant, pages_per_second: 40}
`

// TestRealRunWiring is the package's one test on real load: a run the load
// generator wrote is compared with itself. It checks what must hold however
// busy the machine was (the verdicts themselves are tested above on runs
// built in memory): every page type and operation the run recorded is a
// scope, the totals are the run's own, both sides have the same interval
// samples, and a run is no change from itself.
func TestRealRunWiring(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load for two seconds")
	}
	sc, err := scenarios.Parse([]byte(realScenario), "compare-real.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tg, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	run, err := loadgen.Run(ctx, loadgen.Config{Scenario: sc, Targets: []target.Target{tg}, Interval: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	res := compareBoth(t, side("run", run), side("run", run))
	if !res.Pass() || res.Count(NoChange) != len(res.Rows) {
		t.Fatalf("a run against itself: want no change in every row, got %d regressions, %d improvements",
			res.Count(Regression), res.Count(Improvement))
	}
	for kind, m := range map[string]map[string]*results.Stats{ScopePage: run.Pages, ScopeOp: run.Ops} {
		for name, st := range m {
			if st.Count == 0 {
				continue
			}
			row, ok := res.Row(Scope{kind, name}, P50)
			if !ok || row.Base != float64(st.Corrected.P50) {
				t.Errorf("%s:%s p50: want the run's %d, got %+v (found %v)", kind, name, st.Corrected.P50, row, ok)
			}
			if row.NBase == 0 || row.NBase != row.NNew {
				t.Errorf("%s:%s: want the same interval samples on both sides, got %d and %d", kind, name, row.NBase, row.NNew)
			}
		}
	}
	all, _ := res.Row(Scope{Kind: ScopeAll}, Throughput)
	if want := float64(run.Rate.Completed) / time.Duration(run.Rate.Window).Seconds(); math.Abs(all.Base-want) > 1e-9*want {
		t.Errorf("all throughput %v, want completed/window = %v", all.Base, want)
	}
	// The scopes came from the run's interval logs: the page type tags.
	if _, ok := res.Row(Scope{ScopePage, string(scenarios.PageModify)}, P50); !ok {
		t.Errorf("no modify row: the run's page tags are not read")
	}
}
