package trace

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aspstate/aspstate/scenarios"
	"go.yaml.in/yaml/v3"
)

// FitOptions tune Fitter.
type FitOptions struct {
	// Name and Description of the fitted scenario (defaults "fitted" and a
	// line naming Source).
	Name, Description string
	// Source names what was fitted (file names), for the description.
	Source string
	// Interval is the bin of the per-interval page rate (default 1s).
	Interval time.Duration
	// BurstWindow: pages of one session that start within it of each other
	// are one AJAX fan-out (default 100ms: the planner starts them at one
	// instant, a busy client a little apart; three pages of a session this
	// close by chance are rare, and two are never taken for a burst).
	BurstWindow time.Duration
}

// Fitter fits a scenario to the pages of a capture: give it every page
// (Add, e.g. as a PageBuilder's emit function), then call Fit. It keeps the
// sessions whose pages it has seen and a few numbers per page (start, web
// server, sizes), not the pages themselves.
type Fitter struct {
	opt  FitOptions
	sess map[SessionKey]*sessFit
	done []*sessFit

	webs       map[netip.Addr]bool
	partitions map[netip.AddrPort]bool
	bins       map[int64]float64 // page starts per Interval, by Unix interval number
	first      time.Time         // first page start
	last       time.Time         // last page start
	pages      int
	unfinished int
	partial    int

	exec     []float64 // seconds
	polls    []float64 // LockWait/Polls, seconds
	timeouts map[int32]int
	lockAges []lockAges // of the pages that got a 423
	gaveUp   []gaveUp   // pages that stopped polling without the lock
	lostW    int
}

// sessFit is one session as the fitter follows it.
type sessFit struct {
	app     string
	alive   bool // some page found it or created it
	lastEnd time.Time
	// firstStart and firstEnd are the start and end of its earliest page
	// so far; firstPartial: the capture began inside that page; firstFound:
	// it found the session there.
	firstStart, firstEnd     time.Time
	firstPartial, firstFound bool
	// created is the start of its earliest page that created it (zero:
	// none did).
	created time.Time
	pages   []pageLite
	abandon bool
}

// existing tells whether the session was first seen mid-life (else it
// began in the capture): the capture began inside its earliest page, or
// that page found it there while no page that started before it ended was
// creating it. The pages of a burst on a new session start together: one
// may start first and find the session there, locked (a 423) or just
// written by the page that creates it, which started before that page
// ended.
func (s *sessFit) existing() bool {
	return s.firstPartial || s.firstFound && (s.created.IsZero() || !s.created.Before(s.firstEnd))
}

type pageLite struct {
	start, end time.Time
	web        netip.Addr
	kind       scenarios.PageKind
	put        int // modify PUT body size, 0 otherwise
}

// NewFitter returns an empty fitter.
func NewFitter(opt FitOptions) *Fitter {
	if opt.Interval <= 0 {
		opt.Interval = time.Second
	}
	if opt.BurstWindow <= 0 {
		opt.BurstWindow = 100 * time.Millisecond
	}
	if opt.Name == "" {
		opt.Name = "fitted"
	}
	return &Fitter{opt: opt, sess: map[SessionKey]*sessFit{}, webs: map[netip.Addr]bool{},
		partitions: map[netip.AddrPort]bool{}, bins: map[int64]float64{}, timeouts: map[int32]int{}}
}

// Add takes one page.
func (f *Fitter) Add(p *Page) error {
	f.pages++
	f.webs[p.Web] = true
	f.partitions[p.Partition] = true
	if f.first.IsZero() || p.Start.Before(f.first) {
		f.first = p.Start
	}
	if p.Start.After(f.last) {
		f.last = p.Start
	}
	f.bins[p.Start.UnixNano()/int64(f.opt.Interval)]++
	if p.Unfinished {
		f.unfinished++
	}
	if p.Partial {
		f.partial++
	}
	if p.Writable() && !p.Partial && !p.Unfinished && p.Exec > 0 {
		f.exec = append(f.exec, p.Exec.Seconds())
	}
	if p.Polls > 0 && !p.Unfinished && p.LockWait > 0 {
		f.polls = append(f.polls, p.LockWait.Seconds()/float64(p.Polls))
	}
	if p.Timeout > 0 {
		f.timeouts[p.Timeout]++
	}
	if p.Polls > 0 {
		f.lockAges = append(f.lockAges, lockAges{seen: p.MaxLockAge, broke: p.BreakAge})
		if p.Unfinished && p.Acquired.IsZero() && p.LockWait > 0 {
			f.gaveUp = append(f.gaveUp, gaveUp{last: p.Start.Add(p.LockWait), wait: p.LockWait.Seconds()})
		}
	}
	if p.LostWrite {
		f.lostW++
	}
	s := f.sess[p.Session]
	// A page that creates the session after all its pages ended begins a
	// new life of its id (it had expired, or the server lost it). The pages
	// of a burst on a new session may each create it (each found it
	// missing): they overlap, and are one life.
	if s != nil && p.Created && s.alive && p.Start.After(s.lastEnd) {
		f.done = append(f.done, s)
		s = nil
	}
	if s == nil {
		s = &sessFit{app: p.Session.App}
		f.sess[p.Session] = s
	}
	// What tells a session first seen mid-life (see existing): its first
	// page by start (pages come as they end), whether it found the session
	// there (a GET answered 200 before any PUT), and its first creation.
	if s.firstStart.IsZero() || p.Start.Before(s.firstStart) {
		s.firstStart, s.firstEnd = p.Start, p.End
		s.firstPartial, s.firstFound = p.Partial, p.Existed && !p.Created
	}
	if p.Created && (s.created.IsZero() || p.Start.Before(s.created)) {
		s.created = p.Start
	}
	s.alive = s.alive || p.Existed || p.Created || p.Partial
	if p.End.After(s.lastEnd) {
		s.lastEnd = p.End
	}
	lite := pageLite{start: p.Start, end: p.End, web: p.Web, kind: p.Kind}
	if p.Kind == scenarios.PageModify && !p.Partial {
		lite.put = p.BodySize
	}
	s.pages = append(s.pages, lite)
	if p.Kind == scenarios.PageAbandon {
		s.abandon = true
		f.done = append(f.done, s)
		delete(f.sess, p.Session)
	}
	return nil
}

// Fit is a fitted scenario with the statistic behind each field.
type Fit struct {
	// Scenario is valid (Validate passes) with defaults applied where the
	// capture said nothing.
	Scenario *scenarios.Scenario
	// Comments maps a YAML path ("users.think_time") to the statistic it
	// came from and its sample count.
	Comments map[string]string
	// Notes are header lines: what the capture held and what was not fitted.
	Notes []string

	fitted *scenarios.Scenario // the fitted fields only (what YAML writes)
}

// ErrNoPages is returned by Fit when the capture held no page.
var ErrNoPages = errors.New("no page of the ASP.NET session-state client in the capture: nothing to fit")

// Fit fits the scenario to the pages added so far.
func (f *Fitter) Fit() (*Fit, error) {
	if f.pages == 0 {
		return nil, ErrNoPages
	}
	sessions := append([]*sessFit(nil), f.done...)
	for _, s := range f.sess {
		sessions = append(sessions, s)
	}
	// Sessions in a fixed order, so that the fit does not depend on map order.
	sort.Slice(sessions, func(i, j int) bool { return sessions[i].first().Before(sessions[j].first()) })
	out := &Fit{Comments: map[string]string{}}
	sc := &scenarios.Scenario{Name: f.opt.Name, Description: f.opt.Description}
	if sc.Description == "" {
		sc.Description = "Farm fitted by aspstate trace fit"
		if f.opt.Source != "" && len(sc.Description)+len(f.opt.Source)+6 <= scenarios.MaxDescriptionLen {
			sc.Description += " from " + f.opt.Source
		}
	}
	span := f.last.Sub(f.first)
	out.Notes = append(out.Notes, fmt.Sprintf("fitted by aspstate trace fit from %d pages of %d sessions over %s (%s to %s)",
		f.pages, len(sessions), span.Round(time.Millisecond), f.first.UTC().Format(time.RFC3339Nano), f.last.UTC().Format(time.RFC3339Nano)))
	if f.partial+f.unfinished > 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("%d pages began before the capture and %d did not end in it: counted, not timed", f.partial, f.unfinished))
	}

	f.fitFarm(sc, out, sessions)
	groups := f.groups(sessions)
	f.fitUsers(sc, out, sessions, groups)
	f.fitPages(sc, out, groups)
	f.fitSession(sc, out, sessions)
	f.fitClient(sc, out)
	f.fitRate(sc, out, groups)
	f.fitPopulation(sc, out, groups)
	out.fitted = sc.Clone()
	sc.ApplyDefaults()
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("the fitted scenario is not valid (a bug in trace fit): %w", err)
	}
	out.Scenario = sc
	return out, nil
}

func (s *sessFit) first() time.Time {
	t := s.pages[0].start
	for _, p := range s.pages {
		if p.start.Before(t) {
			t = p.start
		}
	}
	return t
}

// fitFarm: web servers, apps and weights, partitions, load balancing.
func (f *Fitter) fitFarm(sc *scenarios.Scenario, out *Fit, sessions []*sessFit) {
	sc.Farm.WebServers = len(f.webs)
	out.Comments["farm.web_servers"] = fmt.Sprintf("distinct client addresses (%s) over %d pages", addrList(f.webs), f.pages)
	sc.Farm.Partitions = len(f.partitions)
	var parts []string
	for a := range f.partitions {
		parts = append(parts, a.String())
	}
	sort.Strings(parts)
	out.Comments["farm.partitions"] = fmt.Sprintf("distinct state-server addresses (%s); give as many --target", strings.Join(parts, ", "))

	apps := map[string]int{}
	for _, s := range sessions {
		apps[s.app]++
	}
	var ids []string
	for a := range apps {
		ids = append(ids, a)
	}
	sort.Slice(ids, func(i, j int) bool {
		return apps[ids[i]] > apps[ids[j]] || apps[ids[i]] == apps[ids[j]] && ids[i] < ids[j]
	})
	for _, id := range ids {
		app := id
		if app == "" {
			app = scenarios.DefaultAppID // keys without an app prefix
		}
		sc.Farm.Apps = append(sc.Farm.Apps, scenarios.App{ID: app, Weight: round(float64(apps[id])/float64(len(sessions)), 4)})
	}
	out.Comments["farm.apps"] = fmt.Sprintf("application ids of the session keys; weight = share of %d sessions", len(sessions))

	// Sticky: the pages of a session stay on one web server. Round-robin:
	// farm-wide, each web server's page is followed by one particular other
	// server's. Random: neither.
	multi, stay := 0, 0
	type at struct {
		t   time.Time
		web netip.Addr
	}
	var seq []at
	for _, s := range sessions {
		one := true
		for _, p := range s.pages {
			seq = append(seq, at{p.start, p.web})
			one = one && p.web == s.pages[0].web
		}
		if len(s.pages) > 1 {
			multi++
			if one {
				stay++
			}
		}
	}
	sort.Slice(seq, func(i, j int) bool { return seq[i].t.Before(seq[j].t) })
	next := map[[2]netip.Addr]int{}
	for i := 1; i < len(seq); i++ {
		next[[2]netip.Addr{seq[i-1].web, seq[i].web}]++
	}
	best := map[netip.Addr]int{}
	for k, n := range next {
		best[k[0]] = max(best[k[0]], n)
	}
	succ := 0
	for _, n := range best {
		succ += n
	}
	succShare := float64(succ) / float64(max(1, len(seq)-1))
	stayShare := float64(stay) / float64(max(1, multi))
	switch {
	case len(f.webs) == 1:
		sc.Farm.LoadBalancing = scenarios.LBSticky
		out.Comments["farm.load_balancing"] = "one web server: every mode is sticky"
	case multi > 0 && stayShare >= 0.95:
		sc.Farm.LoadBalancing = scenarios.LBSticky
	case succShare >= 0.7:
		sc.Farm.LoadBalancing = scenarios.LBRoundRobin
	default:
		sc.Farm.LoadBalancing = scenarios.LBRandom
	}
	if _, ok := out.Comments["farm.load_balancing"]; !ok {
		out.Comments["farm.load_balancing"] = fmt.Sprintf("%.3f of %d multi-page sessions stay on one web server; %.3f of %d successive pages go to each server's usual successor",
			stayShare, multi, succShare, max(0, len(seq)-1))
	}
}

// burstStep is the longest gap between successive pages of one burst: the
// client starts a fan-out's requests together (microseconds apart, a few
// milliseconds on a busy machine), while the next main page of the session
// comes a think time later, which is rarely this short. Without it a main
// page within BurstWindow of a burst would be taken into it, lengthening
// the think times.
const burstStep = 50 * time.Millisecond

// group is one main page of a session with the AJAX fan-out started with it.
type group struct {
	start time.Time
	main  scenarios.PageKind
	extra []scenarios.PageKind // burst requests (at least 2, or none)
}

// sessGroups is a session's pages grouped into main pages and bursts.
type sessGroups struct {
	s      *sessFit
	groups []group
}

// groups splits every session's pages into main pages and bursts: pages
// that start within BurstWindow of a page are its fan-out when there are
// at least two of them (a scenario's bursts have at least two requests).
func (f *Fitter) groups(sessions []*sessFit) []sessGroups {
	var out []sessGroups
	for _, s := range sessions {
		sort.SliceStable(s.pages, func(i, j int) bool { return s.pages[i].start.Before(s.pages[j].start) })
		sg := sessGroups{s: s}
		for i := 0; i < len(s.pages); {
			j := i + 1
			for j < len(s.pages) && s.pages[j].start.Sub(s.pages[i].start) <= f.opt.BurstWindow &&
				s.pages[j].start.Sub(s.pages[j-1].start) <= burstStep {
				j++
			}
			if j-i >= 3 {
				g := group{start: s.pages[i].start, main: s.pages[i].kind}
				for _, p := range s.pages[i+1 : j] {
					g.extra = append(g.extra, p.kind)
				}
				sg.groups = append(sg.groups, g)
			} else {
				for _, p := range s.pages[i:j] {
					sg.groups = append(sg.groups, group{start: p.start, main: p.kind})
				}
			}
			i = j
		}
		out = append(out, sg)
	}
	return out
}

// fitUsers: pages per session (Kaplan–Meier over sessions cut by the
// capture), think time, abandon fraction.
func (f *Fitter) fitUsers(sc *scenarios.Scenario, out *Fit, sessions []*sessFit, groups []sessGroups) {
	// The gaps between a session's page starts (bursts as one) are its
	// think times; the last page of a session silent at the capture's end
	// opens a gap the capture cuts (right-censored) if the session goes on.
	var think []float64
	var obs []sessObs
	var openGaps []float64 // silent gaps of the sessions first seen mid-life
	existing := 0
	for _, sg := range groups {
		for i := 1; i < len(sg.groups); i++ {
			think = append(think, sg.groups[i].start.Sub(sg.groups[i-1].start).Seconds())
		}
		lastStart := sg.groups[len(sg.groups)-1].start
		remain := f.last.Sub(lastStart).Seconds()
		if sg.s.existing() {
			existing++ // cut by the capture's start: its length is not known
			if !sg.s.abandon {
				openGaps = append(openGaps, remain)
			}
			continue
		}
		obs = append(obs, sessObs{pages: len(sg.groups), remain: remain, ended: sg.s.abandon})
	}
	cf := fitCounts(obs, think, openGaps)
	if len(think) > 0 {
		d, stat := fitDistW(think, cf.thinkW, 0)
		sc.Users.ThinkTime = d
		out.Comments["users.think_time"] = fmt.Sprintf("%s of %d think times (gaps between a session's page starts, bursts as one), "+
			"each weighted by its Kaplan-Meier mass (the gaps the capture's end cut are censored)", stat, len(think))
	}
	created := len(obs)
	if len(obs) > 0 {
		sc.Users.PagesPerSession = cf.dist
		out.Comments["users.pages_per_session"] = fmt.Sprintf("%s; %d sessions began in the capture, %.0f of them go on after it (by expectation), %d first seen mid-life (not counted)",
			cf.stat, created, float64(created)-cf.nEnded, existing)
		// Abandon fraction: DELETEs among the sessions that ended, each
		// silent session counted by its probability of having ended.
		abandoned, ended := 0, 0.0
		for i, o := range obs {
			if o.ended {
				abandoned++
			}
			ended += cf.ended[i]
		}
		if ended > 0 {
			sc.Users.AbandonFraction = round(float64(abandoned)/ended, 4)
			out.Comments["users.abandon_fraction"] = fmt.Sprintf("%d sessions ended with a DELETE of %.1f that ended in the capture (by expectation under pages_per_session)",
				abandoned, ended)
		}
	}
	out.Notes = append(out.Notes, fmt.Sprintf("%d sessions existed before the capture (first seen mid-life), %d were created in it", existing, created))
}

// fitPages: mix, exec time, bursts.
func (f *Fitter) fitPages(sc *scenarios.Scenario, out *Fit, groups []sessGroups) {
	mix := map[scenarios.PageKind]int{}
	bmix := map[scenarios.PageKind]int{}
	mains, bursts := 0, 0
	var sizes []float64
	for _, sg := range groups {
		for _, g := range sg.groups {
			if g.main != "" && g.main != scenarios.PageAbandon {
				mix[g.main]++
			}
			mains++
			if len(g.extra) > 0 {
				bursts++
				sizes = append(sizes, float64(len(g.extra)))
				for _, k := range g.extra {
					if k != "" {
						bmix[k]++
					}
				}
			}
		}
	}
	sc.Pages.Mix, out.Comments["pages.mix"] = mixOf(mix, "main pages (abandon pages are users.abandon_fraction)")
	if len(f.exec) > 0 {
		d, stat := fitDist(f.exec, 0)
		sc.Pages.ExecTime = d
		out.Comments["pages.exec_time"] = fmt.Sprintf("%s of %d execution times (acquire reply -> PUT/release/DELETE)", stat, len(f.exec))
	}
	if bursts > 0 {
		sc.Pages.Burst.Probability = round(float64(bursts)/float64(mains), 4)
		out.Comments["pages.burst.probability"] = fmt.Sprintf("%d of %d main pages fanned out (>= 2 more pages of the session within %s)", bursts, mains, f.opt.BurstWindow)
		d, stat := fitDist(sizes, 2)
		sc.Pages.Burst.Size = d
		out.Comments["pages.burst.size"] = fmt.Sprintf("%s of %d burst sizes", stat, len(sizes))
		if len(bmix) > 0 {
			sc.Pages.Burst.Mix, out.Comments["pages.burst.mix"] = mixOf(bmix, "burst pages")
		}
	} else {
		out.Notes = append(out.Notes, fmt.Sprintf("pages.burst: none of %d main pages fanned out", mains))
	}
}

// mixOf turns kind counts into a mix (shares, 4 digits) and its comment.
func mixOf(n map[scenarios.PageKind]int, what string) (scenarios.Mix, string) {
	total := 0
	for _, c := range n {
		total += c
	}
	m := scenarios.Mix{}
	var parts []string
	for _, k := range []scenarios.PageKind{scenarios.PageModify, scenarios.PageReadUnchanged, scenarios.PageReadOnly, scenarios.PageSessionless, scenarios.PageAbandon} {
		if n[k] > 0 {
			m[k] = round(float64(n[k])/float64(total), 4)
			parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
		}
	}
	if total == 0 {
		return nil, ""
	}
	return m, fmt.Sprintf("shares of %d %s: %s", total, what, strings.Join(parts, ", "))
}

// fitSession: first size, growth per modify, cap.
func (f *Fitter) fitSession(sc *scenarios.Scenario, out *Fit, sessions []*sessFit) {
	var first, growth []float64
	shrunk, maxPut := 0, 0
	for _, s := range sessions {
		var puts []pageLite
		for _, p := range s.pages {
			if p.put > 0 {
				puts = append(puts, p)
				maxPut = max(maxPut, p.put)
			}
		}
		if len(puts) == 0 {
			continue
		}
		sort.Slice(puts, func(i, j int) bool { return puts[i].end.Before(puts[j].end) })
		if !s.existing() {
			first = append(first, float64(puts[0].put))
		}
		for i := 1; i < len(puts); i++ {
			d := puts[i].put - puts[i-1].put
			if d < 0 {
				shrunk++
				continue
			}
			growth = append(growth, float64(d))
		}
	}
	if len(first) > 0 {
		d, stat := fitDist(first, 1)
		sc.Session.Size = d
		out.Comments["session.size"] = fmt.Sprintf("%s of the first PUT body of %d sessions created in the capture (bytes)", stat, len(first))
	}
	if len(growth) > 0 {
		allZero := true
		for _, g := range growth {
			allZero = allZero && g == 0
		}
		if allZero {
			out.Notes = append(out.Notes, fmt.Sprintf("session.growth_per_modify: none (%d successive PUTs of one session had equal sizes)", len(growth)))
		} else {
			d, stat := fitDist(growth, 0)
			sc.Session.GrowthPerModify = d
			out.Comments["session.growth_per_modify"] = fmt.Sprintf("%s of %d size differences between successive PUTs of a session (%d shrinking ones left out)", stat, len(growth), shrunk)
		}
	}
	if maxPut > scenarios.DefaultMaxSessionBytes {
		sc.Session.MaxBytes = int64(maxPut)
		out.Comments["session.max_bytes"] = "largest PUT body in the capture"
	}
}

// fitClient: session timeout, lock poll interval, execution timeout.
func (f *Fitter) fitClient(sc *scenarios.Scenario, out *Fit) {
	best, n, total := int32(0), 0, 0
	for t, c := range f.timeouts {
		total += c
		if c > n || c == n && t < best {
			best, n = t, c
		}
	}
	if total > 0 {
		sc.Client.SessionTimeout = int(best)
		out.Comments["client.session_timeout"] = fmt.Sprintf("most common PUT Timeout header: %d of %d PUTs (%d distinct values)", n, total, len(f.timeouts))
	}
	if len(f.polls) > 0 {
		med := median(f.polls)
		ms := math.Max(1, math.Round(med*1000))
		sc.Client.LockPollInterval = scenarios.Duration(time.Duration(ms) * time.Millisecond)
		out.Comments["client.lock_poll_interval"] = fmt.Sprintf("median of lock wait / 423 polls over %d pages that waited", len(f.polls))
	} else {
		out.Notes = append(out.Notes, "client.lock_poll_interval: no page waited for a lock (default kept)")
	}
	t, stat := execTimeout(f.lockAges)
	switch {
	case t > 0:
		sc.Client.ExecutionTimeout = scenarios.Duration(time.Duration(t) * time.Second)
		out.Comments["client.execution_timeout"] = stat
	default:
		d, why := f.waitTimeout(sc.Client.LockPollInterval.D())
		if d > 0 {
			sc.Client.ExecutionTimeout = scenarios.Duration(d)
			out.Comments["client.execution_timeout"] = why
		} else if stat != "" || why != "" {
			out.Notes = append(out.Notes, "client.execution_timeout: "+strings.Join(slices.DeleteFunc([]string{stat, why}, func(s string) bool { return s == "" }), "; ")+" (default kept)")
		}
	}
}

// gaveUp is a page that stopped polling for a lock: when its last 423
// came (about) and how long it had waited then (s).
type gaveUp struct {
	last time.Time
	wait float64
}

// waitTimeout estimates the execution timeout from the pages that gave up
// waiting for a lock: a client stops polling once it has waited that long
// (e.2), so their waits (first 423 to last) gather at it (a 120 s
// ajax-heavy capture: 229 pages, the middle half all at 5.001 s, for 5 s).
// Pages whose last 423 came less than two poll intervals and a second
// before the capture's end may have been cut by it and are left out; it
// takes at least 5 that gave up, at least half of them within a quarter
// poll interval of their median (else what stopped them was not one
// timeout: lost replies, pages the builder mixed up). The median is
// rounded to 100 ms.
func (f *Fitter) waitTimeout(poll time.Duration) (time.Duration, string) {
	margin := 2*poll + time.Second
	var waits []float64
	for _, g := range f.gaveUp {
		if f.last.Sub(g.last) >= margin {
			waits = append(waits, g.wait)
		}
	}
	if len(waits) == 0 {
		return 0, ""
	}
	if len(waits) < 5 {
		return 0, fmt.Sprintf("%d pages stopped polling for a lock, too few to tell a timeout", len(waits))
	}
	med := median(waits)
	near := 0
	for _, w := range waits {
		if math.Abs(w-med) <= poll.Seconds()/4 {
			near++
		}
	}
	if 2*near < len(waits) {
		return 0, fmt.Sprintf("%d pages stopped polling for a lock after a median %.4gs, only %d of them within %s of it", len(waits), med, near, poll/4)
	}
	d := time.Duration(math.Round(med*10)) * 100 * time.Millisecond
	return d, fmt.Sprintf("median wait (first 423 to last) of the %d pages that stopped polling for a lock, %.4gs (%d of them within %s of it)",
		len(waits), med, near, poll/4)
}

// lockAges is what one page that got a 423 shows of the execution
// timeout: the largest LockAge (s) of its 423s and of those that made it
// break the lock (0: it broke none).
type lockAges struct{ seen, broke int64 }

// execTimeout estimates the clients' execution timeout T (seconds) from
// the lock breaks (e.3): a client breaks a lock when a 423's LockAge
// reaches T, so every page that got a 423 at least T old broke a lock at
// least that old, and none broke a younger one. T is the smallest LockAge
// of a break at which at least half of the pages that got a 423 that old
// broke the lock: a release the builder takes for a break by mistake (a
// holder's own release sent on the connection a waiter's 423 just used)
// stands alone among the many pages that got 423s as old and broke
// nothing. 0 when no age qualifies; stat says why.
func execTimeout(pages []lockAges) (int64, string) {
	var ages []int64
	for _, p := range pages {
		if p.broke > 0 {
			ages = append(ages, p.broke)
		}
	}
	if len(ages) == 0 {
		return 0, ""
	}
	slices.Sort(ages)
	for _, a := range slices.Compact(ages) {
		seen, broke := 0, 0
		for _, p := range pages {
			if p.seen >= a {
				seen++
			}
			if p.broke >= a {
				broke++
			}
		}
		if 2*broke >= seen {
			return a, fmt.Sprintf("smallest LockAge (s) after which the clients broke the lock: %d of the %d pages that got a 423 at least %ds old broke it (%d pages broke one)",
				broke, seen, a, len(ages))
		}
	}
	return 0, fmt.Sprintf("%d pages broke a lock, but at no LockAge did half the pages that got a 423 as old break it (%d pages got a 423)", len(ages), len(pages))
}

// fitRate: constant, or steps where the per-interval page rate moves
// (binary segmentation of the per-interval counts, Poisson likelihood with
// overdispersion); Poisson or even arrivals from the spread of the gaps.
func (f *Fitter) fitRate(sc *scenarios.Scenario, out *Fit, groups []sessGroups) {
	iv := f.opt.Interval
	lo := f.first.UnixNano() / int64(iv)
	hi := f.last.UnixNano() / int64(iv)
	n := int(hi-lo) + 1
	counts := make([]float64, n)
	expo := make([]float64, n)
	for i := range n {
		counts[i] = f.bins[lo+int64(i)]
		expo[i] = iv.Seconds()
	}
	// The first and last bins are only partly inside the span.
	firstIn := float64((lo+1)*int64(iv)-f.first.UnixNano()) / 1e9
	lastIn := float64(f.last.UnixNano()-hi*int64(iv)) / 1e9
	if n == 1 {
		expo[0] = math.Max(f.last.Sub(f.first).Seconds(), 1e-3)
	} else {
		expo[0], expo[n-1] = math.Max(firstIn, 1e-3), math.Max(lastIn, 1e-3)
	}
	segs := segment(counts, expo)
	span := f.last.Sub(f.first)
	total := 0.0
	for _, c := range counts {
		total += c
	}
	poisson, cv, ngaps := f.poisson(groups)
	sc.Rate.Poisson = poisson
	out.Comments["rate.poisson"] = fmt.Sprintf("coefficient of variation %.2f of %d gaps between page arrivals, each scaled by the pages it started (>= 0.5: Poisson)", cv, ngaps)
	if len(segs) == 1 {
		sc.Rate.Shape = scenarios.ShapeConstant
		sc.Rate.PagesPerSecond = round(total/math.Max(span.Seconds(), 1e-3), 4)
		d := max(span.Round(time.Second), time.Second)
		sc.Duration = scenarios.Duration(d)
		out.Comments["rate"] = fmt.Sprintf("constant: %d pages over %s; the per-%s rate does not move beyond its noise", int(total), span.Round(time.Millisecond), iv)
		out.Comments["duration"] = "the capture's span"
		return
	}
	sc.Rate.Shape = scenarios.ShapeSteps
	for _, s := range segs {
		c, e := 0.0, 0.0
		for i := s[0]; i < s[1]; i++ {
			c += counts[i]
			e += expo[i]
		}
		d := time.Duration(e * float64(time.Second)).Round(time.Millisecond)
		sc.Rate.Steps = append(sc.Rate.Steps, scenarios.Step{PagesPerSecond: round(c/e, 4), Duration: scenarios.Duration(max(d, time.Millisecond))})
	}
	out.Comments["rate"] = fmt.Sprintf("steps: %d pages over %s in %d levels where the per-%s rate moved beyond its noise (binary segmentation)",
		int(total), span.Round(time.Millisecond), len(segs), iv)
}

// poisson tells Poisson arrivals from evenly spaced ones: the gaps between
// successive arrivals of pages (a burst is one arrival that took as many
// slots as it has pages), each divided by the slots the earlier arrival
// took and scaled by the local rate, have a coefficient of variation near
// 1 for a Poisson process and near 0 for even spacing.
func (f *Fitter) poisson(groups []sessGroups) (bool, float64, int) {
	type arr struct {
		t     time.Time
		slots int
	}
	var as []arr
	for _, sg := range groups {
		for _, g := range sg.groups {
			as = append(as, arr{g.start, 1 + len(g.extra)})
		}
	}
	sort.Slice(as, func(i, j int) bool { return as[i].t.Before(as[j].t) })
	var gaps []float64
	for i := 1; i < len(as); i++ {
		gaps = append(gaps, as[i].t.Sub(as[i-1].t).Seconds()/float64(as[i-1].slots))
	}
	if len(gaps) < 2 {
		return false, 0, len(gaps)
	}
	m, sd := meanSD(gaps)
	if m <= 0 {
		return false, 0, len(gaps)
	}
	// A rate that moves widens the spread: use the gaps' local CV, from the
	// differences of successive gaps (robust to slow changes of the rate).
	var dsum float64
	for i := 1; i < len(gaps); i++ {
		d := gaps[i] - gaps[i-1]
		dsum += d * d
	}
	local := math.Sqrt(dsum/float64(2*(len(gaps)-1))) / m
	cv := math.Min(sd/m, local)
	return cv >= 0.5, round(cv, 3), len(gaps)
}

// segment splits the per-interval counts into levels by binary
// segmentation: a split is kept when its Poisson log-likelihood gain,
// divided by the counts' overdispersion, beats a BIC-like penalty.
func segment(counts, expo []float64) [][2]int {
	n := len(counts)
	if n < 4 {
		return [][2]int{{0, n}}
	}
	// Overdispersion from successive differences (robust to a few jumps):
	// for Poisson counts (c[i+1]-c[i])^2 / (c[i+1]+c[i]) is about chi2(1),
	// whose median is 0.4549.
	var r []float64
	for i := 1; i < n; i++ {
		if s := counts[i] + counts[i-1]; s > 0 && expo[i] == expo[i-1] {
			d := counts[i] - counts[i-1]
			r = append(r, d*d/s)
		}
	}
	phi := 1.0
	if len(r) > 0 {
		phi = math.Max(1, median(r)/0.4549)
	}
	penalty := 4*math.Log(float64(n)) + 10
	ll := func(a, b int) float64 {
		c, e := 0.0, 0.0
		for i := a; i < b; i++ {
			c += counts[i]
			e += expo[i]
		}
		if c == 0 || e == 0 {
			return 0
		}
		return c*math.Log(c/e) - c
	}
	var out [][2]int
	var split func(a, b int)
	split = func(a, b int) {
		best, at := 0.0, -1
		whole := ll(a, b)
		for m := a + 2; m <= b-2; m++ {
			if g := ll(a, m) + ll(m, b) - whole; g > best {
				best, at = g, m
			}
		}
		if at < 0 || 2*best/phi <= penalty || len(out) > 30 {
			out = append(out, [2]int{a, b})
			return
		}
		split(a, at)
		split(at, b)
	}
	split(0, n)
	return out
}

// fitDist fits a distribution to samples (>= 0): constant when they are all
// equal, else the one of uniform (their range), exponential (mean matched
// after the clamps) and lognormal (mean and standard deviation of the logs)
// that is closest to them (Kolmogorov–Smirnov distance), clamped to the
// range of the data. lo raises the lower clamp (a count's floor). It
// returns the Dist and a phrase naming the statistic.
func fitDist(xs []float64, lo float64) (scenarios.Dist, string) {
	return fitDistW(xs, nil, lo)
}

// fitDistW is fitDist with a weight per sample (nil: all 1), for samples
// that a capture shows with unequal chances (long gaps are cut by its end
// more often than short ones).
func fitDistW(xs, ws []float64, lo float64) (scenarios.Dist, string) {
	type xw struct{ x, w float64 }
	s := make([]float64, len(xs))
	pairs := make([]xw, len(xs))
	for i, x := range xs {
		w := 1.0
		if ws != nil {
			w = ws[i]
		}
		pairs[i] = xw{x, w}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].x < pairs[j].x })
	wsum := 0.0
	cum := make([]float64, len(pairs)) // weight of the samples up to and including i
	for i, p := range pairs {
		s[i] = p.x
		wsum += p.w
		cum[i] = wsum
	}
	mn, mx := math.Max(s[0], lo), math.Max(s[len(s)-1], lo)
	wmean := func(f func(float64) float64, keep func(float64) bool) (float64, float64) {
		var a, b, n float64
		for _, p := range pairs {
			if keep(p.x) {
				v := f(p.x)
				a += p.w * v
				b += p.w * v * v
				n += p.w
			}
		}
		if n == 0 {
			return 0, 0
		}
		m := a / n
		return m, math.Sqrt(math.Max(0, b/n-m*m))
	}
	all := func(float64) bool { return true }
	m, _ := wmean(func(x float64) float64 { return x }, all)
	if mx-mn <= 1e-9*math.Max(1, mx) {
		return scenarios.Dist{Kind: scenarios.DistConstant, Value: sig(mx)}, fmt.Sprintf("constant (all equal, %s)", fmtNum(mx))
	}
	type cand struct {
		d    scenarios.Dist
		cdf  func(float64) float64
		stat string
	}
	cands := []cand{{
		d:    scenarios.Dist{Kind: scenarios.DistUniform, Min: sig(mn), Max: sig(mx)},
		cdf:  func(x float64) float64 { return (x - mn) / (mx - mn) },
		stat: fmt.Sprintf("uniform over the data's range [%s, %s]", fmtNum(mn), fmtNum(mx)),
	}}
	if avg := solveExpMean(m, mn, mx); avg > 0 {
		cands = append(cands, cand{
			d:    scenarios.Dist{Kind: scenarios.DistExponential, Avg: sig(avg), Min: sig(mn), Max: sig(mx)},
			cdf:  func(x float64) float64 { return 1 - math.Exp(-x/avg) },
			stat: fmt.Sprintf("exponential with the sample mean %s after clamping to the data's range", fmtNum(m)),
		})
	}
	positive := 0
	for _, x := range s {
		if x > 0 {
			positive++
		}
	}
	if positive >= 2 {
		mu, sd := wmean(math.Log, func(x float64) bool { return x > 0 })
		if sd > 0 {
			// The logs' sd is the shape; the log-mean is set so that the
			// clamped distribution has the sample mean (the moments of the
			// logs alone give the median: on gaps that are not lognormal,
			// e.g. ajax-heavy's think times, a mean 17 % over the data's).
			stat := fmt.Sprintf("lognormal by moments of the logs (mean %.3f, sd %.3f)", mu, sd)
			if mu2, ok := solveLognormalMu(m, sd, sig(mn), sig(mx)); ok {
				stat = fmt.Sprintf("lognormal with the logs' sd %.3f and the sample mean %s after clamping to the data's range (log-mean %.3f; the logs' own %.3f)",
					sd, fmtNum(m), mu2, mu)
				mu = mu2
			}
			cands = append(cands, cand{
				d:    lognormalDist(mu, sd, sig(mn), sig(mx)),
				cdf:  lognormalCDF(mu, sd),
				stat: stat,
			})
		}
	}
	best, bestKS := 0, math.Inf(1)
	for i, c := range cands {
		ks := ksDistance(s, cum, func(x float64) float64 {
			switch {
			case x < mn:
				return 0
			case x >= mx:
				return 1
			}
			return math.Max(0, math.Min(1, c.cdf(x)))
		})
		if ks < bestKS-1e-9 {
			best, bestKS = i, ks
		}
	}
	c := cands[best]
	return c.d, fmt.Sprintf("%s, sample mean %s, KS distance %.3f,", c.stat, fmtNum(m), bestKS)
}

// ksDistance is the Kolmogorov–Smirnov distance between the sorted sample
// s, whose cumulative weights are cum, and cdf.
func ksDistance(s, cum []float64, cdf func(float64) float64) float64 {
	n := cum[len(cum)-1]
	d := 0.0
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		before := 0.0
		if i > 0 {
			before = cum[i-1] / n
		}
		f := cdf(s[i])
		d = math.Max(d, math.Max(math.Abs(f-before), math.Abs(cum[j-1]/n-f)))
		i = j
	}
	return d
}

// solveExpMean returns the exponential mean whose samples, clamped to
// [lo, hi], have mean m; 0 when none does.
func solveExpMean(m, lo, hi float64) float64 {
	a, _ := increasingRoot(func(a float64) float64 {
		return scenarios.Dist{Kind: scenarios.DistExponential, Avg: a, Min: lo, Max: hi}.Mean()
	}, m, 1e-12, math.Max(m, 1e-9)*1e6)
	return a
}

// increasingRoot returns x in [a, b] where the increasing function mean
// reaches m, by bisection (false when it does not reach m there).
func increasingRoot(mean func(float64) float64, m, a, b float64) (float64, bool) {
	if mean(a) > m || mean(b) < m {
		return 0, false
	}
	for range 200 {
		c := (a + b) / 2
		if mean(c) < m {
			a = c
		} else {
			b = c
		}
	}
	return (a + b) / 2, true
}

// solveLognormalMu returns the log-mean of the lognormal with log-sd sd
// whose mean clamped to [lo, hi] is m (false when none is).
func solveLognormalMu(m, sd, lo, hi float64) (float64, bool) {
	if !(m > 0) {
		return 0, false
	}
	return increasingRoot(func(mu float64) float64 { return lognormalDist(mu, sd, lo, hi).Mean() }, m, math.Log(m)-sd*sd-20, math.Log(m)+20)
}

func meanSD(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	m := s / float64(len(xs))
	if len(xs) < 2 {
		return m, 0
	}
	var v float64
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return m, math.Sqrt(v / float64(len(xs)-1))
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// sig rounds x to 4 significant digits (readable YAML).
func sig(x float64) float64 {
	if x == 0 || math.IsInf(x, 0) || math.IsNaN(x) {
		return x
	}
	p := math.Pow(10, 3-math.Floor(math.Log10(math.Abs(x))))
	return math.Round(x*p) / p
}

// round rounds x to d decimals.
func round(x float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(x*p) / p
}

func fmtNum(x float64) string { return fmt.Sprintf("%.4g", x) }

func seconds(x float64) time.Duration { return time.Duration(x * float64(time.Second)) }

func addrList(m map[netip.Addr]bool) string {
	var s []netip.Addr
	for a := range m {
		s = append(s, a)
	}
	sort.Slice(s, func(i, j int) bool { return s[i].Less(s[j]) })
	var out []string
	for i, a := range s {
		if i == 8 {
			out = append(out, fmt.Sprintf("… %d more", len(s)-8))
			break
		}
		out = append(out, a.String())
	}
	return strings.Join(out, ", ")
}

// YAML writes the fitted scenario as a scenario file that the strict
// loader reads back into the same scenario: the notes as a header comment,
// each fitted field under a comment naming its statistic and sample count,
// distributions and mixes in flow style.
func (f *Fit) YAML() ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(f.fitted); err != nil {
		return nil, err
	}
	for path, c := range f.Comments {
		k, v := lookupNode(&doc, path)
		if k == nil {
			continue
		}
		k.HeadComment = wrapComment(c)
		if v.Kind == yaml.MappingNode && path != "rate" && path != "pages.burst" {
			v.Style = yaml.FlowStyle
		}
	}
	if _, v := lookupNode(&doc, "rate.steps"); v != nil {
		for _, st := range v.Content {
			st.Style = yaml.FlowStyle
		}
	}
	if _, v := lookupNode(&doc, "farm.apps"); v != nil {
		for _, a := range v.Content {
			a.Style = yaml.FlowStyle
		}
	}
	doc.HeadComment = wrapComment(strings.Join(f.Notes, "\n"))
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// lookupNode finds the key and value nodes of a dotted path in a mapping.
func lookupNode(n *yaml.Node, path string) (key, val *yaml.Node) {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, part := range strings.Split(path, ".") {
		if n.Kind != yaml.MappingNode {
			return nil, nil
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				key, n = n.Content[i], n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return nil, nil
		}
	}
	return key, n
}

// wrapComment breaks a comment into lines of at most about 100 characters.
func wrapComment(s string) string {
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, w := range strings.Fields(para) {
			if line != "" && len(line)+1+len(w) > 100 {
				lines = append(lines, line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		if line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}
