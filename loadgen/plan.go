package loadgen

import (
	cryptorand "crypto/rand"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/scenarios"
)

// slot is one planned page request: when it should start, which session it
// belongs to, what kind of page it is and which web server serves it.
type slot struct {
	at        time.Duration // intended start, from the run start
	sess      *session
	kind      scenarios.PageKind
	webServer int
	exec      time.Duration // how long the page runs while holding the lock
	size      int           // body size if this is the session's first write
	growth    int           // bytes added if it is a later write
}

// planner turns the scenario into a stream of slots. It is driven only by
// its own random source, never by replies, so the plan is fixed in advance.
// Not safe for concurrent use.
type planner struct {
	sc      *scenarios.Scenario
	rng     *rand.Rand
	idRand  *rand.ChaCha8
	st      *state
	pageMix mixTable
	burstMx mixTable
	appMix  mixTable
	appPfx  []string // TargetPrefix per app

	// open model: page arrivals from sched, given to sessions whose next page
	// is due, else to a new session.
	sched *Schedule
	due   dueHeap
	// population model: one entry per user, keyed by the next page's time.
	users    dueHeap
	duration time.Duration

	pending []slot // burst requests waiting to be returned
	skip    int    // open model: arrivals consumed by bursts
	rr      int    // round-robin counters
	newRR   int
}

// plannedSession is a session's place in a due heap.
type plannedSession struct {
	due  time.Duration
	sess *session
	left int // pages still to view; 0 = a new session on the next page (population)
	web  int
}

// dueHeap is a min-heap of sessions by the time their next page is due
// (ties by session sequence). The keys sit in the heap's own array, so a
// comparison reads no session: the open model's heap holds rate × think
// time sessions (35,000 at make bench's half-saturation run), far more than
// the cache, and container/heap's interface calls and pointer chasing were
// a tenth of the generator's CPU there.
type dueHeap []dueEntry

type dueEntry struct {
	due time.Duration
	seq int64
	ps  *plannedSession
}

func (a dueEntry) less(b dueEntry) bool {
	return a.due < b.due || a.due == b.due && a.seq < b.seq
}

// push adds ps, keyed by its due time and its session's sequence now.
func (h *dueHeap) push(ps *plannedSession) {
	e := dueEntry{due: ps.due, seq: ps.sess.seq, ps: ps}
	q := append(*h, e)
	i := len(q) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !e.less(q[parent]) {
			break
		}
		q[i] = q[parent]
		i = parent
	}
	q[i] = e
	*h = q
}

// pop removes and returns the session due first.
func (h *dueHeap) pop() *plannedSession {
	q := *h
	top := q[0].ps
	n := len(q) - 1
	e := q[n]
	q[n] = dueEntry{}
	q = q[:n]
	i := 0
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && q[r].less(q[c]) {
			c = r
		}
		if !q[c].less(e) {
			break
		}
		q[i] = q[c]
		i = c
	}
	if n > 0 {
		q[i] = e
	}
	*h = q
	return top
}

// mixTable samples keys by weight in a fixed (sorted) order.
type mixTable struct {
	keys []string
	cum  []float64
}

func newMixTable(weights map[string]float64) mixTable {
	var t mixTable
	for k := range weights {
		t.keys = append(t.keys, k)
	}
	sort.Strings(t.keys)
	sum := 0.0
	for _, k := range t.keys {
		sum += weights[k]
		t.cum = append(t.cum, sum)
	}
	return t
}

func (t mixTable) pick(r *rand.Rand) string {
	if len(t.keys) == 0 {
		return ""
	}
	x := r.Float64() * t.cum[len(t.cum)-1]
	for i, c := range t.cum {
		if x < c {
			return t.keys[i]
		}
	}
	return t.keys[len(t.keys)-1]
}

func pageMix(m scenarios.Mix) mixTable {
	w := map[string]float64{}
	for k, v := range m {
		if v > 0 {
			w[string(k)] = v
		}
	}
	return newMixTable(w)
}

// newPlanner plans sc. seed fixes the plan (arrivals, sessions' page
// counts, page kinds, sizes); idKey keys the session ids, which must differ
// from run to run (see Run).
func newPlanner(sc *scenarios.Scenario, sched *Schedule, duration time.Duration, seed uint64, st *state, idKey [32]byte) *planner {
	p := &planner{
		sc:       sc,
		rng:      rand.New(rand.NewPCG(seed, 0x9a9e)),
		idRand:   rand.NewChaCha8(idKey),
		st:       st,
		pageMix:  pageMix(sc.Pages.Mix),
		sched:    sched,
		duration: duration,
	}
	p.burstMx = p.pageMix
	if len(sc.Pages.Burst.Mix) > 0 {
		p.burstMx = pageMix(sc.Pages.Burst.Mix)
	}
	apps := map[string]float64{}
	for i, a := range sc.Farm.Apps {
		apps[string(rune('a'+i%26))+a.ID] = a.Weight // keep app order stable and keys unique
		p.appPfx = append(p.appPfx, protocol.TargetPrefix(a.ID))
	}
	p.appMix = newMixTable(apps)
	if sched == nil {
		// Population model: users start spread over one mean think time.
		think := sc.Users.ThinkTime.MeanDuration()
		for u := 0; u < sc.Users.Population; u++ {
			start := time.Duration(p.rng.Float64() * float64(think))
			p.users.push(&plannedSession{due: start, sess: &session{seq: int64(-1 - u)}})
		}
	}
	return p
}

// runIDKey returns a fresh random key for a run's session ids.
func runIDKey() ([32]byte, error) {
	var k [32]byte
	if _, err := cryptorand.Read(k[:]); err != nil {
		return k, fmt.Errorf("session id key: %w", err)
	}
	return k, nil
}

// newSession creates the client-side record of a fresh session.
func (p *planner) newSession() *session {
	id, err := protocol.NewSessionID(p.idRand)
	if err != nil {
		panic("loadgen: ChaCha8 cannot fail: " + err.Error())
	}
	app := 0
	if len(p.appPfx) > 1 {
		key := p.appMix.pick(p.rng)
		for i, a := range p.sc.Farm.Apps {
			if string(rune('a'+i%26))+a.ID == key {
				app = i
			}
		}
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	s := p.st.newSession(id, p.appPfx[app]+protocol.URLEncode(id), int(h.Sum32())%p.sc.Farm.Partitions)
	s.app = app
	return s
}

// webServer picks the web server for a page of ps.
func (p *planner) webServer(ps *plannedSession, first bool) int {
	n := p.sc.Farm.WebServers
	switch p.sc.Farm.LoadBalancing {
	case scenarios.LBRoundRobin:
		p.rr++
		return (p.rr - 1) % n
	case scenarios.LBRandom:
		return p.rng.IntN(n)
	}
	if first {
		p.newRR++
		ps.web = (p.newRR - 1) % n
	}
	return ps.web
}

// page decides the kind of one page of ps and plans a burst after it.
func (p *planner) page(ps *plannedSession, at time.Duration, first bool) slot {
	kind := scenarios.PageKind(p.pageMix.pick(p.rng))
	if ps.left == 1 && p.sc.Users.AbandonFraction > 0 && p.rng.Float64() < p.sc.Users.AbandonFraction {
		kind = scenarios.PageAbandon
	}
	s := p.fill(slot{at: at, sess: ps.sess, kind: kind, webServer: p.webServer(ps, first)})
	if b := p.sc.Pages.Burst; b.Probability > 0 && p.rng.Float64() < b.Probability {
		n := b.SampleSize(p.rng)
		for i := 0; i < n; i++ {
			p.pending = append(p.pending, p.fill(slot{at: at, sess: ps.sess,
				kind: scenarios.PageKind(p.burstMx.pick(p.rng)), webServer: p.webServer(ps, false)}))
		}
		if p.sched != nil {
			p.skip += n // each burst request counts as a page of the rate
		}
	}
	return s
}

// fill samples what the page does.
func (p *planner) fill(s slot) slot {
	s.exec = p.sc.Pages.ExecTime.SampleDuration(p.rng)
	s.size = p.sc.Session.Size.SampleInt(p.rng)
	s.growth = p.sc.Session.GrowthPerModify.SampleInt(p.rng)
	return s
}

// next returns the next slot in time order, or false at the end of the plan.
func (p *planner) next() (slot, bool) {
	if len(p.pending) > 0 {
		s := p.pending[0]
		p.pending = p.pending[1:]
		return s, true
	}
	if p.sched == nil {
		return p.nextPopulation()
	}
	for ; p.skip > 0; p.skip-- {
		if _, ok := p.sched.Next(); !ok {
			return slot{}, false
		}
	}
	at, ok := p.sched.Next()
	if !ok {
		return slot{}, false
	}
	var ps *plannedSession
	first := false
	if len(p.due) > 0 && p.due[0].due <= at {
		ps = p.due.pop()
	} else {
		ps = &plannedSession{sess: p.newSession(), left: p.sc.Users.SamplePages(p.rng)}
		first = true
	}
	s := p.page(ps, at, first)
	ps.left--
	if ps.left > 0 && s.kind != scenarios.PageAbandon {
		ps.due = at + p.sc.Users.ThinkTime.SampleDuration(p.rng)
		p.due.push(ps)
	}
	return s, true
}

func (p *planner) nextPopulation() (slot, bool) {
	if len(p.users) == 0 {
		return slot{}, false
	}
	u := p.users.pop()
	if u.due >= p.duration {
		return slot{}, false
	}
	first := false
	if u.left <= 0 {
		u.sess = p.newSession()
		u.left = p.sc.Users.SamplePages(p.rng)
		first = true
	}
	s := p.page(u, u.due, first)
	u.left--
	if s.kind == scenarios.PageAbandon {
		u.left = 0
	}
	// The next page is planned from this page's intended start, never from
	// when it finished.
	u.due += p.sc.Users.ThinkTime.SampleDuration(p.rng)
	p.users.push(u)
	return s, true
}

// nextClosed returns the next page for a closed-loop user: sessions are
// walked page after page with no think time.
func (p *planner) nextClosed(u *plannedSession) slot {
	first := false
	if u.left <= 0 || u.sess == nil {
		u.sess = p.newSession()
		u.left = p.sc.Users.SamplePages(p.rng)
		first = true
	}
	s := p.page(u, 0, first)
	p.pending = nil // no bursts in closed loop: one request at a time per user
	u.left--
	if s.kind == scenarios.PageAbandon {
		u.left = 0
	}
	return s
}

// steady plans the sessions a farm holds mid-life at the start of the
// schedule, as if it had been running for a long time at rate (pages/s)
// and returns one seed slot per session (see Config.SteadyStart). An open
// schedule gets rate × mean think time sessions (Little's law), each due at
// a uniform point of one think time; a population gets one session per
// user. Every session has a uniform share of a sampled session length
// still to view, so sessions also end and are replaced at the steady rate.
func (p *planner) steady(rate float64) []slot {
	var users []*plannedSession
	if p.sched != nil {
		n := int(math.Round(rate * p.sc.Users.ThinkTime.MeanDuration().Seconds()))
		for i := 0; i < n; i++ {
			ps := &plannedSession{due: time.Duration(p.rng.Float64() * float64(p.sc.Users.ThinkTime.SampleDuration(p.rng)))}
			users = append(users, ps)
		}
	} else {
		for _, e := range p.users {
			users = append(users, e.ps)
		}
	}
	seeds := make([]slot, 0, len(users))
	for _, ps := range users {
		ps.sess = p.newSession()
		ps.left = 1 + p.rng.IntN(max(p.sc.Users.SamplePages(p.rng), 1))
		s := p.fill(slot{sess: ps.sess, kind: scenarios.PageModify, webServer: p.webServer(ps, true)})
		s.exec = 0
		seeds = append(seeds, s)
		if p.sched != nil {
			p.due.push(ps)
		}
	}
	return seeds
}
