package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// echo is a line echo server on loopback that prefixes replies with its name.
func echo(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, name+":"+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

type client struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c: c, r: bufio.NewReader(c)}
}

// ask sends a line and returns the reply and how long it took.
func (c *client) ask(msg string, timeout time.Duration) (string, time.Duration, error) {
	start := time.Now()
	_ = c.c.SetDeadline(start.Add(timeout))
	if _, err := io.WriteString(c.c, msg+"\n"); err != nil {
		return "", 0, err
	}
	line, err := c.r.ReadString('\n')
	return strings.TrimSpace(line), time.Since(start), err
}

func start(t *testing.T, upstream string) *Proxy {
	t.Helper()
	p, err := Start(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if !strings.HasPrefix(p.Addr(), "127.0.0.1:") {
		t.Fatalf("proxy listens on %s, want loopback", p.Addr())
	}
	return p
}

func TestLatencyAddsDelayEachWay(t *testing.T) {
	p := start(t, echo(t, "a"))
	c := dial(t, p.Addr())
	if got, d, err := c.ask("x", 2*time.Second); err != nil || got != "a:x" || d > 40*time.Millisecond {
		t.Fatalf("before: %q %v %v", got, d, err)
	}
	remove, err := p.Latency(60*time.Millisecond, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// The toxic applies to connections already open: one way each is
	// 50..70ms, so a round trip takes at least 100ms.
	got, d, err := c.ask("y", 2*time.Second)
	if err != nil || got != "a:y" || d < 100*time.Millisecond {
		t.Fatalf("with latency: %q after %v (%v), want at least 100ms", got, d, err)
	}
	if err := remove(); err != nil {
		t.Fatal(err)
	}
	if got, d, err := c.ask("z", 2*time.Second); err != nil || got != "a:z" || d > 40*time.Millisecond {
		t.Fatalf("after removal: %q %v %v", got, d, err)
	}
	if _, err := p.Latency(0, 0); err == nil {
		t.Error("a zero delay was accepted")
	}
	if _, err := p.Latency(time.Millisecond, 2*time.Millisecond); err == nil {
		t.Error("a jitter above the delay was accepted")
	}
}

func TestBlackholeDropsUntilRemoved(t *testing.T) {
	p := start(t, echo(t, "a"))
	c := dial(t, p.Addr())
	if _, _, err := c.ask("x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	remove, err := p.Blackhole()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.ask("lost", 150*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("through the black hole: %v, want a timeout", err)
	}
	// A new connection is accepted but answered no more.
	c2 := dial(t, p.Addr())
	if _, _, err := c2.ask("lost", 150*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("new connection through the black hole: %v, want a timeout", err)
	}
	if err := remove(); err != nil {
		t.Fatal(err)
	}
	c3 := dial(t, p.Addr())
	if got, _, err := c3.ask("back", 2*time.Second); err != nil || got != "a:back" {
		t.Fatalf("after the black hole: %q %v", got, err)
	}
}

func TestResetClosesOpenConnections(t *testing.T) {
	p := start(t, echo(t, "a"))
	c := dial(t, p.Addr())
	if _, _, err := c.ask("x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.ResetConnections(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ask("y", 2*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("an open connection survived the reset: %v", err)
	}
	c2 := dial(t, p.Addr())
	if got, _, err := c2.ask("z", 2*time.Second); err != nil || got != "a:z" {
		t.Fatalf("after the reset: %q %v", got, err)
	}
}

func TestSetUpstreamFollowsARestartedTarget(t *testing.T) {
	p := start(t, echo(t, "a"))
	addr := p.Addr()
	b := echo(t, "b")
	if err := p.SetUpstream(b); err != nil {
		t.Fatal(err)
	}
	if p.Addr() != addr || p.Upstream() != b {
		t.Fatalf("addr %s upstream %s", p.Addr(), p.Upstream())
	}
	c := dial(t, p.Addr())
	if got, _, err := c.ask("x", 2*time.Second); err != nil || got != "b:x" {
		t.Fatalf("after SetUpstream: %q %v", got, err)
	}
	if err := p.SetUpstream("nonsense"); err == nil {
		t.Error("an upstream without a port was accepted")
	}
	if _, err := Start("nope"); err == nil {
		t.Error("Start accepted an upstream without a port")
	}
}
