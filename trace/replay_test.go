package trace

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/scenarios"
)

func loadReplay(t *testing.T, name string) *Replay {
	t.Helper()
	r, err := LoadReplay(context.Background(), []string{filepath.Join("testdata", name)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The source gives every copy's pages in time order, each copy with its
// own sessions and offset, times divided by the speed.
func TestReplaySourceCopiesAndSpeed(t *testing.T) {
	t.Parallel()
	r := loadReplay(t, "farm-lo.pcap")
	if len(r.Pages) != 78 || len(r.Webs) != 1 || len(r.Partitions) != 1 || len(r.Sums[0]) != 64 {
		t.Fatalf("%d pages, %d web servers, %d partitions, sum %q", len(r.Pages), len(r.Webs), len(r.Partitions), r.Sums[0])
	}
	o := ReplayOptions{Speed: 2, Copies: 3, Spread: 100 * time.Millisecond}
	src, seeds, err := r.Source(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(seeds) != 3*len(r.Existing) {
		t.Errorf("%d seeds for %d existing sessions × 3", len(seeds), len(r.Existing))
	}
	var last time.Duration
	sessions := map[string]int{}
	kinds := map[scenarios.PageKind]int{}
	n := 0
	for p, ok := src.Next(); ok; p, ok = src.Next() {
		if p.At < last {
			t.Fatalf("page %d at %s before %s", n, p.At, last)
		}
		last = p.At
		sessions[p.Session]++
		kinds[p.Kind]++
		n++
	}
	if n != 3*len(r.Pages) {
		t.Errorf("%d pages, want %d", n, 3*len(r.Pages))
	}
	if want := r.Length(o); last != want || want != r.Span/2+200*time.Millisecond {
		t.Errorf("last page at %s, length %s; want the span/2 + 2 spreads = %s", last, want, r.Span/2+200*time.Millisecond)
	}
	for k, c := range r.Kinds() {
		if kinds[k] != 3*c {
			t.Errorf("%s: %d pages, want %d", k, kinds[k], 3*c)
		}
	}
	sc, err := r.Scenario(o)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Farm.WebServers != 1 || sc.Farm.Partitions != 1 || len(sc.Farm.Apps) < 1 {
		t.Errorf("farm %+v", sc.Farm)
	}
	for _, bad := range []ReplayOptions{{Speed: 0, Copies: 1}, {Speed: 1, Copies: 0}, {Speed: 1, Copies: 1, Spread: -1}} {
		if _, _, err := r.Source(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	var _ loadgen.PageSource = src
}

// A session first seen answered 200 existed before the capture: it is
// seeded with its recorded size.
func TestReplaySeedsExistingSessions(t *testing.T) {
	t.Parallel()
	r := loadReplay(t, "real-service.pcapng")
	_, seeds, err := r.Source(ReplayOptions{Speed: 1, Copies: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Existing) != 1 || len(seeds) != 2 || seeds[0].Session == seeds[1].Session || seeds[0].Size != 30 {
		t.Errorf("existing %d, seeds %+v; want one session seeded per copy with its 30 recorded bytes", len(r.Existing), seeds)
	}
}
