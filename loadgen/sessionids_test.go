package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// pageCycle is the workload of bench/page-cycle.yaml (long sessions of
// acquire+set and plain-get pages, 1 KiB bodies, no page work) with the
// given client network timeout, which is also the default drain time.
func pageCycle(netTimeout time.Duration, d time.Duration) *scenarios.Scenario {
	sc := &scenarios.Scenario{Name: "page-cycle", Description: "bench page cycle", Duration: scenarios.Duration(d),
		Users: scenarios.Users{PagesPerSession: scenarios.Dist{Kind: scenarios.DistConstant, Value: 200},
			ThinkTime: scenarios.Dist{Kind: scenarios.DistConstant, Value: 1}},
		Pages: scenarios.Pages{Mix: scenarios.Mix{scenarios.PageModify: 1, scenarios.PageReadOnly: 1},
			ExecTime: scenarios.Dist{Kind: scenarios.DistConstant}},
		Session: scenarios.SessionData{Size: scenarios.Dist{Kind: scenarios.DistConstant, Value: 1024}},
		Client:  scenarios.Client{SessionTimeout: 20, NetworkTimeout: scenarios.Duration(netTimeout)},
		Rate:    scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: 100}}
	sc.ApplyDefaults()
	return sc
}

// TestRunsWithTheSameSeedUseFreshSessionIDs runs the same plan twice against
// one server. Session ids once came from the plan seed, so the second run
// found the first run's sessions under its new ones and reported their
// bodies as foreign. Ids are random per run, as the real client's are.
func TestRunsWithTheSameSeedUseFreshSessionIDs(t *testing.T) {
	tg, _ := startServer(t, 0)
	sc := pageCycle(2*time.Second, 0)
	sc.Users.PagesPerSession = scenarios.Dist{Kind: scenarios.DistConstant, Value: 20}
	sc.Users.ThinkTime = scenarios.Dist{Kind: scenarios.DistConstant, Value: 0.05}
	for i := 0; i < 2; i++ {
		run := runFor(t, Config{Scenario: sc, Targets: []target.Target{tg}, Rate: 400, Duration: 700 * time.Millisecond, Seed: 7})
		if run.Correctness.Total != 0 || len(run.Errors) != 0 {
			t.Fatalf("run %d: violations %v %v, errors %v", i+1, run.Correctness.Violations, run.Correctness.Examples, run.Errors)
		}
		if run.Correctness.Checks < 100 {
			t.Fatalf("run %d: only %d checks", i+1, run.Correctness.Checks)
		}
	}
}

// TestForeignBodyWrittenOutsideIsReported writes, from outside the load
// generator, bodies the run never wrote under a session's id: another
// session's body, and this session's header with a version it never
// allocated. Both pages that read them report a foreign body.
func TestForeignBodyWrittenOutsideIsReported(t *testing.T) {
	tg, _ := startServer(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc := pageCycle(2*time.Second, time.Second)
	st := newState(20, time.Minute)
	pl := newPlanner(sc, nil, time.Second, 1, st, [32]byte{1})
	pr := &pageRunner{st: st, timers: clientTimers{timeout: 20, execTimeout: time.Second, execTimeoutPS: 110,
		poll: 10 * time.Millisecond, pollDelta: 5 * time.Millisecond}}
	p := newPool(func() string { return tg.Addr() }, time.Second, nil)
	defer p.close()
	pr.web = []*webServer{{parts: []*partClient{newPartClient(p, true, 2*time.Second)}}}

	outside, err := protocol.Dial(ctx, tg.Addr(), protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()
	other := pl.newSession()
	for _, tc := range []struct {
		kind scenarios.PageKind
		body func(s *session) []byte
		want string
	}{
		{scenarios.PageReadOnly, func(*session) []byte { return encodeBody(other.id, 3, 1024) }, "belongs to session"},
		{scenarios.PageModify, func(*session) []byte { return encodeBody(other.id, 3, 1024) }, "belongs to session"},
		{scenarios.PageReadOnly, func(s *session) []byte { return encodeBody(s.id, 105, 1024) }, "never written"},
		{scenarios.PageModify, func(s *session) []byte { return encodeBody(s.id, 105, 1024) }, "never written"},
	} {
		s := pl.newSession()
		rep, err := outside.Set(ctx, s.target, tc.body(s), protocol.SetParams{Timeout: 20})
		if err != nil || rep.Status != protocol.StatusOK {
			t.Fatalf("outside PUT: %v %+v", err, rep)
		}
		_, _, before := st.snapshotViolations()
		rec := &pageRecord{id: 1}
		pr.run(ctx, slot{sess: s, kind: tc.kind, size: 1024}, rec)
		if rec.errKind != "" {
			t.Fatalf("%s page: %s", tc.kind, rec.errKind)
		}
		m, ex, after := st.snapshotViolations()
		if after != before+1 || m[ViolationForeignBody] != after {
			t.Fatalf("%s page over %q: violations %v, want one more foreign-body", tc.kind, tc.want, m)
		}
		found := false
		for _, e := range ex {
			if strings.Contains(e, s.id) && strings.Contains(e, tc.want) {
				found = true
			}
		}
		if !found {
			t.Fatalf("no example for session %s saying %q: %v", s.id, tc.want, ex)
		}
	}
}
