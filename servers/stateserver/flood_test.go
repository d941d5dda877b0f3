package stateserver

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/testwait"
	"github.com/aspstate/aspstate/protocol"
)

// TestSlowAndIdleFloodDoesNotBlockOthers opens a flood of connections, half
// idle and half slowloris (a partial request head, then one byte every
// 100 ms), and checks that a well-behaved client is served promptly all
// along, that the request timeout closes every slow connection although it
// keeps sending (well before the longer idle timeout), that the idle
// timeout closes the idle ones, and that both are counted. 1000 connections
// normally, 300 under the race detector (its per-goroutine cost on this
// 2-core machine).
func TestSlowAndIdleFloodDoesNotBlockOthers(t *testing.T) {
	n := 1000
	if raceEnabled {
		n = 300
	}
	const idle, request = 1500 * time.Millisecond, 300 * time.Millisecond
	s := startServer(t, Config{IdleTimeout: idle, RequestTimeout: request})

	type flood struct {
		nc     net.Conn
		slow   bool
		start  time.Time
		closed chan time.Duration // how long after start the server closed it
	}
	floods := make([]*flood, n)
	stop := make(chan struct{})
	var writers sync.WaitGroup
	defer func() { close(stop); writers.Wait() }()
	for i := range floods {
		nc, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		t.Cleanup(func() { nc.Close() })
		f := &flood{nc: nc, slow: i%2 == 1, start: time.Now(), closed: make(chan time.Duration, 1)}
		floods[i] = f
		if f.slow {
			if _, err := nc.Write([]byte("GET %2fslow HTTP/1.1\r\nHost: local")); err != nil {
				t.Fatal(err)
			}
			writers.Add(1)
			go func() { // one byte every 100 ms until the server closes
				defer writers.Done()
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := nc.Write([]byte("h")); err != nil {
							return
						}
					}
				}
			}()
		}
		go func() {
			_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			b, _ := io.ReadAll(nc) // EOF or reset: the server closed it
			if len(b) != 0 {
				t.Errorf("flood connection got %q", b)
			}
			f.closed <- time.Since(f.start)
		}()
	}
	if got := s.Stats().ConnectionsActive; got < int64(n/2) {
		t.Logf("%d of %d flood connections accepted so far", got, n)
	}

	// A normal client keeps being served while the flood lasts (and so
	// stays busy: the idle timeout must not close it). It connects only
	// now: on a busy machine dialling the flood can outlast the idle timeout.
	x := newClient(t, s)
	u := newTarget()
	x.expect(x.put(u, "ok"), 200)
	var served atomic.Int64
	var slowest atomic.Int64
	clientDone, clientStopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(clientStopped)
		for {
			select {
			case <-clientDone:
				return
			default:
			}
			start := time.Now()
			r, err := x.c.Get(x.ctx, u)
			if err != nil || r.Status != 200 {
				t.Errorf("request during the flood: %v %+v", err, r)
				return
			}
			if el := time.Since(start); el > time.Duration(slowest.Load()) {
				slowest.Store(int64(el))
			}
			served.Add(1)
		}
	}()
	defer func() { close(clientDone); <-clientStopped }()
	for _, f := range floods {
		select {
		case el := <-f.closed:
			switch {
			case f.slow && el < request-20*time.Millisecond:
				t.Fatalf("slow connection closed after %v, before the request timeout %v", el, request)
			case f.slow && el >= idle:
				t.Fatalf("slow connection closed after %v: the request timeout (%v) did not apply", el, request)
			case !f.slow && el < idle-20*time.Millisecond:
				t.Fatalf("idle connection closed after %v, before the idle timeout %v", el, idle)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("a flood connection (slow=%v) is still open after 15s", f.slow)
		}
	}
	testwait.For(t, "flood connections to be released", func() bool { return s.Stats().ConnectionsActive == 1 })
	st := s.Stats()
	if st.ConnectionsSlow != int64(n/2) || st.ConnectionsIdle != int64(n/2) {
		t.Fatalf("closed as slow %d, idle %d; want %d each", st.ConnectionsSlow, st.ConnectionsIdle, n/2)
	}
	t.Logf("%d flood connections closed; %d requests served meanwhile, the slowest in %v", n, served.Load(), time.Duration(slowest.Load()))
	if el := time.Duration(slowest.Load()); el > time.Second {
		t.Fatalf("a request took %v during the flood", el)
	}
	if served.Load() == 0 {
		t.Fatal("no request served during the flood")
	}
}

// TestWriteTimeoutClosesNonReader: a client that pipelines GETs of a large
// item and never reads fills the socket buffers; the write deadline closes
// it instead of holding its goroutine forever.
func TestWriteTimeoutClosesNonReader(t *testing.T) {
	s := startServer(t, Config{WriteTimeout: 200 * time.Millisecond})
	x := newClient(t, s)
	u := newTarget()
	x.expect(x.put(u, string(bytes.Repeat([]byte{7}, 1<<20))), 200)
	nc := rawDial(t, s)
	var batch []byte
	for i := 0; i < 64; i++ { // 64 MiB of replies, far beyond the socket buffers
		batch = protocol.NewGetRequest("localhost", u).AppendTo(batch)
	}
	if _, err := nc.Write(batch); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the write timeout to close the non-reading connection", func() bool {
		st := s.Stats()
		return st.ConnectionsStalled == 1 && st.ConnectionsActive == 1
	})
	x.expect(x.get(u), 200) // others unaffected
}

// TestMaxConnsFloodRefusedCleanly: past MaxConns every new connection is
// closed at once without a byte and counted; the admitted ones are served.
func TestMaxConnsFloodRefusedCleanly(t *testing.T) {
	const limit, extra = 20, 40
	s := startServer(t, Config{MaxConns: limit})
	admitted := make([]*client, limit)
	for i := range admitted {
		admitted[i] = newClient(t, s)
		admitted[i].expect(admitted[i].get(newTarget()), 404) // served, so counted active
	}
	for i := 0; i < extra; i++ {
		expectClosed(t, rawDial(t, s))
	}
	if st := s.Stats(); st.ConnectionsRefused != extra || st.ConnectionsActive != limit {
		t.Fatalf("refused %d active %d; want %d and %d", st.ConnectionsRefused, st.ConnectionsActive, extra, limit)
	}
	for _, x := range admitted {
		x.expect(x.get(newTarget()), 404)
	}
}
