package loadgen

import (
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

func TestCollectorMergesIntervals(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := newCollector(start, time.Millisecond, false)
	rec := func(at time.Duration, lat time.Duration, late time.Duration) *pageRecord {
		in := start.Add(at)
		return &pageRecord{kind: "read-only", intended: in, start: in.Add(late), end: in.Add(late + lat),
			ops: []opRecord{{op: protocol.OpGet, status: 200, start: in.Add(late), end: in.Add(late + lat)}}}
	}
	for i := 0; i < 100; i++ {
		c.add(rec(time.Duration(i)*time.Millisecond, time.Millisecond, 0))
	}
	c.flush(start.Add(time.Second))
	for i := 0; i < 100; i++ {
		c.add(rec(time.Second+time.Duration(i)*time.Millisecond, 2*time.Millisecond, 500*time.Millisecond))
	}
	c.flush(start.Add(2 * time.Second))
	pages, err := c.stats("page.")
	if err != nil {
		t.Fatal(err)
	}
	p := pages["read-only"]
	if p.Count != 200 {
		t.Fatalf("count %d", p.Count)
	}
	h, err := p.Corrected.Decode()
	if err != nil || h.TotalCount() != 200 {
		t.Fatalf("merged corrected histogram holds %v values (%v), want 200", h.TotalCount(), err)
	}
	// Half the pages started 500ms late: corrected p90 shows it, uncorrected does not.
	if p.Corrected.P90 < int64(500*time.Millisecond) || p.Uncorrected.P90 > int64(3*time.Millisecond) {
		t.Fatalf("p90 corrected %d uncorrected %d", p.Corrected.P90, p.Uncorrected.P90)
	}
	ops, _ := c.stats("op.")
	if ops["get"].Statuses["200"] != 200 || ops["get"].Corrected.P90 < int64(500*time.Millisecond) {
		t.Fatalf("op stats %+v", ops["get"])
	}
	if len(c.intervals) != 2 || c.intervals[0].Pages != 100 || c.intervals[1].Late != 100 {
		t.Fatalf("intervals %+v", c.intervals)
	}
	if len(c.logs) != 2*3*2 { // 2 intervals × 3 tags (page, page-state, op) × corrected/uncorrected
		t.Fatalf("%d log entries, want 12", len(c.logs))
	}
}
