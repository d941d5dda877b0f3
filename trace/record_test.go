package trace

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
)

// TestRecorderForwardsAndRecords: bytes pass the proxy unchanged both ways,
// and the file holds the exchange with the client's real address and the
// upstream's.
func TestRecorderForwardsAndRecords(t *testing.T) {
	t.Parallel()
	req, reply := golden(t, "net4-get-acquire.request"), golden(t, "net4-get-acquire.response")
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		c, err := up.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		got := make([]byte, len(req))
		if _, err := io.ReadFull(c, got); err == nil && bytes.Equal(got, req) {
			c.Write(reply)
		}
		io.Copy(io.Discard, c)
	}()
	file := filepath.Join(t.TempDir(), "rec.pcapng")
	rec, err := NewRecorder("127.0.0.1:0", up.Addr().String(), file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- rec.Serve(ctx) }()

	c, err := net.Dial("tcp", rec.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(reply))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, reply) {
		t.Fatalf("reply through the proxy %q, %v", got, err)
	}
	client := netip.MustParseAddrPort(c.LocalAddr().String())
	c.Close()
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	ex, st, err := collect(t, Options{Port: netip.MustParseAddrPort(up.Addr().String()).Port()}, file)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 1 || !bytes.Equal(ex[0].req, req) || !bytes.Equal(ex[0].resp, reply) || st.Skipped.Any() {
		t.Fatalf("%d exchanges, %s", len(ex), st.Skipped)
	}
	if ex[0].ex.Conn.Client != client || ex[0].ex.Conn.Server.String() != up.Addr().String() {
		t.Errorf("connection %v, want %v->%v", ex[0].ex.Conn, client, up.Addr())
	}
}
