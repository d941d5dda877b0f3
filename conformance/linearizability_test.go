package conformance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/conformance/internal/mutants"
	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// lockContentionYAML is ajax-heavy shrunk to a few hot sessions whose pages
// hold the lock past the (scaled) execution timeout, so locks are broken
// often and the broken holders' PUTs, releases and DELETEs arrive with stale
// cookies: the traffic on which the lock-breaking mutants differ from the
// reference server.
const lockContentionYAML = `
name: lock-contention
description: ajax-heavy with hot sessions and frequent lock breaks
duration: 1500ms
farm:
  web_servers: 2
  apps:
    - id: /LM/W3SVC/2/ROOT
  load_balancing: round-robin
users:
  pages_per_session: {dist: uniform, min: 1, max: 2}
  think_time: {dist: exponential, mean: 300ms, max: 600ms}
  abandon_fraction: 1
pages:
  mix: {modify: 4, read-unchanged: 4, read-only: 1, sessionless: 1}
  exec_time: {dist: lognormal, mean: 40ms, stddev: 40ms, max: 300ms}
  burst:
    probability: 0.8
    size: {dist: uniform, min: 2, max: 5}
    mix: {modify: 4, read-unchanged: 4, read-only: 2}
session:
  size: {dist: lognormal, mean: 1KiB, stddev: 1KiB, min: 64B, max: 8KiB}
client:
  execution_timeout: 3s
  lock_poll_interval: 500ms
rate:
  shape: constant
  pages_per_second: 250
  poisson: true
`

// lockMutants are the mutants that break the lock rules (README's table).
var lockMutants = []string{"lock-never-locks", "release-ignores-cookie", "delete-ignores-lock",
	"put-ignores-lock", "cookie-constant", "first-cookie-one"}

// linearizabilityRun runs the contention scenario through mutant m and
// checks the history.
func linearizabilityRun(t *testing.T, m mutants.Mutant, sc *scenarios.Scenario, vis string) (*results.Run, *results.Linearizability) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := InProcServerConfig(testMinute)
	cfg.IdleTimeout = 0 // the proxy holds upstream connections; keep them
	up, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{Minute: testMinute, Server: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	proxy, err := mutants.Start(m, up.Addr(), testMinute)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	run, err := loadgen.Run(ctx, loadgen.Config{Scenario: sc, Targets: []target.Target{target.Address(proxy.Addr())}, Minute: testMinute,
		Drain: 3 * time.Second, Linearizability: true, LinearizabilityHTML: vis})
	if err != nil {
		t.Fatal(err)
	}
	return run, run.Linearizability
}

// TestLinearizabilityCatchesLockMutants runs a lock-contention load through
// the transparent proxy (the history must be linearizable) and through each
// lock-breaking mutant (the checker must find a violation).
func TestLinearizabilityCatchesLockMutants(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("mutant child process")
	}
	sc, err := scenarios.Parse([]byte(lockContentionYAML), "lock-contention.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// For DELETE, one page per session: every page abandons its session
	// while its AJAX siblings break its lock and take it.
	deletes, err := scenarios.Parse([]byte(strings.Replace(lockContentionYAML,
		"pages_per_session: {dist: uniform, min: 1, max: 2}", "pages_per_session: 1", 1)), "lock-contention-deletes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	scenarioFor := map[string]*scenarios.Scenario{"delete-ignores-lock": deletes}
	for _, c := range []struct {
		name string
		sc   *scenarios.Scenario
	}{{"identity", sc}, {"identity-deletes", deletes}} {
		t.Run(c.name, func(t *testing.T) {
			run, lin := linearizabilityRun(t, mutants.Identity(), c.sc, "")
			t.Logf("%s: %d operations in %d sessions, %d indeterminate, checked in %s; %d 423 replies, %d forced breaks",
				c.name, lin.Operations, lin.Sessions, lin.Indeterminate, time.Duration(lin.CheckTime).Round(time.Millisecond),
				run.Locks.Locked, run.Locks.ForcedBreaks)
			for _, op := range []string{"remove", "set", "release"} {
				if st := run.Ops[op]; st != nil {
					t.Logf("%s: %s statuses %v", c.name, op, st.Statuses)
				}
			}
			if lin.Violations != 0 || lin.Unknown != 0 {
				t.Fatalf("the reference server behind the transparent proxy is not linearizable: %+v", *lin)
			}
			if lin.Operations < 500 || run.Locks.ForcedBreaks == 0 {
				t.Fatalf("not a contention run: %d operations, %d forced breaks", lin.Operations, run.Locks.ForcedBreaks)
			}
		})
	}
	byName := map[string]mutants.Mutant{}
	for _, m := range mutants.All() {
		byName[m.Name] = m
	}
	for _, name := range lockMutants {
		m, ok := byName[name]
		if !ok {
			t.Fatalf("no mutant %q", name)
		}
		t.Run(name, func(t *testing.T) {
			// A stale cookie meets a new holder only when a lock was broken
			// at the right moment: allow a few bounded runs.
			const attempts = 5
			for i := 1; i <= attempts; i++ {
				vis := filepath.Join(t.TempDir(), "lin.html")
				msc := sc
				if x, ok := scenarioFor[name]; ok {
					msc = x
				}
				run, lin := linearizabilityRun(t, m, msc, vis)
				if lin.Violations > 0 {
					t.Logf("%s: caught in run %d: %d of %d sessions not linearizable (%d operations, %d forced breaks); %s",
						name, i, lin.Violations, lin.Sessions, lin.Operations, run.Locks.ForcedBreaks, lin.Examples[0])
					if _, err := os.Stat(lin.Visualization); err != nil {
						t.Fatalf("no visualisation: %v", err)
					}
					return
				}
				t.Logf("%s: run %d not caught (%d operations, %d forced breaks)", name, i, lin.Operations, run.Locks.ForcedBreaks)
			}
			t.Fatalf("mutant %s (%s) not caught in %d runs", name, m.Breaks, attempts)
		})
	}
}
