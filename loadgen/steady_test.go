package loadgen

import (
	"testing"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// steadyScenario: 1 s think time, 20 pages per session, half the pages
// modify the session, half only read it.
func steadyScenario(rate float64, d time.Duration) *scenarios.Scenario {
	sc := headOnly(rate, d)
	sc.Users.PagesPerSession = scenarios.Dist{Kind: scenarios.DistConstant, Value: 20}
	sc.Users.ThinkTime = scenarios.Dist{Kind: scenarios.DistConstant, Value: 1}
	sc.Pages.Mix = scenarios.Mix{scenarios.PageModify: 1, scenarios.PageReadOnly: 1}
	return sc
}

// TestPlannerSteady: a steady start plans rate × think time sessions, due
// over one think time, each with part of its pages still to view, and then
// the schedule's arrivals go to them rather than to new sessions.
func TestPlannerSteady(t *testing.T) {
	t.Parallel()
	sc := steadyScenario(400, 3*time.Second)
	sched, err := NewSchedule(sc.Rate, sc.Duration.D(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if r := sched.StartRate(); r != 400 {
		t.Fatalf("StartRate = %v, want 400", r)
	}
	p := newPlanner(sc, sched, sc.Duration.D(), 1, newState(20, time.Minute), [32]byte{})
	seeds := p.steady(sched.StartRate())
	if len(seeds) != 400 {
		t.Fatalf("%d seeds, want 400 (rate 400/s × think 1s)", len(seeds))
	}
	seeded := map[*session]bool{}
	for _, s := range seeds {
		if s.kind != scenarios.PageModify || s.exec != 0 || s.sess == nil || seeded[s.sess] {
			t.Fatalf("seed %+v: want a modify page of its own session with no page work", s)
		}
		seeded[s.sess] = true
	}
	for _, e := range p.due {
		ps := e.ps
		if ps.due < 0 || ps.due >= time.Second || ps.left < 1 || ps.left > 20 {
			t.Fatalf("seeded session due at %s with %d pages left: want due in [0, 1s), 1..20 pages", ps.due, ps.left)
		}
	}
	// In the first think time the arrivals find the seeded sessions due;
	// only sessions that end make room for new ones.
	fresh, n := 0, 0
	for {
		s, ok := p.next()
		if !ok || s.at >= time.Second {
			break
		}
		n++
		if !seeded[s.sess] {
			fresh++
		}
	}
	if n != 400 || fresh > 40 {
		t.Fatalf("first second: %d pages, %d of them for new sessions; want 400 pages, few new sessions", n, fresh)
	}

	// A population seeds one session per user.
	pop := steadyScenario(0, 3*time.Second)
	pop.Rate = scenarios.Rate{}
	pop.Users.Population = 50
	pp := newPlanner(pop, nil, pop.Duration.D(), 1, newState(20, time.Minute), [32]byte{})
	if got := len(pp.steady(0)); got != 50 {
		t.Fatalf("population of 50: %d seeds", got)
	}
	for _, e := range pp.users {
		u := e.ps
		if u.sess == nil || u.left < 1 {
			t.Fatalf("user without a seeded session: %+v", u)
		}
	}
}

// TestSteadyStartRun: against the reference server a steady start writes
// the sessions first, records how many, and its pages find them: far fewer
// 404s than a cold start, where every session's first pages find nothing.
func TestSteadyStartRun(t *testing.T) {
	tg, srv := startServer(t, 0)
	sc := steadyScenario(300, 2*time.Second)
	notFound := func(run *results.Run) int64 {
		var n int64
		for _, s := range run.Ops {
			n += s.Statuses["404"]
		}
		return n
	}
	cold := runFor(t, Config{Scenario: sc, Targets: []target.Target{tg}})
	before := srv.Stats().SessionsTotal
	steady := runFor(t, Config{Scenario: sc, Targets: []target.Target{tg}, SteadyStart: true})
	for _, run := range []*results.Run{cold, steady} {
		if run.Correctness.Total != 0 || run.Rate.Completed != 600 {
			t.Fatalf("%s start: %d pages, violations %v", run.Config.Options["start"], run.Rate.Completed, run.Correctness.Examples)
		}
	}
	if o := steady.Config.Options; o["start"] != "steady" || steady.Seeding == nil || steady.Seeding.Sessions != 300 {
		t.Fatalf("options %v, seeding %+v: want start=steady, 300 sessions seeded", o, steady.Seeding)
	}
	if cold.Config.Options["start"] != "cold" || cold.Seeding != nil {
		t.Fatalf("cold run's start option is %q, seeding %+v", cold.Config.Options["start"], cold.Seeding)
	}
	if created := srv.Stats().SessionsTotal - before; created < 300 {
		t.Fatalf("the steady run created %d sessions on the server, want at least the 300 seeded", created)
	}
	c, s := notFound(cold), notFound(steady)
	t.Logf("404 replies: cold start %d, steady start %d", c, s)
	if s*4 > c {
		t.Fatalf("404 replies: cold %d, steady %d; a steady start's pages should find their sessions", c, s)
	}
}
