package loadgen

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/testbin"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// restartWatch is a target that notes when a restart has returned.
type restartWatch struct {
	target.Target
	done atomic.Bool
}

func (w *restartWatch) Restart(ctx context.Context) error {
	err := w.Target.(target.Restarter).Restart(ctx)
	w.done.Store(true)
	return err
}

// TestRestartContainerMidRun restarts the containerized reference server
// (docker stop, docker start: a new mapped port) in the middle of a load
// run. The run goes on through the restart; the result shows the fault with
// its times, the errors it caused by kind and the sessions it lost.
//
// The run is driven by what it observes (a container restart takes 2–3 s on
// a quiet machine and much longer on a loaded one): once the restart has
// returned and a progress second later shows more pages served, the test
// ends the run. The duration only bounds a run that never gets there.
func TestRestartContainerMidRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := target.DockerAvailable(ctx); err != nil {
		t.Skipf("skipping container test: %v (start a Docker engine to run it)", err)
	}
	bin := testbin.Static(t)
	spec, err := target.Parse("docker:reference")
	if err != nil {
		t.Fatal(err)
	}
	tg, err := target.Start(ctx, spec, target.Options{Binary: bin})
	if tg != nil {
		t.Cleanup(func() { _ = tg.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	before := tg.Addr()
	sc := faultScenario(t, scenarios.Fault{At: dur("2s"), Kind: scenarios.FaultRestart})
	watch := &restartWatch{Target: tg}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var restarted time.Duration // when a progress first saw the restart returned
	var servedThen int64        // pages served by then
	cfg := Config{Scenario: sc, Targets: []target.Target{watch}, Duration: 2 * time.Minute, Drain: 2 * time.Second}
	cfg.Progress = func(p Progress) { // one goroutine calls it
		switch served := p.Pages - p.Failed; {
		case restarted == 0 && watch.done.Load():
			restarted, servedThen = p.Elapsed, served
		case restarted > 0 && p.Elapsed > restarted+time.Second && served > servedThen:
			stop()
		}
	}
	run, err := Run(runCtx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sum strings.Builder
	results.Summary(&sum, run)
	t.Logf("container %s → %s\n%s", before, tg.Addr(), sum.String())

	if restarted == 0 || run.Failure != "" {
		t.Fatalf("the run ended before the restart returned (after %s), failure %q", run.End.Sub(run.Start), run.Failure)
	}
	e := ev(t, run, "restart")
	if e.Status != results.FaultApplied || e.End.Sub(e.Start) < 50*time.Millisecond || e.Start.Before(run.Start.Add(2*time.Second)) {
		t.Fatalf("restart event: %+v", e)
	}
	var errs int64
	for _, n := range e.Errors {
		errs += n
	}
	if errs == 0 {
		t.Errorf("no page failed while the container restarted: %+v", e)
	}
	if e.SessionsLost == 0 || run.Faults.SessionsLost != e.SessionsLost {
		t.Errorf("sessions lost: event %d, run %d; want some", e.SessionsLost, run.Faults.SessionsLost)
	}
	// Pages completed again after the restart: the load reconnected.
	after := 0
	for _, iv := range run.Intervals {
		if run.Start.Add(time.Duration(iv.Elapsed)).After(e.End.Add(time.Second)) && iv.Pages > iv.Errors {
			after++
		}
	}
	if after == 0 {
		t.Errorf("no interval after the restart served pages: %+v", run.Intervals)
	}
	if run.Correctness.Total != 0 {
		t.Errorf("violations: %v %v", run.Correctness.Violations, run.Correctness.Examples)
	}
	if !strings.Contains(sum.String(), "restart@2s applied") || !strings.Contains(sum.String(), "sessions lost") {
		t.Error("the summary does not show the restart")
	}
}
