package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/servers/target"
)

// failedPages counts the pages that ended with an error.
func failedPages(run *results.Run) int64 {
	var n int64
	for _, s := range run.Pages {
		for _, e := range s.Errors {
			n += e
		}
	}
	return n
}

// TestClosedLoopOutlivesDrainTime runs closed loop for several times the
// network timeout (the default drain time). The drain's cut-off once started
// with the run, so every page after one network timeout failed at once as
// canceled and the users spun on them; now it starts only when the run ends.
//
// The short network timeout keeps the test short, so on a busy machine a
// request may outlast it: a timeout is no failure of the drain. What must
// hold however slow the machine: no page is cut off before the run ends
// (canceled: at most one page per user, in flight at the end), pages are
// still served after the first network timeout, and served pages outnumber
// failed ones (before the fix, hundreds of pages failed for each one served).
func TestClosedLoopOutlivesDrainTime(t *testing.T) {
	tg, _ := startServer(t, 0)
	const netTimeout = 250 * time.Millisecond
	const users = 4
	sc := pageCycle(netTimeout, 0)
	run := runFor(t, Config{Scenario: sc, Targets: []target.Target{tg}, ClosedLoop: true, Connections: users,
		Duration: 6 * netTimeout, Interval: netTimeout})
	for kind, n := range run.Errors {
		if kind != ErrTimeout && !(kind == ErrCanceled && n <= users) {
			t.Fatalf("errors in a closed loop against a healthy server: %v", run.Errors)
		}
	}
	if run.Correctness.Total != 0 {
		t.Fatalf("violations: %v %v", run.Correctness.Violations, run.Correctness.Examples)
	}
	r := run.Rate
	failed := failedPages(run)
	served := r.Completed - failed
	if served <= failed {
		t.Fatalf("%d pages served, %d failed", served, failed)
	}
	// Every page of this mix sends one or two requests, each answered.
	var answered int64
	for _, s := range run.Ops {
		for _, n := range s.Statuses {
			answered += n
		}
	}
	if answered < served {
		t.Fatalf("%d pages served with only %d answered requests", served, answered)
	}
	if want := float64(served) / time.Duration(r.Window).Seconds(); r.Achieved != want {
		t.Fatalf("saturation %.1f/s, want served/window = %.1f/s", r.Achieved, want)
	}
	// The users kept working after the first drain time: intervals after it
	// served pages (a closed-loop interval's throughput counts served pages).
	var later int64
	prev := time.Duration(0)
	for _, iv := range run.Intervals {
		if time.Duration(iv.Elapsed) > netTimeout {
			later += int64(iv.Throughput*(time.Duration(iv.Elapsed)-prev).Seconds() + 0.5)
		}
		prev = time.Duration(iv.Elapsed)
	}
	if later == 0 {
		t.Fatalf("no page was served after the first %s\nintervals: %+v", netTimeout, run.Intervals)
	}
	t.Logf("closed loop %s with a %s network timeout: %.0f pages/s, %d pages (%d later), errors %v", time.Duration(r.Window), netTimeout, r.Achieved, r.Completed, later, run.Errors)
}

// TestClosedLoopSaturationLeavesOutFailedPages stops the server part way
// through a closed-loop run: the pages that fail from then on (quickly: the
// connection is refused) are counted as completed with errors, but the
// saturation throughput counts only the pages that were served.
//
// The run is driven by what it observes, not by the clock (a loaded machine
// may run a few pages or thousands in a given second): the server stops once
// the progress shows served pages, and the run is interrupted once it shows
// failed ones. The duration only bounds a run that never gets there.
func TestClosedLoopSaturationLeavesOutFailedPages(t *testing.T) {
	tg, _ := startServer(t, 0)
	sc := pageCycle(time.Second, 0)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const servedBeforeStop = 50
	stopped := false
	cfg := Config{Scenario: sc, Targets: []target.Target{tg}, ClosedLoop: true, Connections: 2,
		Duration: 2 * time.Minute, Interval: 100 * time.Millisecond}
	cfg.Progress = func(p Progress) { // one goroutine calls it
		switch {
		case !stopped && p.Pages >= servedBeforeStop && p.Errors == 0:
			stopped = true
			tg.Close()
		case stopped && p.Errors > 0:
			cancel()
		}
	}
	run, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Validate(); err != nil {
		t.Fatal(err)
	}
	if !stopped || !run.Interrupted {
		t.Fatalf("the run ended (stopped %v, interrupted %v) before the server stop made pages fail: %+v", stopped, run.Interrupted, run.Rate)
	}
	failed := failedPages(run)
	r := run.Rate
	if failed == 0 || r.Completed-failed < servedBeforeStop {
		t.Fatalf("%d failed pages of %d: want some failed after the stop and at least %d served before it", failed, r.Completed, servedBeforeStop)
	}
	want := float64(r.Completed-failed) / time.Duration(r.Window).Seconds()
	if r.Achieved != want {
		t.Fatalf("saturation %.1f/s, want (completed - failed)/window = %.1f/s (%d completed, %d failed)", r.Achieved, want, r.Completed, failed)
	}
	// The per-interval saturation figures leave the failed pages out too.
	var served int64
	prev := time.Duration(0)
	for _, iv := range run.Intervals {
		served += int64(iv.Throughput*(time.Duration(iv.Elapsed)-prev).Seconds() + 0.5)
		prev = time.Duration(iv.Elapsed)
	}
	if d := served - (r.Completed - failed); d < -int64(len(run.Intervals)) || d > int64(len(run.Intervals)) {
		t.Fatalf("interval throughputs add up to %d pages, want the %d served", served, r.Completed-failed)
	}
	t.Logf("%d completed, %d failed, saturation %.0f/s", r.Completed, failed, r.Achieved)
}
