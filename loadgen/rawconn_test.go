package loadgen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/testwait"
	"github.com/aspstate/aspstate/protocol"
)

// writeBigTo writes 4 MiB (more than the socket buffers hold) to c with
// write, checks that peer reads exactly those bytes, and reads the peer's
// answer ("ok", sent once it has read them all) from c: a WriteAwait may
// write it all while the peer reads, and then waits for that answer.
func writeBigTo(t *testing.T, name string, write func([]byte) (int, error), c, peer net.Conn) {
	t.Helper()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(big))))
		got <- b
		_, _ = peer.Write([]byte("ok"))
	}()
	if n, err := write(big); n != len(big) || err != nil {
		t.Fatalf("%s(4 MiB) = %d, %v", name, n, err)
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("the peer read %d bytes, not what was written", len(b))
	}
	ok := make([]byte, 2)
	if _, err := io.ReadFull(c, ok); err != nil || string(ok) != "ok" {
		t.Fatalf("after %s(4 MiB): read %q, %v; want the peer's ok", name, ok, err)
	}
}

// rawPair returns a raw connection (newRawConn: under -race too) and its
// peer.
func rawPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	t.Cleanup(func() { client.Close(); server.Close() })
	return newRawConn(client), server
}

// TestRawConnBehavesLikeNet: what a raw connection reads and writes, and
// the errors it reports, are those of package net: data both ways (a write
// larger than the socket buffers waits for room), deadline timeouts, end of
// stream, and a reset.
func TestRawConnBehavesLikeNet(t *testing.T) {
	t.Parallel()
	c, s := rawPair(t)
	if _, raw := c.(*net.TCPConn); raw == rawIO {
		t.Fatalf("newRawConn returned %T (raw I/O on this platform: %v)", c, rawIO)
	}
	writeBigTo(t, "Write", c.Write, c, s)
	if _, err := s.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := io.ReadAtLeast(c, buf, 5); n != 5 || err != nil || string(buf[:5]) != "reply" {
		t.Fatalf("Read = %d %q, %v", n, buf[:n], err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, err := c.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	s.Close()
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d, %v; want EOF", n, err)
	}
	c2, s2 := rawPair(t)
	_ = s2.(*net.TCPConn).SetLinger(0)
	s2.Close() // reset
	time.Sleep(20 * time.Millisecond)
	var werr error
	for i := 0; i < 10 && werr == nil; i++ {
		_, werr = c2.Write([]byte("x"))
		time.Sleep(5 * time.Millisecond)
	}
	if !errors.Is(werr, syscall.ECONNRESET) && !errors.Is(werr, syscall.EPIPE) {
		t.Fatalf("write after a reset: %v, want ECONNRESET or EPIPE", werr)
	}
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
		rc := newRawConn(nc)
		if _, await := rc.(protocol.Awaiter); await != rawIO {
			t.Fatalf("newRawConn returned %T: an Awaiter %v, raw I/O on this platform %v", rc, await, rawIO)
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
