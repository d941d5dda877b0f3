// Package mutants holds deliberately broken state servers for testing the
// conformance suite itself: each Mutant is the reference server behind a
// small rewriting proxy that breaks exactly one rule. The suite must fail on
// every mutant and pass through the proxy when it rewrites nothing.
//
// It is test-only code: only the conformance package's tests import it, so
// none of it is compiled into the aspstate binary or the reference server.
package mutants

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

// Proxy forwards each client connection to its own upstream connection,
// request by request, letting a Mutant rewrite requests and replies.
type Proxy struct {
	m        Mutant
	upstream string
	ln       net.Listener
	st       *state

	done  chan struct{} // closed by Close
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// state is what a mutant remembers across connections.
type state struct {
	mu      sync.Mutex
	minute  time.Duration
	cookies map[string]int32   // key → the real cookie last seen in a reply
	items   map[string]*record // key → what the proxy saw of the item
}

type record struct {
	timeout   int32     // minutes the client asked for
	lastTouch time.Time // last request that found the item
	lastSet   time.Time // last PUT or HEAD answered 200
}

func (s *state) item(key string) *record {
	r, ok := s.items[key]
	if !ok {
		r = &record{timeout: protocol.DefaultTimeout}
		s.items[key] = r
	}
	return r
}

// Start listens on a loopback port and proxies to upstream with m's
// rewrites. minute is the upstream's protocol minute (for mutants that
// reason about expiry).
func Start(m Mutant, upstream string, minute time.Duration) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{m: m, upstream: upstream, ln: ln, conns: map[net.Conn]struct{}{}, done: make(chan struct{}),
		st: &state{minute: minute, cookies: map[string]int32{}, items: map[string]*record{}}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	close(p.done)
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c, true)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.track(c, false)
			defer c.Close()
			p.serve(c)
		}()
	}
}

// ex is one exchange as a mutant sees it.
type ex struct {
	ctx  context.Context
	st   *state
	up   *protocol.Conn
	req  *protocol.Request
	key  string
	resp *protocol.Response
}

// side sends an extra request upstream (to learn a cookie, say).
func (x *ex) side(req *protocol.Request) (*protocol.Response, error) {
	return x.up.Do(x.ctx, req)
}

func (p *Proxy) serve(client net.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up, err := protocol.Dial(ctx, p.upstream, protocol.ConnOptions{})
	if err != nil {
		return
	}
	p.track(up.NetConn(), true)
	defer p.track(up.NetConn(), false)
	defer up.Close()
	src := &crReader{r: client}
	rd := protocol.NewReader(src, protocol.Limits{})
	for {
		req := new(protocol.Request)
		if err := rd.ReadRequest(req); err != nil {
			if p.m.keepClosed && errors.Is(err, io.EOF) {
				<-p.done // hold the connection the client closed: CLOSE-WAIT
			}
			return
		}
		if p.m.crAtReadEnd && src.crAtEnd {
			bad := &protocol.Response{Status: 400, Header: protocol.Header{
				{Name: protocol.HeaderVersion, Value: protocol.DefaultVersion},
				{Name: protocol.HeaderCacheControl, Value: protocol.CacheControlPrivate}}}
			_, _ = client.Write(bad.Bytes())
			return
		}
		if p.m.hangOnUnknownVerb && protocol.OpOf(req) == 0 {
			// Swallow whatever comes next and never answer, until the
			// proxy shuts down.
			_, _ = io.Copy(io.Discard, client)
			<-p.done
			return
		}
		req.Body = append([]byte(nil), req.Body...)
		x := &ex{ctx: ctx, st: p.st, up: up, req: req, key: protocol.Key(req.Target)}
		var out []byte
		if p.m.handle != nil {
			out, err = p.m.handle(x)
		} else {
			out, err = forward(x)
		}
		if err != nil {
			return
		}
		if _, err := client.Write(out); err != nil {
			return
		}
		if p.m.closeAfterReply {
			return
		}
	}
}

// crReader notes whether any read of a request ended with a CR (the LF
// coming in a later read).
type crReader struct {
	r       io.Reader
	crAtEnd bool
}

func (c *crReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && p[n-1] == '\r' {
		c.crAtEnd = true
	}
	return n, err
}

// forward sends x.req upstream and returns the reply's bytes unchanged.
func forward(x *ex) ([]byte, error) {
	resp, err := x.up.Do(x.ctx, x.req)
	if err != nil {
		return nil, err
	}
	x.resp = resp
	return resp.Bytes(), nil
}
