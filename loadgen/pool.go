package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aspstate/aspstate/internal/rawio"
	"github.com/aspstate/aspstate/protocol"
)

// pool is the connection pool of one web server for one partition, as the
// ASP.NET client keeps it (REF ResourcePool, PROTOCOL.md e.6): last in,
// first out; a timer runs every period and closes the connections that were
// idle for the whole previous period, so idle connections live one to two
// periods; a pooled connection found dead is replaced by a new one.
type pool struct {
	addr   func() string // the partition's current address (may change on restart)
	period time.Duration
	dial   func(ctx context.Context, addr string) (net.Conn, error)

	mu     sync.Mutex
	idle   []pooled // stack: the top is the most recently returned
	closed bool
	timer  *time.Timer

	dials, reuses, expired, dead atomic.Int64
}

type pooled struct {
	c        *protocol.Conn
	returned time.Time
}

// newPool returns a pool of connections to addr() made by dial (nil: a
// plain TCP dial).
func newPool(addr func() string, period time.Duration, dial func(context.Context, string) (net.Conn, error)) *pool {
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }
	}
	p := &pool{addr: addr, period: period, dial: dial}
	p.timer = time.AfterFunc(period, p.sweep)
	return p
}

// sweep closes connections idle since before the previous tick.
func (p *pool) sweep() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	cutoff := time.Now().Add(-p.period)
	var drop []pooled
	keep := p.idle[:0]
	for _, pc := range p.idle {
		if pc.returned.Before(cutoff) || pc.returned.Equal(cutoff) {
			drop = append(drop, pc)
		} else {
			keep = append(keep, pc)
		}
	}
	for i := len(keep); i < len(p.idle); i++ {
		p.idle[i] = pooled{}
	}
	p.idle = keep
	p.timer.Reset(p.period)
	p.mu.Unlock()
	for _, pc := range drop {
		p.expired.Add(1)
		pc.c.Close()
	}
}

// get returns a connection: the most recently returned live one, or a new
// one. reused tells which. timeout is the client's network timeout: it
// bounds the dial, and every call on a new connection, which reuses its
// replies (callers copy what they keep: pageRecord.keep) and is read and
// written with raw system calls where the build has them (rawio.Wrap). now is
// the caller's clock reading, to judge how long a connection was idle.
func (p *pool) get(ctx context.Context, timeout time.Duration, now time.Time) (c *protocol.Conn, reused bool, err error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, false, errPoolClosed
		}
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		pc := p.idle[n-1]
		p.idle[n-1] = pooled{}
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if alive(&pc, now) {
			p.reuses.Add(1)
			return pc.c, true, nil
		}
		p.dead.Add(1)
		pc.c.Close()
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	nc, err := p.dial(ctx, p.addr())
	if err != nil {
		return nil, false, err
	}
	c = protocol.NewConn(rawio.Wrap(nc), protocol.ConnOptions{Timeout: timeout, ReuseReplies: true})
	p.dials.Add(1)
	return c, false, nil
}

// put returns c to the pool, or closes it when it is broken or the pool is
// closed. now is when it was last used.
func (p *pool) put(c *protocol.Conn, now time.Time) {
	if c.Broken() != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.idle = append(p.idle, pooled{c: c, returned: now})
	p.mu.Unlock()
}

// drop closes every idle connection (an app-pool recycle, a restart).
func (p *pool) drop() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, pc := range idle {
		pc.c.Close()
	}
}

// close closes the pool and its idle connections.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.timer.Stop()
	p.mu.Unlock()
	p.drop()
}

var errPoolClosed = errors.New("loadgen: connection pool closed")

// alive checks a pooled connection without blocking (see peekAlive): a
// peer that closed or reset it, or sent bytes nobody asked for, makes it
// dead. Between exchanges the codec's read buffer is empty (the client
// never pipelines), so looking at the socket directly loses nothing. A
// connection returned less than freshPeriod ago is taken as it is: the peek
// is a system call per request, and a server that closes a connection
// within a millisecond of answering on it is caught by the exchange's
// resend on a new connection, as the native client's would be.
func alive(pc *pooled, now time.Time) bool {
	if pc.c.Broken() != nil {
		return false
	}
	if now.Sub(pc.returned) < freshPeriod {
		return true
	}
	return peekAlive(pc.c.NetConn())
}

// freshPeriod: see alive.
const freshPeriod = time.Millisecond

// retryable reports whether a failed exchange on a reused connection means
// the server had already closed it, so the request may be sent again on a
// new connection (the native client reconnects in that case).
func retryable(err error) bool {
	return errors.Is(err, io.EOF) || connReset(err) || errors.Is(err, protocol.ErrBroken)
}

// Error kinds of failed protocol calls.
const (
	ErrTimeout  = "timeout"
	ErrRefused  = "refused"
	ErrReset    = "reset"
	ErrProtocol = "protocol"
	ErrOther    = "other"
)

// errorKind classifies a failed call.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return ErrTimeout
	case connRefused(err):
		return ErrRefused
	case connReset(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return ErrReset
	case protocol.IsProtocolError(err):
		return ErrProtocol
	}
	return ErrOther
}
