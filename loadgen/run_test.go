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

// addrTargets makes address-only targets (target.Address): a server
// reached as tcp:// reaches it, or none for tests that never dial.
func addrTargets(addrs ...string) []target.Target {
	out := make([]target.Target, len(addrs))
	for i, a := range addrs {
		out[i] = target.Address(a)
	}
	return out
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
			cfg := Config{Scenario: sc, Targets: []target.Target{tg}, Duration: 2 * time.Second, Minute: minute,
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

// TestPageStateLeavesExecutionTimeOut runs pages whose execution time is a
// constant 40ms: their page latency includes it, their page-state latency
// (state-server calls and lock waits) does not.
func TestPageStateLeavesExecutionTimeOut(t *testing.T) {
	sc := scenarios.DefaultScenario()
	sc.Pages.ExecTime = scenarios.Dist{Kind: scenarios.DistConstant, Value: 0.040}
	tg, _ := startServer(t, 0)
	run := runFor(t, Config{Scenario: sc, Targets: []target.Target{tg}, Duration: time.Second, Rate: 50, Drain: 5 * time.Second})
	page, state := run.Pages["modify"], run.PageState["modify"]
	if page == nil || state == nil || page.Count == 0 {
		t.Fatalf("no modify pages recorded: pages %v, page-state %v", page, state)
	}
	if state.Count != page.Count {
		t.Errorf("page-state counts %d pages, page %d", state.Count, page.Count)
	}
	for _, l := range []struct {
		name        string
		page, state results.Latency
	}{{"corrected", page.Corrected, state.Corrected}, {"uncorrected", page.Uncorrected, state.Uncorrected}} {
		if l.page.P50 < int64(40*time.Millisecond) {
			t.Errorf("%s page p50 %s: want at least the 40ms execution time", l.name, time.Duration(l.page.P50))
		}
		// The difference is the execution time as slept: at least 40ms
		// (a timer never fires early), whatever the machine's load.
		if d := l.page.P50 - l.state.P50; d < int64(39*time.Millisecond) {
			t.Errorf("%s page p50 %s − page-state p50 %s = %s: want about the 40ms execution time",
				l.name, time.Duration(l.page.P50), time.Duration(l.state.P50), time.Duration(d))
		}
	}
	if ro, st := run.Pages["read-only"], run.PageState["read-only"]; ro != nil && st != nil && ro.Corrected.P50 != st.Corrected.P50 {
		t.Errorf("read-only pages run no execution time: page p50 %d, page-state p50 %d", ro.Corrected.P50, st.Corrected.P50)
	}
	var tagged bool
	for _, e := range run.Logs {
		tagged = tagged || e.Tag == results.PageStateTagPrefix+"modify"
	}
	if !tagged {
		t.Error("no page-state.modify interval histograms in the logs")
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
