package trace

import (
	"context"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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
	t.Cleanup(func() { r.Close() })
	return r
}

// The source gives every copy's pages in time order, each copy with its
// own sessions and offset, times divided by the speed.
func TestReplaySourceCopiesAndSpeed(t *testing.T) {
	t.Parallel()
	r := loadReplay(t, "farm-lo.pcap")
	if r.Pages != 78 || len(r.Webs) != 1 || len(r.Partitions) != 1 || len(r.Sums[0]) != 64 {
		t.Fatalf("%d pages, %d web servers, %d partitions, sum %q", r.Pages, len(r.Webs), len(r.Partitions), r.Sums[0])
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
	if n != 3*r.Pages {
		t.Errorf("%d pages, want %d", n, 3*r.Pages)
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

// A multiple of today's traffic is ⌊times⌋ lanes at times / lanes the
// speed, each looping over the capture with fresh sessions per loop: over a
// whole number of loops it schedules exactly times × the recorded rate.
func TestReplayMultiple(t *testing.T) {
	t.Parallel()
	r := loadReplay(t, "farm-lo.pcap")
	for _, times := range []float64{0.5, 1, 2.5, 7.5} {
		m, err := r.Multiple(times, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		lanes := max(1, int(times))
		if m.Lanes != lanes || m.Speed != times/float64(lanes) {
			t.Errorf("%g ×: %d lanes at speed %g", times, m.Lanes, m.Speed)
		}
		period := time.Duration(float64(r.Period()) / m.Speed)
		if m, err = r.Multiple(times, 4*period); err != nil {
			t.Fatal(err)
		}
		src, seeds := m.Source()
		if len(seeds) != len(r.Existing) {
			t.Errorf("%g ×: %d seeds, want the %d existing sessions once", times, len(seeds), len(r.Existing))
		}
		n := 0
		var last time.Duration
		firstAt := map[string]time.Duration{}
		for p, ok := src.Next(); ok; p, ok = src.Next() {
			if p.At < last || p.At < 0 || p.At >= m.Length {
				t.Fatalf("%g ×: page %d at %s after %s (length %s)", times, n, p.At, last, m.Length)
			}
			if _, ok := firstAt[p.Session]; !ok {
				firstAt[p.Session] = p.At
			}
			last = p.At
			n++
		}
		// Four whole loops per lane: every page of the capture 4 × lanes
		// times (± one page per lane at the loops' rounded edges).
		if want := 4 * lanes * r.Pages; n < want-lanes || n > want+lanes {
			t.Errorf("%g ×: %d pages in 4 loops, want %d", times, n, want)
		}
		rate := float64(n) / m.Length.Seconds()
		if want := times * r.RecordedRate(); math.Abs(rate-want) > 0.01*want+float64(lanes)/m.Length.Seconds() {
			t.Errorf("%g ×: %.2f pages/s, want %.2f", times, rate, want)
		}
		if sc, err := m.Scenario(); err != nil || math.Abs(sc.Rate.PagesPerSecond-rate) > 1e-9 {
			t.Errorf("%g ×: scenario %v (%v), want %v pages/s", times, sc.Rate, err, rate)
		}
		if off := m.Offered(m.Length / 2); off <= 0 || off > 2*times*r.RecordedRate() {
			t.Errorf("%g ×: offered %.2f pages/s over the second half", times, off)
		}
		if got := m.Options(0)["replay_times"]; got != strconv.FormatFloat(times, 'g', -1, 64) {
			t.Errorf("%g ×: replay_times %q", times, got)
		}
	}
	for _, bad := range []float64{0, -1, math.Inf(1)} {
		if _, err := r.Multiple(bad, time.Second); err == nil {
			t.Errorf("%g × accepted", bad)
		}
	}
}

// The client's timers follow the speed only when the protocol minute is
// scaled the same way; the result says which.
func TestReplayTimers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		speed  float64
		minute time.Duration
		want   string
	}{
		{1, 0, "real: speed 1"},
		{2, 0, "real: session timeouts and the lock-poll interval are not scaled by --speed (give --minute 30s"},
		{2, 30 * time.Second, "scaled: protocol minute 30s = 1m / speed 2"},
		{4, 30 * time.Second, "not scaled by --speed: protocol minute 30s scales session timeouts and the lock-poll interval by 2, the speed is 4 (give --minute 15s"},
	} {
		if got := ReplayTimers(c.speed, c.minute); !strings.HasPrefix(got, c.want) {
			t.Errorf("speed %g, minute %s: %q, want %q…", c.speed, c.minute, got, c.want)
		}
	}
}

// Rates puts every scheduled page in the interval it is due to end in;
// an interval that misses a tenth of its pages beyond its edges fails.
func TestReplayRates(t *testing.T) {
	t.Parallel()
	r := loadReplay(t, "farm-lo.pcap")
	o := ReplayOptions{Speed: 2, Copies: 3}
	due := r.Rates(o, time.Second, 0, nil)
	var total int64
	achieved := make([]int64, len(due))
	for i, iv := range due {
		total += iv.Scheduled
		achieved[i] = iv.Scheduled
		if iv.Leaving != 0 || iv.Entering != 0 {
			t.Errorf("%s: pages at the edges with no slack", iv)
		}
	}
	if total != int64(3*r.Pages) {
		t.Fatalf("%d pages scheduled, want %d", total, 3*r.Pages)
	}
	for _, iv := range r.Rates(o, time.Second, 20*time.Millisecond, achieved) {
		if !iv.Within(0.05) {
			t.Errorf("%s: the schedule itself is off", iv)
		}
	}
	achieved[0] -= achieved[0]/10 + 1
	rates := r.Rates(o, time.Second, 0, achieved)
	if rates[0].Within(0.05) {
		t.Errorf("%s: a tenth of the pages missing, within 5 %%", rates[0])
	}
}

// The streamed schedule gives the pages in the order of their recorded
// starts, as sorting every page would, with each page's kind, session,
// execution time and size.
func TestReplayScheduleStreamsInStartOrder(t *testing.T) {
	t.Parallel()
	r := loadReplay(t, "farm-lo.pcap")
	var pages []*Page
	b := NewPageBuilder(func(p *Page) error {
		if p.Kind != "" {
			pages = append(pages, p)
		}
		return nil
	})
	if _, err := Read(context.Background(), []string{filepath.Join("testdata", "farm-lo.pcap")}, Options{}, b.Add); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(pages, func(i, j int) bool { return pages[i].Start.Before(pages[j].Start) })
	src, _, err := r.Source(ReplayOptions{Speed: 1, Copies: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.sched.lag <= 0 || r.sched.lag > int64(r.Span) {
		t.Errorf("reorder window %s for a capture of %s", time.Duration(r.sched.lag), r.Span)
	}
	for i, want := range pages {
		p, ok := src.Next()
		if !ok {
			t.Fatalf("the source ended after %d of %d pages", i, len(pages))
		}
		size := 0
		if want.Kind == scenarios.PageModify {
			size = want.BodySize
		}
		if p.At != want.Start.Sub(r.First) || p.Kind != want.Kind || p.Exec != want.Exec || p.Size != size ||
			p.Session != "0/"+strconv.FormatUint(sessHash(want.Session), 36) {
			t.Fatalf("page %d: %+v, want %s at %s, exec %s, size %d", i, p, want.Kind, want.Start.Sub(r.First), want.Exec, size)
		}
	}
	if p, ok := src.Next(); ok {
		t.Errorf("a page more: %+v", p)
	}
}
