package loadgen

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/aspstate/aspstate/loadgen/linearize"
	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// contentionYAML is ajax-heavy made small and hot: few sessions with many
// pages, big AJAX bursts of writable pages, long page execution against a
// short execution timeout (so locks are broken and stale holders write,
// release and delete with old cookies), and abandoned sessions (DELETE).
const contentionYAML = `
name: ajax-contention
description: ajax-heavy shrunk to a few hot sessions, for the linearizability check
duration: 2s
farm:
  web_servers: 2
  apps:
    - id: /LM/W3SVC/2/ROOT
  load_balancing: round-robin
users:
  pages_per_session: {dist: exponential, mean: 12, min: 3, max: 40}
  think_time: {dist: exponential, mean: 50ms, max: 500ms}
  abandon_fraction: 0.5
pages:
  mix: {modify: 3, read-unchanged: 4, read-only: 1, sessionless: 1}
  exec_time: {dist: lognormal, mean: 10ms, stddev: 30ms, max: 300ms}
  burst:
    probability: 0.5
    size: {dist: uniform, min: 2, max: 6}
    mix: {modify: 3, read-unchanged: 5, read-only: 2}
session:
  size: {dist: lognormal, mean: 1KiB, stddev: 1KiB, min: 64B, max: 8KiB}
client:
  execution_timeout: 5s
  lock_poll_interval: 500ms
rate:
  shape: constant
  pages_per_second: 150
  poisson: true
`

func TestHistoryOfContentionRunIsLinearizable(t *testing.T) {
	const minute = 600 * time.Millisecond // 5 protocol s of execution timeout = 50ms
	sc, err := scenarios.Parse([]byte(contentionYAML), "contention.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tg, _ := startServer(t, minute)
	run := runFor(t, Config{Scenario: sc, Targets: []target.Target{tg}, Minute: minute, Drain: 3 * time.Second,
		Linearizability: true, LinearizabilityHTML: t.TempDir() + "/lin.html"})
	if run.Correctness.Total != 0 {
		t.Fatalf("correctness violations: %v", run.Correctness.Examples)
	}
	lin := run.Linearizability
	if lin == nil {
		t.Fatal("a run with Linearizability set has no verdict")
	}
	t.Logf("linearizability: %+v; locks: %d acquires, %d 423, %d forced breaks; ops %v",
		*lin, run.Locks.Acquires, run.Locks.Locked, run.Locks.ForcedBreaks, opCounts(run.Ops))
	if lin.Violations != 0 || lin.Unknown != 0 || lin.Visualization != "" {
		t.Fatalf("reference server not linearizable: %+v", *lin)
	}
	// The history must be one worth checking: contention, broken locks,
	// deletes, many operations per session.
	if lin.Operations < 200 || lin.Sessions < 5 || lin.Operations < 20*lin.Sessions {
		t.Fatalf("history too small: %d operations in %d sessions", lin.Operations, lin.Sessions)
	}
	if run.Locks.Locked < 100 || run.Locks.ForcedBreaks == 0 || run.Ops["remove"].Count == 0 {
		t.Fatalf("not a contention run: %d 423 replies, %d forced breaks, %d removes",
			run.Locks.Locked, run.Locks.ForcedBreaks, run.Ops["remove"].Count)
	}
	if lin.SkippedSessions != 0 {
		t.Fatalf("%d sessions left out of the check", lin.SkippedSessions)
	}
}

func opCounts(m map[string]*results.Stats) map[string]int64 {
	out := map[string]int64{}
	for k, s := range m {
		out[k] = s.Count
	}
	return out
}

func TestHistoryRecordsIndeterminateAndRetries(t *testing.T) {
	h := NewHistory(0)
	ctx := context.Background()
	rep := func(status int, cookie int32) *protocol.Reply {
		return &protocol.Reply{Status: status, LockCookie: cookie, HasCookie: cookie != 0, Timeout: 20, HasTimeout: status == 200,
			Body: encodeBody("s", 1, 64)}
	}
	// A Set, an acquire that gets its reply, a release that times out, and
	// an acquire sent twice (its reused connection had been closed).
	_, p := h.begin(ctx, opSet("k", encodeBody("s", 1, 64), protocol.SetParams{Timeout: 20}), 1)
	p.end(&protocol.Reply{Status: 200}, nil)
	_, p = h.begin(ctx, opIn(protocol.OpGetExclusive, "k"), 1)
	p.end(rep(200, 2), nil)
	_, p = h.begin(ctx, opCookie(protocol.OpReleaseExclusive, "k", 2), 1)
	p.end(nil, context.DeadlineExceeded)
	cctx, p := h.begin(ctx, opIn(protocol.OpGetExclusive, "k"), 2)
	noteRetry(cctx)
	p.end(rep(423, 2), nil)

	ops, skipped := h.Operations()
	if len(ops) != 5 || skipped != 0 {
		t.Fatalf("%d operations, %d skipped; want 5, 0", len(ops), skipped)
	}
	in := ops[0].Input.(linearize.Input)
	if in.Op != protocol.OpSet || !in.HasCookie || !in.HasTimeout || in.Timeout != 20 || in.Body.Label != "v1" {
		t.Fatalf("set input %+v", in)
	}
	if out := ops[1].Output.(linearize.Output); out.Status != 200 || out.Cookie != 2 || !out.HasBody || out.Body != in.Body {
		t.Fatalf("acquire output %+v, want the set's body %+v", out, in.Body)
	}
	if out := ops[2].Output.(linearize.Output); !out.Indeterminate || ops[2].Return != linearize.Infinity || out.Err != ErrTimeout {
		t.Fatalf("timed-out release: %+v returned %d", out, ops[2].Return)
	}
	if out := ops[3].Output.(linearize.Output); out.HasBody || out.Status != 423 || ops[3].Return == linearize.Infinity {
		t.Fatalf("retried acquire's reply: %+v", out)
	}
	if out := ops[4].Output.(linearize.Output); !out.Indeterminate || ops[4].ClientId >= 0 || ops[4].Call != ops[3].Call {
		t.Fatalf("first attempt of the retried acquire: %+v client %d", out, ops[4].ClientId)
	}
	// The history is linearizable: the timed-out release may have happened.
	lin, err := h.Check(ctx, CheckOptions{})
	if err != nil || lin.Violations != 0 || lin.Indeterminate != 2 || lin.Operations != 5 {
		t.Fatalf("check: %+v, %v", lin, err)
	}

	// A full history leaves out the sessions it could not record whole.
	h = NewHistory(2)
	for _, key := range []string{"a", "a", "b"} {
		_, p := h.begin(ctx, opIn(protocol.OpResetTimeout, key), 1)
		p.end(nil, io.EOF)
	}
	ops, skipped = h.Operations()
	if len(ops) != 2 || skipped != 1 {
		t.Fatalf("bounded history: %d operations, %d sessions skipped; want 2, 1", len(ops), skipped)
	}
	// A nil History records nothing and costs nothing.
	var none *History
	c2, p2 := none.begin(ctx, opIn(protocol.OpGet, "k"), 1)
	p2.end(nil, errors.New("x"))
	none.LostState(time.Now(), time.Now())
	if c2 != ctx || p2 != nil {
		t.Fatal("nil history recorded")
	}
}

func TestBodyLabel(t *testing.T) {
	t.Parallel()
	for b, want := range map[string]string{
		string(encodeBody("sess", 42, 100)): "v42",
		string(emptySessionBody(20)):        "empty(20)",
		"hello":                             "5B",
	} {
		if got := bodyLabel([]byte(b)); got != want {
			t.Errorf("bodyLabel = %q, want %q", got, want)
		}
	}
}
