package resultstest

import (
	"testing"
	"time"
)

func TestRunIsValidAndAddsUp(t *testing.T) {
	t.Parallel()
	s := DefaultSpec()
	s.Pages[0].Errors = 3
	r := Run(s)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Rate.Completed != 500 || r.Pages["modify"].Count != 300 || r.Pages["modify"].Errors["timeout"] != 30 {
		t.Fatalf("completed %d, modify %+v; want 500 pages, 300 modify with 30 timeouts", r.Rate.Completed, r.Pages["modify"])
	}
	if n := len(r.Logs); n != 10*5*2 {
		t.Fatalf("%d log entries, want 10 intervals × 5 tags × corrected/uncorrected", n)
	}
	if len(r.Intervals) != 10 || r.Intervals[9].Elapsed != r.Config.Duration || r.Intervals[0].Throughput != 50 {
		t.Fatalf("intervals %+v", r.Intervals)
	}
	// Every latency lies in [centre/2, 3·centre/2) plus the shift.
	s.Shift = 5 * time.Millisecond
	l := Run(s).Ops["get"].Corrected
	if lo, hi := int64(5350*time.Microsecond), int64(6060*time.Microsecond); l.P50 < lo || l.Max > hi {
		t.Fatalf("get latencies %+v, want within [%d, %d]", l, lo, hi)
	}
	// The same spec draws the same run; another seed another one.
	a, b, c := Run(DefaultSpec()), Run(DefaultSpec()), Run(Spec{Seed: 9, Pages: DefaultSpec().Pages})
	if a.Logs[3].Histogram != b.Logs[3].Histogram || a.Logs[3].Histogram == c.Logs[3].Histogram {
		t.Fatal("a spec does not draw the same run every time, or the seed does not matter")
	}
}
