package resultstest

import (
	"testing"
	"time"
)

func TestRunIsValidAndAddsUp(t *testing.T) {
	t.Parallel()
	s := DefaultSpec()
	s.Intervals = 2 // each interval encodes five histograms: keep it cheap
	s.Pages[0].Errors = 3
	r := Run(s)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Rate.Completed != 100 || r.Pages["modify"].Count != 60 || r.Pages["modify"].Errors["timeout"] != 6 {
		t.Fatalf("completed %d, modify %+v; want 100 pages, 60 modify with 6 timeouts", r.Rate.Completed, r.Pages["modify"])
	}
	if n := len(r.Logs); n != 2*5*2 {
		t.Fatalf("%d log entries, want 2 intervals × 5 tags × corrected/uncorrected", n)
	}
	if len(r.Intervals) != 2 || r.Intervals[1].Elapsed != r.Config.Duration || r.Intervals[0].Throughput != 50 {
		t.Fatalf("intervals %+v", r.Intervals)
	}
	// Every latency lies in [centre/2, 3·centre/2) plus the shift.
	s.Shift = 5 * time.Millisecond
	l := Run(s).Ops["get"].Corrected
	if lo, hi := int64(5350*time.Microsecond), int64(6060*time.Microsecond); l.P50 < lo || l.Max > hi {
		t.Fatalf("get latencies %+v, want within [%d, %d]", l, lo, hi)
	}
	// The same spec draws the same run; another seed another one.
	one := Spec{Intervals: 1, Pages: DefaultSpec().Pages}
	a, b := Run(one), Run(one)
	one.Seed = 9
	c := Run(one)
	if a.Logs[3].Histogram != b.Logs[3].Histogram || a.Logs[3].Histogram == c.Logs[3].Histogram {
		t.Fatal("a spec does not draw the same run every time, or the seed does not matter")
	}
}
