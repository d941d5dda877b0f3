package loadgen

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/rawio"
	"github.com/aspstate/aspstate/internal/testwait"
	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/servers/stateserver"
)

func TestPoolLIFOAndIdleExpiry(t *testing.T) {
	tg, _ := startServer(t, 0)
	p := newPool(tg.Addr, 60*time.Millisecond, nil)
	defer p.close()
	ctx := context.Background()
	a, reused, err := p.get(ctx, time.Second, time.Now())
	if err != nil || reused {
		t.Fatal(err, reused)
	}
	b, _, err := p.get(ctx, time.Second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.put(a, time.Now())
	p.put(b, time.Now())
	if got, reused, _ := p.get(ctx, time.Second, time.Now()); got != b || !reused {
		t.Fatal("the pool is not last in, first out")
	}
	if got, _, _ := p.get(ctx, time.Second, time.Now()); got != a {
		t.Fatal("the second get did not return the older connection")
	}
	p.put(a, time.Now())
	put := time.Now()
	testwait.For(t, "the idle connection to expire", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.idle) == 0 })
	idle := time.Since(put)
	if idle < 60*time.Millisecond {
		t.Fatalf("connection closed after %s idle, before one period", idle)
	}
	if p.expired.Load() != 1 {
		t.Fatalf("expired %d, want 1", p.expired.Load())
	}
	if _, err := a.ResetTimeout(ctx, "x"); err == nil {
		t.Fatal("an expired connection still works")
	}
	b.Close()
}

func TestPoolReconnectsDeadSocket(t *testing.T) {
	cfg := stateserver.DefaultConfig()
	cfg.IdleTimeout = 50 * time.Millisecond
	tg := startCustom(t, cfg)
	p := newPool(tg.Addr, time.Hour, nil)
	defer p.close()
	ctx := context.Background()
	c, _, err := p.get(ctx, time.Second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ResetTimeout(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	p.put(c, time.Now())
	testwait.For(t, "the server to close the idle connection", func() bool { return !alive(&pooled{c: c}, time.Now()) })
	c2, reused, err := p.get(ctx, time.Second, time.Now())
	if err != nil || reused || c2 == c {
		t.Fatalf("get after the server closed the socket: %v reused=%v same=%v", err, reused, c2 == c)
	}
	if p.dead.Load() != 1 || p.dials.Load() != 2 {
		t.Fatalf("dead %d dials %d, want 1 and 2", p.dead.Load(), p.dials.Load())
	}
	if _, err := c2.ResetTimeout(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	p.put(c2, time.Now())
}

// TestRawConnCarriesProtocolConn: a protocol.Conn over a raw connection (an
// Awaiter on Linux, which waits for each reply through the poller) works
// against the reference server as over package net: the replies, the
// Timeout, a context's cancel in the middle of the wait, and a server that
// closes the connection (an error the pool retries on a new one).
func TestRawConnCarriesProtocolConn(t *testing.T) {
	t.Parallel()
	tg, srv := startServer(t, time.Minute)
	dial := func(timeout time.Duration) *protocol.Conn {
		t.Helper()
		nc, err := net.Dial("tcp", tg.Addr())
		if err != nil {
			t.Fatal(err)
		}
		rc := rawio.New(nc)
		if _, await := rc.(protocol.Awaiter); await != rawio.Enabled {
			t.Fatalf("rawio.New returned %T: an Awaiter %v, raw I/O on this platform %v", rc, await, rawio.Enabled)
		}
		c := protocol.NewConn(rc, protocol.ConnOptions{ReuseReplies: true, Timeout: timeout})
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx := context.Background()

	c := dial(time.Minute)
	for _, body := range []string{"a", "bb", strings.Repeat("c", 100<<10)} {
		u := protocol.Target("/LM/W3SVC/1/ROOT", "rawconnrawconnrawconnraw")
		if r, err := c.Set(ctx, u, []byte(body), protocol.SetParams{Timeout: 20}); err != nil || r.Status != 200 {
			t.Fatalf("Set of %d bytes = %v, %v", len(body), r, err)
		}
		if r, err := c.Get(ctx, u); err != nil || r.Status != 200 || string(r.Body) != body {
			t.Fatalf("Get of %d bytes = %v, %v", len(body), r, err)
		}
	}

	// Unanswered: the Timeout ends the wait.
	srv.Pause()
	c1 := dial(100 * time.Millisecond)
	_, err := c1.Get(ctx, "unanswered")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("unanswered call: err = %v, want a timeout", err)
	}

	// Canceled while it waits for the reply.
	c2 := dial(time.Hour)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	held := srv.Stats().Held
	go func() { _, err := c2.Get(cctx, "held"); done <- err }()
	testwait.For(t, "the server to hold the request", func() bool { return srv.Stats().Held > held })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled wait: err = %v, want canceled", err)
	}
	srv.Resume()

	// The server closes the connection.
	c3 := dial(time.Hour)
	if _, err := c3.Get(ctx, "before-close"); err != nil {
		t.Fatal(err)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the server to close every connection", func() bool { return srv.Stats().ConnectionsActive == 0 })
	if _, err := c3.Get(ctx, "after-close"); !retryable(err) {
		t.Fatalf("call on a connection the server closed: err = %v, want end of stream or a reset", err)
	}
}
