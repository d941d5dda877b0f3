package trace

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
)

func TestSplitKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ key, app, session string }{
		{"/LM/W3SVC/2/ROOT(oXvpnxcuEWqKAgOETha32JavYZ6eCqrpTN5/HxWS854=)/bpr4mimb2vjnvtn2jc4yp3uo", "/LM/W3SVC/2/ROOT", "bpr4mimb2vjnvtn2jc4yp3uo"},
		{"/LM/W3SVC/1/ROOT/shop/abc", "/LM/W3SVC/1/ROOT/shop", "abc"},
		{"plain", "", "plain"},
	} {
		app, session := SplitKey(tc.key)
		if app != tc.app || session != tc.session {
			t.Errorf("SplitKey(%q) = %q, %q", tc.key, app, session)
		}
	}
}

// ex builds an exchange of op for a session of app on a server, at start.
func ex(server, app, sid string, op protocol.Op, status int, start time.Time, latency time.Duration) *Exchange {
	req := &protocol.Request{Method: protocol.MethodGet, Target: protocol.Target(app, sid), Proto: "HTTP/1.1"}
	switch op {
	case protocol.OpGetExclusive:
		req.Header = protocol.Header{{Name: protocol.HeaderExclusive, Value: protocol.ExclusiveAcquire}}
	case protocol.OpSet:
		req.Method = protocol.MethodPut
		req.Header = protocol.Header{{Name: protocol.HeaderTimeout, Value: "20", Tight: true}}
		req.Body = make([]byte, 100)
	}
	e := &Exchange{Conn: ConnID{Client: netip.MustParseAddrPort("10.0.0.1:5000"), Server: netip.MustParseAddrPort(server)},
		Request: req, RequestStart: start, RequestEnd: start}
	if status != 0 {
		e.Reply = &protocol.Response{Status: status}
		e.ReplyStart, e.ReplyEnd = start.Add(latency), start.Add(latency)
	}
	return e
}

func TestInspectionFigures(t *testing.T) {
	t.Parallel()
	in := NewInspection()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	in.Add(ex("10.0.0.9:42424", "/LM/W3SVC/1/ROOT", "a", protocol.OpGetExclusive, 423, at(0), time.Millisecond))
	in.Add(ex("10.0.0.9:42424", "/LM/W3SVC/1/ROOT", "a", protocol.OpGetExclusive, 423, at(500), time.Millisecond))
	in.Add(ex("10.0.0.9:42424", "/LM/W3SVC/1/ROOT", "a", protocol.OpGetExclusive, 200, at(1000), time.Millisecond))
	in.Add(ex("10.0.0.9:42424", "/LM/W3SVC/1/ROOT", "a", protocol.OpSet, 200, at(1100), 2*time.Millisecond))
	in.Add(ex("10.0.0.8:42424", "/LM/W3SVC/2/ROOT", "b", protocol.OpGet, 404, at(2500), 3*time.Millisecond))
	in.Add(ex("10.0.0.8:42424", "/LM/W3SVC/2/ROOT", "b", protocol.OpGet, 0, at(2600), 0))
	if in.Exchanges() != 6 || in.locked != 2 || in.acquires != 1 || in.unanswered != 1 {
		t.Fatalf("exchanges %d, locked %d, acquires %d, unanswered %d", in.Exchanges(), in.locked, in.acquires, in.unanswered)
	}
	if w := in.lockWait.Max(); w < int64(1000*time.Millisecond) || w > int64(1002*time.Millisecond) {
		t.Errorf("lock wait %v, want 1.001s (first 423 to the granted acquire's reply)", time.Duration(w))
	}
	// The pages those exchanges make, counted by the interval of their start.
	in.AddPage(&Page{Kind: scenarios.PageModify, Start: at(0)})
	in.AddPage(&Page{Kind: scenarios.PageReadOnly, Start: at(2500)})
	in.AddPage(&Page{Kind: scenarios.PageReadOnly, Start: at(2600)})
	if p := in.series; len(p) != 3 || p[0].pages != 1 || p[1].pages != 0 || p[2].pages != 2 {
		t.Errorf("pages per interval %+v, want 1, 0, 2", p)
	}
	var b strings.Builder
	st := Stats{Files: 1, First: t0, Last: at(2600)}
	in.Write(&b, st)
	for _, want := range []string{"pages: 3 (1.2/s): modify 1, read-only 2", "pages/s over time (1s intervals, by page start): ▄▁█  min 0.0, max 2.0",
		"exchanges/s over time (1s intervals): ▁▁▁  min 2.0, max 2.0", "partitions (servers): 2", "apps: 2", "sessions: 2", "get-exclusive      3  200×1 423×2",
		"2 423 replies (66.7% of acquire attempts)", "Timeout (minutes): requests 20 ×1", "PUT 1 bodies, mean 100 B", "unanswered requests"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
	r, err := in.Run(st, "capture-test", resultsHarness())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(r.Config.Targets) != 2 || r.Ops["get-exclusive"].Statuses["423"] != 2 || r.Locks.Locked != 2 || len(r.Intervals) != 3 || r.Errors["unanswered"] != 1 {
		t.Errorf("run: targets %v, ops %v, locks %+v, %d intervals", r.Config.Targets, r.Ops, r.Locks, len(r.Intervals))
	}
	var logged int
	for _, e := range r.Logs {
		h, err := e.Decode()
		if err != nil {
			t.Fatal(err)
		}
		if e.Corrected {
			logged += int(h.TotalCount())
		}
	}
	if logged != 5 {
		t.Errorf("interval histograms hold %d latencies, want the 5 answered exchanges", logged)
	}
}

// TestInspectionCoarsens: a long capture keeps at most maxIntervals
// intervals, and no latency is lost when they are merged.
func TestInspectionCoarsens(t *testing.T) {
	t.Parallel()
	in := NewInspection()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 3 * maxIntervals
	for i := 0; i < n; i++ {
		in.Add(ex("10.0.0.9:42424", "/app", "s", protocol.OpGet, 200, t0.Add(time.Duration(i)*time.Second), time.Millisecond))
	}
	r, err := in.Run(Stats{First: t0, Last: t0.Add(n * time.Second)}, "long", resultsHarness())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Intervals) > maxIntervals || in.width != 4*time.Second {
		t.Fatalf("%d intervals of %s", len(r.Intervals), in.width)
	}
	var total, logged int64
	for _, iv := range r.Intervals {
		total += iv.Ops
	}
	for _, e := range r.Logs {
		if h, _ := e.Decode(); e.Corrected {
			logged += h.TotalCount()
		}
	}
	if total != n || logged != n {
		t.Errorf("intervals count %d exchanges, logs %d, want %d", total, logged, n)
	}
}

func resultsHarness() results.Harness { return results.Harness{Version: "test"} }
