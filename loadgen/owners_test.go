package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/testwait"
	"github.com/aspstate/aspstate/scenarios"
)

// TestOwnersHandOnSlowPages: with the server paused, every page waits for a
// reply that does not come. An owner running such a page hands its role on
// when its next slot is due, so more pages wait at once than there are
// owners (the server holds one request per waiting page); a page that kept
// the role would hold at most one per owner.
func TestOwnersHandOnSlowPages(t *testing.T) {
	t.Setenv(EngineEnv, EngineOwners)
	tg, srv := startServer(t, 0)
	sc := headOnly(1000, 2*time.Second)
	srv.Pause()
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			srv.Resume()
		}
	})
	type result struct {
		completed, scheduled int64
		errs                 map[string]int64
		err                  error
	}
	done := make(chan result, 1)
	go func() {
		run, err := Run(context.Background(), Config{Scenario: sc, Targets: []string{tg.Addr()}, Workers: 4 * maxOwners})
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{completed: run.Rate.Completed, scheduled: run.Rate.Scheduled, errs: run.Errors}
	}()
	t0 := time.Now()
	testwait.For(t, "more requests held by the paused server than there are owners", func() bool {
		return srv.Stats().Held > maxOwners
	})
	t.Logf("%d requests held after %s", srv.Stats().Held, time.Since(t0))
	srv.Resume()
	resumed = true
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	// (Pages held past the network timeout fail: the machine may be slow.)
	if r.scheduled != 2000 || r.completed != r.scheduled {
		t.Fatalf("scheduled %d, completed %d (errors %v); want 2000 completed", r.scheduled, r.completed, r.errs)
	}
	t.Logf("errors: %v", r.errs)
}

// TestEnginesRunTheSamePages runs pages that wait (an execution time, and
// lock polls: few sessions, so pages of one session overlap) with each
// engine: every slot runs to its end, the checks find nothing, and the
// result names the engine. An unknown engine is refused.
func TestEnginesRunTheSamePages(t *testing.T) {
	tg, _ := startServer(t, 0)
	sc := pageCycle(5*time.Second, 0)
	sc.Users.ThinkTime = scenarios.Dist{Kind: scenarios.DistConstant, Value: 0.01}
	sc.Pages.ExecTime = scenarios.Dist{Kind: scenarios.DistConstant, Value: 0.02}
	for _, engine := range []string{EngineOwners, EngineDispatcher} {
		t.Run(engine, func(t *testing.T) {
			t.Setenv(EngineEnv, engine)
			run := runFor(t, Config{Scenario: sc, Targets: []string{tg.Addr()}, Rate: 300, Duration: time.Second, Workers: 64, Minute: 6 * time.Second})
			r := run.Rate
			if r.Scheduled != 300 || r.Completed != r.Scheduled || r.Dropped != 0 || len(run.Errors) != 0 || run.Correctness.Total != 0 {
				t.Fatalf("scheduled %d, completed %d, dropped %d, errors %v, %d violations; want 300 completed and nothing else",
					r.Scheduled, r.Completed, r.Dropped, run.Errors, run.Correctness.Total)
			}
			if run.Locks.Locked == 0 {
				t.Errorf("no page met a locked session: the test does not exercise lock polls")
			}
			if got := run.Config.Options["open_engine"]; got != engine {
				t.Errorf("open_engine %q, want %q", got, engine)
			}
		})
	}
	t.Setenv(EngineEnv, "epoll")
	if _, err := Run(context.Background(), Config{Scenario: sc, Targets: []string{tg.Addr()}}); err == nil {
		t.Fatal("an unknown engine ran")
	}
}
