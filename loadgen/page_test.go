package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/protocol/aspnetclient"
	"github.com/aspstate/aspstate/scenarios"
)

// lockFixture holds a session's lock from outside and returns a runner for
// pages of that session.
func lockFixture(t *testing.T, timers clientTimers) (*pageRunner, slot, *protocol.Conn, int32) {
	t.Helper()
	const minute = 600 * time.Millisecond // one protocol second = 10ms
	tg, _ := startServer(t, minute)
	ctx := context.Background()
	holder, err := protocol.Dial(ctx, tg.Addr(), protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close() })
	st := newState(20, minute)
	sess := st.newSession("lockedsession00000000000", protocol.Target("/LM/W3SVC/1/ROOT", "lockedsession00000000000"), 0)
	if rep, err := holder.Set(ctx, sess.target, encodeBody(sess.id, 0, 100), protocol.SetParams{Timeout: 20}); err != nil || rep.Status != 200 {
		t.Fatal(err, rep)
	}
	rep, err := holder.GetExclusive(ctx, sess.target)
	if err != nil || rep.Status != 200 {
		t.Fatal(err, rep)
	}
	pc := newPartClient(newPool(tg.Addr, time.Hour, nil), true, 10*time.Second)
	t.Cleanup(pc.pool.close)
	r := &pageRunner{st: st, web: []*webServer{{parts: []*partClient{pc}}}, timers: timers, maxLen: 1 << 20}
	return r, slot{sess: sess, kind: scenarios.PageModify, size: 200}, holder, rep.LockCookie
}

func TestLockPollingAndForcedRelease(t *testing.T) {
	// Break locks older than 20 protocol seconds (200ms real), poll every 20ms.
	timers := clientTimers{timeout: 20, execTimeout: 10 * time.Second, execTimeoutPS: 20, poll: 20 * time.Millisecond, pollDelta: 10 * time.Millisecond}
	r, s, holder, cookie := lockFixture(t, timers)
	rec := &pageRecord{id: 1}
	start := time.Now()
	r.run(context.Background(), s, rec)
	waited := time.Since(start)
	if rec.errKind != "" {
		t.Fatalf("page failed: %s", rec.errKind)
	}
	if rec.forced != 1 || !rec.waited || rec.locked < 2 {
		t.Fatalf("forced %d waited %v 423s %d; want one forced break after several polls", rec.forced, rec.waited, rec.locked)
	}
	if waited < 190*time.Millisecond {
		t.Fatalf("lock broken after %s, before its age reached 20 protocol seconds", waited)
	}
	// Polls are spaced by the poll interval: about 200ms / 20ms of them.
	if rec.polls < 5 || rec.polls > 15 {
		t.Fatalf("%d polls in %s at a 20ms interval", rec.polls, waited)
	}
	var release, acquired bool
	for _, o := range rec.ops {
		if o.op == protocol.OpReleaseExclusive && o.status == 200 {
			release = true
		}
		if o.op == protocol.OpGetExclusive && o.status == 200 {
			acquired = true
		}
	}
	if !release || !acquired {
		t.Fatalf("ops %+v: want a 200 release (the break) and a 200 acquire", rec.ops)
	}
	// The old holder lost its lock: its PUT with the old cookie is refused
	// only while someone holds it; the page released it with its PUT, so
	// the next acquire gets the cookie after the breaker's.
	rep, err := holder.GetExclusive(context.Background(), s.sess.target)
	if err != nil || rep.Status != 200 || rep.LockCookie != cookie+2 {
		t.Fatalf("acquire after the page: %v %+v; want 200 with cookie %d", err, rep, cookie+2)
	}
	if _, _, total := r.st.snapshotViolations(); total != 0 {
		t.Fatalf("violations: %v", r.st.examples)
	}
}

func TestLockWaitGivesUp(t *testing.T) {
	timers := clientTimers{timeout: 20, execTimeout: 100 * time.Millisecond, execTimeoutPS: 1 << 30, poll: 20 * time.Millisecond, pollDelta: 10 * time.Millisecond}
	r, s, _, _ := lockFixture(t, timers)
	rec := &pageRecord{id: 1}
	r.run(context.Background(), s, rec)
	if rec.errKind != ErrLockTimeout || !rec.gaveUp || rec.forced != 0 {
		t.Fatalf("err %q gaveUp %v forced %d; want lock-timeout without a break", rec.errKind, rec.gaveUp, rec.forced)
	}
}

// TestRequestQueueLimitPerSession: with aspnet:RequestQueueLimitPerSession
// at 1, a page of a session that already has a request in the web server
// fails at once, without a request to the state server; once that request
// leaves, the next page runs.
func TestRequestQueueLimitPerSession(t *testing.T) {
	timers := clientTimers{timeout: 20, execTimeout: 100 * time.Millisecond, execTimeoutPS: 1 << 30, poll: 20 * time.Millisecond, pollDelta: 10 * time.Millisecond}
	r, s, _, _ := lockFixture(t, timers)
	r.queue = aspnetclient.NewSessionQueue(1)
	leave, err := r.queue.Enter("0 " + s.sess.target) // a request of the session in web server 0
	if err != nil {
		t.Fatal(err)
	}
	rec := &pageRecord{id: 1}
	r.run(context.Background(), s, rec)
	if rec.errKind != ErrQueueFull || len(rec.ops) != 0 {
		t.Fatalf("page beyond the queue limit: err %q, %d requests; want %s and none", rec.errKind, len(rec.ops), ErrQueueFull)
	}
	leave()
	rec = &pageRecord{id: 2}
	r.run(context.Background(), s, rec)
	if rec.errKind == ErrQueueFull || len(rec.ops) == 0 {
		t.Fatalf("page after the other request left: err %q, %d requests; want it to run", rec.errKind, len(rec.ops))
	}
}
