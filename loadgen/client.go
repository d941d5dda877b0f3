package loadgen

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/protocol/aspnetclient"
)

// Page-level failures (beside the network error kinds).
const (
	// ErrNeedV2 is the client's Need_v2_State_Server exception (e.4).
	ErrNeedV2 = "need-v2-state-server"
	// ErrBadRequest is the client's Bad_state_server_request exception: a 400.
	ErrBadRequest = "bad-request"
	// ErrLockTimeout is "Request timed out" while polling a locked session.
	ErrLockTimeout = "lock-timeout"
	// ErrCreateFailed: the session was still missing right after creating it.
	ErrCreateFailed = "session-create-failed"
	// ErrQueueFull: more requests of the session than
	// aspnet:RequestQueueLimitPerSession were in the web server (e.2).
	ErrQueueFull = "request-queue-full"
	// ErrCanceled: the page was cut off by the end of the run.
	ErrCanceled = "canceled"
)

// NeedV2Message is the text of the client's exception when the first reply
// of a partition lacks X-AspNet-Version major >= 2 (System.Web.txt).
const NeedV2Message = aspnetclient.MsgNeedV2

// pageError is a failure that ends a page, with its kind.
type pageError struct {
	kind string
	err  error
}

func (e *pageError) Error() string { return e.kind + ": " + e.err.Error() }
func (e *pageError) Unwrap() error { return e.err }

// partClient is one web server's client for one partition: its pool and
// its version-check state (REF StateServerVersion, -1 until checked).
type partClient struct {
	pool       *pool
	version    atomic.Int64
	check      bool
	netTimeout time.Duration
	hist       *History // nil unless the run records a history
}

func newPartClient(p *pool, check bool, netTimeout time.Duration) *partClient {
	pc := &partClient{pool: p, check: check, netTimeout: netTimeout}
	pc.version.Store(-1)
	return pc
}

// reset forgets the checked version and the pooled connections (app-pool
// recycle).
func (pc *partClient) reset() {
	pc.version.Store(-1)
	pc.pool.drop()
}

// call makes one request with the network timeout, records it in rec, and
// applies the client's version check and 400 rule. start is the time the
// caller read just before the call (the op's start). A reply with any other
// status is returned with a nil error. The reply is rec's: it is valid until
// the page's next call.
func (pc *partClient) call(ctx context.Context, rec *pageRecord, in opInput, start time.Time,
	fn func(context.Context, *protocol.Conn) (*protocol.Reply, error)) (*protocol.Reply, error) {
	op := in.op
	// While the version is -1 every request checks it; concurrent first
	// requests all check, as they do in the real client.
	checking := pc.check && pc.version.Load() == -1
	hctx, hop := pc.hist.begin(ctx, in, rec.id)
	rep, end, err := pc.exchange(hctx, fn, rec, start)
	hop.end(rep, err)
	o := opRecord{op: op, start: start, end: end}
	if err != nil {
		o.errKind = errorKind(err)
		if ctx.Err() != nil {
			o.errKind = ErrCanceled
		}
		rec.ops = append(rec.ops, o)
		return nil, &pageError{kind: o.errKind, err: err}
	}
	o.status = rep.Status
	rec.ops = append(rec.ops, o)
	// The client's rules (e.1, e.4): a 400 throws before the version is
	// stored, so it stays unchecked; the first other reply is checked.
	stored := int(pc.version.Load())
	if !checking {
		stored = max(stored, 0) // the check is off or done: only the 400 rule
	}
	major, err := aspnetclient.AfterReply(stored, rep.Status, rep.Version)
	if errors.Is(err, aspnetclient.ErrBadRequest) {
		return rep, &pageError{kind: ErrBadRequest, err: errors.New("the state server answered 400 Bad Request")}
	}
	if checking {
		pc.version.Store(int64(major))
	}
	if err != nil {
		return rep, &pageError{kind: ErrNeedV2, err: err}
	}
	return rep, nil
}

// exchange gets a connection and runs fn on it under the network timeout
// (the Conn's own per-call deadline: no context timer per request). When a
// reused connection turns out to have been closed by the server, the
// request is sent once more on a new connection, as the native client does.
// The Conn reuses its reply, so the reply is copied into rec before the
// connection goes back to the pool.
//
// now is the time of the call's start; exchange returns the time it ended
// (one clock read serves the op's end and the connection's return).
func (pc *partClient) exchange(ctx context.Context, fn func(context.Context, *protocol.Conn) (*protocol.Reply, error), rec *pageRecord, now time.Time) (*protocol.Reply, time.Time, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := pc.pool.get(ctx, pc.netTimeout, now)
		if err != nil {
			return nil, time.Now(), err
		}
		rep, err := fn(ctx, c)
		end := time.Now()
		if err == nil {
			out := rec.keep(rep)
			pc.pool.put(c, end)
			return out, end, nil
		}
		if rep != nil && c.Broken() == nil {
			// A well-framed reply with unusable headers: the connection is fine.
			pc.pool.put(c, end)
			return nil, end, err
		}
		c.Close()
		if reused && attempt == 0 && retryable(err) && ctx.Err() == nil {
			noteRetry(ctx) // the history records the first attempt as indeterminate
			now = end
			continue
		}
		return nil, end, err
	}
}

// webServer is one emulated web server: a client per partition.
type webServer struct {
	parts []*partClient
}
