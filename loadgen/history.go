package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/aspstate/aspstate/loadgen/linearize"
	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/results"
)

// DefaultHistoryOps is the default bound on the operations a History keeps
// (about 200 bytes each: 200 MB at the bound, some minutes of a busy farm).
const DefaultHistoryOps = 1_000_000

// History records every protocol operation of a run, per session key, for
// the linearizability check (package linearize): what was sent (op, key,
// LockCookie, Timeout, ExtraFlags, body digest), what came back (status,
// LockCookie, ActionFlags, Timeout, body digest) and when (call and return on
// one monotonic clock). A call without a usable reply (timeout, network
// error, malformed reply) is recorded as indeterminate. When a request is
// sent again on a new connection after a reused one failed, the first
// attempt is recorded as a separate indeterminate operation: it may have
// reached the server.
//
// Run records one when Config.Linearizability is set. A History is safe
// for concurrent use and records one run. Past its bound new operations are
// not recorded and the sessions that miss some are left out of the check
// (and counted).
type History struct {
	base time.Time
	max  int

	mu      sync.Mutex
	ops     []histOp
	skipped map[string]bool // keys with operations not recorded
	lost    []linearize.Window
	clients int
}

type histOp struct {
	client int
	in     linearize.Input
	out    linearize.Output
	call   int64
	ret    int64
}

// NewHistory returns an empty History keeping at most maxOps operations
// (DefaultHistoryOps when maxOps <= 0).
func NewHistory(maxOps int) *History {
	if maxOps <= 0 {
		maxOps = DefaultHistoryOps
	}
	return &History{base: time.Now(), max: maxOps, skipped: map[string]bool{}}
}

func (h *History) now() int64 { return int64(time.Since(h.base)) }

// opInput is what a protocol call sends, for the history.
type opInput struct {
	op        protocol.Op
	key       string
	cookie    int32
	hasCookie bool
	set       *protocol.SetParams
	body      []byte
}

// opIn describes a call without a LockCookie (Get, GetExclusive,
// ResetTimeout).
func opIn(op protocol.Op, key string) opInput { return opInput{op: op, key: key} }

// opCookie describes a call with a LockCookie (ReleaseExclusive, Remove).
func opCookie(op protocol.Op, key string, cookie int32) opInput {
	return opInput{op: op, key: key, cookie: cookie, hasCookie: true}
}

// opSet describes a PUT as protocol.NewSetRequest sends it: every header.
func opSet(key string, body []byte, p protocol.SetParams) opInput {
	return opInput{op: protocol.OpSet, key: key, cookie: p.LockCookie, hasCookie: true, set: &p, body: body}
}

// bodyLabel names a body for people: "v12" for a loadgen body, "empty" for
// the empty serialized session, else its size.
func bodyLabel(b []byte) string {
	if len(b) == 7 && b[4] == 0 && b[5] == 0 && b[6] == 0xFF {
		return fmt.Sprintf("empty(%d)", int32(binary.LittleEndian.Uint32(b)))
	}
	if _, v, _, err := decodeBody(b, -1); err == nil {
		return fmt.Sprintf("v%d", v)
	}
	return fmt.Sprintf("%dB", len(b))
}

// pendingOp is a recorded call waiting for its reply.
type pendingOp struct {
	h       *History
	idx     int
	call    int64
	retried bool
}

type pendingKey struct{}

// begin records the call of in by client (a page) and returns the pending
// operation, nil when h is nil or full. ctx carries it to exchange, which
// notes a retry.
func (h *History) begin(ctx context.Context, in opInput, client int64) (context.Context, *pendingOp) {
	if h == nil {
		return ctx, nil
	}
	li := linearize.Input{Op: in.op, Key: in.key, Cookie: in.cookie, HasCookie: in.hasCookie}
	if in.set != nil {
		li.Timeout, li.HasTimeout, li.Flags = in.set.Timeout, true, in.set.ExtraFlags
		li.Body = linearize.BodyOf(in.body, bodyLabel(in.body))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ops) >= h.max {
		h.skipped[in.key] = true
		return ctx, nil
	}
	call := h.now()
	li.Call = call
	h.ops = append(h.ops, histOp{client: int(client), in: li, call: call, ret: linearize.Infinity,
		out: linearize.Output{Indeterminate: true, Err: "no reply recorded", Return: linearize.Infinity}})
	p := &pendingOp{h: h, idx: len(h.ops) - 1, call: call}
	return context.WithValue(ctx, pendingKey{}, p), p
}

// noteRetry marks the pending operation in ctx as sent twice.
func noteRetry(ctx context.Context) {
	if p, ok := ctx.Value(pendingKey{}).(*pendingOp); ok {
		p.h.mu.Lock()
		p.retried = true
		p.h.mu.Unlock()
	}
}

// end records the reply (or the error) of p. A nil p does nothing.
func (p *pendingOp) end(rep *protocol.Reply, err error) {
	if p == nil {
		return
	}
	h := p.h
	var out linearize.Output
	if rep == nil || err != nil {
		out.Indeterminate = true
		out.Err = "no reply"
		if err != nil {
			out.Err = errorKind(err)
		}
	} else {
		out = linearize.Output{Status: rep.Status, Cookie: rep.LockCookie, HasCookie: rep.HasCookie,
			ActionFlags: rep.ActionFlags, Timeout: rep.Timeout, HasTimeout: rep.HasTimeout}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	o := &h.ops[p.idx]
	if !out.Indeterminate {
		if o.in.Op == protocol.OpGet || o.in.Op == protocol.OpGetExclusive {
			if rep.Status == protocol.StatusOK {
				out.Body, out.HasBody = linearize.BodyOf(rep.Body, bodyLabel(rep.Body)), true
			}
		}
		o.ret = h.now()
		out.Return = o.ret
	} else {
		out.Return = linearize.Infinity
	}
	o.out = out
	if p.retried && len(h.ops) < h.max {
		// The first attempt may have reached the server before its
		// connection failed: an indeterminate operation of its own client.
		h.clients++
		first := o.in
		h.ops = append(h.ops, histOp{client: -h.clients, in: first, call: p.call, ret: linearize.Infinity,
			out: linearize.Output{Indeterminate: true, Err: "first attempt of a retried request", Return: linearize.Infinity}})
	} else if p.retried {
		h.skipped[o.in.Key] = true
	}
}

// LostState records that the server may have lost every item between from
// and to (a restart): the check allows each session to vanish once then.
func (h *History) LostState(from, to time.Time) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.lost = append(h.lost, linearize.Window{From: int64(from.Sub(h.base)), To: int64(to.Sub(h.base))})
	h.mu.Unlock()
}

// Len returns the number of operations recorded.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// Operations returns the recorded history as porcupine operations (Input
// linearize.Input, Output linearize.Output), leaving out sessions with
// operations that were not recorded, and how many sessions were left out.
func (h *History) Operations() ([]porcupine.Operation, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ops := make([]porcupine.Operation, 0, len(h.ops))
	for _, o := range h.ops {
		if h.skipped[o.in.Key] {
			continue
		}
		ops = append(ops, porcupine.Operation{ClientId: o.client, Input: o.in, Output: o.out, Call: o.call, Return: o.ret})
	}
	return ops, len(h.skipped)
}

// CheckOptions tune History.Check.
type CheckOptions struct {
	// Minute is the target's protocol minute; items may expire after their
	// timeout in it. 0 treats items as never expiring.
	Minute time.Duration
	// Visualization, when set, is the path of the porcupine HTML file
	// written for one failing session.
	Visualization string
	// SessionTimeout bounds the checker per session (default 10s).
	SessionTimeout time.Duration
}

// Check checks the recorded history for linearizability against the model
// of PROTOCOL.md c.1–c.4 and returns the verdict for the result file.
func (h *History) Check(ctx context.Context, o CheckOptions) (*results.Linearizability, error) {
	ops, skipped := h.Operations()
	h.mu.Lock()
	lost := append([]linearize.Window(nil), h.lost...)
	h.mu.Unlock()
	res, err := linearize.Check(ctx, ops, linearize.Options{
		Config:            linearize.Config{Minute: o.Minute, LostState: lost},
		SessionTimeout:    o.SessionTimeout,
		VisualizationPath: o.Visualization,
	})
	lin := &results.Linearizability{
		Checker: "porcupine " + PorcupineVersion, Sessions: int64(res.Sessions), Operations: int64(res.Operations),
		Indeterminate: int64(res.Indeterminate), Violations: int64(res.Illegal), Unknown: int64(res.Unknown),
		SkippedSessions: int64(skipped), Failing: res.Failing, Examples: res.Examples,
		Visualization: res.Visualization, SmallestHistory: res.Smallest, CheckTime: results.Duration(res.Elapsed),
	}
	return lin, err
}

// PorcupineVersion is the checker's module version (go.mod).
const PorcupineVersion = "v1.3.1"
