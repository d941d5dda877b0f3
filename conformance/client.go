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
)

// The ASP.NET client's constants (PROTOCOL.md e.2–e.4).
const (
	// whidbeyMajor is the lowest X-AspNet-Version major the client accepts.
	whidbeyMajor = 2
	// lockPollInterval is LOCKED_ITEM_POLLING_INTERVAL in real-time milliseconds.
	lockPollInterval = 500 * time.Millisecond
	// executionTimeoutSeconds is httpRuntime executionTimeout's default: a
	// lock at least this old (LockAge, seconds) is broken by the client.
	executionTimeoutSeconds = 110
	// maxLockAgeSeconds is one year: LockAge values from it on are ignored.
	maxLockAgeSeconds = 31_536_000
)

// msgNeedV2 is the client's Need_v2_State_Server message (REF System.Web.txt).
const msgNeedV2 = "Unable to use session state server because this version of ASP.NET requires session state server version 2.0 or above."

// msgBadRequest is the client's Bad_state_server_request message.
const msgBadRequest = "Unable to make the session state request to the session state server. The request is not formatted correctly."

// errNeedV2 is what the emulated client throws when the first reply of an
// application lacks a usable X-AspNet-Version (PROTOCOL.md e.4).
//
//lint:ignore ST1005 the message is System.Web's Need_v2_State_Server, verbatim
var errNeedV2 = errors.New(msgNeedV2)

// errBadRequest is what the emulated client throws on any 400 reply (e.1).
//
//lint:ignore ST1005 the message is System.Web's Bad_state_server_request, verbatim
var errBadRequest = errors.New(msgBadRequest)

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
	// psec converts protocol seconds to real time (LockDate fallback).
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
		addr: addr, newTap: newTap, stateServerVersion: -1,
		pollInterval: time.Duration(float64(lockPollInterval) * float64(minute) / float64(time.Minute)),
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
	if resp.Status == protocol.StatusBadRequest {
		// Thrown before the version is stored: the check repeats next time.
		return reply, errBadRequest
	}
	if a.stateServerVersion == -1 {
		v, _ := resp.Header.Get(protocol.HeaderVersion)
		a.stateServerVersion = protocol.VersionMajor(v)
		if a.stateServerVersion < whidbeyMajor {
			return reply, fmt.Errorf("%w (first reply: %d %s, X-AspNet-Version %q)", errNeedV2, resp.Status, resp.Reason, v)
		}
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

// itemResult is what GetItem/GetItemExclusive return to SessionStateModule.
type itemResult struct {
	found   bool // a session exists (200 with a non-empty body)
	item    []byte
	locked  bool  // 423
	lockID  int32 // LockCookie
	lockAge int64 // seconds, as computed by e.3
	actions int32 // ActionFlags
}

// getItem makes one GET (exclusive or not) and interprets the reply as
// DoGet does (PROTOCOL.md e.5).
func (a *aspnetClient) getItem(ctx context.Context, target string, exclusive bool) (itemResult, error) {
	req := protocol.NewGetRequest(protocol.DefaultHost, target)
	if exclusive {
		req = protocol.NewGetExclusiveRequest(protocol.DefaultHost, target)
	}
	reply, err := a.call(ctx, req)
	if err != nil {
		return itemResult{}, err
	}
	switch reply.Status {
	case protocol.StatusOK:
		if len(reply.Body) == 0 {
			// A 200 with Content-Length 0 is "no item"; its cookie is ignored.
			return itemResult{}, nil
		}
		return itemResult{found: true, item: reply.Body, lockID: reply.LockCookie, actions: reply.ActionFlags}, nil
	case protocol.StatusLocked:
		return itemResult{locked: true, lockID: reply.LockCookie, lockAge: a.lockAge(reply), actions: reply.ActionFlags}, nil
	}
	// 404, 500 or anything else: not found, and the module creates a session.
	return itemResult{}, nil
}

// lockAge computes the lock age in seconds from a 423 as the client does (e.3).
func (a *aspnetClient) lockAge(r *protocol.Reply) int64 {
	if r.HasLockAge {
		if r.LockAge >= 0 && r.LockAge < maxLockAgeSeconds {
			return r.LockAge
		}
		return 0
	}
	if r.HasLockDate && r.LockDate > 0 {
		now := dotNetTicks(time.Now())
		if r.LockDate < now {
			return int64(time.Duration((now-r.LockDate)*100) / a.psec)
		}
	}
	return 0
}

// acquire is GetItemExclusive as SessionStateModule drives it: while the
// item is locked, re-poll every poll interval; once a 423 reports a lock at
// least executionTimeoutSeconds old, force-release it with the 423's cookie
// and keep polling. It gives up after maxPolls polls.
func (a *aspnetClient) acquire(ctx context.Context, target string, maxPolls int) (itemResult, error) {
	for i := 0; ; i++ {
		r, err := a.getItem(ctx, target, true)
		if err != nil || !r.locked {
			return r, err
		}
		if i >= maxPolls {
			return r, fmt.Errorf("still locked after %d polls", maxPolls)
		}
		if r.lockAge >= executionTimeoutSeconds {
			if _, err := a.call(ctx, protocol.NewReleaseExclusiveRequest(protocol.DefaultHost, target, r.lockID)); err != nil {
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

// dotNetTicks returns t as .NET ticks (100 ns since 0001-01-01) in t's zone
// (DateTime.Now.Ticks for a local t).
func dotNetTicks(t time.Time) int64 {
	_, off := t.Zone()
	const unixEpochTicks = 621_355_968_000_000_000
	return unixEpochTicks + t.Unix()*10_000_000 + int64(t.Nanosecond())/100 + int64(off)*10_000_000
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
