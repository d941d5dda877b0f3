package stateserver

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = protocol.AppendKey(nil, protocol.Target("/LM/W3SVC/1/ROOT", fmt.Sprintf("%024d", i)))
	}
	return keys
}

func BenchmarkStoreGet(b *testing.B) {
	st := newStore(time.Minute)
	keys := benchKeys(10000)
	body := make([]byte, 1024)
	for _, k := range keys {
		st.put(k, body, 20, 0, noCookie, 0)
	}
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		buf = st.get(keys[i%len(keys)], getPlain, noCookie, int64(i), buf).body
	}
}

func BenchmarkStoreAcquireSetRelease(b *testing.B) {
	st := newStore(time.Minute)
	keys := benchKeys(10000)
	body := make([]byte, 1024)
	for _, k := range keys {
		st.put(k, body, 20, 0, noCookie, 0)
	}
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := keys[i%len(keys)]
		r := st.get(k, getAcquire, noCookie, int64(i), buf)
		buf = r.body
		st.put(k, body, 20, 0, cookieArg{present: true, valid: true, value: r.cookie}, int64(i))
	}
}

func BenchmarkStoreGetParallel(b *testing.B) {
	st := newStore(time.Minute)
	keys := benchKeys(10000)
	body := make([]byte, 1024)
	for _, k := range keys {
		st.put(k, body, 20, 0, noCookie, 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		var buf []byte
		for pb.Next() {
			buf = st.get(keys[i%len(keys)], getPlain, noCookie, int64(i), buf).body
			i++
		}
	})
}

// repeatReader yields the same bytes forever.
type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

// BenchmarkRequestPath measures the server's per-request work without the
// network: parse from a buffered stream, decode the key, run the store
// operation and build the reply, for a PUT of 1 KiB and a GET.
func BenchmarkRequestPath(b *testing.B) {
	s, _ := New(Config{})
	u := protocol.Target("/LM/W3SVC/1/ROOT", "benchbenchbenchbenchbenc")
	body := bytes.Repeat([]byte{1}, 1024)
	var in bytes.Buffer
	// A replayable pair: an unlocked PUT of a 1 KiB body, then a plain GET.
	in.Write(protocol.NewSetRequest("localhost", u, body, protocol.SetParams{Timeout: 20}).Bytes())
	in.Write(protocol.NewGetRequest("localhost", u).Bytes())
	rd := protocol.NewReader(&repeatReader{b: in.Bytes()}, protocol.Limits{})
	var req protocol.Request
	var out []byte
	var sc scratch
	var n counts
	b.ReportAllocs()
	b.SetBytes(int64(in.Len() / 2))
	b.ResetTimer()
	for b.Loop() {
		if err := rd.ReadRequestView(&req); err != nil {
			b.Fatal(err)
		}
		out = s.handle(&req, out[:0], &sc, &n)
	}
}

// BenchmarkLoopback measures round trips over loopback TCP (client and
// server in this process), sequential and with parallel connections.
func BenchmarkLoopback(b *testing.B) {
	s := startServer(b, Config{})
	u := protocol.Target("/LM/W3SVC/1/ROOT", "benchloopbackbenchloopba")
	body := bytes.Repeat([]byte{1}, 1024)
	ctx := context.Background()
	c0, err := protocol.Dial(ctx, s.Addr(), protocol.ConnOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c0.Close()
	if _, err := c0.Set(ctx, u, body, protocol.SetParams{Timeout: 20}); err != nil {
		b.Fatal(err)
	}
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r, err := c0.Get(ctx, u); err != nil || r.Status != 200 {
				b.Fatal(err)
			}
		}
	})
	b.Run("get-loadgen-options", func(b *testing.B) {
		// The load generator's Conn options: replies reused, a per-call timeout
		// without context timers, a long-lived cancelable context (its raw
		// socket I/O, internal/rawio, is not used here).
		c, err := protocol.Dial(ctx, s.Addr(), protocol.ConnOptions{ReuseReplies: true, Timeout: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		b.ReportAllocs()
		for b.Loop() {
			if r, err := c.Get(cctx, u); err != nil || r.Status != 200 {
				b.Fatal(err)
			}
		}
	})
	b.Run("get-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			c, err := protocol.Dial(ctx, s.Addr(), protocol.ConnOptions{})
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			for pb.Next() {
				if r, err := c.Get(ctx, u); err != nil || r.Status != 200 {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("pipelined-get-x16", func(b *testing.B) {
		nc := rawDial(b, s)
		var batch []byte
		for i := 0; i < 16; i++ {
			batch = protocol.NewGetRequest("localhost", u).AppendTo(batch)
		}
		rd := protocol.NewReader(nc, protocol.Limits{})
		var resp protocol.Response
		b.ReportAllocs()
		for b.Loop() {
			if _, err := nc.Write(batch); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < 16; i++ {
				if err := rd.ReadResponse(&resp); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
