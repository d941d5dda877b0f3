package conformance

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/aspstate/aspstate/servers/target"
)

// testMinute is the protocol minute of the in-process server under go test:
// small so the timing rules take seconds.
const testMinute = 600 * time.Millisecond

// TestConformance runs the whole suite (Ginkgo RunSpecs, once per process)
// against the in-process reference server and requires every rule to pass.
// It also checks that the catalogue and the specs' labels agree exactly.
func TestConformance(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("mutant child process")
	}
	ctx := context.Background()
	cfg := InProcServerConfig(testMinute)
	tgt, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{Minute: testMinute, Server: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	start := time.Now()
	rep, err := Run(ctx, Config{Target: tgt, Minute: testMinute, Progress: func(rr RuleResult) {
		if rr.Result != ResultPassed {
			t.Log(LiveLine(rr))
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rules in %v: %d passed, %d failed, %d skipped", len(rep.Rules), time.Since(start).Round(time.Millisecond), rep.Passed, rep.Failed, rep.Skipped)
	for _, rr := range rep.Rules {
		if rr.Result == ResultPassed {
			continue
		}
		t.Errorf("rule %s (%s): %s %s", rr.ID, rr.Level, rr.Result, rr.Reason)
		for _, s := range rr.Specs {
			if s.State != "passed" {
				t.Errorf("  It %s: %s\n%s\n%s\n%s", s.Text, s.State, s.Failure, s.Location, s.Transcript)
			}
		}
	}

	t.Run("no session is left behind", func(t *testing.T) {
		// Every spec removes what it created (locked or not); expired items
		// leave the count when the scavenger (every 20 protocol seconds) runs.
		srv := tgt.(target.InProcess).Server()
		deadline := time.Now().Add(3 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for srv.Stats().SessionsActive != 0 && time.Now().Before(deadline) {
			<-tick.C
		}
		if n := srv.Stats().SessionsActive; n != 0 {
			t.Errorf("%d sessions are left in the server after the suite", n)
		}
	})

	t.Run("every catalogue rule has specs", func(t *testing.T) {
		var got []string
		for _, rr := range rep.Rules {
			got = append(got, rr.ID)
		}
		for _, c := range Catalogue() {
			if !slices.Contains(got, c.ID) {
				t.Errorf("catalogue rule %s has no spec", c.ID)
			}
		}
	})
}
