//go:build linux

package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestRawConnWriteAwait: WriteAwait writes, then returns once the answer can be
// read (however soon or late it comes), or with a read timeout at the read
// deadline; a write larger than the socket takes is finished as Write does;
// a peer that closes wakes it and the next Read sees the end.
func TestRawConnWriteAwait(t *testing.T) {
	t.Parallel()
	cn, s := rawPair(t)
	c := cn.(*rawConn)
	buf := make([]byte, 64)
	for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
		go func() {
			b := make([]byte, 4)
			if _, err := io.ReadFull(s, b); err == nil {
				time.Sleep(delay)
				_, _ = s.Write(append(b, '!'))
			}
		}()
		if n, err := c.WriteAwait([]byte("ping")); n != 4 || err != nil {
			t.Fatalf("delay %s: WriteAwait = %d, %v", delay, n, err)
		}
		if n, err := io.ReadAtLeast(c, buf, 5); err != nil || string(buf[:n]) != "ping!" {
			t.Fatalf("delay %s: Read = %q, %v", delay, buf[:n], err)
		}
	}

	// No answer: the read deadline ends the wait as a read timeout.
	go func() { b := make([]byte, 4); _, _ = io.ReadFull(s, b) }()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	n, err := c.WriteAwait([]byte("lost"))
	var ne net.Error
	var oe *net.OpError
	if n != 4 || !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("WriteAwait with no answer = %d, %v; want 4 and a read timeout", n, err)
	}
	_ = c.SetReadDeadline(time.Time{})

	// More than the socket buffers hold: finished by Write (no wait) when
	// the socket fills, else written whole and the answer awaited.
	writeBigTo(t, "WriteAwait", c.WriteAwait, c, s)

	// The peer closes instead of answering.
	go func() { b := make([]byte, 4); _, _ = io.ReadFull(s, b); s.Close() }()
	if n, err := c.WriteAwait([]byte("bye?")); n != 4 || err != nil {
		t.Fatalf("WriteAwait before a close = %d, %v", n, err)
	}
	if _, err := c.Read(buf); err != io.EOF {
		t.Fatalf("Read after the peer closed = %v, want EOF", err)
	}
}
