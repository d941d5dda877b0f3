// Package faultproxy puts an in-process TCP proxy between the load generator
// and a state server, and makes network faults through it: added latency
// with jitter, a black hole, and the reset of every open connection.
//
// The proxy is Shopify's toxiproxy (github.com/Shopify/toxiproxy/v2,
// v2.12.0) used as a library: no toxiproxy server process, no HTTP API, one
// listener on loopback per target. Faults are toxics on both directions:
//
//	latency            "latency" toxic, delay ± jitter on every chunk, each way
//	blackhole          "timeout" toxic with timeout 0: every byte is dropped and
//	                   nothing is closed; removing it closes the connections it
//	                   held (toxiproxy's cleanup), as a real black hole ends in
//	                   timed-out connections
//	reset-connections  the proxy is stopped and started again on the same
//	                   address: every open connection is closed on both sides
//	                   at once (toxiproxy closes them with FIN; its reset_peer
//	                   toxic would send RST only on connections opened after
//	                   it was added and only once they carry data)
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Name describes the proxy for results.
const Name = "toxiproxy v2.12.0 (in-process)"

// Proxy is one listener on loopback that forwards to an upstream address.
type Proxy struct {
	mu   sync.Mutex
	p    *toxiproxy.Proxy
	addr string
	seq  atomic.Int64
}

// Start listens on a free loopback port and forwards every connection to
// upstream (host:port).
func Start(upstream string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return nil, fmt.Errorf("fault proxy: upstream %q: want host:port", upstream)
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "aspstate", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("fault proxy: %w", err)
	}
	p.Lock()
	addr := p.Listen
	p.Unlock()
	return &Proxy{p: p, addr: addr}, nil
}

// Addr is the address clients dial instead of the upstream.
func (p *Proxy) Addr() string { return p.addr }

// Upstream returns the address the proxy forwards to.
func (p *Proxy) Upstream() string {
	p.p.Lock()
	defer p.p.Unlock()
	return p.p.Upstream
}

// SetUpstream points the proxy at a new upstream address (a restarted
// container on a new port). Open connections are closed; the listening
// address stays.
func (p *Proxy) SetUpstream(upstream string) error {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return fmt.Errorf("fault proxy: upstream %q: want host:port", upstream)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Upstream() == upstream {
		return nil
	}
	if err := p.p.Update(&toxiproxy.Proxy{Listen: p.addr, Upstream: upstream, Enabled: true}); err != nil {
		return fmt.Errorf("fault proxy: new upstream %s: %w", upstream, err)
	}
	return nil
}

// Latency adds delay ± jitter (millisecond resolution, at least 1ms) to
// every chunk in each direction, until the returned function removes it.
func (p *Proxy) Latency(delay, jitter time.Duration) (remove func() error, err error) {
	if delay <= 0 || jitter < 0 || jitter > delay {
		return nil, fmt.Errorf("fault proxy: latency %s ± %s: want a delay > 0 and a jitter from 0 to the delay", delay, jitter)
	}
	ms := func(d time.Duration) int64 { return max(int64((d+time.Millisecond/2)/time.Millisecond), 0) }
	return p.toxic("latency", fmt.Sprintf(`{"latency":%d,"jitter":%d}`, max(ms(delay), 1), ms(jitter)))
}

// Blackhole drops every byte in both directions without closing anything,
// until the returned function removes it (which closes the connections
// that were held).
func (p *Proxy) Blackhole() (remove func() error, err error) {
	return p.toxic("timeout", `{"timeout":0}`)
}

// ResetConnections closes every open connection through the proxy at once,
// on both sides; new connections are accepted again at the same address.
func (p *Proxy) ResetConnections() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.p.Stop()
	if err := p.p.Start(); err != nil {
		return fmt.Errorf("fault proxy: listening again on %s after the reset: %w", p.addr, err)
	}
	return nil
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.p.Stop()
}

// toxic adds a toxic of typ with attributes attrs to both directions.
func (p *Proxy) toxic(typ, attrs string) (func() error, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.seq.Add(1)
	var names []string
	remove := func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		var errs []error
		for _, name := range names {
			if err := p.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
				errs = append(errs, fmt.Errorf("fault proxy: remove %s: %w", name, err))
			}
		}
		names = nil
		return errors.Join(errs...)
	}
	for _, stream := range []string{"upstream", "downstream"} {
		name := fmt.Sprintf("%s-%d-%s", typ, n, stream)
		js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, typ, stream, attrs)
		if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			p.mu.Unlock()
			_ = remove()
			p.mu.Lock()
			return nil, fmt.Errorf("fault proxy: add %s toxic: %w", typ, err)
		}
		names = append(names, name)
	}
	return remove, nil
}
