package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol/aspnetclient"
)

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
