package loadgen

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// faultScenario is a small farm with a short network timeout, so a black
// hole shows as timeouts within a short run.
func faultScenario(t *testing.T, faults ...scenarios.Fault) *scenarios.Scenario {
	t.Helper()
	sc, err := scenarios.Parse([]byte(`
name: fault-drill
description: faults during load
duration: 5s
farm: {web_servers: 2}
users: {pages_per_session: {dist: constant, value: 30}}
pages:
  exec_time: {dist: constant, value: 2ms}
  mix: {modify: 3, read-unchanged: 1, read-only: 1}
client: {state_network_timeout: 300ms}
rate: {shape: constant, pages_per_second: 150}
`), "fault-drill.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc.Faults = faults
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	return sc
}

func ev(t *testing.T, run *results.Run, kind string) results.FaultEvent {
	t.Helper()
	if run.Faults == nil {
		t.Fatal("no faults block in the result")
	}
	for _, e := range run.Faults.Events {
		if e.Kind == kind {
			return e
		}
	}
	t.Fatalf("no %s event in %+v", kind, run.Faults.Events)
	return results.FaultEvent{}
}

func dur(s string) scenarios.Duration {
	d, _ := time.ParseDuration(s)
	return scenarios.Duration(d)
}

// TestFaultsDuringLoad runs every fault kind against the in-process server
// through the fault proxy; the load keeps running and the result records
// each fault with its times and what it did.
func TestFaultsDuringLoad(t *testing.T) {
	const minute = 600 * time.Millisecond
	sc := faultScenario(t,
		scenarios.Fault{At: dur("500ms"), Kind: scenarios.FaultLatency, Duration: dur("600ms"), Params: scenarios.FaultParams{Delay: dur("40ms"), Jitter: dur("5ms")}},
		scenarios.Fault{At: dur("1400ms"), Kind: scenarios.FaultBlackhole, Duration: dur("500ms")},
		scenarios.Fault{At: dur("2300ms"), Kind: scenarios.FaultResetConnections},
		scenarios.Fault{At: dur("2600ms"), Kind: scenarios.FaultRestart},
		scenarios.Fault{At: dur("3400ms"), Kind: scenarios.FaultPause, Duration: dur("300ms")},
		scenarios.Fault{At: dur("4000ms"), Kind: scenarios.FaultRecycle, Params: scenarios.FaultParams{WebServer: 2}},
	)
	tg, _ := startServer(t, minute)
	cfg := Config{Scenario: sc, Targets: []target.Target{tg},
		Minute: minute, Drain: 2 * time.Second}
	run := runFor(t, cfg)

	f := run.Faults
	if f.Proxy == "" || len(f.Events) != 6 {
		t.Fatalf("faults: proxy %q, %d events: %+v", f.Proxy, len(f.Events), f.Events)
	}
	for i, e := range f.Events {
		if e.Status != results.FaultApplied {
			t.Errorf("%s: %s (%s)", e.Kind, e.Status, e.Detail)
		}
		// Begun not before its offset, and within the run: how late it
		// began depends on the machine (a stalled test process starts
		// every fault late), so only the order is asserted beyond that.
		at := run.Start.Add(time.Duration(e.At))
		if e.Start.Before(at) || e.End.Before(e.Start) || e.End.After(run.End) {
			t.Errorf("%s: start %s end %s, planned at %s", e.Kind, e.Start, e.End, at)
		}
		if i > 0 && e.Start.Before(f.Events[i-1].Start) {
			t.Errorf("events out of order: %s before %s", f.Events[i-1].Kind, e.Kind)
		}
	}
	lat := ev(t, run, "latency")
	if d := lat.End.Sub(lat.Start); d < 600*time.Millisecond {
		t.Errorf("latency lasted %s, want 600ms", d)
	}
	// During the latency fault every request took at least 2 × 35ms.
	var slow bool
	for _, iv := range run.Intervals {
		if iv.P99Uncorrected >= int64(70*time.Millisecond) {
			slow = true
		}
	}
	if !slow {
		t.Errorf("no interval shows the added latency: %+v", run.Intervals)
	}
	bh := ev(t, run, "blackhole")
	if bh.Errors[ErrTimeout] == 0 {
		t.Errorf("black hole: errors %v, want timeouts", bh.Errors)
	}
	rs := ev(t, run, "restart")
	if rs.SessionsLost == 0 || f.SessionsLost < rs.SessionsLost {
		t.Errorf("restart lost %d sessions (run total %d), want some", rs.SessionsLost, f.SessionsLost)
	}
	if p := ev(t, run, "pause"); p.End.Sub(p.Start) < 300*time.Millisecond {
		t.Errorf("pause lasted %s", p.End.Sub(p.Start))
	}
	if rc := ev(t, run, "recycle"); rc.WebServer != 2 {
		t.Errorf("recycle hit web server %d", rc.WebServer)
	}
	// The load went on: pages completed after the last fault.
	last := run.Intervals[len(run.Intervals)-1]
	if last.Pages == 0 || run.Rate.Completed < run.Rate.Scheduled*8/10 {
		t.Errorf("the load did not recover: last interval %+v, %d of %d completed", last, run.Rate.Completed, run.Rate.Scheduled)
	}
	if run.Correctness.Total != 0 {
		t.Errorf("violations: %v %v", run.Correctness.Violations, run.Correctness.Examples)
	}
	var sum strings.Builder
	results.Summary(&sum, run)
	t.Logf("\n%s", sum.String())
	for _, want := range []string{"faults: 6", "restart@2.6s applied", "blackhole@1.4s applied"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
}

// Without fault control (the server reached by its address only, as a
// tcp:// target) a restart is skipped and says why; faults after the end
// of a shortened run are listed as skipped.
func TestFaultsSkippedAreRecorded(t *testing.T) {
	sc := faultScenario(t,
		scenarios.Fault{At: dur("200ms"), Kind: scenarios.FaultRestart},
		scenarios.Fault{At: dur("4s"), Kind: scenarios.FaultKill},
	)
	tg, _ := startServer(t, 600*time.Millisecond)
	run := runFor(t, Config{Scenario: sc, Targets: addrTargets(tg.Addr()), Minute: 600 * time.Millisecond, Duration: time.Second})
	if run.Faults == nil || run.Faults.Proxy != "" || len(run.Faults.Events) != 2 {
		t.Fatalf("faults %+v", run.Faults)
	}
	if e := ev(t, run, "restart"); e.Status != results.FaultSkipped || !strings.Contains(e.Detail, "no fault control") {
		t.Errorf("restart: %+v", e)
	}
	if e := ev(t, run, "kill"); e.Status != results.FaultSkipped || !strings.Contains(e.Detail, "ended before") {
		t.Errorf("kill: %+v", e)
	}
}

func TestShardSplitsTheFarm(t *testing.T) {
	sc := faultScenario(t)
	sc.Farm.WebServers = 7
	sc.Faults = []scenarios.Fault{
		{At: dur("1s"), Kind: scenarios.FaultRestart},
		{At: dur("2s"), Kind: scenarios.FaultLatency, Duration: dur("1s"), Params: scenarios.FaultParams{Delay: dur("5ms")}},
		{At: dur("3s"), Kind: scenarios.FaultRecycle, Params: scenarios.FaultParams{WebServer: 5}},
	}
	var web, faults int
	var rate float64
	for i := 1; i <= 3; i++ {
		c := Config{Scenario: sc, Targets: addrTargets("x:1"), Shard: Shard{Index: i, Count: 3}, Seed: 1}
		if err := c.applyShard(); err != nil {
			t.Fatal(err)
		}
		web += c.Scenario.Farm.WebServers
		rate += c.Scenario.Rate.PagesPerSecond
		faults += len(c.Scenario.Faults)
		kinds := map[scenarios.FaultKind]int{}
		for _, f := range c.Scenario.Faults {
			kinds[f.Kind] = f.Params.WebServer
		}
		if _, ok := kinds[scenarios.FaultRestart]; ok != (i == 1) {
			t.Errorf("shard %d: restart kept %v", i, ok)
		}
		if _, ok := kinds[scenarios.FaultLatency]; !ok {
			t.Errorf("shard %d: network fault dropped", i)
		}
		// Web server 5 (index 4) is shard 2's second web server.
		if w, ok := kinds[scenarios.FaultRecycle]; ok != (i == 2) || (ok && w != 2) {
			t.Errorf("shard %d: recycle kept %v as web server %d", i, ok, w)
		}
		if i == 1 && c.Seed != 1 || i > 1 && c.Seed == 1 {
			t.Errorf("shard %d: seed %d", i, c.Seed)
		}
	}
	if web != 7 || rate < 149.999 || rate > 150.001 || faults != 1+3+1 {
		t.Errorf("shards add up to %d web servers, %v pages/s, %d faults", web, rate, faults)
	}
	if sc.Farm.WebServers != 7 {
		t.Error("applyShard changed the caller's scenario")
	}
	pop := faultScenario(t)
	pop.Rate = scenarios.Rate{}
	pop.Users.Population = 10
	pop.Farm.WebServers = 3
	total := 0
	for i := 1; i <= 3; i++ {
		c := Config{Scenario: pop, Targets: addrTargets("x:1"), Shard: Shard{Index: i, Count: 3}}
		if err := c.applyShard(); err != nil {
			t.Fatal(err)
		}
		total += c.Scenario.Users.Population
	}
	if total != 10 {
		t.Errorf("populations add up to %d, want 10", total)
	}
	bad := Config{Scenario: sc, Targets: addrTargets("x:1"), Shard: Shard{Index: 1, Count: 8}}
	if err := bad.applyShard(); err == nil || !strings.Contains(err.Error(), "7 web servers") {
		t.Errorf("8 shards of 7 web servers: %v", err)
	}
	if _, err := ParseShard("0/2"); err == nil {
		t.Error("shard 0/2 accepted")
	}
}

// TestShardsMergeLikeOneRun runs three shards in this process against one
// server, starting together, and compares their merge with one process at
// the same total rate.
func TestShardsMergeLikeOneRun(t *testing.T) {
	const minute = 600 * time.Millisecond
	sc := faultScenario(t)
	sc.Farm.WebServers = 3
	// No fault here: the default network timeout, so a stall of the shared
	// machine under the race detector does not fail pages.
	sc.Client.NetworkTimeout = scenarios.Duration(10 * time.Second)
	tg, _ := startServer(t, minute)
	base := Config{Scenario: sc, Targets: []target.Target{tg}, Minute: minute, Duration: 2 * time.Second, Drain: 10 * time.Second}
	single := runFor(t, base)

	at := time.Now().Add(300 * time.Millisecond)
	runs := make([]*results.Run, 3)
	errs := make(chan error, 3)
	for i := range runs {
		go func() {
			c := base
			c.Shard = Shard{Index: i + 1, Count: 3}
			c.StartAt = at
			r, err := Run(context.Background(), c)
			runs[i] = r
			errs <- err
		}()
	}
	for range runs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range runs {
		if !r.Start.Equal(at) || r.Config.Shard != (Shard{Index: i + 1, Count: 3}).String() {
			t.Errorf("shard %d: start %s (want %s), shard %q", i+1, r.Start, at, r.Config.Shard)
		}
	}
	for i, r := range runs {
		t.Logf("shard %d: %+v errors %v", i+1, r.Rate, r.Errors)
	}
	m, err := results.Merge(runs)
	if err != nil {
		t.Fatal(err)
	}
	s, g := single.Rate, m.Rate
	t.Logf("single: %d completed, %.1f/s; merged: %d completed, %.1f/s", s.Completed, s.Achieved, g.Completed, g.Achieved)
	if d := float64(g.Completed-s.Completed) / float64(s.Completed); d < -0.03 || d > 0.03 {
		t.Errorf("completed pages differ by %.1f%%", 100*d)
	}
	if m.Config.Rate < 149 || m.Config.Rate > 151 {
		t.Errorf("merged intended rate %v, want 150", m.Config.Rate)
	}
	if m.Correctness.Total != 0 {
		t.Errorf("violations %v", m.Correctness.Violations)
	}
}

// pauseRecorder is a target that records its pauses and resumes, and
// fails to pause when failPause is set.
type pauseRecorder struct {
	target.Target
	failPause       bool
	paused, resumed int
}

func (p *pauseRecorder) Pause(context.Context) error {
	if p.failPause {
		return errors.New("SIGSTOP refused")
	}
	p.paused++
	return nil
}

func (p *pauseRecorder) Resume(context.Context) error { p.resumed++; return nil }

// A pause that fails on one target resumes the targets it had paused, and
// the event says which step failed.
func TestPauseFailureResumesWhatItPaused(t *testing.T) {
	t.Parallel()
	ok, bad := &pauseRecorder{Target: target.Address("127.0.0.1:1")}, &pauseRecorder{Target: target.Address("127.0.0.1:2"), failPause: true}
	r := &runner{cfg: Config{Targets: []target.Target{ok, bad, target.Address("127.0.0.1:3")}}, fl: &faultLog{}}
	f := scenarios.Fault{Kind: scenarios.FaultPause, Duration: dur("1h")}
	ev := r.fl.begin(f, "", []int{0, 1})
	r.pause(context.Background(), f, []int{0, 1}, ev)
	if ok.paused != 1 || ok.resumed != 1 || bad.resumed != 0 {
		t.Errorf("paused/resumed: first %d/%d, second %d", ok.paused, ok.resumed, bad.resumed)
	}
	if ev.Status != results.FaultFailed || ev.Detail != "pause: SIGSTOP refused" {
		t.Errorf("event %s: %q", ev.Status, ev.Detail)
	}
	ev = r.fl.begin(f, "", []int{2})
	r.pause(context.Background(), f, []int{2}, ev)
	if ev.Status != results.FaultFailed || ev.Detail != "pause: target 3 cannot be paused" {
		t.Errorf("event %s: %q", ev.Status, ev.Detail)
	}
}
