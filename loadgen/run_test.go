package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/stateserver"
	"github.com/aspstate/aspstate/servers/target"
)

// startServer starts the in-process reference server with protocol minute m.
func startServer(t *testing.T, m time.Duration) (target.Target, *stateserver.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tg, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{Minute: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg, tg.(target.InProcess).Server()
}

func runFor(t *testing.T, cfg Config) *results.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration+30*time.Second)
	defer cancel()
	run, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Validate(); err != nil {
		t.Fatal(err)
	}
	return run
}

func TestEveryBuiltinRunsWithoutViolations(t *testing.T) {
	const minute = 600 * time.Millisecond // one protocol second = 10ms
	for _, info := range scenarios.Builtin() {
		t.Run(info.Name, func(t *testing.T) {
			sc, err := scenarios.Lookup(info.Name)
			if err != nil {
				t.Fatal(err)
			}
			tg, _ := startServer(t, minute)
			cfg := Config{Scenario: sc, Targets: []string{tg.Addr()}, Duration: 2 * time.Second, Minute: minute,
				Drain: 3 * time.Second}
			if sc.Users.Population == 0 {
				cfg.Rate = 60
			}
			// Faults in the timeline land inside the short run.
			for i := range sc.Faults {
				sc.Faults[i].At = scenarios.Duration(time.Duration(i+1) * 300 * time.Millisecond)
			}
			run := runFor(t, cfg)
			if run.Correctness.Total != 0 {
				t.Fatalf("violations: %v\n%v", run.Correctness.Violations, run.Correctness.Examples)
			}
			if run.Rate.Completed == 0 || run.Correctness.Checks == 0 {
				t.Fatalf("nothing ran: %+v, %d checks", run.Rate, run.Correctness.Checks)
			}
			var errs int64
			for k, n := range run.Errors {
				// Under a scaled minute a page may time out waiting for a
				// lock held by its own AJAX burst: that is the client's rule,
				// not a server failure.
				if k != ErrCanceled && k != ErrLockTimeout {
					errs += n
				}
			}
			if errs > 0 {
				t.Fatalf("errors against the reference server: %v", run.Errors)
			}
			t.Logf("%s: %d pages, %d checks, ops %d kinds, locks %+v", info.Name, run.Rate.Completed, run.Correctness.Checks, len(run.Ops), run.Locks.Locked)
		})
	}
}

func startCustom(t *testing.T, cfg stateserver.Config) target.Target {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tg, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{Server: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}
