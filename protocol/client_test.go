package protocol

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
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

// TestConnLongLivedContext: one context serves many calls (one interrupt
// registration), its end still interrupts a blocked call, and after it the
// Conn's deadline state does not leak into calls under other contexts.
func TestConnLongLivedContext(t *testing.T) {
	var calls atomic.Int64
	addr := fakeServer(t, func(req *Request) []byte {
		if req.Target == "hold" {
			time.Sleep(300 * time.Millisecond)
		}
		calls.Add(1)
		return []byte("200 OK\r\nX-AspNet-Version: 4.0.30319\r\nContent-Length: 0\r\n\r\n")
	})
	c, err := Dial(context.Background(), addr, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	for i := 0; i < 5; i++ {
		if _, err := c.Get(ctx, "a"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	// Canceled while idle: the next call under another context is unaffected.
	cancel()
	time.Sleep(20 * time.Millisecond) // let the interrupt run
	if _, err := c.Get(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("call under an ended context: err = %v, want canceled", err)
	}
	if c.Broken() != nil {
		t.Fatalf("a call refused before sending broke the Conn: %v", c.Broken())
	}
	if _, err := c.Get(context.Background(), "a"); err != nil {
		t.Fatalf("call under Background after an interrupt: %v", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	if _, err := c.Get(ctx2, "a"); err != nil {
		t.Fatalf("call under a new context after an interrupt: %v", err)
	}
	// A blocked call is interrupted by its long-lived context's end.
	done := make(chan error, 1)
	go func() { _, err := c.Get(ctx2, "hold"); done <- err }()
	time.Sleep(50 * time.Millisecond)
	cancel2()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not interrupt the blocked call")
	}
	if n := calls.Load(); n != 7 { // the held call is answered after the check
		t.Errorf("server answered %d calls, want 7", n)
	}
}

func TestConnTimeoutOption(t *testing.T) {
	addr := fakeServer(t, func(req *Request) []byte {
		if req.Target == "slow" {
			time.Sleep(400 * time.Millisecond)
		}
		return []byte("200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	c, err := Dial(context.Background(), addr, ConnOptions{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ { // each call gets its own Timeout
		if _, err := c.Get(context.Background(), "fast"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	_, err = c.Get(context.Background(), "slow")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	// A context deadline earlier than Timeout wins.
	c2, err := Dial(context.Background(), addr, ConnOptions{Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c2.Get(ctx, "slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
}

// TestConnTimeoutLazyDeadline: the Timeout's socket deadline is kept while
// it still gives a call at least Timeout and at most TimeoutSlack more, so
// calls in quick succession set it once; every call gets its full Timeout.
func TestConnTimeoutLazyDeadline(t *testing.T) {
	addr := fakeServer(t, func(req *Request) []byte { return []byte("200 OK\r\nContent-Length: 0\r\n\r\n") })
	const timeout = time.Second
	slack := TimeoutSlack(timeout)
	if slack != 10*time.Millisecond || TimeoutSlack(64*time.Millisecond) != time.Millisecond {
		t.Fatalf("TimeoutSlack(1s) = %s, TimeoutSlack(64ms) = %s", slack, TimeoutSlack(64*time.Millisecond))
	}
	c, err := Dial(context.Background(), addr, ConnOptions{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var sets int
	last := c.dl
	began := time.Now()
	for i := 0; i < 200; i++ {
		start := time.Now()
		if _, err := c.Get(context.Background(), "k"); err != nil {
			t.Fatal(err)
		}
		if c.dl.Before(start.Add(timeout)) || c.dl.After(time.Now().Add(timeout+slack)) {
			t.Fatalf("call %d: deadline %s after its start, want [%s, %s]", i, c.dl.Sub(start), timeout, timeout+slack)
		}
		if !c.dl.Equal(last) {
			sets++
			last = c.dl
		}
	}
	// A deadline set lasts at least one slack, so at most elapsed/slack + 1
	// sets; one per call (200) is what the lazy rule avoids. (A machine so
	// stalled that 200 loopback calls took 2 s could not tell them apart.)
	elapsed := time.Since(began)
	if most := int(elapsed/slack) + 1; most >= 200 {
		t.Logf("200 calls took %s: too slow to count deadline sets", elapsed)
	} else if sets > most {
		t.Errorf("the deadline was set %d times in 200 calls over %s, want at most %d", sets, elapsed, most)
	}
	// Past the slack the deadline moves.
	time.Sleep(2 * slack)
	if _, err := c.Get(context.Background(), "k"); err != nil || c.dl.Equal(last) {
		t.Errorf("after %s the deadline did not move (err %v)", 2*slack, err)
	}
}

func TestConnReuseReplies(t *testing.T) {
	addr := fakeServer(t, func(req *Request) []byte {
		return []byte("200 OK\r\nContent-Length: " + strconv.Itoa(len(req.Target)) + "\r\n\r\n" + req.Target)
	})
	for _, reuse := range []bool{false, true} {
		c, err := Dial(context.Background(), addr, ConnOptions{ReuseReplies: reuse})
		if err != nil {
			t.Fatal(err)
		}
		r1, err := c.Get(context.Background(), "first")
		if err != nil {
			t.Fatal(err)
		}
		r2, err := c.Get(context.Background(), "second")
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if string(r2.Body) != "second" {
			t.Errorf("reuse=%v: body %q", reuse, r2.Body)
		}
		if same := r1 == r2; same != reuse {
			t.Errorf("reuse=%v: replies shared = %v", reuse, same)
		}
		if !reuse && string(r1.Body) != "first" {
			t.Errorf("without reuse an earlier reply changed: %q", r1.Body)
		}
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

// awaitConn is an Awaiter that counts its WriteAwait calls; it writes as
// Write does (the waiting itself is the load generator's raw connection's,
// tested there).
type awaitConn struct {
	net.Conn
	awaits int
}

func (c *awaitConn) WriteAwait(p []byte) (int, error) {
	c.awaits++
	return c.Write(p)
}

// TestConnAwaiter: a Conn over an Awaiter sends with WriteAwait when its
// reader holds nothing, and with Write when a reply is already buffered
// (here a stray second reply, which the next call reads).
func TestConnAwaiter(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(req *Request) []byte {
		reply := "200 OK\r\nContent-Length: " + strconv.Itoa(len(req.Target)) + "\r\n\r\n" + req.Target
		if req.Target == "twice" {
			return []byte(reply + reply)
		}
		return []byte(reply)
	})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	aw := &awaitConn{Conn: nc}
	c := NewConn(aw, ConnOptions{ReuseReplies: true, Timeout: time.Minute})
	defer c.Close()
	for i, target := range []string{"a", "bb", "twice"} {
		if r, err := c.Get(context.Background(), target); err != nil || string(r.Body) != target {
			t.Fatalf("Get %s = %v, %v", target, r, err)
		}
		if aw.awaits != i+1 {
			t.Fatalf("after Get %s: %d WriteAwait calls, want %d", target, aw.awaits, i+1)
		}
	}
	// Both replies came in one write, which loopback TCP delivers to one read.
	if c.rd.Buffered() == 0 {
		t.Fatal("the stray reply is not buffered after the reply it came with")
	}
	if r, err := c.Get(context.Background(), "ccc"); err != nil || string(r.Body) != "twice" || aw.awaits != 3 {
		t.Fatalf("Get with a reply buffered = %v, %v after %d WriteAwait calls; want the stray reply, written with Write", r, err, aw.awaits)
	}
}

// TestReplyFillHeaders: the reply's headers are read in any letter case,
// the first of a repeated name counts, and unusable numbers are reported in
// a fixed order.
func TestReplyFillHeaders(t *testing.T) {
	resp := &Response{Status: 423, Header: Header{
		{Name: "lockcookie", Value: "7"}, {Name: HeaderLockCookie, Value: "9"},
		{Name: "X-ASPNET-VERSION", Value: "4.0.30319"}, {Name: HeaderContentLength, Value: "0"},
		{Name: HeaderLockAge, Value: "12"}, {Name: "LOCKDATE", Value: "638000000000000000"},
	}}
	var r Reply
	if err := r.fill(resp); err != nil {
		t.Fatal(err)
	}
	if !r.HasCookie || r.LockCookie != 7 || r.Version != "4.0.30319" || r.LockAge != 12 || r.LockDate != 638000000000000000 || r.HasTimeout {
		t.Fatalf("%+v", r)
	}
	resp.Header = Header{{Name: HeaderTimeout, Value: "x"}, {Name: HeaderLockCookie, Value: "y"}}
	err := r.fill(resp)
	if err == nil || !strings.Contains(err.Error(), `LockCookie: "y", Timeout: "x"`) {
		t.Fatalf("err = %v", err)
	}
}
