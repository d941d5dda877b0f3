package capacity

import (
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/results/compare"
	"github.com/aspstate/aspstate/scenarios"
)

func TestParseSLO(t *testing.T) {
	good := []struct {
		in     string
		scope  compare.Scope
		metric compare.Metric
		op     string
		limit  float64
	}{
		{"page p99 < 50ms", compare.Scope{Kind: compare.ScopeAll}, compare.P99, "<", 50e6},
		{"pages p99.9 <= 1s", compare.Scope{Kind: compare.ScopeAll}, compare.P999, "<=", 1e9},
		{"p50 < 500us", compare.Scope{Kind: compare.ScopeAll}, compare.P50, "<", 500e3},
		{"errors < 0.1%", compare.Scope{Kind: compare.ScopeAll}, compare.Errors, "<", 0.001},
		{"page:modify p99 < 200ms", compare.Scope{Kind: compare.ScopePage, Name: "modify"}, compare.P99, "<", 200e6},
		{"op:get-exclusive max < 2s", compare.Scope{Kind: compare.ScopeOp, Name: "get-exclusive"}, compare.Max, "<", 2e9},
		{"throughput >= 500/s", compare.Scope{Kind: compare.ScopeAll}, compare.Throughput, ">=", 500},
	}
	for _, g := range good {
		s, err := ParseSLO(g.in)
		if err != nil {
			t.Errorf("%q: %v", g.in, err)
			continue
		}
		if s.Scope != g.scope || s.Metric != g.metric || s.Op != g.op || s.Limit != g.limit || s.Text != g.in {
			t.Errorf("%q: got %+v", g.in, s.Threshold)
		}
	}
	bad := []struct{ in, want string }{
		{"page p98 < 50ms", `unknown metric "p98"`},
		{"page:checkout p99 < 50ms", `unknown page type "checkout"`},
		{"op:frobnicate p99 < 5ms", `unknown operation "frobnicate"`},
		{"page p99 < +10%", "no base run"},
		{"errors > 1%", "upper bound"},
		{"p99 >= 5ms", "upper bound"},
		{"p99 < 50", "needs a unit"},
		{"errors < 0.1", "percentage"},
		{"latency is low", "want [SCOPE] METRIC OP VALUE"},
	}
	for _, b := range bad {
		_, err := ParseSLO(b.in)
		if err == nil {
			t.Errorf("%q: no error", b.in)
			continue
		}
		if !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), b.in) {
			t.Errorf("%q: error %q, want it to name the SLO and say %q", b.in, err, b.want)
		}
	}
	if _, err := ParseSLOs([]string{"p99 < 5ms", "p98 < 1ms", "errors > 1%"}); err == nil ||
		!strings.Contains(err.Error(), "p98") || !strings.Contains(err.Error(), "errors > 1%") {
		t.Errorf("ParseSLOs should report every bad SLO: %v", err)
	}
}

func TestCheckScenario(t *testing.T) {
	sc := scenarios.DefaultScenario()
	slos, err := ParseSLOs([]string{"page:modify p99 < 1s", "page-state:modify p99 < 5ms", "op:remove p99 < 5ms"})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckScenario(slos, sc); err != nil {
		t.Fatalf("modify pages are in the default mix: %v", err)
	}
	slos, _ = ParseSLOs([]string{"page:abandon p99 < 5ms"})
	if err := CheckScenario(slos, sc); err == nil || !strings.Contains(err.Error(), "no abandon pages") {
		t.Fatalf("want an error naming the missing page kind, got %v", err)
	}
}

// fakeRun builds a run of n one-second intervals at rate pages/s whose
// first interval is slow (100 ms pages) and the others fast (1 ms).
func fakeRun(t *testing.T, n int, rate int64, late int64) *results.Run {
	t.Helper()
	start := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	run := &results.Run{Start: start, Config: results.Config{Duration: results.Duration(time.Duration(n) * time.Second)},
		Pages: map[string]*results.Stats{}, Ops: map[string]*results.Stats{}, Correctness: results.Correctness{Violations: map[string]int64{}}}
	for i := 0; i < n; i++ {
		h := results.NewHistogram()
		v := int64(time.Millisecond)
		if i == 0 {
			v = int64(100 * time.Millisecond)
		}
		for j := int64(0); j < rate; j++ {
			_ = h.RecordValue(v + j*1000)
		}
		s, e := start.Add(time.Duration(i)*time.Second), start.Add(time.Duration(i+1)*time.Second)
		le, err := results.NewLogEntry(true, "page.modify", s, e, h)
		if err != nil {
			t.Fatal(err)
		}
		op, err := results.NewLogEntry(true, "op.get-exclusive", s, e, h)
		if err != nil {
			t.Fatal(err)
		}
		run.Logs = append(run.Logs, le, op)
		run.Intervals = append(run.Intervals, results.Interval{Elapsed: results.Duration(e.Sub(start)), Pages: rate, Ops: 2 * rate, Late: late})
	}
	run.Pages["modify"] = &results.Stats{Count: rate * int64(n), Errors: map[string]int64{}}
	run.Ops["get-exclusive"] = &results.Stats{Count: rate * int64(n), Errors: map[string]int64{}}
	run.Rate = results.Rate{Scheduled: rate * int64(n), LateThreshold: results.Duration(5 * time.Millisecond)}
	return run
}

func mustSLOs(t *testing.T, texts ...string) []SLO {
	t.Helper()
	s, err := ParseSLOs(texts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJudgeLeavesWarmupOut(t *testing.T) {
	run := fakeRun(t, 6, 100, 0)
	res, err := Judge(run, 100, Criteria{SLOs: mustSLOs(t, "page p99 < 50ms", "errors < 0.1%", "op:get-exclusive p99 < 5ms"), Warmup: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass || len(res.Reasons) > 0 {
		t.Fatalf("want a pass once the slow first interval is left out: %+v", res)
	}
	if res.P99 > 2*time.Millisecond || res.Pages != 500 || res.Window != 5*time.Second || res.Achieved != 100 || res.RequestsPerSecond != 200 {
		t.Fatalf("measured window wrong: p99 %s pages %d window %s achieved %.1f req/s %.1f", res.P99, res.Pages, res.Window, res.Achieved, res.RequestsPerSecond)
	}
	// Without a warm-up the first interval breaks the SLO.
	res, err = Judge(run, 100, Criteria{SLOs: mustSLOs(t, "page p99 < 50ms"), Warmup: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pass || !strings.Contains(strings.Join(res.Reasons, ";"), "SLO page p99 < 50ms broken") {
		t.Fatalf("want the SLO broken with the slow interval included: %+v", res)
	}
	if res.Severe {
		t.Errorf("p99 ≈ 100ms against 50ms is not severe (×2 < ×3)")
	}
}

func TestJudgeFailures(t *testing.T) {
	slos := []string{"page p99 < 50ms"}
	cases := []struct {
		name      string
		edit      func(*results.Run)
		rate      float64
		want      string
		generator bool
		severe    bool
	}{
		{"late slots", func(r *results.Run) {
			for i := range r.Intervals {
				r.Intervals[i].Late = 5
			}
		}, 100, "generator could not keep up: 5.0% of slots started more than 5ms late (limit 2.0%)", true, false},
		{"very late slots", func(r *results.Run) {
			for i := range r.Intervals {
				r.Intervals[i].Late = 10
			}
		}, 100, "generator could not keep up: 10.0% of slots", true, true},
		{"dropped slots", func(r *results.Run) { r.Rate.Dropped = 3 }, 100, "the load generator could not keep up: 3 of 600 slots dropped", true, false},
		{"slots left waiting for a worker", func(r *results.Run) { r.Rate.Dropped, r.Rate.NoWorker = 30, 50 }, 100,
			"30 of 600 slots never started: they were still waiting for a free worker", false, true},
		{"violations", func(r *results.Run) {
			r.Correctness.Total = 2
			r.Correctness.Violations["foreign-body"] = 2
		}, 100, "2 correctness violations (foreign-body 2)", false, false},
		{"errors without an SLO on them", func(r *results.Run) { r.Pages["modify"].Errors["timeout"] = 6 }, 100,
			"1.000% of pages failed (timeout 6)", false, false},
		{"short of the offered rate", nil, 200, "achieved 100.0 pages/s of the 200.0 offered", false, false},
		{"run failure", func(r *results.Run) { r.Failure = "target gone" }, 100, "the run failed: target gone", false, true},
	}
	for _, c := range cases {
		run := fakeRun(t, 6, 100, 0)
		if c.edit != nil {
			c.edit(run)
		}
		res, err := Judge(run, c.rate, Criteria{SLOs: mustSLOs(t, slos...), Warmup: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(res.Reasons, "; ")
		if res.Pass || !strings.Contains(got, c.want) {
			t.Errorf("%s: reasons %q, want %q", c.name, got, c.want)
		}
		if res.GeneratorLimited != c.generator || res.Severe != c.severe {
			t.Errorf("%s: generator %v severe %v, want %v %v", c.name, res.GeneratorLimited, res.Severe, c.generator, c.severe)
		}
	}
	// Slots late because they waited for a worker are the target's doing:
	// a note, and the SLO judges their latency.
	run := fakeRun(t, 6, 100, 5)
	run.Rate.NoWorker = 30
	res, err := Judge(run, 100, Criteria{SLOs: mustSLOs(t, slos...), Warmup: time.Second})
	if err != nil || !res.Pass || res.GeneratorLimited || !strings.Contains(strings.Join(res.Notes, ";"), "30 slots (5.0%) waited for a free worker") {
		t.Fatalf("late slots that waited for a worker: %+v %v", res, err)
	}
	// An SLO on errors lets some through.
	run = fakeRun(t, 6, 100, 0)
	run.Pages["modify"].Errors["timeout"] = 0
	run.Pages["modify"].Errors["reset"] = 1
	res, err = Judge(run, 100, Criteria{SLOs: mustSLOs(t, "errors < 1%"), Warmup: time.Second})
	if err != nil || !res.Pass {
		t.Fatalf("1 error in 600 pages is under 1%%: %+v %v", res, err)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP aspstate_sessions_active Session items in the store.
# TYPE aspstate_sessions_active gauge
aspstate_sessions_active 42
aspstate_sessions_total 50
aspstate_requests_total{op="get",status="200"} 7
aspstate_requests_total{op="set",status="200"} 5
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil || m != (Metrics{SessionsTotal: 50, SessionsActive: 42, Requests: 12, Reference: true}) {
		t.Fatalf("got %+v, %v", m, err)
	}
	if _, err := parseMetrics(strings.NewReader("go_goroutines 3\n")); err == nil {
		t.Fatal("an endpoint with neither aspstate metrics nor resident memory should be an error")
	}
	m, err = parseMetrics(strings.NewReader("process_resident_memory_bytes 1.5e+08\n"))
	if err != nil || m != (Metrics{ResidentBytes: 150000000}) {
		t.Fatalf("another server's process metrics: %+v, %v", m, err)
	}
}

func TestSheet(t *testing.T) {
	sc, err := scenarios.Parse([]byte(`name: sheet
description: sheet test
farm: {web_servers: 4}
users:
  pages_per_session: 200
  think_time: 1s
pages:
  mix: {modify: 1, read-only: 1}
  exec_time: 0s
session:
  size: 1KiB
client:
  session_timeout: 20
`), "sheet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSheet(sc, StepResult{Rate: 1000, Achieved: 1000, RequestsPerSecond: 1500}, ReferenceMemory("in-process"), 1)
	near := func(name string, got, want float64) {
		t.Helper()
		if d := got - want; d > want*1e-9 || d < -want*1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("pages per web server", s.PagesPerWebServer, 250)
	near("requests per page", s.RequestsPerPage, 1.5)
	near("concurrent users", s.ConcurrentUsers, 1000)
	near("sessions per second", s.SessionsPerSecond, 5)
	near("sessions active", s.SessionsActive, 5*199)
	near("sessions held", s.SessionsHeld, 5*(199+1200))
	near("bytes per session", s.BytesPerSession, 1024)
	near("memory", s.MemoryBytes, 5*(199+1200)*(1024+308))
	all := strings.Join(s.Assumptions, "\n")
	for _, want := range []string{"Little's law", "session timeout, 20m0s", "308 B", "no counters", "empty store", "Go heap", "1 partition:"} {
		if !strings.Contains(all, want) {
			t.Errorf("assumptions do not mention %q:\n%s", want, all)
		}
	}
	steady := NewSheet(sc, StepResult{Rate: 1000, Achieved: 1000, RequestsPerSecond: 1500, SteadyStart: true}, ReferenceMemory("in-process"), 1)
	if all := strings.Join(steady.Assumptions, "\n"); !strings.Contains(all, "the 1000 sessions a farm at this rate holds") {
		t.Errorf("a steady start's assumptions do not say what was seeded:\n%s", all)
	}
}
