package loadgen

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/stateserver"
	"github.com/aspstate/aspstate/servers/target"
)

// encodeBody is appendBody into a new buffer.
func encodeBody(id string, version uint64, size int) []byte {
	return appendBody(nil, id, version, size)
}

// eventually waits for cond, checking every 5ms, for at most d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func arrivals(t *testing.T, r scenarios.Rate, d time.Duration) []time.Duration {
	t.Helper()
	s, err := NewSchedule(r, d, 7)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Duration
	for {
		at, ok := s.Next()
		if !ok {
			return out
		}
		if len(out) > 0 && at < out[len(out)-1] {
			t.Fatalf("arrival %d at %s before the previous one %s", len(out), at, out[len(out)-1])
		}
		out = append(out, at)
	}
}

func TestScheduleConstant(t *testing.T) {
	a := arrivals(t, scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: 100}, time.Second)
	if len(a) != 100 {
		t.Fatalf("%d arrivals, want 100", len(a))
	}
	for i, at := range a {
		if want := time.Duration(i) * 10 * time.Millisecond; (at - want).Abs() > time.Microsecond {
			t.Fatalf("arrival %d at %s, want %s", i, at, want)
		}
	}
}

func TestScheduleRamp(t *testing.T) {
	a := arrivals(t, scenarios.Rate{Shape: scenarios.ShapeRamp, From: 0, To: 100, Over: scenarios.Duration(2 * time.Second)}, 2*time.Second)
	// ∫ r = 100 pages; the first second holds a quarter of them.
	if len(a) < 99 || len(a) > 100 {
		t.Fatalf("%d arrivals, want 100", len(a))
	}
	first := 0
	for _, at := range a {
		if at < time.Second {
			first++
		}
	}
	if first < 24 || first > 26 {
		t.Fatalf("%d arrivals in the first second, want 25", first)
	}
	if g1, g2 := a[11]-a[10], a[91]-a[90]; g2 >= g1 {
		t.Fatalf("gaps do not shrink as the rate grows: %s then %s", g1, g2)
	}
	// A ramp shorter than the run holds its final rate.
	b := arrivals(t, scenarios.Rate{Shape: scenarios.ShapeRamp, From: 10, To: 50, Over: scenarios.Duration(time.Second)}, 2*time.Second)
	if len(b) != 30+50 {
		t.Fatalf("%d arrivals, want 80", len(b))
	}
}

func TestScheduleSteps(t *testing.T) {
	r := scenarios.Rate{Shape: scenarios.ShapeSteps, Steps: []scenarios.Step{
		{PagesPerSecond: 10, Duration: scenarios.Duration(time.Second)},
		{PagesPerSecond: 0, Duration: scenarios.Duration(time.Second)},
		{PagesPerSecond: 50, Duration: scenarios.Duration(time.Second)},
	}}
	a := arrivals(t, r, 4*time.Second) // the last step is held for the 4th second
	var per [4]int
	for _, at := range a {
		per[int(at/time.Second)]++
	}
	if per != [4]int{10, 0, 50, 50} {
		t.Fatalf("arrivals per second %v, want [10 0 50 50]", per)
	}
}

func TestSchedulePoisson(t *testing.T) {
	a := arrivals(t, scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: 1000, Poisson: true}, 10*time.Second)
	if n := len(a); n < 9700 || n > 10300 {
		t.Fatalf("%d arrivals, want 10000 ± 3%%", n)
	}
	var sum, sq float64
	for i := 1; i < len(a); i++ {
		g := (a[i] - a[i-1]).Seconds()
		sum += g
		sq += g * g
	}
	n := float64(len(a) - 1)
	mean := sum / n
	cv := math.Sqrt(sq/n-mean*mean) / mean
	if cv < 0.9 || cv > 1.1 {
		t.Fatalf("gap coefficient of variation %.3f, want ≈ 1 (exponential)", cv)
	}
	// Same seed, same plan.
	b := arrivals(t, scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: 1000, Poisson: true}, 10*time.Second)
	if len(a) != len(b) || a[len(a)/2] != b[len(b)/2] {
		t.Fatal("a seeded Poisson schedule is not reproducible")
	}
}

func TestScheduleRejectsBadRates(t *testing.T) {
	for _, r := range []scenarios.Rate{
		{Shape: scenarios.ShapeConstant},
		{Shape: scenarios.ShapeRamp},
		{Shape: scenarios.ShapeSteps},
		{Shape: "sine", PagesPerSecond: 3},
	} {
		if _, err := NewSchedule(r, time.Second, 1); err == nil {
			t.Errorf("rate %+v accepted", r)
		}
	}
}

func TestPlannerSessions(t *testing.T) {
	sc := headOnly(200, 10*time.Second)
	sc.Users.PagesPerSession = scenarios.Dist{Kind: scenarios.DistConstant, Value: 5}
	sc.Users.ThinkTime = scenarios.Dist{Kind: scenarios.DistConstant, Value: 0.5}
	sc.Pages.Mix = scenarios.Mix{scenarios.PageModify: 1, scenarios.PageReadOnly: 1}
	sched, err := NewSchedule(sc.Rate, sc.Duration.D(), 1)
	if err != nil {
		t.Fatal(err)
	}
	p := newPlanner(sc, sched, sc.Duration.D(), 1, newState(20, time.Minute), [32]byte{})
	pages := map[*session][]time.Duration{}
	kinds := map[scenarios.PageKind]int{}
	n := 0
	for {
		s, ok := p.next()
		if !ok {
			break
		}
		n++
		pages[s.sess] = append(pages[s.sess], s.at)
		kinds[s.kind]++
	}
	if n != 2000 {
		t.Fatalf("%d slots, want 2000 (the rate is pages/s)", n)
	}
	for sess, ts := range pages {
		if len(ts) > 5 {
			t.Fatalf("session %s has %d pages, want at most 5", sess.id, len(ts))
		}
		for i := 1; i < len(ts); i++ {
			if ts[i]-ts[i-1] < 500*time.Millisecond {
				t.Fatalf("session %s: pages %s apart, think time is 500ms", sess.id, ts[i]-ts[i-1])
			}
		}
	}
	// New sessions start at rate / pages per session once warmed up.
	if s := len(pages); s < 400 || s > 600 {
		t.Fatalf("%d sessions for 2000 pages of 5", s)
	}
	if m, r := kinds[scenarios.PageModify], kinds[scenarios.PageReadOnly]; m < 850 || r < 850 {
		t.Fatalf("mix 1:1 gave %d modify, %d read-only", m, r)
	}
}

func startCustom(t *testing.T, cfg stateserver.Config) target.Target {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tg, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{Server: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

func TestPoolLIFOAndIdleExpiry(t *testing.T) {
	tg, _ := startServer(t, 0)
	p := newPool(tg.Addr, 60*time.Millisecond, nil)
	defer p.close()
	ctx := context.Background()
	a, reused, err := p.get(ctx, time.Second, time.Now())
	if err != nil || reused {
		t.Fatal(err, reused)
	}
	b, _, err := p.get(ctx, time.Second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.put(a, time.Now())
	p.put(b, time.Now())
	if got, reused, _ := p.get(ctx, time.Second, time.Now()); got != b || !reused {
		t.Fatal("the pool is not last in, first out")
	}
	if got, _, _ := p.get(ctx, time.Second, time.Now()); got != a {
		t.Fatal("the second get did not return the older connection")
	}
	p.put(a, time.Now())
	put := time.Now()
	eventually(t, 2*time.Second, "the idle connection to expire", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.idle) == 0 })
	idle := time.Since(put)
	if idle < 60*time.Millisecond {
		t.Fatalf("connection closed after %s idle, before one period", idle)
	}
	if p.expired.Load() != 1 {
		t.Fatalf("expired %d, want 1", p.expired.Load())
	}
	if _, err := a.ResetTimeout(ctx, "x"); err == nil {
		t.Fatal("an expired connection still works")
	}
	b.Close()
}

func TestPoolReconnectsDeadSocket(t *testing.T) {
	cfg := stateserver.DefaultConfig()
	cfg.IdleTimeout = 50 * time.Millisecond
	tg := startCustom(t, cfg)
	p := newPool(tg.Addr, time.Hour, nil)
	defer p.close()
	ctx := context.Background()
	c, _, err := p.get(ctx, time.Second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ResetTimeout(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	p.put(c, time.Now())
	eventually(t, 2*time.Second, "the server to close the idle connection", func() bool { return !alive(&pooled{c: c}, time.Now()) })
	c2, reused, err := p.get(ctx, time.Second, time.Now())
	if err != nil || reused || c2 == c {
		t.Fatalf("get after the server closed the socket: %v reused=%v same=%v", err, reused, c2 == c)
	}
	if p.dead.Load() != 1 || p.dials.Load() != 2 {
		t.Fatalf("dead %d dials %d, want 1 and 2", p.dead.Load(), p.dials.Load())
	}
	if _, err := c2.ResetTimeout(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	p.put(c2, time.Now())
}

func TestVersionCheckQuirk(t *testing.T) {
	cfg := stateserver.DefaultConfig()
	cfg.OmitVersion = true // KB 2836759: no X-AspNet-Version
	tg := startCustom(t, cfg)
	pc := newPartClient(newPool(tg.Addr, time.Hour, nil), true, 10*time.Second)
	defer pc.pool.close()
	ctx := context.Background()
	head := func(ctx context.Context, c *protocol.Conn) (*protocol.Reply, error) { return c.ResetTimeout(ctx, "q") }
	bad := func(ctx context.Context, c *protocol.Conn) (*protocol.Reply, error) {
		return c.Set(ctx, "q", nil, protocol.SetParams{Timeout: -5}) // 400
	}
	kind := func(err error) string {
		var pe *pageError
		if errors.As(err, &pe) {
			return pe.kind
		}
		return ""
	}
	rec := &pageRecord{}
	// A 400 on the first request throws before the version is stored.
	if _, err := pc.call(ctx, rec, opIn(protocol.OpSet, "k"), time.Now(), bad); kind(err) != ErrBadRequest || pc.version.Load() != -1 {
		t.Fatalf("first request 400: %v, version %d; want bad-request and -1", err, pc.version.Load())
	}
	// The next request checks: no header → major 0 → Need_v2_State_Server.
	_, err := pc.call(ctx, rec, opIn(protocol.OpResetTimeout, "k"), time.Now(), head)
	if kind(err) != ErrNeedV2 || err.Error() != ErrNeedV2+": "+NeedV2Message {
		t.Fatalf("first checked request: %v, want %s", err, ErrNeedV2)
	}
	if pc.version.Load() != 0 {
		t.Fatalf("version %d after the check, want 0 stored", pc.version.Load())
	}
	// Later requests proceed: the check never runs again.
	for i := 0; i < 3; i++ {
		if _, err := pc.call(ctx, rec, opIn(protocol.OpResetTimeout, "k"), time.Now(), head); err != nil {
			t.Fatalf("request %d after the failed check: %v", i+2, err)
		}
	}
	// A recycle resets the state: the first request fails again.
	pc.reset()
	if _, err := pc.call(ctx, rec, opIn(protocol.OpResetTimeout, "k"), time.Now(), head); kind(err) != ErrNeedV2 {
		t.Fatalf("first request after a recycle: %v", err)
	}
	// A server with the header passes the check and stores the major.
	tg2, _ := startServer(t, 0)
	pc2 := newPartClient(newPool(tg2.Addr, time.Hour, nil), true, 10*time.Second)
	defer pc2.pool.close()
	if _, err := pc2.call(ctx, rec, opIn(protocol.OpResetTimeout, "k"), time.Now(), head); err != nil || pc2.version.Load() != 4 {
		t.Fatalf("reference server: %v, version %d; want ok and 4", err, pc2.version.Load())
	}
}

// lockFixture holds a session's lock from outside and returns a runner for
// pages of that session.
func lockFixture(t *testing.T, timers clientTimers) (*pageRunner, slot, *protocol.Conn, int32) {
	t.Helper()
	const minute = 600 * time.Millisecond // one protocol second = 10ms
	tg, _ := startServer(t, minute)
	ctx := context.Background()
	holder, err := protocol.Dial(ctx, tg.Addr(), protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close() })
	st := newState(20, minute)
	sess := st.newSession("lockedsession00000000000", protocol.Target("/LM/W3SVC/1/ROOT", "lockedsession00000000000"), 0)
	if rep, err := holder.Set(ctx, sess.target, encodeBody(sess.id, 0, 100), protocol.SetParams{Timeout: 20}); err != nil || rep.Status != 200 {
		t.Fatal(err, rep)
	}
	rep, err := holder.GetExclusive(ctx, sess.target)
	if err != nil || rep.Status != 200 {
		t.Fatal(err, rep)
	}
	pc := newPartClient(newPool(tg.Addr, time.Hour, nil), true, 10*time.Second)
	t.Cleanup(pc.pool.close)
	r := &pageRunner{st: st, web: []*webServer{{parts: []*partClient{pc}}}, timers: timers, maxLen: 1 << 20}
	return r, slot{sess: sess, kind: scenarios.PageModify, size: 200}, holder, rep.LockCookie
}

func TestLockPollingAndForcedRelease(t *testing.T) {
	// Break locks older than 20 protocol seconds (200ms real), poll every 20ms.
	timers := clientTimers{timeout: 20, execTimeout: 10 * time.Second, execTimeoutPS: 20, poll: 20 * time.Millisecond, pollDelta: 10 * time.Millisecond}
	r, s, holder, cookie := lockFixture(t, timers)
	rec := &pageRecord{id: 1}
	start := time.Now()
	r.run(context.Background(), s, rec)
	waited := time.Since(start)
	if rec.errKind != "" {
		t.Fatalf("page failed: %s", rec.errKind)
	}
	if rec.forced != 1 || !rec.waited || rec.locked < 2 {
		t.Fatalf("forced %d waited %v 423s %d; want one forced break after several polls", rec.forced, rec.waited, rec.locked)
	}
	if waited < 190*time.Millisecond {
		t.Fatalf("lock broken after %s, before its age reached 20 protocol seconds", waited)
	}
	// Polls are spaced by the poll interval: about 200ms / 20ms of them.
	if rec.polls < 5 || rec.polls > 15 {
		t.Fatalf("%d polls in %s at a 20ms interval", rec.polls, waited)
	}
	var release, acquired bool
	for _, o := range rec.ops {
		if o.op == protocol.OpReleaseExclusive && o.status == 200 {
			release = true
		}
		if o.op == protocol.OpGetExclusive && o.status == 200 {
			acquired = true
		}
	}
	if !release || !acquired {
		t.Fatalf("ops %+v: want a 200 release (the break) and a 200 acquire", rec.ops)
	}
	// The old holder lost its lock: its PUT with the old cookie is refused
	// only while someone holds it; the page released it with its PUT, so
	// the next acquire gets the cookie after the breaker's.
	rep, err := holder.GetExclusive(context.Background(), s.sess.target)
	if err != nil || rep.Status != 200 || rep.LockCookie != cookie+2 {
		t.Fatalf("acquire after the page: %v %+v; want 200 with cookie %d", err, rep, cookie+2)
	}
	if _, _, total := r.st.snapshotViolations(); total != 0 {
		t.Fatalf("violations: %v", r.st.examples)
	}
}

func TestLockWaitGivesUp(t *testing.T) {
	timers := clientTimers{timeout: 20, execTimeout: 100 * time.Millisecond, execTimeoutPS: 1 << 30, poll: 20 * time.Millisecond, pollDelta: 10 * time.Millisecond}
	r, s, _, _ := lockFixture(t, timers)
	rec := &pageRecord{id: 1}
	r.run(context.Background(), s, rec)
	if rec.errKind != ErrLockTimeout || !rec.gaveUp || rec.forced != 0 {
		t.Fatalf("err %q gaveUp %v forced %d; want lock-timeout without a break", rec.errKind, rec.gaveUp, rec.forced)
	}
}

func TestBodyCodecAndChecks(t *testing.T) {
	id := "abcdefghijklmnopqrstuvwx"
	b := encodeBody(id, 7, 500)
	if len(b) != 500 {
		t.Fatalf("body is %d bytes, want 500", len(b))
	}
	gid, v, empty, err := decodeBody(b, 20)
	if err != nil || gid != id || v != 7 || empty {
		t.Fatalf("decode: %q %d %v %v", gid, v, empty, err)
	}
	b[100] ^= 1
	if _, _, _, err := decodeBody(b, 20); err == nil {
		t.Fatal("a flipped byte passed the checksum")
	}
	if _, _, empty, err := decodeBody(emptySessionBody(20), 20); !empty || err != nil {
		t.Fatal("the empty session body is not recognised")
	}

	st := newState(20, time.Minute)
	s := st.newSession(id, "t", 0)
	now := time.Now()
	w1 := s.beginWrite(0, 100)
	s.endWrite(w1, true)
	w2 := s.beginWrite(0, 100)
	s.endWrite(w2, true)
	st.readCheck(s, st.snapshot(s, now), encodeBody(id, w1.version, 100)) // older than acknowledged
	st.readCheck(s, st.snapshot(s, now), encodeBody("someoneelse0000000000000", w2.version, 100))
	st.readCheck(s, st.snapshot(s, now), encodeBody(id, 99, 100)) // never written
	st.readCheck(s, st.snapshot(s, now), []byte("garbage"))
	epoch := st.acquired(s, st.snapshot(s, now), 1)
	st.acquired(s, st.snapshot(s, now), 2) // no release between
	s.touched(now, st)
	st.gone(s, st.snapshot(s, now), now.Add(time.Second)) // 20-minute timeout
	// A 404 to a request sent before the session was known to exist is no
	// violation: the server may have handled it before the create.
	s3 := st.newSession("early000000000000000000", "t", 0)
	early := st.snapshot(s3, now)
	s3.created()
	s3.touched(now.Add(time.Millisecond), st)
	st.gone(s3, early, now.Add(2*time.Millisecond))
	m, _, total := st.snapshotViolations()
	want := map[string]int64{ViolationLostUpdate: 1, ViolationForeignBody: 2, ViolationTornBody: 1, ViolationDoubleLock: 1, ViolationSessionGone: 1}
	for k, n := range want {
		if m[k] != n {
			t.Errorf("%s: %d, want %d (all: %v)", k, m[k], n, m)
		}
	}
	if total != 6 {
		t.Fatalf("total %d, want 6", total)
	}
	// A read that overlapped a DELETE is not judged.
	st2 := newState(20, time.Minute)
	s2 := st2.newSession(id, "t", 0)
	s2.endWrite(s2.beginWrite(epoch, 10), true)
	sn := st2.snapshot(s2, now)
	s2.beginRemove()
	s2.endRemove(true)
	st2.readCheck(s2, sn, emptySessionBody(20))
	if _, _, n := st2.snapshotViolations(); n != 0 || st2.skipped.Load() != 1 {
		t.Fatalf("overlapping DELETE: %d violations, %d skipped; want 0 and 1", n, st2.skipped.Load())
	}
}

func TestCollectorMergesIntervals(t *testing.T) {
	start := time.Now()
	c := newCollector(start, time.Millisecond, false)
	rec := func(at time.Duration, lat time.Duration, late time.Duration) *pageRecord {
		in := start.Add(at)
		return &pageRecord{kind: "read-only", intended: in, start: in.Add(late), end: in.Add(late + lat),
			ops: []opRecord{{op: protocol.OpGet, status: 200, start: in.Add(late), end: in.Add(late + lat)}}}
	}
	for i := 0; i < 100; i++ {
		c.add(rec(time.Duration(i)*time.Millisecond, time.Millisecond, 0))
	}
	c.flush(start.Add(time.Second))
	for i := 0; i < 100; i++ {
		c.add(rec(time.Second+time.Duration(i)*time.Millisecond, 2*time.Millisecond, 500*time.Millisecond))
	}
	c.flush(start.Add(2 * time.Second))
	pages, err := c.stats("page.")
	if err != nil {
		t.Fatal(err)
	}
	p := pages["read-only"]
	if p.Count != 200 {
		t.Fatalf("count %d", p.Count)
	}
	h, err := p.Corrected.Decode()
	if err != nil || h.TotalCount() != 200 {
		t.Fatalf("merged corrected histogram holds %v values (%v), want 200", h.TotalCount(), err)
	}
	// Half the pages started 500ms late: corrected p90 shows it, uncorrected does not.
	if p.Corrected.P90 < int64(500*time.Millisecond) || p.Uncorrected.P90 > int64(3*time.Millisecond) {
		t.Fatalf("p90 corrected %d uncorrected %d", p.Corrected.P90, p.Uncorrected.P90)
	}
	ops, _ := c.stats("op.")
	if ops["get"].Statuses["200"] != 200 || ops["get"].Corrected.P90 < int64(500*time.Millisecond) {
		t.Fatalf("op stats %+v", ops["get"])
	}
	if len(c.intervals) != 2 || c.intervals[0].Pages != 100 || c.intervals[1].Late != 100 {
		t.Fatalf("intervals %+v", c.intervals)
	}
	if len(c.logs) != 2*3*2 { // 2 intervals × 3 tags (page, page-state, op) × corrected/uncorrected
		t.Fatalf("%d log entries, want 12", len(c.logs))
	}
}

// TestLateWritesOfBrokenLocks covers the ways a PUT of a page whose lock
// was broken can land after a newer write and put an older version back
// (a PUT on an unlocked item succeeds whatever its cookie, PROTOCOL.md c.2
// #7; PUTs on two connections have no order). A read that then returns the
// older version is no lost update. The same read after writes that did not
// overlap anything is one.
func TestLateWritesOfBrokenLocks(t *testing.T) {
	id := "brokenwhilewriting000000"
	for _, tc := range []struct {
		name string
		// run plays the writes and returns the version the read returns.
		run       func(st *state, s *session) uint64
		violation bool
	}{
		{"lock broken while the holder's PUT is in flight", func(st *state, s *session) uint64 {
			now := time.Now()
			epochA := st.acquired(s, st.snapshot(s, now), 1)
			a := s.beginWrite(epochA, 100) // A's PUT is on its way
			s.releasing(1)
			s.breaking() // a waiter found A's lock too old; its release lands first
			epochB := st.acquired(s, st.snapshot(s, now), 2)
			b := s.beginWrite(epochB, 100)
			s.endWrite(b, true)
			// A's PUT lands now, after B's: the item holds A's version.
			s.endWrite(a, true)
			return a.version
		}, false},
		{"stale PUT sent before the new holder's, answered first", func(st *state, s *session) uint64 {
			// The trace of a real false report: page A's lock was broken,
			// page B acquired; A sends its stale PUT, then B its PUT; the
			// server handles B's first (unlocking), then A's (200). A's
			// 200 arrives first, then B's.
			now := time.Now()
			epochA := st.acquired(s, st.snapshot(s, now), 1)
			s.breaking()
			epochB := st.acquired(s, st.snapshot(s, now), 2)
			a := s.beginWrite(epochA, 100)
			b := s.beginWrite(epochB, 100)
			s.endWrite(a, true)
			s.endWrite(b, true)
			return a.version
		}, false},
		{"writes one after the other", func(st *state, s *session) uint64 {
			now := time.Now()
			epochA := st.acquired(s, st.snapshot(s, now), 1)
			a := s.beginWrite(epochA, 100)
			s.releasing(1)
			s.endWrite(a, true)
			epochB := st.acquired(s, st.snapshot(s, now), 2)
			b := s.beginWrite(epochB, 100)
			s.endWrite(b, true)
			return a.version
		}, true},
	} {
		st := newState(20, time.Minute)
		s := st.newSession(id, "t", 0)
		v := tc.run(st, s)
		st.readCheck(s, st.snapshot(s, time.Now()), encodeBody(id, v, 100))
		_, ex, n := st.snapshotViolations()
		if tc.violation && n != 1 || !tc.violation && n != 0 {
			t.Errorf("%s: read of version %d: violations %d %v, want %v", tc.name, v, n, ex, tc.violation)
		}
		if s.inflight != 0 || s.writing != 0 {
			t.Errorf("%s: %d stale and %d writes still counted in flight", tc.name, s.inflight, s.writing)
		}
	}
}

// A reply that the server sent before a restart, but that the client handles
// after the restart began, belongs to the old server: a 404 after the restart
// is a lost session, not a session gone before its timeout. A touch sent
// after the restart still makes an early 404 a violation.
func TestTouchBeforeRestartHandledAfterIsNoViolation(t *testing.T) {
	st := newState(20, time.Minute)
	var lost int
	st.onLost = func() { lost++ }
	s := st.newSession("restart00000000000000000", "t", 0)
	s.created()
	sent := time.Now().Add(-10 * time.Millisecond) // sent before the restart began
	st.bumpEpoch()
	st.bumpEpoch()      // the restart is over
	s.touched(sent, st) // the old server's 200, handled only now
	st.gone(s, st.snapshot(s, time.Now()), time.Now())
	if m, _, total := st.snapshotViolations(); total != 0 {
		t.Fatalf("a pre-restart touch made a lost session a violation: %v", m)
	}
	if lost != 1 {
		t.Errorf("sessions lost: %d, want 1", lost)
	}
	// The same session, recreated and touched after the restart, then 404 at once: a violation.
	s.created()
	s.touched(time.Now(), st)
	st.gone(s, st.snapshot(s, time.Now()), time.Now().Add(time.Second))
	if m, _, total := st.snapshotViolations(); total != 1 || m[ViolationSessionGone] != 1 {
		t.Fatalf("violations %v, want one session-gone", m)
	}
}

// TestEncodeBodyFiller pins the body filler to its generator, byte by byte:
// bodies of earlier versions of aspstate must read the same.
func TestEncodeBodyFiller(t *testing.T) {
	id := "abcdefghijklmnopqrstuvwx"
	for _, version := range []uint64{0, 1, 2, 77, 255, 256, 1 << 40} {
		for _, size := range []int{0, bodyOverhead(id), bodyOverhead(id) + 1, 300, 1024, 4096 + 3} {
			b := encodeBody(id, version, size)
			over := bodyOverhead(id)
			fill := b[over-4 : len(b)-4]
			x := byte(version*131 + 7)
			for i := range fill {
				if fill[i] != x {
					t.Fatalf("version %d size %d: filler byte %d is %#x, want %#x", version, size, i, fill[i], x)
				}
				x = x*29 + 11
			}
			if gotID, v, empty, err := decodeBody(b, 20); err != nil || gotID != id || v != version || empty {
				t.Fatalf("version %d size %d: decode %q %d %v %v", version, size, gotID, v, empty, err)
			}
		}
	}
}

func BenchmarkEncodeBody(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		encodeBody("abcdefghijklmnopqrstuvwx", uint64(i), 1024)
	}
}

// TestDueHeapOrder: the due heap pops sessions by due time, ties by session
// sequence, through any interleaving of pushes and pops.
func TestDueHeapOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h dueHeap
	var want []dueEntry
	for step := 0; step < 20000; step++ {
		if len(want) == 0 || rng.IntN(3) > 0 {
			ps := &plannedSession{due: time.Duration(rng.IntN(500)), sess: &session{seq: int64(step)}}
			h.push(ps)
			want = append(want, dueEntry{due: ps.due, seq: ps.sess.seq, ps: ps})
			continue
		}
		first := 0
		for i := range want {
			if want[i].less(want[first]) {
				first = i
			}
		}
		if got := h.pop(); got != want[first].ps {
			t.Fatalf("step %d: popped due %s seq %d, want due %s seq %d", step, got.due, got.sess.seq, want[first].due, want[first].seq)
		}
		want = append(want[:first], want[first+1:]...)
	}
	if len(h) != len(want) {
		t.Fatalf("heap holds %d, want %d", len(h), len(want))
	}
}

// BenchmarkDueHeap: a push and a pop on a heap of 35,000 sessions (make
// bench's half-saturation run at one second of think time).
func BenchmarkDueHeap(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h dueHeap
	for i := 0; i < 35000; i++ {
		h.push(&plannedSession{due: time.Duration(rng.Int64N(int64(time.Second))), sess: &session{seq: int64(i)}})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ps := h.pop()
		ps.due += time.Duration(rng.Int64N(int64(2 * time.Second)))
		h.push(ps)
	}
}
