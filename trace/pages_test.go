package trace

import (
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/scenarios"
)

// wire builds exchanges as a capture would hold them: each call is one
// request answered 100µs later.
type wire struct {
	t0  time.Time
	seq map[ConnID]int
}

func newWire() *wire { return &wire{t0: time.Unix(1700000000, 0), seq: map[ConnID]int{}} }

func testConn(web string, port uint16) ConnID {
	return ConnID{Client: netip.AddrPortFrom(netip.MustParseAddr(web), port), Server: netip.MustParseAddrPort("127.0.0.1:42424")}
}

// at returns the exchange of req sent at offset ms on c, answered with
// status, the header fields kv (name, value, …) and body.
func (w *wire) at(ms float64, c ConnID, req *protocol.Request, status int, body []byte, kv ...string) *Exchange {
	start := w.t0.Add(time.Duration(ms * float64(time.Millisecond)))
	resp := &protocol.Response{Status: status, Body: body}
	for i := 0; i+1 < len(kv); i += 2 {
		resp.Header = append(resp.Header, protocol.Field{Name: kv[i], Value: kv[i+1]})
	}
	resp.Header = append(resp.Header, protocol.Field{Name: protocol.HeaderVersion, Value: protocol.DefaultVersion})
	ex := &Exchange{Conn: c, Seq: w.seq[c], Request: req, Reply: resp,
		RequestStart: start, RequestEnd: start, ReplyStart: start.Add(50 * time.Microsecond), ReplyEnd: start.Add(100 * time.Microsecond)}
	w.seq[c]++
	return ex
}

const testApp = "/LM/W3SVC/1/ROOT"

func tgt(id string) string { return protocol.Target(testApp, id) }

func acq(id string) *protocol.Request { return protocol.NewGetExclusiveRequest("localhost", tgt(id)) }
func rel(id string, c int32) *protocol.Request {
	return protocol.NewReleaseExclusiveRequest("localhost", tgt(id), c)
}
func put(id string, c int32, n int) *protocol.Request {
	return protocol.NewSetRequest("localhost", tgt(id), make([]byte, n), protocol.SetParams{Timeout: 20, LockCookie: c})
}
func create(id string) *protocol.Request {
	return protocol.NewSetRequest("localhost", tgt(id), []byte{20, 0, 0, 0, 0, 0, 0xff}, protocol.SetParams{Timeout: 20, ExtraFlags: 1})
}
func cookie(c int32) []string { return []string{protocol.HeaderLockCookie, strconv.Itoa(int(c))} }
func locked(c int32, age int) []string {
	return []string{protocol.HeaderLockCookie, strconv.Itoa(int(c)), protocol.HeaderLockAge, strconv.Itoa(age)}
}

func build(t *testing.T, exs ...*Exchange) []*Page {
	t.Helper()
	var out []*Page
	b := NewPageBuilder(func(p *Page) error { out = append(out, p); return nil })
	for _, ex := range exs {
		if err := b.Add(ex); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	k := ParseKey(protocol.Target("/LM/W3SVC/1/ROOT/checkout", "abc"))
	if k.App != "/LM/W3SVC/1/ROOT/checkout" || k.ID != "abc" {
		t.Fatalf("%+v", k)
	}
	if k.String() != protocol.Key(protocol.Target("/LM/W3SVC/1/ROOT/checkout", "abc")) {
		t.Fatalf("String %q", k.String())
	}
	if k := ParseKey("plain"); k.App != "" || k.ID != "plain" {
		t.Fatalf("%+v", k)
	}
	if k := ParseKey("a%2fb"); k.App != "a" || k.ID != "b" {
		t.Fatalf("%+v", k)
	}
}

func TestPagesModifyWithCreateDance(t *testing.T) {
	t.Parallel()
	w, c := newWire(), testConn("127.0.0.2", 5000)
	pages := build(t,
		w.at(0, c, acq("s1"), 404, nil),
		w.at(1, c, create("s1"), 200, nil),
		w.at(2, c, acq("s1"), 200, make([]byte, 7), cookie(5)...),
		w.at(32.1, c, put("s1", 5, 1000), 200, nil),
	)
	if len(pages) != 1 {
		t.Fatalf("%d pages, want 1", len(pages))
	}
	p := pages[0]
	if p.Kind != scenarios.PageModify || !p.Created || p.Existed || p.Exchanges != 4 || p.BodySize != 1000 || p.Timeout != 20 ||
		p.Exec != 30*time.Millisecond || p.Session.ID != "s1" || p.Session.App != testApp || p.Web.String() != "127.0.0.2" || p.Partial || p.Unfinished {
		t.Fatalf("%+v", p)
	}
}

func TestPagesKinds(t *testing.T) {
	t.Parallel()
	w, c := newWire(), testConn("127.0.0.2", 5000)
	pages := build(t,
		w.at(0, c, protocol.NewGetRequest("localhost", tgt("a")), 200, make([]byte, 50)),
		w.at(1, c, protocol.NewResetTimeoutRequest("localhost", tgt("a")), 200, nil),
		w.at(2, c, acq("a"), 200, make([]byte, 50), cookie(9)...),
		w.at(12, c, rel("a", 9), 200, nil),
		w.at(20, c, acq("a"), 200, make([]byte, 50), cookie(10)...),
		w.at(25, c, protocol.NewRemoveRequest("localhost", tgt("a"), 10), 200, nil),
		w.at(30, c, protocol.NewResetTimeoutRequest("localhost", tgt("b")), 404, nil),
	)
	want := []scenarios.PageKind{scenarios.PageReadOnly, scenarios.PageSessionless, scenarios.PageReadUnchanged, scenarios.PageAbandon, scenarios.PageSessionless}
	if len(pages) != len(want) {
		t.Fatalf("%d pages, want %d", len(pages), len(want))
	}
	for i, p := range pages {
		if p.Kind != want[i] {
			t.Errorf("page %d: %s, want %s", i, p.Kind, want[i])
		}
	}
	if !pages[0].Existed || pages[0].ReadSize != 50 || pages[2].Exec != 10*time.Millisecond-100*time.Microsecond || pages[4].Existed {
		t.Errorf("%+v %+v %+v", pages[0], pages[2], pages[4])
	}
}

// Two pages of one session on two web servers contend for its lock: the
// second polls twice, breaks nothing, and gets the lock after the first's
// PUT; a third page joins while it polls.
func TestPagesPollsAndBursts(t *testing.T) {
	t.Parallel()
	w := newWire()
	a, b := testConn("127.0.0.2", 5000), testConn("127.0.0.3", 5001)
	pages := build(t,
		w.at(0, a, acq("s"), 200, make([]byte, 10), cookie(1)...),
		w.at(0.5, b, acq("s"), 423, nil, locked(1, 0)...),
		w.at(500.5, b, acq("s"), 423, nil, locked(1, 0)...),
		w.at(700, a, put("s", 1, 300), 200, nil),
		w.at(1000.5, b, acq("s"), 200, make([]byte, 300), cookie(2)...),
		w.at(1020, b, rel("s", 2), 200, nil),
	)
	if len(pages) != 2 {
		t.Fatalf("%d pages, want 2", len(pages))
	}
	p := pages[1]
	if p.Kind != scenarios.PageReadUnchanged || p.Polls != 2 || p.LockWait != 1000*time.Millisecond-100*time.Microsecond || p.Exchanges != 4 || !p.Existed {
		t.Fatalf("%+v", p)
	}
	if pages[0].Exec != 700*time.Millisecond-100*time.Microsecond {
		t.Fatalf("%+v", pages[0])
	}
}

// A waiter finds the lock older than its execution timeout, breaks it on the
// same connection, then gets it; the holder's late PUT is answered 423.
func TestPagesForcedRelease(t *testing.T) {
	t.Parallel()
	w := newWire()
	a, b := testConn("127.0.0.2", 5000), testConn("127.0.0.2", 5001)
	pages := build(t,
		w.at(0, a, acq("s"), 200, make([]byte, 10), cookie(1)...),
		w.at(6000, b, acq("s"), 423, nil, locked(1, 6)...),
		w.at(6001, b, rel("s", 1), 200, nil),
		w.at(6500, b, acq("s"), 200, make([]byte, 10), cookie(2)...),
		w.at(6510, b, put("s", 2, 20), 200, nil),
		w.at(7000, a, put("s", 1, 30), 423, nil, locked(2, 0)...),
	)
	if len(pages) != 2 {
		t.Fatalf("%d pages, want 2", len(pages))
	}
	if p := pages[0]; p.Kind != scenarios.PageModify || p.Breaks != 1 || p.BreakAge != 6 || p.Polls != 1 || p.Exchanges != 4 {
		t.Fatalf("waiter %+v", p)
	}
	if p := pages[1]; p.Kind != scenarios.PageModify || !p.LostWrite || p.Exec != 7000*time.Millisecond-100*time.Microsecond {
		t.Fatalf("holder %+v", p)
	}
}

// What the capture cuts: a page whose acquire came before the capture, a
// lone PUT of a brand-new session, a holder whose end never came.
func TestPagesCutByTheCapture(t *testing.T) {
	t.Parallel()
	w, c := newWire(), testConn("127.0.0.2", 5000)
	pages := build(t,
		w.at(0, c, rel("x", 77), 200, nil),
		w.at(1, c, put("y", 0, 500), 200, nil),
		w.at(2, c, acq("z"), 200, make([]byte, 9), cookie(3)...),
	)
	if len(pages) != 3 {
		t.Fatalf("%d pages, want 3", len(pages))
	}
	if p := pages[0]; !p.Partial || p.Kind != scenarios.PageReadUnchanged {
		t.Errorf("%+v", p)
	}
	if p := pages[1]; p.Partial || !p.Created || p.Kind != scenarios.PageModify || p.BodySize != 500 {
		t.Errorf("%+v", p)
	}
	if p := pages[2]; !p.Unfinished || p.Kind != "" || !p.Writable() {
		t.Errorf("%+v", p)
	}
}

// Pages in flight are bounded: a waiter that gave up is dropped after
// StaleAfter of capture time.
func TestPagesStaleWaitersDropped(t *testing.T) {
	t.Parallel()
	w := newWire()
	var out []*Page
	b := NewPageBuilder(func(p *Page) error { out = append(out, p); return nil })
	b.StaleAfter = time.Second
	b.Add(w.at(0, testConn("127.0.0.2", 1), acq("s"), 423, nil, locked(1, 0)...))
	for i := range 5000 {
		b.Add(w.at(2000+float64(i), testConn("127.0.0.2", 2), protocol.NewResetTimeoutRequest("localhost", tgt("h")), 200, nil))
	}
	unfinished := 0
	for _, p := range out {
		if p.Unfinished && p.Kind == "" && p.Polls == 1 {
			unfinished++
		}
	}
	if len(b.sess) != 0 || len(out) != 5001 || unfinished != 1 {
		t.Fatalf("%d sessions in flight, %d pages, %d unfinished", len(b.sess), len(out), unfinished)
	}
}

// A waiter that stops polling (its client gave up at its execution
// timeout) ends Unfinished at the capture's end, its LockWait running to
// the end of its last 423.
func TestPagesGaveUpWaiting(t *testing.T) {
	t.Parallel()
	w := newWire()
	a, b := testConn("127.0.0.2", 5000), testConn("127.0.0.3", 5001)
	pages := build(t,
		w.at(0, a, acq("s"), 200, make([]byte, 10), cookie(1)...),
		w.at(0.5, b, acq("s"), 423, nil, locked(1, 0)...),
		w.at(500.5, b, acq("s"), 423, nil, locked(1, 0)...),
		w.at(1000.5, b, acq("s"), 423, nil, locked(1, 1)...),
		w.at(3000, a, put("s", 1, 300), 200, nil),
	)
	var gave *Page
	for _, p := range pages {
		if p.Web == b.Client.Addr() {
			gave = p
		}
	}
	if gave == nil || !gave.Unfinished || gave.Polls != 3 || gave.LockWait != time.Second || gave.MaxLockAge != 1 {
		t.Fatalf("%+v", gave)
	}
}
