package loadgen

import (
	"testing"
	"time"

	"github.com/aspstate/aspstate/scenarios"
)

// pages is a PageSource over a list.
type pages []SourcePage

func (p *pages) Next() (SourcePage, bool) {
	if len(*p) == 0 {
		return SourcePage{}, false
	}
	s := (*p)[0]
	*p = (*p)[1:]
	return s, true
}

// A source's pages become slots: one run session per source session, the
// page's web server, kind and exec time, a modify page's size as the
// session's first size and then as growth; a page outside the farm ends the
// source with an error instead of running.
func TestSourcePlannerSlots(t *testing.T) {
	t.Parallel()
	sc, err := scenarios.Load("small-intranet")
	if err != nil {
		t.Fatal(err)
	}
	sc.Farm.WebServers, sc.Farm.Partitions = 2, 1
	pl := newPlanner(sc, nil, time.Second, 1, newState(20, time.Minute), [32]byte{1})
	src := &pages{
		{At: 0, Session: "a", Web: 1, Kind: scenarios.PageModify, Exec: 5 * time.Millisecond, Size: 100},
		{At: time.Millisecond, Session: "b", Web: 0, Kind: scenarios.PageReadOnly},
		{At: 2 * time.Millisecond, Session: "a", Web: 0, Kind: scenarios.PageModify, Size: 130},
		{At: 3 * time.Millisecond, Session: "a", Web: 5, Kind: scenarios.PageReadOnly},
	}
	sp := newSourcePlanner(src, pl)
	var got []slot
	for s, ok := sp.next(); ok; s, ok = sp.next() {
		got = append(got, s)
	}
	if len(got) != 3 || sp.err == nil {
		t.Fatalf("%d slots, err %v; want 3 and an error for web server 5", len(got), sp.err)
	}
	a, b, a2 := got[0], got[1], got[2]
	if a.sess != a2.sess || a.sess == b.sess || a.sess.id == "a" {
		t.Errorf("sessions: a %p, b %p, a again %p; want one fresh session per source session", a.sess, b.sess, a2.sess)
	}
	if a.webServer != 1 || a.kind != scenarios.PageModify || a.exec != 5*time.Millisecond || a.size != 100 || a.growth != 0 {
		t.Errorf("first slot %+v", a)
	}
	if a2.size != 130 || a2.growth != 30 || a2.at != 2*time.Millisecond {
		t.Errorf("second modify: size %d growth %d at %s; want 130, 30, 2ms", a2.size, a2.growth, a2.at)
	}
	seeds := sp.seeds([]SourcePage{{Session: "c", Kind: scenarios.PageReadOnly, Size: 40, Exec: time.Second}})
	if len(seeds) != 1 || seeds[0].kind != scenarios.PageModify || seeds[0].exec != 0 || seeds[0].size != 40 {
		t.Errorf("seed %+v: want a modify of 40 bytes without exec time", seeds[0])
	}
}
