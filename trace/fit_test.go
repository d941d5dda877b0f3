package trace

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/scenarios"
)

// simPage is one planned page of the farm simulator.
type simPage struct {
	sess           int
	at             time.Time
	kind           scenarios.PageKind
	exec           time.Duration
	size, growth   int
	web            int
	main, lastPage bool
}

// simulate plays sc's farm from -warm to capture (open arrivals of
// sessions, their pages, bursts contending for the lock with polls, the
// create dance) and returns the exchanges a capture of [0, capture) holds,
// in completion order: the pages and sessions cut by the capture's start
// and end come out cut, as a real capture holds them.
func simulate(sc *scenarios.Scenario, warm, capture time.Duration, seed uint64) []*Exchange {
	r := rand.New(rand.NewPCG(seed, 7))
	t0 := time.Unix(1700000000, 0)
	rate := sc.Rate.PagesPerSecond
	sessRate := rate / sc.RequestsPerPage() / sc.Users.MeanPages()
	var pages []*simPage
	var apps []string
	for at, n := -warm.Seconds(), 0; at < capture.Seconds(); n++ {
		if sc.Rate.Poisson {
			at += r.ExpFloat64() / sessRate
		} else {
			at += 1 / sessRate
		}
		apps = append(apps, sc.Farm.PickApp(r).ID)
		np := sc.Users.SamplePages(r)
		t := t0.Add(seconds(at))
		for k := 0; k < np; k++ {
			kind := sc.Pages.Mix.Pick(r)
			last := k == np-1
			if last && r.Float64() < sc.Users.AbandonFraction {
				kind = scenarios.PageAbandon
			}
			pages = append(pages, &simPage{sess: n, at: t, kind: kind, main: true, lastPage: last,
				exec: sc.Pages.ExecTime.SampleDuration(r), size: sc.Session.Size.SampleInt(r), growth: sc.Session.GrowthPerModify.SampleInt(r)})
			if b := sc.Pages.Burst; b.Probability > 0 && r.Float64() < b.Probability {
				// The dispatcher starts a burst's pages right after its main page.
				for i := range b.SampleSize(r) {
					pages = append(pages, &simPage{sess: n, at: t.Add(time.Duration(i+1) * 20 * time.Microsecond), kind: sc.Pages.BurstMix().Pick(r),
						exec: sc.Pages.ExecTime.SampleDuration(r), size: sc.Session.Size.SampleInt(r), growth: sc.Session.GrowthPerModify.SampleInt(r)})
				}
			}
			t = t.Add(sc.Users.ThinkTime.SampleDuration(r))
		}
	}
	sort.SliceStable(pages, func(i, j int) bool { return pages[i].at.Before(pages[j].at) })
	nw := sc.Farm.WebServers
	sticky := map[int]int{}
	rr := 0
	for _, p := range pages {
		switch sc.Farm.LoadBalancing {
		case scenarios.LBRoundRobin:
			p.web, rr = rr%nw, rr+1
		case scenarios.LBRandom:
			p.web = r.IntN(nw)
		default:
			w, ok := sticky[p.sess]
			if !ok {
				w, rr = rr%nw, rr+1
				sticky[p.sess] = w
			}
			p.web = w
		}
	}
	// Sessions in page order: the lock, the store, the wire.
	type sessState struct {
		free   time.Time // when the lock is free
		exists bool
		size   int
		cookie int32
		gone   bool
	}
	st := map[int]*sessState{}
	var out []*Exchange
	port := uint16(1024)
	poll := sc.Client.LockPollInterval.D()
	lat := 100 * time.Microsecond
	for _, p := range pages {
		s := st[p.sess]
		if s == nil {
			s = &sessState{}
			st[p.sess] = s
		}
		if s.gone {
			continue
		}
		port++
		c := ConnID{Client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + p.web)}), port), Server: netip.MustParseAddrPort("127.0.0.1:42424")}
		target := protocol.Target(apps[p.sess], fmt.Sprintf("sess%07d", p.sess))
		seq := 0
		emit := func(at time.Time, req *protocol.Request, status int, body []byte, kv ...string) time.Time {
			resp := &protocol.Response{Status: status, Body: body}
			for i := 0; i+1 < len(kv); i += 2 {
				resp.Header = append(resp.Header, protocol.Field{Name: kv[i], Value: kv[i+1]})
			}
			end := at.Add(lat)
			if !at.Before(t0) && end.Before(t0.Add(capture)) {
				out = append(out, &Exchange{Conn: c, Seq: seq, Request: req, Reply: resp, RequestStart: at, RequestEnd: at, ReplyStart: end, ReplyEnd: end})
			}
			seq++
			return end
		}
		body := func() []byte { return make([]byte, max(s.size, 1)) }
		switch p.kind {
		case scenarios.PageSessionless:
			st := protocol.StatusNotFound
			if s.exists {
				st = protocol.StatusOK
			}
			emit(p.at, protocol.NewResetTimeoutRequest("h", target), st, nil)
			continue
		case scenarios.PageReadOnly:
			at := p.at
			for at.Before(s.free) {
				emit(at, protocol.NewGetRequest("h", target), protocol.StatusLocked, nil, protocol.HeaderLockCookie, fmt.Sprint(s.cookie), protocol.HeaderLockAge, "0")
				at = at.Add(poll)
			}
			if s.exists {
				emit(at, protocol.NewGetRequest("h", target), protocol.StatusOK, body())
			} else {
				emit(at, protocol.NewGetRequest("h", target), protocol.StatusNotFound, nil)
			}
			continue
		}
		at := p.at
		for at.Before(s.free) {
			emit(at, protocol.NewGetExclusiveRequest("h", target), protocol.StatusLocked, nil, protocol.HeaderLockCookie, fmt.Sprint(s.cookie), protocol.HeaderLockAge, "0")
			at = at.Add(poll)
		}
		if !s.exists {
			end := emit(at, protocol.NewGetExclusiveRequest("h", target), protocol.StatusNotFound, nil)
			end = emit(end, protocol.NewSetRequest("h", target, []byte{1, 0, 0, 0, 0, 0, 0xff}, protocol.SetParams{Timeout: int32(sc.Client.SessionTimeout), ExtraFlags: 1}), protocol.StatusOK, nil)
			at = end
			s.exists = true
		}
		s.cookie++
		got := emit(at, protocol.NewGetExclusiveRequest("h", target), protocol.StatusOK, body(), protocol.HeaderLockCookie, fmt.Sprint(s.cookie))
		done := got.Add(p.exec)
		s.free = done.Add(lat)
		switch p.kind {
		case scenarios.PageModify:
			if s.size == 0 {
				s.size = p.size
			} else {
				s.size += p.growth
			}
			emit(done, protocol.NewSetRequest("h", target, body(), protocol.SetParams{Timeout: int32(sc.Client.SessionTimeout), LockCookie: s.cookie}), protocol.StatusOK, nil)
		case scenarios.PageAbandon:
			emit(done, protocol.NewRemoveRequest("h", target, s.cookie), protocol.StatusOK, nil)
			s.gone = true
		default:
			emit(done, protocol.NewReleaseExclusiveRequest("h", target, s.cookie), protocol.StatusOK, nil)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ReplyEnd.Before(out[j].ReplyEnd) })
	return out
}

// fitOf rebuilds the pages of exs and fits a scenario to them.
func fitOf(t *testing.T, exs []*Exchange) *Fit {
	t.Helper()
	f := NewFitter(FitOptions{Source: "test"})
	b := NewPageBuilder(f.Add)
	for _, ex := range exs {
		if err := b.Add(ex); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	fit, err := f.Fit()
	if err != nil {
		t.Fatal(err)
	}
	// The YAML reads back, strictly, into the same scenario.
	y, err := fit.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := scenarios.Parse(y, "fitted.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	if back.Farm.WebServers != fit.Scenario.Farm.WebServers || back.Users.ThinkTime != fit.Scenario.Users.ThinkTime {
		t.Fatalf("read back differs:\n%s", y)
	}
	for _, path := range []string{"farm.web_servers", "users.think_time", "pages.exec_time", "session.size", "rate"} {
		if fit.Comments[path] != "" && !strings.Contains(string(y), strings.Fields(fit.Comments[path])[0]) {
			t.Errorf("the YAML lacks the comment of %s:\n%s", path, y)
		}
	}
	t.Logf("%s", y)
	return fit
}

func within(t *testing.T, what string, got, want, rel float64) {
	t.Helper()
	if math.Abs(got-want) > rel*math.Abs(want) {
		t.Errorf("%s: fitted %.4g, want %.4g ± %.0f%%", what, got, want, rel*100)
	}
}

func near(t *testing.T, what string, got, want, abs float64) {
	t.Helper()
	if math.Abs(got-want) > abs {
		t.Errorf("%s: fitted %.4g, want %.4g ± %.3g", what, got, want, abs)
	}
}

// truth is the farm the simulator plays in the tests.
func truth() *scenarios.Scenario {
	sc := &scenarios.Scenario{
		Name: "truth", Description: "synthetic farm",
		Farm: scenarios.Farm{WebServers: 3, LoadBalancing: scenarios.LBSticky,
			Apps: []scenarios.App{{ID: "/LM/W3SVC/1/ROOT", Weight: 3}, {ID: "/LM/W3SVC/1/ROOT/shop", Weight: 1}}},
		Users: scenarios.Users{
			PagesPerSession: scenarios.Dist{Kind: scenarios.DistExponential, Avg: 6, Min: 1, Max: 60},
			ThinkTime:       scenarios.Dist{Kind: scenarios.DistExponential, Avg: 2, Max: 20},
			AbandonFraction: 0.2,
		},
		Pages: scenarios.Pages{
			Mix:      scenarios.Mix{scenarios.PageModify: 3, scenarios.PageReadUnchanged: 4, scenarios.PageReadOnly: 2, scenarios.PageSessionless: 1},
			ExecTime: scenarios.Dist{Kind: scenarios.DistLognormal, Avg: 0.04, StdDev: 0.04, Max: 2},
			Burst: scenarios.Burst{Probability: 0.2, Size: scenarios.Dist{Kind: scenarios.DistUniform, Min: 2, Max: 5},
				Mix: scenarios.Mix{scenarios.PageReadUnchanged: 1, scenarios.PageModify: 1}},
		},
		Session: scenarios.SessionData{Size: scenarios.Dist{Kind: scenarios.DistLognormal, Avg: 4000, StdDev: 3000, Min: 100, Max: 100000},
			GrowthPerModify: scenarios.Dist{Kind: scenarios.DistUniform, Min: 0, Max: 500}},
		Client: scenarios.Client{SessionTimeout: 25, LockPollInterval: scenarios.Duration(300 * time.Millisecond)},
		Rate:   scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: 60, Poisson: true},
	}
	sc.ApplyDefaults()
	return sc
}

func TestFitRecoversTheFarm(t *testing.T) {
	t.Parallel()
	want := truth()
	fit := fitOf(t, simulate(want, 5*time.Minute, 10*time.Minute, 1))
	got := fit.Scenario

	if got.Farm.WebServers != 3 || got.Farm.LoadBalancing != scenarios.LBSticky || got.Farm.Partitions != 1 {
		t.Errorf("farm %+v", got.Farm)
	}
	if len(got.Farm.Apps) != 2 || got.Farm.Apps[0].ID != "/LM/W3SVC/1/ROOT" || got.Farm.Apps[1].ID != "/LM/W3SVC/1/ROOT/shop" {
		t.Fatalf("apps %+v", got.Farm.Apps)
	}
	within(t, "app weight", got.Farm.Apps[0].Weight/(got.Farm.Apps[0].Weight+got.Farm.Apps[1].Weight), 0.75, 0.05)
	within(t, "page rate", got.Rate.PagesPerSecond, 60, 0.05)
	if got.Rate.Shape != scenarios.ShapeConstant || !got.Rate.Poisson {
		t.Errorf("rate %+v", got.Rate)
	}
	within(t, "pages per session", got.Users.MeanPages(), want.Users.MeanPages(), 0.1)
	within(t, "think time", got.Users.ThinkTime.Mean(), want.Users.ThinkTime.Mean(), 0.1)
	near(t, "abandon fraction", got.Users.AbandonFraction, 0.2, 0.03)
	for _, k := range want.Pages.Mix.Kinds() {
		near(t, "share of "+string(k), got.Pages.Mix.Fraction(k), want.Pages.Mix.Fraction(k), 0.02)
	}
	within(t, "exec time", got.Pages.ExecTime.Mean(), 0.04, 0.05)
	if got.Pages.ExecTime.Kind != scenarios.DistLognormal {
		t.Errorf("exec time %+v, want lognormal", got.Pages.ExecTime)
	}
	// A new page of a session that starts while another of its pages polls
	// on the same web server is taken for one of its polls now and then.
	near(t, "burst probability", got.Pages.Burst.Probability, 0.2, 0.03)
	within(t, "burst size", got.Pages.Burst.Size.Mean(), 3.5, 0.1)
	near(t, "burst share of modify", got.Pages.Burst.Mix.Fraction(scenarios.PageModify), 0.5, 0.04)
	within(t, "session size", got.Session.Size.Mean(), want.Session.Size.Mean(), 0.1)
	within(t, "growth per modify", got.Session.GrowthPerModify.Mean(), 250, 0.1)
	if got.Client.SessionTimeout != 25 {
		t.Errorf("session timeout %d", got.Client.SessionTimeout)
	}
	within(t, "lock poll interval", got.Client.LockPollInterval.D().Seconds(), 0.3, 0.05)
	for _, path := range []string{"farm.web_servers", "farm.apps", "farm.load_balancing", "farm.partitions", "users.pages_per_session",
		"users.think_time", "users.abandon_fraction", "pages.mix", "pages.exec_time", "pages.burst.probability", "pages.burst.size",
		"session.size", "session.growth_per_modify", "client.session_timeout", "client.lock_poll_interval", "rate"} {
		if fit.Comments[path] == "" {
			t.Errorf("no comment for %s", path)
		}
	}
	// Sessions alive when the capture began (their first page in it found
	// them: a GET answered 200 before any PUT) count as existing, not new.
	var existing, created int
	for _, n := range fit.Notes {
		fmt.Sscanf(n, "%d sessions existed before the capture (first seen mid-life), %d were created in it", &existing, &created)
	}
	if existing < 50 || created < 1000 {
		t.Errorf("%d sessions existing, %d created: %v", existing, created, fit.Notes)
	}
	if !strings.Contains(fit.Comments["users.pages_per_session"], "right censoring") {
		t.Errorf("pages per session: %s", fit.Comments["users.pages_per_session"])
	}
}

// A capture shorter than most sessions: most are cut by its end, and
// counting them as short would halve the mean.
func TestFitCensorsSessionsCutByTheCapture(t *testing.T) {
	t.Parallel()
	want := truth()
	want.Users.PagesPerSession = scenarios.Dist{Kind: scenarios.DistExponential, Avg: 12, Min: 1, Max: 100}
	want.Users.ThinkTime = scenarios.Dist{Kind: scenarios.DistExponential, Avg: 1, Max: 10}
	want.Pages.Burst = scenarios.Burst{}
	want.Rate.PagesPerSecond = 300
	fit := fitOf(t, simulate(want, 0, 25*time.Second, 2))
	within(t, "pages per session", fit.Scenario.Users.MeanPages(), want.Users.MeanPages(), 0.15)
}

func TestFitLoadBalancingAndSteps(t *testing.T) {
	t.Parallel()
	for _, lb := range []scenarios.LoadBalancing{scenarios.LBRoundRobin, scenarios.LBRandom} {
		want := truth()
		want.Farm.LoadBalancing = lb
		want.Pages.Burst = scenarios.Burst{}
		fit := fitOf(t, simulate(want, time.Minute, 2*time.Minute, 3))
		if fit.Scenario.Farm.LoadBalancing != lb {
			t.Errorf("%s fitted as %s: %s", lb, fit.Scenario.Farm.LoadBalancing, fit.Comments["farm.load_balancing"])
		}
	}
	// Two captures of different rates, one after the other: two steps.
	slow, fast := truth(), truth()
	fast.Rate.PagesPerSecond = 150
	a := simulate(slow, time.Minute, 30*time.Second, 4)
	b := simulate(fast, time.Minute, 30*time.Second, 5)
	for _, ex := range b {
		for _, t := range []*time.Time{&ex.RequestStart, &ex.RequestEnd, &ex.ReplyStart, &ex.ReplyEnd} {
			*t = t.Add(30 * time.Second)
		}
		ex.Conn.Client = netip.AddrPortFrom(ex.Conn.Client.Addr(), ex.Conn.Client.Port()+30000)
	}
	fit := fitOf(t, append(a, b...))
	r := fit.Scenario.Rate
	if r.Shape != scenarios.ShapeSteps || len(r.Steps) != 2 {
		t.Fatalf("rate %+v: %s", r, fit.Comments["rate"])
	}
	within(t, "first step", r.Steps[0].PagesPerSecond, 60, 0.1)
	within(t, "second step", r.Steps[1].PagesPerSecond, 150, 0.1)
}

func TestFitDist(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for _, d := range []scenarios.Dist{
		{Kind: scenarios.DistLognormal, Avg: 0.08, StdDev: 0.3, Max: 8},
		{Kind: scenarios.DistExponential, Avg: 2, Max: 20},
		{Kind: scenarios.DistUniform, Min: 3, Max: 8},
		{Kind: scenarios.DistConstant, Value: 5},
	} {
		xs := make([]float64, 5000)
		for i := range xs {
			xs[i] = d.Sample(r)
		}
		got, stat := fitDist(xs, 0)
		if got.Kind != d.Kind {
			t.Errorf("%+v fitted as %+v (%s)", d, got, stat)
		}
		within(t, string(d.Kind)+" mean", got.Mean(), d.Mean(), 0.05)
	}
	if _, err := NewFitter(FitOptions{}).Fit(); err != ErrNoPages {
		t.Errorf("an empty capture: %v", err)
	}
}

// Evenly spaced arrivals (a burst takes as many slots as it has pages) are
// not Poisson; exponential gaps are.
func TestFitPoissonArrivals(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	t0 := time.Unix(1700000000, 0)
	for _, poisson := range []bool{false, true} {
		var sg sessGroups
		at := t0
		for range 5000 {
			g := group{start: at, main: scenarios.PageModify}
			slots := 1
			if r.Float64() < 0.3 {
				g.extra = make([]scenarios.PageKind, 2+r.IntN(4))
				slots += len(g.extra)
			}
			sg.groups = append(sg.groups, g)
			gap := time.Duration(slots) * 5 * time.Millisecond
			if poisson {
				gap = 0
				for range slots {
					gap += time.Duration(r.ExpFloat64() * float64(5*time.Millisecond))
				}
			}
			at = at.Add(gap + time.Duration(r.IntN(200))*time.Microsecond) // dispatch jitter
		}
		got, cv, _ := NewFitter(FitOptions{}).poisson([]sessGroups{sg})
		if got != poisson {
			t.Errorf("poisson %v fitted as %v (cv %.2f)", poisson, got, cv)
		}
	}
}

// A main page that starts a few tens of milliseconds after a burst of its
// session (think times of mean 1 s are often that short) is the next page,
// not part of the burst: taking it in would lengthen the think times.
func TestFitBurstsKeepShortThinkTimes(t *testing.T) {
	t.Parallel()
	want, err := scenarios.Lookup("ajax-heavy")
	if err != nil {
		t.Fatal(err)
	}
	fit := fitOf(t, simulate(want, 30*time.Second, 90*time.Second, 9))
	within(t, "think time", fit.Scenario.Users.ThinkTime.Mean(), want.Users.ThinkTime.Mean(), 0.05)
	near(t, "burst probability", fit.Scenario.Pages.Burst.Probability, want.Pages.Burst.Probability, 0.03)
}

// A burst on a new session: a read-only page of it starts a few
// microseconds before the page that creates the session and finds it
// locked by that page (a 423, then a 200): the session began in the
// capture. A session whose first page finds it with no page creating it
// existed before the capture, and so does one the capture joined inside a
// page.
func TestFitBurstOnANewSessionBeganInTheCapture(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1700000000, 0)
	web := netip.MustParseAddr("127.0.0.2")
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	page := func(id string, kind scenarios.PageKind, from, to float64, existed, created, partial bool) *Page {
		return &Page{Session: SessionKey{App: testApp, ID: id}, Web: web, Kind: kind, Start: at(from), End: at(to),
			Existed: existed, Created: created, Partial: partial, Status: 200}
	}
	f := NewFitter(FitOptions{})
	for _, p := range []*Page{ // in the order they end
		page("new", scenarios.PageReadUnchanged, 0.030, 6, false, true, false),
		page("new", scenarios.PageReadOnly, 0, 500, true, false, false),
		page("new", scenarios.PageReadUnchanged, 4, 520, true, false, false),
		page("old", scenarios.PageReadOnly, 0, 2, true, false, false),
		page("old", scenarios.PageModify, 1000, 1040, true, false, false),
		page("joined", scenarios.PageModify, 0, 20, false, false, true),
		page("late", scenarios.PageReadOnly, 10, 12, true, false, false),
		page("late", scenarios.PageModify, 3000, 3050, false, true, false), // it expired and came back: a new life
	} {
		if err := f.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	// late's new life began in the capture, its first existed before it.
	if len(f.done) != 1 || !f.done[0].existing() {
		t.Errorf("late's first life: %d ended lives", len(f.done))
	}
	for id, want := range map[string]bool{"new": false, "old": true, "joined": true, "late": false} {
		if s := f.sess[SessionKey{App: testApp, ID: id}]; s == nil || s.existing() != want {
			t.Errorf("session %s: existing %v, want %v", id, s != nil && s.existing(), want)
		}
	}
}

// The execution timeout is the LockAge at which the clients break locks
// (e.3): every page that got a 423 that old broke it. A lone "break" at a
// younger age (a holder's own release on the connection a waiter's 423
// had just used looks like one) among hundreds of pages that got 423s as
// old and broke nothing does not set it.
func TestFitExecutionTimeoutFromLockBreaks(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1700000000, 0)
	fit := func(pages ...[3]int64) (time.Duration, *Fit) { // {count, largest LockAge seen, break age}
		f := NewFitter(FitOptions{})
		for _, p := range pages {
			for range p[0] {
				pg := &Page{Session: SessionKey{App: testApp, ID: "s"}, Kind: scenarios.PageReadUnchanged, Start: t0, End: t0.Add(time.Second),
					Polls: 2, LockWait: time.Second, MaxLockAge: p[1], BreakAge: p[2]}
				if p[2] > 0 {
					pg.Breaks = 1
				}
				if err := f.Add(pg); err != nil {
					t.Fatal(err)
				}
			}
		}
		sc := &scenarios.Scenario{}
		out := &Fit{Comments: map[string]string{}}
		f.fitClient(sc, out)
		return sc.Client.ExecutionTimeout.D(), out
	}
	// Clients with a 5 s timeout: 400 pages waited on locks up to 4 s old,
	// 3 releases mistaken for breaks at 1 s, 20 pages broke 5-6 s locks.
	d, out := fit([3]int64{400, 4, 0}, [3]int64{3, 1, 1}, [3]int64{15, 5, 5}, [3]int64{5, 6, 6})
	if d != 5*time.Second || !strings.Contains(out.Comments["client.execution_timeout"], "20 of the 20 pages") {
		t.Errorf("execution timeout %v: %q", d, out.Comments["client.execution_timeout"])
	}
	// Only the mistaken breaks: the default stays, with a note.
	d, out = fit([3]int64{400, 4, 0}, [3]int64{3, 1, 1})
	if d != 0 || !strings.Contains(strings.Join(out.Notes, "\n"), "client.execution_timeout: 3 pages broke a lock") {
		t.Errorf("execution timeout %v: %q %q", d, out.Comments["client.execution_timeout"], out.Notes)
	}
}

// Without lock breaks, the execution timeout shows in the pages that stop
// polling for a lock: their waits gather at it. Waits cut by the capture's
// end are left out; scattered waits (no one timeout) keep the default.
func TestFitExecutionTimeoutFromGiveUps(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1700000000, 0)
	fit := func(waits ...float64) (time.Duration, *Fit) {
		f := NewFitter(FitOptions{})
		add := func(p *Page) {
			if err := f.Add(p); err != nil {
				t.Fatal(err)
			}
		}
		for i, w := range waits {
			add(&Page{Session: SessionKey{App: testApp, ID: fmt.Sprint("s", i)}, Start: t0.Add(time.Duration(i) * time.Second),
				Polls: int(w / 0.5), LockWait: time.Duration(w * float64(time.Second)), Unfinished: true})
		}
		// Cut by the capture's end after 1 s of waiting; and the last page.
		add(&Page{Session: SessionKey{App: testApp, ID: "cut"}, Start: t0.Add(100 * time.Second), Polls: 2, LockWait: time.Second, Unfinished: true})
		add(&Page{Session: SessionKey{App: testApp, ID: "last"}, Kind: scenarios.PageReadOnly, Start: t0.Add(101 * time.Second), End: t0.Add(101 * time.Second)})
		sc := &scenarios.Scenario{Client: scenarios.Client{LockPollInterval: scenarios.Duration(500 * time.Millisecond)}}
		out := &Fit{Comments: map[string]string{}}
		f.fitClient(sc, out)
		return sc.Client.ExecutionTimeout.D(), out
	}
	d, out := fit(5.001, 5.002, 5.001, 5.003, 3.5, 5.001, 7.4)
	if d != 5*time.Second || !strings.Contains(out.Comments["client.execution_timeout"], "of the 7 pages") {
		t.Errorf("execution timeout %v: %q %q", d, out.Comments["client.execution_timeout"], out.Notes)
	}
	d, out = fit(1, 2.5, 4, 6, 8, 9.5, 12)
	if d != 0 || !strings.Contains(strings.Join(out.Notes, "\n"), "only 1 of them") {
		t.Errorf("execution timeout %v: %q %q", d, out.Comments["client.execution_timeout"], out.Notes)
	}
}

// Samples that are not lognormal but closest to it (here sums of two
// exponentials, and a mix of short and long gaps as the think times of a
// busy open model): the fitted lognormal keeps the sample mean, which the
// moments of the logs alone miss (by 4 % and 8 % here).
func TestFitDistLognormalKeepsTheMean(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 8))
	gap := func() float64 {
		x := 0.01 + 0.3*r.ExpFloat64()
		if r.Float64() < 0.4 {
			x += 2 * r.ExpFloat64()
		}
		return x
	}
	for _, c := range []struct {
		name string
		draw func() float64
	}{
		{"gamma 2", func() float64 { return 0.5*r.ExpFloat64() + 0.5*r.ExpFloat64() }},
		{"gaps mix", gap},
	} {
		name, draw := c.name, c.draw
		xs := make([]float64, 5000)
		sum := 0.0
		for i := range xs {
			xs[i] = draw()
			sum += xs[i]
		}
		got, stat := fitDist(xs, 0)
		if got.Kind != scenarios.DistLognormal {
			t.Fatalf("%s fitted as %+v (%s)", name, got, stat)
		}
		within(t, name+" mean", got.Mean(), sum/float64(len(xs)), 0.01)
	}
}
