package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/testbin"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// TestRestartContainerMidRun restarts the containerized reference server
// (docker stop, docker start: a new mapped port) in the middle of a load
// run. The run completes; the result shows the fault with its times, the
// errors it caused by kind and the sessions it lost.
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
	cfg := Config{Scenario: sc, Targets: []target.Target{tg},
		// 9 s: a container restart takes 2–3 s on a loaded machine, and the
		// run must go on long enough after it to show pages served again.
		Duration: 9 * time.Second, Drain: 2 * time.Second}
	run := runFor(t, cfg)
	var sum strings.Builder
	results.Summary(&sum, run)
	t.Logf("container %s → %s\n%s", before, tg.Addr(), sum.String())

	if run.Interrupted || run.Failure != "" {
		t.Fatalf("the run did not complete: interrupted %v, failure %q", run.Interrupted, run.Failure)
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
