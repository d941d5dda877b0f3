package loadgen

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aspstate/aspstate/scenarios"
)

func TestPlannerSessions(t *testing.T) {
	t.Parallel()
	sc := headOnly(200, 10*time.Second)
	sc.Users.PagesPerSession = scenarios.Dist{Kind: scenarios.DistConstant, Value: 5}
	sc.Users.ThinkTime = scenarios.Dist{Kind: scenarios.DistConstant, Value: 0.5}
	sc.Pages.Mix = scenarios.Mix{scenarios.PageModify: 1, scenarios.PageReadOnly: 1}
	sched, err := NewSchedule(sc.Rate, sc.Duration.D(), 1)
	if err != nil {
		t.Fatal(err)
	}
	p := newPlanner(sc, sched, sc.Duration.D(), 1, newState(20, time.Minute), [32]byte{})
	pages := map[*session][]time.Duration{}
	kinds := map[scenarios.PageKind]int{}
	n := 0
	for {
		s, ok := p.next()
		if !ok {
			break
		}
		n++
		pages[s.sess] = append(pages[s.sess], s.at)
		kinds[s.kind]++
	}
	if n != 2000 {
		t.Fatalf("%d slots, want 2000 (the rate is pages/s)", n)
	}
	for sess, ts := range pages {
		if len(ts) > 5 {
			t.Fatalf("session %s has %d pages, want at most 5", sess.id, len(ts))
		}
		for i := 1; i < len(ts); i++ {
			if ts[i]-ts[i-1] < 500*time.Millisecond {
				t.Fatalf("session %s: pages %s apart, think time is 500ms", sess.id, ts[i]-ts[i-1])
			}
		}
	}
	// New sessions start at rate / pages per session once warmed up.
	if s := len(pages); s < 400 || s > 600 {
		t.Fatalf("%d sessions for 2000 pages of 5", s)
	}
	if m, r := kinds[scenarios.PageModify], kinds[scenarios.PageReadOnly]; m < 850 || r < 850 {
		t.Fatalf("mix 1:1 gave %d modify, %d read-only", m, r)
	}
}

// TestDueHeapOrder: the due heap pops sessions by due time, ties by session
// sequence, through any interleaving of pushes and pops.
func TestDueHeapOrder(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var h dueHeap
	var want []dueEntry
	for step := 0; step < 20000; step++ {
		if len(want) == 0 || rng.IntN(3) > 0 {
			ps := &plannedSession{due: time.Duration(rng.IntN(500)), sess: &session{seq: int64(step)}}
			h.push(ps)
			want = append(want, dueEntry{due: ps.due, seq: ps.sess.seq, ps: ps})
			continue
		}
		first := 0
		for i := range want {
			if want[i].less(want[first]) {
				first = i
			}
		}
		if got := h.pop(); got != want[first].ps {
			t.Fatalf("step %d: popped due %s seq %d, want due %s seq %d", step, got.due, got.sess.seq, want[first].due, want[first].seq)
		}
		want = append(want[:first], want[first+1:]...)
	}
	if len(h) != len(want) {
		t.Fatalf("heap holds %d, want %d", len(h), len(want))
	}
}

// BenchmarkDueHeap: a push and a pop on a heap of 35,000 sessions (make
// bench's half-saturation run at one second of think time).
func BenchmarkDueHeap(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h dueHeap
	for i := 0; i < 35000; i++ {
		h.push(&plannedSession{due: time.Duration(rng.Int64N(int64(time.Second))), sess: &session{seq: int64(i)}})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ps := h.pop()
		ps.due += time.Duration(rng.Int64N(int64(2 * time.Second)))
		h.push(ps)
	}
}
