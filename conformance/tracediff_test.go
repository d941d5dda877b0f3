package conformance

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspstate/aspstate/conformance/internal/mutants"
	"github.com/aspstate/aspstate/servers/target"
	"github.com/aspstate/aspstate/trace"
)

// traceDiffCatches names, for each mutant whose breakage shows in the
// traffic of trace/testdata/farm-lo.pcap (aspstate load's small-intranet
// scenario against aspstate serve), the kind of difference trace diff must
// report. The other mutants break what that traffic never exercises (lock
// contention, expiry, bad requests) or values that are normalised (the
// first cookie's value).
var traceDiffCatches = map[string]string{
	"no-version-header":    trace.DiffHeaderMissing,
	"http-status-prefix":   trace.DiffStatus,
	"error-body-404":       trace.DiffBodyLength,
	"no-keepalive":         trace.DiffConnectionClosed,
	"actionflags-zero":     trace.DiffHeaderPresent,
	"actionflags-never":    trace.DiffHeaderMissing,
	"header-order-swapped": trace.DiffHeaderOrder,
	"content-length-early": trace.DiffHeaderOrder,
	"cookie-constant":      trace.DiffHeaderValue,
	"timeout-remaining":    trace.DiffHeaderValue,
}

// TestTraceDiffMutants replays a capture recorded against aspstate serve
// through the transparent proxy (no difference) and through every mutant:
// each mutant whose breakage shows in that traffic is reported with the
// right kind and fails the check; the others must not report a difference
// the traffic cannot show.
func TestTraceDiffMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("replays a 3 s capture through each mutant; skipped with -short")
	}
	capture := filepath.Join("..", "trace", "testdata", "farm-lo.pcap")
	all := append([]mutants.Mutant{mutants.Identity()}, mutants.All()...)
	// The replays mostly wait on the capture's clock: run them all at once
	// (t.Parallel would run GOMAXPROCS at a time), then judge each.
	reps := make([]*trace.DiffReport, len(all))
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, m := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = diffThroughMutant(m, capture)
		}()
	}
	wg.Wait()
	for i, m := range all {
		t.Run(m.Name, func(t *testing.T) {
			rep, err := reps[i], errs[i]
			if err != nil {
				t.Fatal(err)
			}
			var titles []string
			kinds := map[string]bool{}
			for _, g := range rep.Groups {
				titles = append(titles, g.Title())
				if !g.Timing {
					kinds[g.Kind] = true
				}
			}
			t.Logf("%s: %s; %d unexplained, %d timing-dependent: %s", m.Name, rep.Verdict(), rep.Unexplained, rep.TimingDependent, strings.Join(titles, "; "))
			if len(rep.Groups) > 0 {
				ex := rep.Groups[0].Examples[0]
				t.Logf("first example: %s\n%s", ex.Detail, ex.Transcript)
			}
			want, shows := traceDiffCatches[m.Name]
			switch {
			case shows && !rep.Failed():
				t.Errorf("trace diff passed mutant %s (%s)", m.Name, m.Breaks)
			case shows && !kinds[want]:
				t.Errorf("mutant %s (%s): no %s difference; found %v", m.Name, m.Breaks, want, titles)
			case !shows && rep.Failed():
				t.Errorf("mutant %s (%s) cannot show in this traffic, yet: %s: %v", m.Name, m.Breaks, rep.Verdict(), titles)
			}
		})
	}
}

// diffThroughMutant replays capture against a fresh reference server behind
// mutant m's proxy.
func diffThroughMutant(m mutants.Mutant, capture string) (*trace.DiffReport, error) {
	ctx := context.Background()
	cfg := InProcServerConfig(time.Minute)
	cfg.IdleTimeout = 0 // the proxy holds upstream connections; keep them
	up, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{Server: &cfg})
	if err != nil {
		return nil, err
	}
	defer up.Close()
	proxy, err := mutants.Start(m, up.Addr(), time.Minute)
	if err != nil {
		return nil, err
	}
	defer proxy.Close()
	return trace.Diff(ctx, []string{capture}, trace.DiffOptions{Target: proxy.Addr(), ReplyTimeout: 3 * time.Second})
}
