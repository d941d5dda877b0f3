package protocol

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeServer answers each request read on a loopback connection with the
// reply returned by answer; a nil reply closes the connection.
func fakeServer(t *testing.T, answer func(req *Request) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				r := NewReader(bufio.NewReader(nc), Limits{})
				for {
					var req Request
					if err := r.ReadRequest(&req); err != nil {
						return
					}
					out := answer(&req)
					if out == nil {
						return
					}
					if _, err := nc.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestConnMethodsSendClientBytes(t *testing.T) {
	var seen []string
	addr := fakeServer(t, func(req *Request) []byte {
		seen = append(seen, string(req.Bytes()))
		resp := &Response{Status: 200, Header: Header{{Name: HeaderVersion, Value: DefaultVersion},
			{Name: HeaderLockCookie, Value: "7"}, {Name: HeaderTimeout, Value: "20"}}, Body: []byte("b")}
		return resp.Bytes()
	})
	ctx := context.Background()
	var sent, recv bytes.Buffer
	c, err := Dial(ctx, addr, ConnOptions{Tap: func(s bool, b []byte) {
		if s {
			sent.Write(b)
		} else {
			recv.Write(b)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tg := "%2fa"
	calls := []func() (*Reply, error){
		func() (*Reply, error) { return c.Get(ctx, tg) },
		func() (*Reply, error) { return c.GetExclusive(ctx, tg) },
		func() (*Reply, error) { return c.ReleaseExclusive(ctx, tg, 3) },
		func() (*Reply, error) { return c.Set(ctx, tg, []byte("xy"), SetParams{Timeout: 20, ExtraFlags: 1}) },
		func() (*Reply, error) { return c.Remove(ctx, tg, 4) },
		func() (*Reply, error) { return c.ResetTimeout(ctx, tg) },
	}
	for i, call := range calls {
		r, err := call()
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if r.Status != 200 || r.LockCookie != 7 || !r.HasCookie || r.Timeout != 20 || string(r.Body) != "b" || r.VersionMajor() != 4 {
			t.Fatalf("call %d: reply %+v", i, r)
		}
	}
	want := []string{
		"GET %2fa HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET %2fa HTTP/1.1\r\nHost: localhost\r\nExclusive: acquire\r\n\r\n",
		"GET %2fa HTTP/1.1\r\nHost: localhost\r\nExclusive: release\r\nLockCookie:3\r\n\r\n",
		"PUT %2fa HTTP/1.1\r\nHost: localhost\r\nTimeout:20\r\nContent-Length:2\r\nExtraFlags:1\r\nLockCookie:0\r\n\r\nxy",
		"DELETE %2fa HTTP/1.1\r\nHost: localhost\r\nLockCookie:4\r\n\r\n",
		"HEAD %2fa HTTP/1.1\r\nHost: localhost\r\n\r\n",
	}
	if strings.Join(seen, "") != strings.Join(want, "") {
		t.Errorf("server saw:\n%q\nwant:\n%q", seen, want)
	}
	if sent.String() != strings.Join(want, "") {
		t.Errorf("tap saw different sent bytes")
	}
	if !strings.HasPrefix(recv.String(), "200 OK\r\nX-AspNet-Version: 4.0.30319\r\n") {
		t.Errorf("tap received %q", recv.String())
	}
}

func TestConnServerCloseBreaksConn(t *testing.T) {
	addr := fakeServer(t, func(req *Request) []byte { return nil })
	ctx := context.Background()
	c, err := Dial(ctx, addr, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get(ctx, "a"); err == nil {
		t.Fatal("no error when the server closed without replying")
	}
	if c.Broken() == nil {
		t.Error("Conn not marked broken")
	}
	if _, err := c.Get(ctx, "a"); !errors.Is(err, ErrBroken) {
		t.Errorf("second call: %v, want ErrBroken", err)
	}
}

func TestConnMalformedReplyIsProtocolError(t *testing.T) {
	addr := fakeServer(t, func(req *Request) []byte { return []byte("garbage\r\n\r\n") })
	c, err := Dial(context.Background(), addr, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Get(context.Background(), "a")
	if !IsProtocolError(err) {
		t.Fatalf("err = %v, want a protocol error", err)
	}
}

func TestConnContextDeadlineAndCancel(t *testing.T) {
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	addr := fakeServer(t, func(req *Request) []byte { <-hold; return nil })

	c, err := Dial(context.Background(), addr, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Get(ctx, "a")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}

	c2, err := Dial(context.Background(), addr, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c2.Get(ctx2, "a"); done <- err }()
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
}

func TestNewReplyRejectsBadNumbers(t *testing.T) {
	resp, err := ParseResponse([]byte("423 Locked\r\nLockCookie: x\r\nLockAge: 3\r\n\r\n"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReply(resp)
	if !IsProtocolError(err) || r.LockAge != 3 || r.HasCookie {
		t.Errorf("reply %+v, err %v", r, err)
	}
}

func TestVersionMajor(t *testing.T) {
	for v, want := range map[string]int{"4.0.30319": 4, "2.0.50727": 2, "1.1.4322": 1, "": 0, "x.1": 0, "10": 10} {
		if got := VersionMajor(v); got != want {
			t.Errorf("VersionMajor(%q) = %d, want %d", v, got, want)
		}
	}
}

func TestOpOf(t *testing.T) {
	for raw, want := range map[string]Op{
		"GET a HTTP/1.1\r\n\r\n":                       OpGet,
		"GET a HTTP/1.1\r\nExclusive: Acquire\r\n\r\n": OpGetExclusive,
		"GET a HTTP/1.1\r\nexclusive:release\r\n\r\n":  OpReleaseExclusive,
		"GET a HTTP/1.1\r\nExclusive: steal\r\n\r\n":   0,
		"PUT a HTTP/1.1\r\n\r\n":                       OpSet,
		"DELETE a HTTP/1.1\r\n\r\n":                    OpRemove,
		"HEAD a HTTP/1.1\r\n\r\n":                      OpResetTimeout,
		"POST a HTTP/1.1\r\n\r\n":                      0,
	} {
		req, err := ParseRequest([]byte(raw), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if got := OpOf(req); got != want {
			t.Errorf("OpOf(%q) = %v, want %v", raw, got, want)
		}
	}
	for _, o := range Ops {
		if p, ok := ParseOp(o.String()); !ok || p != o {
			t.Errorf("ParseOp(%q) = %v", o, p)
		}
	}
}
