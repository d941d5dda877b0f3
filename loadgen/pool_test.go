package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/testwait"
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
