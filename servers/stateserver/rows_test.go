package stateserver

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aspstate/aspstate/protocol"
)

// client sends requests with arbitrary headers and checks replies.
type client struct {
	t   *testing.T
	c   *protocol.Conn
	ctx context.Context
}

func newClient(t *testing.T, s *Server) *client {
	return &client{t: t, c: dial(t, s), ctx: tctx(t)}
}

var keySeq atomic.Int64

// newTarget returns a fresh URL-encoded target like the real client's.
func newTarget() string {
	return protocol.Target("/LM/W3SVC/1/ROOT", fmt.Sprintf("rows%020d", keySeq.Add(1)))
}

// do sends method on target with headers given as "Name:value" strings and
// an optional body (a Content-Length field is added for a non-nil body).
func (x *client) do(method, target string, body []byte, headers ...string) *protocol.Reply {
	x.t.Helper()
	req := &protocol.Request{Method: method, Target: target, Proto: "HTTP/1.1",
		Header: protocol.Header{{Name: "Host", Value: "localhost"}}}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			x.t.Fatalf("bad test header %q", h)
		}
		req.Header = append(req.Header, protocol.Field{Name: name, Value: value, Tight: true})
	}
	if body != nil {
		req.Header = append(req.Header, protocol.Field{Name: "Content-Length", Value: "0", Tight: true})
		req.Body = body
	}
	resp, err := x.c.Do(x.ctx, req)
	if err != nil {
		x.t.Fatalf("%s %s: %v", method, target, err)
	}
	r, err := protocol.NewReply(resp)
	if err != nil {
		x.t.Fatalf("%s %s: %v", method, target, err)
	}
	return r
}

func (x *client) get(target string, headers ...string) *protocol.Reply {
	x.t.Helper()
	return x.do("GET", target, nil, headers...)
}

func (x *client) acquire(target string) *protocol.Reply {
	x.t.Helper()
	return x.do("GET", target, nil, "Exclusive:acquire")
}

func (x *client) release(target string, cookie string) *protocol.Reply {
	x.t.Helper()
	if cookie == "" {
		return x.do("GET", target, nil, "Exclusive:release")
	}
	return x.do("GET", target, nil, "Exclusive:release", "LockCookie:"+cookie)
}

func (x *client) put(target, body string, headers ...string) *protocol.Reply {
	x.t.Helper()
	return x.do("PUT", target, []byte(body), headers...)
}

// expect checks the status, and with want headers the exact header names in
// order (Content-Length included).
func (x *client) expect(r *protocol.Reply, status int, names ...string) {
	x.t.Helper()
	if r.Status != status {
		x.t.Fatalf("status %d, want %d (reply %q)", r.Status, status, r.Response.Bytes())
	}
	if names != nil {
		if got := r.Response.Header.Names(); !slices.Equal(got, names) {
			x.t.Fatalf("header names %v, want %v", got, names)
		}
	}
	if status != 200 && len(r.Body) != 0 {
		x.t.Fatalf("%d reply carries a %d-byte body", status, len(r.Body))
	}
	for _, f := range r.Response.Header {
		if f.Name == "ActionFlags" && f.Value != "1" {
			x.t.Fatalf("ActionFlags: %s (only ever 1)", f.Value)
		}
	}
}

// body checks a 200 GET's body.
func (x *client) body(r *protocol.Reply, want string) {
	x.t.Helper()
	if !bytes.Equal(r.Body, []byte(want)) {
		x.t.Fatalf("body %q, want %q", r.Body, want)
	}
}

func (x *client) cookie(r *protocol.Reply, want int32) {
	x.t.Helper()
	if !r.HasCookie || r.LockCookie != want {
		x.t.Fatalf("LockCookie %d (present %v), want %d", r.LockCookie, r.HasCookie, want)
	}
}

// Header name lists of the reply shapes (PROTOCOL.md b.5).
var (
	hdrPlain   = []string{"X-AspNet-Version", "Cache-Control", "Content-Length"}
	hdrPlainAF = []string{"X-AspNet-Version", "ActionFlags", "Cache-Control", "Content-Length"}
	hdrGet     = []string{"X-AspNet-Version", "Timeout", "Cache-Control", "Content-Length"}
	hdrGetAF   = []string{"X-AspNet-Version", "ActionFlags", "Timeout", "Cache-Control", "Content-Length"}
	hdrAcq     = []string{"X-AspNet-Version", "LockCookie", "Timeout", "Cache-Control", "Content-Length"}
	hdrAcqAF   = []string{"X-AspNet-Version", "ActionFlags", "LockCookie", "Timeout", "Cache-Control", "Content-Length"}
	hdrLocked  = []string{"X-AspNet-Version", "LockDate", "LockAge", "LockCookie", "Cache-Control", "Content-Length"}
)

type rowCase struct {
	name string
	run  func(x *client, u string)
}

func runRows(t *testing.T, rows []rowCase) {
	s := startServer(t, Config{})
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			row.run(newClient(t, s), newTarget())
		})
	}
}

// TestGetRows covers PROTOCOL.md c.1, one case per row.
func TestGetRows(t *testing.T) {
	runRows(t, []rowCase{
		{"c.1 row 1 not found 404 without header validation", func(x *client, u string) {
			x.expect(x.get(u), 404, hdrPlain...)
			x.expect(x.acquire(u), 404, hdrPlain...)
			x.expect(x.release(u, ""), 404, hdrPlain...)
			x.expect(x.release(u, "junk"), 404, hdrPlain...)
		}},
		{"c.1 row 2 uninitialized item adds ActionFlags once", func(x *client, u string) {
			x.expect(x.put(u, "e", "Timeout:20", "ExtraFlags:1", "LockCookie:0"), 200, hdrPlain...)
			r := x.acquire(u)
			x.expect(r, 200, hdrAcqAF...)
			x.cookie(r, 2)
			x.release(u, "2")
			x.expect(x.get(u), 200, hdrGet...)
			v := newTarget()
			x.put(v, "e", "ExtraFlags:1")
			x.expect(x.get(v), 200, hdrGetAF...)
			x.expect(x.get(v), 200, hdrGet...)
		}},
		{"c.1 row 3 release with missing or bad cookie 400", func(x *client, u string) {
			x.put(u, "e", "ExtraFlags:1")
			x.expect(x.release(u, ""), 400, hdrPlainAF...) // the uninitialized bit leaks into the 400 (f.11)
			x.expect(x.release(u, "abc"), 400, hdrPlain...)
			x.expect(x.release(u, "-1"), 400, hdrPlain...)
			x.expect(x.release(u, "99999999999"), 400, hdrPlain...)
			x.expect(x.get(u), 200, hdrGet...) // bit stayed cleared
		}},
		{"c.1 row 4 release by the holder unlocks", func(x *client, u string) {
			x.put(u, "body")
			x.cookie(x.acquire(u), 2)
			x.expect(x.release(u, "2"), 200, hdrPlain...)
			x.expect(x.get(u), 200, hdrGet...)
			x.cookie(x.acquire(u), 3)
		}},
		{"c.1 row 5 release with another cookie 423", func(x *client, u string) {
			x.put(u, "body")
			x.acquire(u)
			r := x.release(u, "7")
			x.expect(r, 423, hdrLocked...)
			x.cookie(r, 2)
			x.expect(x.get(u), 423, hdrLocked...)
		}},
		{"c.1 row 6 release of an unlocked item is a 200 no-op", func(x *client, u string) {
			x.put(u, "body")
			x.expect(x.release(u, "77"), 200, hdrPlain...)
			x.cookie(x.acquire(u), 2) // counter untouched
			v := newTarget()
			x.put(v, "e", "ExtraFlags:1")
			x.expect(x.release(v, "5"), 200, hdrPlainAF...) // release-200 carries the leaked ActionFlags
		}},
		{"c.1 row 7 locked item 423 to GET and acquire", func(x *client, u string) {
			x.put(u, "body")
			x.acquire(u)
			r := x.get(u)
			x.expect(r, 423, hdrLocked...)
			x.cookie(r, 2)
			if !r.HasLockAge || r.LockAge < 0 || !r.HasLockDate {
				x.t.Fatalf("423 without LockAge/LockDate")
			}
			r = x.acquire(u)
			x.expect(r, 423, hdrLocked...)
			x.cookie(r, 2)
			v := newTarget()
			x.put(v, "e", "ExtraFlags:1", "Timeout:20")
			x.put(v, "e", "ExtraFlags:0", "Timeout:20") // same timeout keeps the bit
			x.cookie(x.acquire(v), 2)                   // this acquire consumed the bit
			w := newTarget()
			x.put(w, "e", "ExtraFlags:1")
			x.do("PUT", w, []byte("f"), "ExtraFlags:0") // still uninit
			x.acquire(w)                                // consumes it
			x.expect(x.get(w), 423, hdrLocked...)
		}},
		{"c.1 row 8 acquire locks with counter+1", func(x *client, u string) {
			x.put(u, "session", "Timeout:7")
			r := x.acquire(u)
			x.expect(r, 200, hdrAcq...)
			x.cookie(r, 2)
			x.body(r, "session")
			if r.Timeout != 7 {
				x.t.Fatalf("Timeout %d, want 7 (configured minutes)", r.Timeout)
			}
			x.expect(x.do("GET", u, nil, "Exclusive:Acquire"), 423) // capitalised value locks too
			x.release(u, "2")
			x.cookie(x.do("GET", u, nil, "Exclusive:Acquire"), 3)
		}},
		{"c.1 row 9 plain GET returns the item without locking", func(x *client, u string) {
			x.put(u, "session", "Timeout:9")
			for i := 0; i < 2; i++ {
				r := x.get(u)
				x.expect(r, 200, hdrGet...)
				x.body(r, "session")
				if r.Timeout != 9 || r.HasCookie {
					x.t.Fatalf("Timeout %d cookie %v, want 9 and no cookie", r.Timeout, r.HasCookie)
				}
			}
		}},
	})
}

// TestPutRows covers PROTOCOL.md c.2, one case per row.
func TestPutRows(t *testing.T) {
	runRows(t, []rowCase{
		{"c.2 row 1 non-integer or negative Timeout 400", func(x *client, u string) {
			for _, v := range []string{"abc", "-5", "-1", "1.5", "", "99999999999"} {
				x.expect(x.put(u, "b", "Timeout:"+v), 400, hdrPlain...)
			}
			x.expect(x.get(u), 404)
			x.put(u, "keep")
			x.expect(x.put(u, "new", "Timeout:x"), 400)
			x.body(x.get(u), "keep")
		}},
		{"c.2 row 2 Timeout over 525600 400", func(x *client, u string) {
			x.expect(x.put(u, "b", "Timeout:525601"), 400, hdrPlain...)
			x.expect(x.get(u), 404)
			x.expect(x.put(u, "b", "Timeout:525600"), 200)
			if r := x.get(u); r.Timeout != 525600 {
				x.t.Fatalf("Timeout %d", r.Timeout)
			}
		}},
		{"c.2 row 3 non-integer ExtraFlags 400", func(x *client, u string) {
			x.expect(x.put(u, "b", "ExtraFlags:x"), 400, hdrPlain...)
			x.expect(x.put(u, "b", "ExtraFlags:1.0"), 400)
			x.expect(x.get(u), 404)
			x.expect(x.put(u, "b", "ExtraFlags:-4"), 200) // any sign accepted
		}},
		{"c.2 row 4 ExtraFlags 1 on an existing item is a 200 no-op", func(x *client, u string) {
			x.put(u, "orig")
			x.acquire(u)
			x.expect(x.put(u, "other", "ExtraFlags:1"), 200, hdrPlain...)     // no lock check
			x.expect(x.put(u, "other", "ExtraFlags:1", "LockCookie:zz"), 200) // cookie not validated
			x.expect(x.put(u, "other", "ExtraFlags:1", "Timeout:3"), 200)     // timeout not applied
			r := x.get(u)
			x.expect(r, 423)
			x.cookie(r, 2)
			x.release(u, "2")
			r = x.get(u)
			x.body(r, "orig")
			if r.Timeout != 20 || r.ActionFlags != 0 {
				x.t.Fatalf("no-op PUT changed the item: Timeout %d ActionFlags %d", r.Timeout, r.ActionFlags)
			}
		}},
		{"c.2 row 5 bad LockCookie on an existing item 400", func(x *client, u string) {
			x.put(u, "orig")
			x.expect(x.put(u, "new", "LockCookie:-1"), 400, hdrPlain...)
			x.expect(x.put(u, "new", "LockCookie:abc"), 400)
			x.body(x.get(u), "orig")
		}},
		{"c.2 row 6 locked item without or with another cookie 423", func(x *client, u string) {
			x.put(u, "orig")
			x.acquire(u)
			r := x.put(u, "new")
			x.expect(r, 423, hdrLocked...)
			x.cookie(r, 2)
			x.expect(x.put(u, "new", "LockCookie:3"), 423, hdrLocked...)
			x.release(u, "2")
			x.body(x.get(u), "orig")
		}},
		{"c.2 row 7 same timeout replaces content and keeps counter and flags", func(x *client, u string) {
			x.put(u, "one", "Timeout:20")
			x.cookie(x.acquire(u), 2)
			x.expect(x.put(u, "two", "Timeout:20", "LockCookie:2"), 200, hdrPlain...) // the holder's PUT releases
			r := x.get(u)
			x.expect(r, 200)
			x.body(r, "two")
			x.cookie(x.acquire(u), 3)                        // counter kept
			x.expect(x.put(u, "three", "LockCookie:3"), 200) // absent Timeout = 20 = same
			x.body(x.get(u), "three")
			v := newTarget()
			x.put(v, "", "ExtraFlags:1", "Timeout:20")
			x.put(v, "init", "ExtraFlags:0", "Timeout:20", "LockCookie:0")
			r = x.get(v)
			x.expect(r, 200, hdrGetAF...) // uninitialized bit kept (f.10)
			x.body(r, "init")
		}},
		{"c.2 row 8 different timeout replaces the item", func(x *client, u string) {
			x.put(u, "one", "Timeout:20")
			x.cookie(x.acquire(u), 2)
			x.expect(x.put(u, "two", "Timeout:7", "LockCookie:2"), 200, hdrPlain...)
			r := x.get(u)
			x.expect(r, 200, hdrGet...)
			x.body(r, "two")
			if r.Timeout != 7 {
				x.t.Fatalf("Timeout %d, want 7", r.Timeout)
			}
			x.cookie(x.acquire(u), 3) // counter = request LockCookie 2
			v := newTarget()
			x.put(v, "one", "Timeout:20")
			x.put(v, "two", "Timeout:9") // no LockCookie: counter −1
			x.cookie(x.acquire(v), 0)
			w := newTarget()
			x.put(w, "", "ExtraFlags:1", "Timeout:20")
			x.put(w, "init", "ExtraFlags:0", "Timeout:5")
			x.expect(x.get(w), 200, hdrGet...) // uninitialized bit reset
		}},
		{"c.2 row 9 absent item is created and LockCookie ignored", func(x *client, u string) {
			x.expect(x.put(u, "new", "LockCookie:999"), 200, hdrPlain...)
			r := x.acquire(u)
			x.cookie(r, 2)
			if r.Timeout != 20 {
				x.t.Fatalf("default Timeout %d, want 20", r.Timeout)
			}
			v := newTarget()
			x.expect(x.put(v, "new", "LockCookie:abc", "Timeout:3"), 200)
			x.cookie(x.acquire(v), 2)
			w := newTarget()
			x.expect(x.do("PUT", w, nil), 200) // no body, no Content-Length
			r = x.get(w)
			x.expect(r, 200)
			x.body(r, "")
		}},
	})
}

// TestDeleteRows covers PROTOCOL.md c.3, one case per row.
func TestDeleteRows(t *testing.T) {
	runRows(t, []rowCase{
		{"c.3 row 1 not found 404", func(x *client, u string) {
			x.expect(x.do("DELETE", u, nil), 404, hdrPlain...)
			x.expect(x.do("DELETE", u, nil, "LockCookie:bad"), 404, hdrPlain...)
		}},
		{"c.3 row 2 bad LockCookie 400", func(x *client, u string) {
			x.put(u, "b")
			x.expect(x.do("DELETE", u, nil, "LockCookie:-3"), 400, hdrPlain...)
			x.expect(x.do("DELETE", u, nil, "LockCookie:x"), 400, hdrPlain...)
			x.expect(x.get(u), 200)
		}},
		{"c.3 row 3 locked without or with another cookie 423", func(x *client, u string) {
			x.put(u, "b")
			x.acquire(u)
			r := x.do("DELETE", u, nil)
			x.expect(r, 423, hdrLocked...)
			x.cookie(r, 2)
			x.expect(x.do("DELETE", u, nil, "LockCookie:5"), 423, hdrLocked...)
			x.release(u, "2")
			x.body(x.get(u), "b")
		}},
		{"c.3 row 4 owner or any cookie on an unlocked item removes", func(x *client, u string) {
			x.put(u, "b")
			x.acquire(u)
			x.expect(x.do("DELETE", u, nil, "LockCookie:2"), 200, hdrPlain...)
			x.expect(x.get(u), 404)
			v := newTarget()
			x.put(v, "b")
			x.expect(x.do("DELETE", v, nil), 200, hdrPlain...)
			x.expect(x.get(v), 404)
			w := newTarget()
			x.put(w, "b")
			x.expect(x.do("DELETE", w, nil, "LockCookie:12345"), 200)
			x.expect(x.get(w), 404)
		}},
	})
}

// TestHeadRows covers PROTOCOL.md c.4, one case per row.
func TestHeadRows(t *testing.T) {
	runRows(t, []rowCase{
		{"c.4 row 1 not found 404", func(x *client, u string) {
			x.expect(x.do("HEAD", u, nil), 404, hdrPlain...)
		}},
		{"c.4 row 2 found 200 ignoring locks", func(x *client, u string) {
			x.put(u, "b")
			r := x.do("HEAD", u, nil)
			x.expect(r, 200, hdrPlain...)
			if len(r.Body) != 0 {
				x.t.Fatal("HEAD reply has a body")
			}
			x.acquire(u)
			x.expect(x.do("HEAD", u, nil), 200, hdrPlain...)
			v := newTarget()
			x.put(v, "b", "ExtraFlags:1")
			x.expect(x.do("HEAD", v, nil), 200, hdrPlain...) // HEAD does not consume the bit
			x.expect(x.get(v), 200, hdrGetAF...)
		}},
	})
}

// TestOtherRows covers PROTOCOL.md c.5 and the key rules of b.3.
func TestOtherRows(t *testing.T) {
	runRows(t, []rowCase{
		{"c.5 unknown verb 400 and the connection stays usable", func(x *client, u string) {
			x.expect(x.do("POST", u, nil), 400, hdrPlain...)
			x.expect(x.do("OPTIONS", u, nil), 400, hdrPlain...)
			x.expect(x.get(u), 404)
		}},
		{"c.5 unknown Exclusive value 400", func(x *client, u string) {
			x.put(u, "b")
			x.expect(x.get(u, "Exclusive:steal"), 400, hdrPlain...)
			x.expect(x.get(u, "Exclusive:"), 400, hdrPlain...)
			x.expect(x.get(u), 200)
		}},
		{"b.3 keys are URL-decoded and // folds", func(x *client, u string) {
			x.put("%2fa(x%3d)%2fs"+u, "v")
			x.expect(x.get("%2Fa(x%3D)%2Fs"+u), 200)
			x.expect(x.get("/a(x=)/s"+u), 200)
			x.expect(x.get("%2FA(x%3D)%2Fs"+u), 404) // ordinal comparison
			x.put("//d/s"+u, "v")
			x.expect(x.get("%2fd%2fs"+u), 200)
			x.put("a+b"+u, "v")
			x.expect(x.get("a%20b"+u), 200)
		}},
		{"b.4 Lock-Cookie spelling accepted", func(x *client, u string) {
			x.put(u, "b")
			x.acquire(u)
			x.expect(x.do("GET", u, nil, "Exclusive:release", "Lock-Cookie:2"), 200)
			x.expect(x.get(u), 200)
		}},
	})
}
