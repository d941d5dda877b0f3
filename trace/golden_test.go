package trace

import (
	"bytes"
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/real-service.pcapng from the real service's captures")

// realServiceFile is the capture assembled from the real service's bytes
// (../shared/captures, kept in ../protocol/testdata/captures).
var realServiceFile = filepath.Join("testdata", "real-service.pcapng")

//go:generate go test -run ^TestRealServiceCaptureFile$ . -update

// realServiceCapture wraps the real ASP.NET client's and state service's
// messages into TCP packets: a web server that acquires and then saves and
// releases a session, and a second connection whose capture starts with a
// .NET 2.0 service's reply to a request sent before the capture began.
func realServiceCapture(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	ng, err := newNgWriter(&buf, "aspstate trace tests: the real service's bytes from ../shared/captures")
	if err != nil {
		t.Fatal(err)
	}
	pw := newPacketWriter(ng)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2019, 10, 5, 12, 0, 0, 0, time.UTC)
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	web1 := newTCPConn(netip.MustParseAddrPort("10.1.0.11:49811"), netip.MustParseAddrPort("10.1.0.5:42424"))
	must(pw.handshake(web1, at(0)))
	must(pw.send(web1, true, at(1), golden(t, "net4-get-acquire.request")))
	must(pw.send(web1, false, at(1.4), golden(t, "net4-get-acquire.response")))
	must(pw.send(web1, true, at(30), golden(t, "net4-put-release.request")))
	must(pw.send(web1, false, at(30.5), golden(t, "net4-put-release.response")))
	must(pw.fin(web1, true, at(31)))
	must(pw.fin(web1, false, at(31.1)))

	web2 := newTCPConn(netip.MustParseAddrPort("10.1.0.12:50112"), netip.MustParseAddrPort("10.1.0.5:42424"))
	must(pw.send(web2, false, at(40), golden(t, "net2-put.response")))
	must(pw.send(web2, true, at(50), golden(t, "net4-get-acquire.request")))
	must(pw.send(web2, false, at(50.2), golden(t, "net4-get-acquire.response")))
	must(ng.Flush())
	return buf.Bytes()
}

// generated are the captures the tests generate and keep in testdata:
// the real service's bytes, and ports carrying other protocols.
var generated = map[string]func(*testing.T) []byte{
	realServiceFile: realServiceCapture,
	httpFile:        func(t *testing.T) []byte { return foreignCapture(t, httpExchange) },
	tlsFile:         func(t *testing.T) []byte { return foreignCapture(t, tlsExchange) },
}

var (
	httpFile = filepath.Join("testdata", "http-on-42424.pcapng")
	tlsFile  = filepath.Join("testdata", "tls-on-42424.pcapng")
	// httpExchange is an ordinary web request and reply.
	httpExchange = [2]string{"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nAccept: */*\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html></html>"}
	// tlsExchange is the start of a TLS 1.2 ClientHello and ServerHello.
	tlsExchange = [2]string{"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + strings.Repeat("\x42", 32),
		"\x16\x03\x03\x00\x51\x02\x00\x00\x4d\x03\x03" + strings.Repeat("\x24", 32)}
)

// foreignCapture is two connections to port 42424 carrying another
// protocol's exchange twice each.
func foreignCapture(t *testing.T, ex [2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	ng, err := newNgWriter(&buf, "aspstate trace tests: another protocol on port 42424")
	if err != nil {
		t.Fatal(err)
	}
	pw := newPacketWriter(ng)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, client := range []string{"10.2.0.1:40001", "10.2.0.2:40002"} {
		c := newTCPConn(netip.MustParseAddrPort(client), netip.MustParseAddrPort("10.2.0.9:42424"))
		ts := t0.Add(time.Duration(i) * time.Second)
		steps := []error{pw.handshake(c, ts)}
		for j := 0; j < 2; j++ {
			steps = append(steps, pw.send(c, true, ts.Add(time.Millisecond), []byte(ex[0])),
				pw.send(c, false, ts.Add(2*time.Millisecond), []byte(ex[1])))
		}
		steps = append(steps, pw.fin(c, true, ts.Add(3*time.Millisecond)), pw.fin(c, false, ts.Add(3*time.Millisecond)))
		for _, err := range steps {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ng.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRealServiceCaptureFile keeps the committed captures equal to what the
// generators make (go generate ./trace rewrites them).
func TestRealServiceCaptureFile(t *testing.T) {
	t.Parallel()
	for path, gen := range generated {
		want := gen(t)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the generator makes; run go generate ./trace", path)
		}
	}
}

// TestRealServiceCaptureExchanges: reading the assembled capture gives the
// real service's exchanges byte for byte, and the reply without its request
// is counted, never paired.
func TestRealServiceCaptureExchanges(t *testing.T) {
	t.Parallel()
	got, st, err := collect(t, Options{}, realServiceFile)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{
		{"net4-get-acquire.request", "net4-get-acquire.response"},
		{"net4-put-release.request", "net4-put-release.response"},
		{"net4-get-acquire.request", "net4-get-acquire.response"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d exchanges, want %d", len(got), len(want))
	}
	for i, w := range want {
		if !bytes.Equal(got[i].req, golden(t, w[0])) || !bytes.Equal(got[i].resp, golden(t, w[1])) {
			t.Errorf("exchange %d is not %s/%s byte for byte:\n%q\n%q", i, w[0], w[1], got[i].req, got[i].resp)
		}
		if got[i].ex.RequestSize != len(golden(t, w[0])) || got[i].ex.ReplySize != len(golden(t, w[1])) {
			t.Errorf("exchange %d sizes %d/%d", i, got[i].ex.RequestSize, got[i].ex.ReplySize)
		}
	}
	if l := got[0].ex.Latency(); l != 400*time.Microsecond {
		t.Errorf("latency %v, want 400µs", l)
	}
	if st.Skipped.LostToJoins != 1 || st.Exchanges != 3 || st.Connections != 2 {
		t.Errorf("stats %+v", st)
	}
	if _, err := Read(context.Background(), []string{realServiceFile}, Options{Port: 80}, func(*Exchange) error {
		t.Error("an exchange on the wrong port")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
