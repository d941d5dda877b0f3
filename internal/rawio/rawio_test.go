package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
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

// rawPair returns a raw connection (New: under -race too) and its
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
	return New(client), server
}

// TestRawConnBehavesLikeNet: what a raw connection reads and writes, and
// the errors it reports, are those of package net: data both ways (a write
// larger than the socket buffers waits for room), deadline timeouts, end of
// stream, and a reset.
func TestRawConnBehavesLikeNet(t *testing.T) {
	t.Parallel()
	c, s := rawPair(t)
	if _, raw := c.(*net.TCPConn); raw == Enabled {
		t.Fatalf("New returned %T (raw I/O on this platform: %v)", c, Enabled)
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
