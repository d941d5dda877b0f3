package capacity

import (
	"testing"
	"time"

	"github.com/aspstate/aspstate/results"
)

// interval is one interval's corrected log entry of tag with n samples of v.
func interval(t *testing.T, tag string, i, n int, v time.Duration) []results.LogEntry {
	t.Helper()
	start := time.Date(2026, 12, 5, 0, 0, i, 0, time.UTC)
	h := results.NewHistogram()
	for range n {
		_ = h.RecordValue(int64(v))
	}
	e, err := results.NewLogEntry(true, tag, start, start.Add(time.Second), h)
	if err != nil {
		t.Fatal(err)
	}
	return []results.LogEntry{e}
}

func TestWatchLostBeyondRecovery(t *testing.T) {
	t.Parallel()
	slo, err := ParseSLO("page-state p99 < 50ms")
	if err != nil {
		t.Fatal(err)
	}
	// 1000 pages planned: p99 may have 10 at or above 50ms.
	w := NewWatch([]SLO{slo})
	if err := w.Add(interval(t, "page-state.modify", 0, 100, time.Millisecond), 100, 0, 1000); err != nil {
		t.Fatal(err)
	}
	if _, _, lost := w.Lost(); lost {
		t.Fatal("lost with every page fast")
	}
	// 5 slow of 105 so far: broken now (p99), recoverable (5 <= 10).
	_ = w.Add(interval(t, "page-state.modify", 1, 5, 80*time.Millisecond), 105, 0, 1000)
	if _, _, lost := w.Lost(); lost {
		t.Fatal("5 slow pages of 1000 planned cannot break p99 for good")
	}
	// 11 slow: no later page can bring p99 back under 50ms.
	_ = w.Add(interval(t, "page-state.read-only", 2, 6, 80*time.Millisecond), 111, 0, 1000)
	s, why, lost := w.Lost()
	if !lost || s.Text != slo.Text || why == "" {
		t.Fatalf("11 slow pages of 1000 planned: lost %v (%q)", lost, why)
	}
}

func TestWatchErrorsAndUnplannedRuns(t *testing.T) {
	t.Parallel()
	slo, _ := ParseSLO("errors < 1%")
	w := NewWatch([]SLO{slo})
	_ = w.Add(nil, 100, 5, 1000) // 5% so far, 0.5% of the planned total
	if _, _, lost := w.Lost(); lost {
		t.Fatal("5 failed of 1000 planned is still under 1%")
	}
	_ = w.Add(nil, 200, 11, 1000)
	if _, _, lost := w.Lost(); !lost {
		t.Fatal("11 failed of 1000 planned: lost")
	}
	// Without a planned total: lost after MinBrokenIntervals broken in a row.
	w = NewWatch([]SLO{slo})
	for i := 1; i <= MinBrokenIntervals; i++ {
		_ = w.Add(nil, int64(100*i), int64(5*i), 0)
		if _, _, lost := w.Lost(); lost != (i == MinBrokenIntervals) {
			t.Fatalf("interval %d: lost %v", i, lost)
		}
	}
	// A lower bound is judged at the end only.
	tp, _ := ParseSLO("throughput >= 1000/s")
	w = NewWatch([]SLO{tp})
	_ = w.Add(nil, 1, 0, 0)
	for range MinBrokenIntervals + 1 {
		if _, _, lost := w.Lost(); lost {
			t.Fatal("throughput judged before the end")
		}
	}
}
