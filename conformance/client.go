package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/protocol/aspnetclient"
)

// The ASP.NET client's rules live in protocol/aspnetclient, shared with the
// load generator; these names keep the specs short.
const (
	executionTimeoutSeconds = aspnetclient.ExecutionTimeoutSeconds
	msgNeedV2               = aspnetclient.MsgNeedV2
)

var (
	errNeedV2     = aspnetclient.ErrNeedV2
	errBadRequest = aspnetclient.ErrBadRequest
)

// aspnetClient emulates the parts of ASP.NET's out-of-process session state
// client (OutOfProcSessionStateStore + SessionStateModule) whose behaviour
// depends on the server's replies: the first-request version check, reply
// interpretation, lock polling and lock breaking. One aspnetClient is one
// application (AppDomain) talking to one partition; a fresh one is an
// application that just started.
type aspnetClient struct {
	addr string
	// newTap numbers and records each connection it opens (nil = unrecorded).
	newTap func() (int, func(bool, []byte))
	// pollInterval is the lock poll interval on this target's time scale.
	pollInterval time.Duration
	// psec is the real duration of a protocol second (LockDate fallback).
	psec time.Duration

	// stateServerVersion is the per-partition version: -1 until a first
	// reply was checked, then the parsed major (0 when absent).
	stateServerVersion int
	conn               *protocol.Conn
	// sent records every request in order with the time it was sent.
	mu   sync.Mutex
	sent []sentRequest
}

// sentRequest is one request the emulated client made.
type sentRequest struct {
	at      time.Time
	op      protocol.Op
	cookie  int32 // LockCookie sent (release, remove, set)
	status  int
	lockAge int64 // LockAge of a 423 reply, in protocol seconds
}

func newASPNETClient(addr string, minute time.Duration, newTap func() (int, func(bool, []byte))) *aspnetClient {
	return &aspnetClient{
		addr: addr, newTap: newTap, stateServerVersion: aspnetclient.VersionUnchecked,
		pollInterval: time.Duration(float64(aspnetclient.LockPollInterval) * float64(minute) / float64(time.Minute)),
		psec:         minute / 60,
	}
}

// Close closes the pooled connection.
func (a *aspnetClient) Close() {
	if a.conn != nil {
		a.conn.Close()
		a.conn = nil
	}
}

// call makes one request as MakeRequest does: on a pooled socket (reconnecting
// once when it turns out dead), with the version check while the partition's
// version is unknown, and an exception on 400.
func (a *aspnetClient) call(ctx context.Context, req *protocol.Request) (*protocol.Reply, error) {
	resp, err := a.roundTrip(ctx, req)
	if err != nil {
		return nil, err
	}
	rec := sentRequest{at: time.Now(), op: protocol.OpOf(req), status: resp.Status}
	if v, ok := req.Header.Get(protocol.HeaderLockCookie); ok {
		n, _ := protocol.ParseInt32(v)
		rec.cookie = n
	}
	reply, rerr := protocol.NewReply(resp)
	if reply != nil && reply.HasLockAge {
		rec.lockAge = reply.LockAge
	}
	a.mu.Lock()
	a.sent = append(a.sent, rec)
	a.mu.Unlock()
	v, _ := resp.Header.Get(protocol.HeaderVersion)
	checked := a.stateServerVersion == aspnetclient.VersionUnchecked
	if a.stateServerVersion, err = aspnetclient.AfterReply(a.stateServerVersion, resp.Status, v); err != nil {
		if checked && errors.Is(err, aspnetclient.ErrNeedV2) {
			err = fmt.Errorf("%w (first reply: %d %s, X-AspNet-Version %q)", err, resp.Status, resp.Reason, v)
		}
		return reply, err
	}
	return reply, rerr
}

func (a *aspnetClient) roundTrip(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	reused := a.conn != nil
	if err := a.ensureConn(ctx); err != nil {
		return nil, err
	}
	resp, err := a.conn.Do(ctx, req)
	if err != nil && reused && ctx.Err() == nil {
		// A pooled socket the server closed while idle: reconnect once.
		a.Close()
		if err := a.ensureConn(ctx); err != nil {
			return nil, err
		}
		resp, err = a.conn.Do(ctx, req)
	}
	if err != nil {
		a.Close()
		return nil, err
	}
	return resp, nil
}

func (a *aspnetClient) ensureConn(ctx context.Context) error {
	if a.conn != nil {
		return nil
	}
	var opts protocol.ConnOptions
	if a.newTap != nil {
		_, opts.Tap = a.newTap()
	}
	c, err := protocol.Dial(ctx, a.addr, opts)
	if err != nil {
		return err
	}
	a.conn = c
	return nil
}

// getItem makes one GET (exclusive or not) and interprets the reply as
// DoGet does (PROTOCOL.md e.5).
func (a *aspnetClient) getItem(ctx context.Context, target string, exclusive bool) (aspnetclient.Item, error) {
	req := protocol.NewGetRequest(protocol.DefaultHost, target)
	if exclusive {
		req = protocol.NewGetExclusiveRequest(protocol.DefaultHost, target)
	}
	reply, err := a.call(ctx, req)
	if err != nil {
		return aspnetclient.Item{}, err
	}
	return aspnetclient.ReadItem(reply, time.Now(), a.psec), nil
}

// acquire is GetItemExclusive as SessionStateModule drives it: while the
// item is locked, re-poll every poll interval; once a 423 reports a lock at
// least executionTimeoutSeconds old, force-release it with the 423's cookie
// and keep polling. It gives up after maxPolls polls.
func (a *aspnetClient) acquire(ctx context.Context, target string, maxPolls int) (aspnetclient.Item, error) {
	for i := 0; ; i++ {
		r, err := a.getItem(ctx, target, true)
		if err != nil || !r.Locked {
			return r, err
		}
		if i >= maxPolls {
			return r, fmt.Errorf("still locked after %d polls", maxPolls)
		}
		if aspnetclient.BreakLock(r.LockAge, executionTimeoutSeconds) {
			if _, err := a.call(ctx, protocol.NewReleaseExclusiveRequest(protocol.DefaultHost, target, r.LockID)); err != nil {
				return r, err
			}
		}
		t := time.NewTimer(a.pollInterval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return r, ctx.Err()
		}
	}
}

// requests returns a copy of what the client sent.
func (a *aspnetClient) requests() []sentRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]sentRequest(nil), a.sent...)
}

// scriptedPeer is a fake state server on loopback that answers each request
// with the next canned reply, for client rules that need replies no correct
// server sends.
type scriptedPeer struct {
	ln      net.Listener
	mu      sync.Mutex
	replies [][]byte
	got     []*protocol.Request
	wg      sync.WaitGroup
}

func startScriptedPeer(replies ...[]byte) (*scriptedPeer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &scriptedPeer{ln: ln, replies: replies}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *scriptedPeer) addr() string { return p.ln.Addr().String() }

func (p *scriptedPeer) serve() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer nc.Close()
			rd := protocol.NewReader(nc, protocol.Limits{})
			for {
				req := new(protocol.Request)
				if err := rd.ReadRequest(req); err != nil {
					return
				}
				p.mu.Lock()
				p.got = append(p.got, req)
				var reply []byte
				if len(p.replies) > 0 {
					reply, p.replies = p.replies[0], p.replies[1:]
				}
				p.mu.Unlock()
				if reply == nil {
					return
				}
				if _, err := nc.Write(reply); err != nil {
					return
				}
			}
		}()
	}
}

// Close stops accepting and waits for the connection goroutines.
func (p *scriptedPeer) Close() error {
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// cannedReply builds a reply: status line, the given header lines, Cache-Control,
// Content-Length last, body.
func cannedReply(status int, body []byte, headers ...string) []byte {
	b := protocol.AppendStatusLine(nil, status, "")
	for _, h := range headers {
		b = append(b, h...)
		b = append(b, '\r', '\n')
	}
	b = protocol.AppendHeader(b, protocol.HeaderCacheControl, protocol.CacheControlPrivate)
	return protocol.AppendBodyEnd(b, body)
}

var _ io.Closer = (*scriptedPeer)(nil)
