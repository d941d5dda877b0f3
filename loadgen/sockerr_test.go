package loadgen

import (
	"net"
	"testing"
	"time"
)

// The platform's own refused and reset errors, from real loopback sockets,
// are classified as such (on Windows they are Winsock codes, not syscall.E*).
func TestSocketErrorsFromTheStack(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()

	// Reset: once the client's first byte has arrived (the connection is
	// established on both sides), the server closes with SO_LINGER 0 (an RST).
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = c.Read(make([]byte, 1))
		_ = c.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
	}()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, rerr := c.Read(make([]byte, 1))
	if !connReset(rerr) || errorKind(rerr) != ErrReset || !retryable(rerr) {
		t.Errorf("read from a reset connection: %v (%T): connReset %v, kind %q, retryable %v",
			rerr, rerr, connReset(rerr), errorKind(rerr), retryable(rerr))
	}

	// Refused: nothing listens any more.
	ln.Close()
	_, derr := net.Dial("tcp", addr)
	if !connRefused(derr) || errorKind(derr) != ErrRefused {
		t.Errorf("dial to a closed port: %v (%T): connRefused %v, kind %q", derr, derr, connRefused(derr), errorKind(derr))
	}
	if connRefused(rerr) || connReset(derr) {
		t.Errorf("refused and reset confused: connRefused(reset) %v, connReset(refused) %v", connRefused(rerr), connReset(derr))
	}
}
