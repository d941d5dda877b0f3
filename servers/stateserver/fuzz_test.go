package stateserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

// fuzzServer is one server shared by every fuzz input of the process, with
// a sentinel session whose key the fuzzer cannot guess.
var fuzzServer struct {
	once     sync.Once
	s        *Server
	sentinel string // unlocked, Timeout 0
	locked   string // locked with cookie 2, Timeout 0
	body     []byte
	err      error
}

func startFuzzServer() error {
	fuzzServer.once.Do(func() {
		s, err := New(Config{Listen: "127.0.0.1:0", MaxItemBytes: 64 << 10, IdleTimeout: 10 * time.Second})
		if err == nil {
			err = s.Start()
		}
		if err != nil {
			fuzzServer.err = err
			return
		}
		var id [12]byte
		rand.Read(id[:])
		fuzzServer.s = s
		fuzzServer.sentinel = protocol.Target("/LM/W3SVC/9/ROOT", hex.EncodeToString(id[:]))
		fuzzServer.locked = fuzzServer.sentinel + "L"
		fuzzServer.body = []byte("sentinel\x00\r\n\xff")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := protocol.Dial(ctx, s.Addr(), protocol.ConnOptions{})
		if err != nil {
			fuzzServer.err = err
			return
		}
		defer c.Close()
		if _, err := c.Set(ctx, fuzzServer.sentinel, fuzzServer.body, protocol.SetParams{Timeout: 0}); err != nil {
			fuzzServer.err = err
			return
		}
		if _, err := c.Set(ctx, fuzzServer.locked, fuzzServer.body, protocol.SetParams{Timeout: 0}); err != nil {
			fuzzServer.err = err
			return
		}
		if r, err := c.GetExclusive(ctx, fuzzServer.locked); err != nil || r.LockCookie != 2 {
			fuzzServer.err = errors.New("sentinel lock failed")
		}
	})
	return fuzzServer.err
}

// FuzzServerConn sends arbitrary bytes on a fresh connection, then half
// closes it. Every reply must be well formed with a status the server uses,
// a malformed request must get 400 and then a close, the server must close
// the connection, and the sentinel session (locked, cookie 2) must be
// untouched afterwards.
func FuzzServerConn(f *testing.F) {
	for _, name := range []string{"net4-put-release.request", "net4-get-acquire.request"} {
		if b, err := os.ReadFile("../../protocol/testdata/captures/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("GET %2fa HTTP/1.1\r\nHost: localhost\r\nExclusive: release\r\nLockCookie:2\r\n\r\n"))
	f.Add([]byte("PUT a HTTP/1.1\r\nTimeout:20\r\nContent-Length:3\r\nExtraFlags:1\r\nLockCookie:0\r\n\r\nabcGET a HTTP/1.1\r\n\r\n"))
	f.Add([]byte("DELETE a HTTP/1.1\r\nLockCookie:-1\r\n\r\nHEAD a HTTP/1.1\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("GET a HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"))
	f.Add([]byte("PUT a HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"))
	f.Add([]byte("GET a HTTP/1.1\r\n folded\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Add([]byte("GET a HTTP/1.1\nTimeout:%\n\n"))
	f.Add([]byte{0, 1, 2, 255})
	if err := startFuzzServer(); err != nil {
		f.Fatal(err)
	}
	s := fuzzServer.s
	f.Fuzz(func(t *testing.T, in []byte) {
		nc, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		writeErr := make(chan error, 1)
		go func() { // write concurrently: the server may answer and close before reading it all
			_, err := nc.Write(in)
			if err == nil {
				err = nc.(*net.TCPConn).CloseWrite()
			}
			writeErr <- err
		}()
		out, err := io.ReadAll(nc)
		<-writeErr
		if err != nil && !isReset(err) {
			t.Fatalf("reading replies: %v (the server must answer and close, not stall)", err)
		}
		rd := protocol.NewReader(bytes.NewReader(out), protocol.Limits{MaxBody: 1 << 20})
		for {
			var resp protocol.Response
			err := rd.ReadResponse(&resp)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("malformed reply stream %q: %v", out, err)
			}
			switch resp.Status {
			case 200, 400, 404, 423:
			default:
				t.Fatalf("status %d", resp.Status)
			}
			if v, _ := resp.Header.Get(protocol.HeaderVersion); v != protocol.DefaultVersion {
				t.Fatalf("reply without the version header: %q", resp.Bytes())
			}
			if resp.Status != 200 && len(resp.Body) != 0 {
				t.Fatalf("%d with a body", resp.Status)
			}
		}
		checkSentinel(t, s)
	})
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func checkSentinel(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := protocol.Dial(ctx, s.Addr(), protocol.ConnOptions{})
	if err != nil {
		t.Fatalf("server no longer accepts connections: %v", err)
	}
	defer c.Close()
	r, err := c.Get(ctx, fuzzServer.sentinel)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 200 || !bytes.Equal(r.Body, fuzzServer.body) || r.Timeout != 0 || r.ActionFlags != 0 {
		t.Fatalf("sentinel changed: status %d body %q timeout %d", r.Status, r.Body, r.Timeout)
	}
	r, err = c.Get(ctx, fuzzServer.locked)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 423 || r.LockCookie != 2 {
		t.Fatalf("locked sentinel changed: status %d cookie %d", r.Status, r.LockCookie)
	}
}
