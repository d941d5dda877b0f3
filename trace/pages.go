package trace

import (
	"context"
	"math"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/scenarios"
)

// SessionKey names a session as the ASP.NET client does: the application id
// (the IIS metabase path, e.g. "/LM/W3SVC/1/ROOT") and the session id.
type SessionKey struct {
	App, ID string
}

// String returns the item key the state server stores the session under.
func (k SessionKey) String() string {
	if k.App == "" {
		return k.ID
	}
	return protocol.URIBase(k.App) + k.ID
}

// appHashLen is the length of the Base64 SHA-256 hash after the app id.
var appHashLen = len(protocol.AppHash(""))

// ParseKey splits a request target into its application id and session id
// (PROTOCOL.md b.3: UrlEncode(appID + "(" + hash + ")/" + sessionID)). A
// target of another shape keeps everything before the last "/" as App, and a
// target with no "/" is all ID.
func ParseKey(target string) SessionKey {
	key := protocol.Key(target)
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return SessionKey{ID: key}
	}
	pfx, id := key[:i], key[i+1:]
	if n := len(pfx); n >= appHashLen+2 && pfx[n-1] == ')' && pfx[n-2-appHashLen] == '(' {
		return SessionKey{App: pfx[:n-2-appHashLen], ID: id}
	}
	return SessionKey{App: pfx, ID: id}
}

// Page is one page request of a web server as the ASP.NET client's session
// module made it (PROTOCOL.md e.1), rebuilt from its exchanges:
//
//	modify          GET Exclusive:acquire … PUT with its lock cookie
//	read-unchanged  GET Exclusive:acquire … GET Exclusive:release
//	abandon         GET Exclusive:acquire … DELETE
//	read-only       GET
//	sessionless     HEAD
//
// The 423 polls before the request that gets past the lock, the create
// dance on a missing session (404 or an empty 200, PUT ExtraFlags:1, acquire
// again) and the forced release of a lock older than the execution timeout
// are part of the page, as in aspstate's own client (loadgen/page.go).
type Page struct {
	Session SessionKey
	// Web is the client address (the web server); Partition the state
	// server's address (the partition that holds the session).
	Web       netip.Addr
	Partition netip.AddrPort
	// Kind is what the page did; empty for a writable page whose end the
	// capture does not hold (Unfinished), which could have been any of the
	// three writable kinds.
	Kind scenarios.PageKind
	// Start is when the page's first request began, End when its last reply
	// ended (its last request began, for an Unfinished page).
	Start, End time.Time
	// Acquired is when the reply that gave a writable page its lock ended
	// (zero for the other kinds); Exec is the page's execution time, from
	// then to the start of its PUT, release or DELETE.
	Acquired time.Time
	Exec     time.Duration
	// ReadSize is the body size of the reply that read the session (the
	// acquire's or the GET's 200); BodySize the modify page's PUT body.
	ReadSize, BodySize int
	// Polls counts the 423 replies the page got; LockWait runs from the end
	// of the first 423 to the start of the request that got past the lock
	// (so LockWait/Polls is about the client's poll interval), or to the
	// end of the last 423 of an Unfinished page that never got past it (a
	// client that gave up waiting, or one the capture's end cut).
	Polls    int
	LockWait time.Duration
	// Timeout is the Timeout header (minutes) of the page's PUT (the modify
	// PUT or the create dance's), 0 when it sent none.
	Timeout int32
	// Existed: the page's first reply showed the session was there (200 with
	// a body, a 423, a HEAD answered 200). Created: the page found it
	// missing and created it (PUT ExtraFlags:1), or wrote a new session with
	// a lone PUT of LockCookie 0 (e.1, a brand-new session).
	Existed, Created bool
	// Status is the status of the page's last reply (0 when unanswered).
	Status int
	// LostWrite: the modify PUT was answered 423 (its lock had been broken).
	LostWrite bool
	// Breaks counts the locks this page broke (a release with another page's
	// cookie after a 423 whose LockAge reached the execution timeout);
	// BreakAge is the largest LockAge (seconds) that made it break one;
	// MaxLockAge the largest LockAge of the 423 replies it got.
	Breaks     int
	BreakAge   int64
	MaxLockAge int64
	// Partial: the capture began inside the page (its end was seen without
	// its acquire), so Start, Acquired and Exec are not known.
	Partial bool
	// Unfinished: the page's end is not in the capture (the capture ended,
	// the client gave up waiting for a lock, or the reply was lost).
	Unfinished bool
	// Exchanges is the number of request/reply pairs of the page.
	Exchanges int
}

// Writable reports whether the page held the session's lock.
func (p *Page) Writable() bool {
	switch p.Kind {
	case scenarios.PageModify, scenarios.PageReadUnchanged, scenarios.PageAbandon:
		return true
	}
	return p.Kind == "" && !p.Acquired.IsZero()
}

// PageBuilder rebuilds pages from exchanges given in completion order (as
// Read delivers them) and hands each page to its function when the page
// ends. It keeps only the pages in flight (acquiring, polling, holding a
// lock), so its memory is bounded by those, not by the capture's length;
// pages come out in the order they end, each with its Start, so a consumer
// that needs start order (a replay) keeps a window as long as the longest
// page. Not safe for concurrent use.
type PageBuilder struct {
	emit func(*Page) error
	// StaleAfter drops a page in flight (a waiter that gave up, a holder
	// whose end was lost) as Unfinished when nothing happened to it for this
	// long in capture time. Default 5 minutes (the client's execution
	// timeout is 110 s by default).
	StaleAfter time.Duration

	// PollInterval is the client's lock poll interval, which tells a poll
	// (on its tick from the first 423) from a new page of the same session
	// on the same web server. Zero: learnt from the capture, as the most
	// common delay from a 423 to a later request of the same session and
	// web server (every waiting page polls one interval after its first
	// 423; other requests come at any time).
	PollInterval time.Duration

	sess     map[string]*sessPages
	seen     int
	now      time.Time
	err      error
	pollHist map[int64]int // gaps between polls, ms
	pollN    int
	poll     time.Duration // PollInterval or the learnt one (0: not yet)
}

// sessPages is the pages in flight of one session key.
type sessPages struct {
	key     SessionKey
	lastNew time.Time       // when the session's last new page began
	locked  []lockedAt      // the last 423 replies (end, web), for learning the poll interval
	holders map[int32]*Page // writable pages holding their lock, by cookie
	waiting []*pending      // pages before their lock or read: polling, creating
}

type lockedAt struct {
	at  time.Time
	web netip.Addr
}

// pending is a page that has not got past the lock (or its read) yet.
type pending struct {
	p         *Page
	op        protocol.Op // OpGet or OpGetExclusive
	lastReq   time.Time   // start of its last request
	lastReply time.Time   // end of its last reply
	lastConn  ConnID
	lastSeq   int
	locked    *protocol.Reply // the last reply, when it was a 423
	firstLock time.Time       // end of the first 423: the origin of the poll ticks
	creating  bool            // got "no item"; the create PUT and a new acquire follow
	created   bool            // sent the create PUT; a new acquire follows
}

// minPoll is the least time between a 423 and the poll after it: the client
// waits for its next poll tick (500 ms, at least a few ms under a scaled
// protocol minute), while the pages of an AJAX burst start microseconds
// apart, so a request sooner than this after a 423 is another page's.
const minPoll = time.Millisecond

// burstGap: a request this soon after a new page of its session began, and
// late for every waiting page's poll tick, is taken for another new page
// (the pages of a burst start together).
const burstGap = 50 * time.Millisecond

// NewPageBuilder returns a builder that calls emit with every page; an
// error from emit stops the builder (Add returns it).
func NewPageBuilder(emit func(*Page) error) *PageBuilder {
	return &PageBuilder{emit: emit, StaleAfter: 5 * time.Minute, sess: map[string]*sessPages{}}
}

// Poll returns the poll interval the builder uses: PollInterval, or the
// one learnt from the capture so far (0 until it saw enough polls).
func (b *PageBuilder) Poll() time.Duration {
	if b.PollInterval > 0 {
		return b.PollInterval
	}
	return b.poll
}

// Add takes the next exchange in completion order.
func (b *PageBuilder) Add(ex *Exchange) error {
	if b.err != nil {
		return b.err
	}
	if b.PollInterval > 0 {
		b.poll = b.PollInterval
	}
	if ex.Request == nil {
		return nil
	}
	end := ex.ReplyEnd
	if ex.Reply == nil {
		end = ex.RequestEnd
	}
	if end.After(b.now) {
		b.now = end
	}
	target := ex.Request.Target
	s := b.sess[target]
	if s == nil {
		s = &sessPages{key: ParseKey(target)}
		b.sess[target] = s
	}
	b.add(s, ex)
	if len(s.holders) == 0 && len(s.waiting) == 0 {
		delete(b.sess, target)
	}
	if b.seen++; b.seen%4096 == 0 {
		b.sweep()
	}
	return b.err
}

// Flush ends every page in flight as Unfinished (the capture's end) and
// hands them on, oldest first.
func (b *PageBuilder) Flush() error {
	b.drop(func(*Page, time.Time) bool { return true })
	return b.err
}

// sweep drops the pages in flight idle for StaleAfter.
func (b *PageBuilder) sweep() {
	cut := b.now.Add(-b.StaleAfter)
	b.drop(func(_ *Page, last time.Time) bool { return last.Before(cut) })
}

// drop ends the pages in flight for which stale says so.
func (b *PageBuilder) drop(stale func(p *Page, last time.Time) bool) {
	var out []*Page
	for k, s := range b.sess {
		for c, p := range s.holders {
			if stale(p, p.Acquired) {
				out = append(out, p)
				delete(s.holders, c)
			}
		}
		keep := s.waiting[:0]
		for _, w := range s.waiting {
			if stale(w.p, w.lastReply) {
				if w.op == protocol.OpGet {
					w.p.Kind = scenarios.PageReadOnly
				}
				if w.locked != nil {
					w.p.LockWait = w.lastReply.Sub(w.firstLock)
				}
				out = append(out, w.p)
			} else {
				keep = append(keep, w)
			}
		}
		s.waiting = keep
		if len(s.holders) == 0 && len(s.waiting) == 0 {
			delete(b.sess, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	for _, p := range out {
		p.Unfinished = true
		b.send(p)
	}
}

func (b *PageBuilder) send(p *Page) {
	if b.err == nil {
		b.err = b.emit(p)
	}
}

// newPage starts a page at ex.
func newPage(s *sessPages, ex *Exchange) *Page {
	return &Page{Session: s.key, Web: ex.Conn.Client.Addr(), Partition: ex.Conn.Server, Start: ex.RequestStart}
}

// finish ends p with ex's reply and hands it on.
func (b *PageBuilder) finish(p *Page, ex *Exchange, kind scenarios.PageKind) {
	p.Kind = kind
	p.Exchanges++
	if ex.Reply != nil {
		p.End = ex.ReplyEnd
		p.Status = ex.Reply.Status
	} else {
		p.End = ex.RequestStart
		p.Unfinished = true
	}
	b.send(p)
}

// waiter returns the page in flight on s that ex continues: a page of the
// same web server, waiting with op, whose last reply ended before ex began
// and that expects ex (a create PUT after "no item"; an acquire after the
// create PUT, or a poll at least minPoll after a 423); of several, the one
// whose last request is oldest (pages polling on one tick take turns). nil
// when ex starts a new page.
func (s *sessPages) waiter(ex *Exchange, op protocol.Op, createPut bool, poll time.Duration) (int, *pending) {
	web := ex.Conn.Client.Addr()
	best, bestErr := -1, time.Duration(math.MaxInt64)
	for i, w := range s.waiting {
		if w.op != op || w.p.Web != web || w.lastReply.After(ex.RequestStart) {
			continue
		}
		var miss time.Duration // how far ex is from when w would send its next request
		switch {
		case createPut:
			if !w.creating || w.created {
				continue
			}
		case w.creating && !w.created:
			continue // it sends its create PUT first
		case w.creating:
			// the acquire right after the create PUT
		case ex.RequestStart.Sub(w.lastReply) < minPoll:
			continue
		case poll > 0:
			// A poll comes on a tick of the poll interval from the first 423.
			// The client polls on ticks of the interval from its first 423,
			// skipping a tick that comes less than half an interval after
			// its last reply: the next poll is due at the first tick after
			// that. A timer fires late (a busy web server: much later),
			// never early.
			k := (w.lastReply.Add(poll/2).Sub(w.firstLock) + poll - 1) / poll
			due := w.firstLock.Add(max(k, 1) * poll)
			miss = ex.RequestStart.Sub(due)
			if miss < -3*time.Millisecond-time.Duration(k)*time.Millisecond { // the interval's error adds up
				continue
			}
			// Late, while the pages of an AJAX burst are starting: one of them.
			if miss > 15*time.Millisecond && ex.RequestStart.Sub(s.lastNew) <= burstGap {
				continue
			}
			if miss < 0 {
				miss = -miss
			}
		default:
			miss = -ex.RequestStart.Sub(w.lastReq) // the oldest first
		}
		if best < 0 || miss < bestErr {
			best, bestErr = i, miss
		}
	}
	if best < 0 {
		return -1, nil
	}
	return best, s.waiting[best]
}

// learnPoll records the delays from the session's recent 423s on the same
// web server to the read request ex, and every 100 of them takes their
// mode (over 5 ms, timer jitter) as the poll interval.
func (b *PageBuilder) learnPoll(s *sessPages, ex *Exchange) {
	if b.PollInterval > 0 {
		return
	}
	web := ex.Conn.Client.Addr()
	for _, l := range s.locked {
		gap := ex.RequestStart.Sub(l.at)
		if l.web != web || gap < minPoll || gap > 10*time.Second {
			continue
		}
		if b.pollHist == nil {
			b.pollHist = map[int64]int{}
		}
		b.pollHist[gap.Milliseconds()]++
		b.pollN++
		if b.pollN%100 != 0 {
			continue
		}
		var bestMs int64
		bestN := 0
		for ms := range b.pollHist {
			n := 0
			for d := int64(-2); d <= 2; d++ {
				n += b.pollHist[ms+d]
			}
			if n > bestN || n == bestN && ms < bestMs {
				bestMs, bestN = ms, n
			}
		}
		// The weighted mean around the mode: a millisecond off would shift
		// the tenth tick by 10 ms.
		var sum, n float64
		for d := int64(-3); d <= 3; d++ {
			c := float64(b.pollHist[bestMs+d])
			sum += c * (float64(bestMs+d) + 0.5)
			n += c
		}
		b.poll = time.Duration(sum / n * float64(time.Millisecond))
	}
}

// noteLocked remembers a 423 for learnPoll (the last 16 of the session).
func (s *sessPages) noteLocked(ex *Exchange) {
	if len(s.locked) == 16 {
		copy(s.locked, s.locked[1:])
		s.locked = s.locked[:15]
	}
	s.locked = append(s.locked, lockedAt{ex.ReplyEnd, ex.Conn.Client.Addr()})
}

func (s *sessPages) remove(i int) {
	s.waiting = append(s.waiting[:i], s.waiting[i+1:]...)
}

// note records ex as the waiter's last exchange.
func (w *pending) note(ex *Exchange) {
	w.p.Exchanges++
	w.lastReq, w.lastReply, w.lastConn, w.lastSeq = ex.RequestStart, ex.ReplyEnd, ex.Conn, ex.Seq
	w.locked = nil
}

// headerInt32 returns the Int32 value of a request header.
func headerInt32(h protocol.Header, name string) (int32, bool) {
	v, ok := h.Get(name)
	if !ok {
		return 0, false
	}
	return protocol.ParseInt32(v)
}

// bodySize is the size of a message body: its bytes when the reader kept
// them, else its Content-Length.
func bodySize(body []byte, h protocol.Header) int {
	if len(body) > 0 {
		return len(body)
	}
	n, _ := headerInt32(h, protocol.HeaderContentLength)
	return int(n)
}

func (b *PageBuilder) add(s *sessPages, ex *Exchange) {
	op := ex.Op()
	var rep *protocol.Reply
	if ex.Reply != nil {
		rep, _ = protocol.NewReply(ex.Reply) // header values it cannot read stay zero
	}
	switch op {
	case protocol.OpResetTimeout:
		p := newPage(s, ex)
		p.Existed = rep != nil && rep.Status == protocol.StatusOK
		b.finish(p, ex, scenarios.PageSessionless)
	case protocol.OpGet, protocol.OpGetExclusive:
		b.read(s, ex, op, rep)
	case protocol.OpSet:
		b.set(s, ex, rep)
	case protocol.OpReleaseExclusive:
		cookie, _ := headerInt32(ex.Request.Header, protocol.HeaderLockCookie)
		if b.forced(s, ex, cookie) {
			return
		}
		b.end(s, ex, cookie, scenarios.PageReadUnchanged)
	case protocol.OpRemove:
		cookie, _ := headerInt32(ex.Request.Header, protocol.HeaderLockCookie)
		b.end(s, ex, cookie, scenarios.PageAbandon)
	}
}

// read handles a GET or an acquire: a new page or the next poll of one.
func (b *PageBuilder) read(s *sessPages, ex *Exchange, op protocol.Op, rep *protocol.Reply) {
	b.learnPoll(s, ex)
	i, w := s.waiter(ex, op, false, b.poll)
	if w == nil {
		s.lastNew = ex.RequestStart
		w = &pending{p: newPage(s, ex), op: op}
		s.waiting = append(s.waiting, w)
		i = len(s.waiting) - 1
		if rep != nil {
			w.p.Existed = rep.Status == protocol.StatusLocked || rep.Status == protocol.StatusOK && len(rep.Body) > 0 ||
				rep.Status == protocol.StatusOK && bodySize(nil, ex.Reply.Header) > 0
		}
	}
	p := w.p
	w.note(ex)
	if rep == nil {
		s.remove(i)
		if op == protocol.OpGet {
			p.Kind = scenarios.PageReadOnly
		}
		p.End, p.Unfinished = ex.RequestStart, true
		b.send(p)
		return
	}
	p.Status = rep.Status
	got := func() {
		if p.Polls > 0 {
			p.LockWait = ex.RequestStart.Sub(w.firstLock)
		}
	}
	switch {
	case rep.Status == protocol.StatusLocked:
		s.noteLocked(ex)
		p.Polls++
		p.MaxLockAge = max(p.MaxLockAge, lockAgeSeconds(rep))
		if w.firstLock.IsZero() {
			w.firstLock = ex.ReplyEnd
		}
		w.locked = rep
		w.creating, w.created = false, false
	case op == protocol.OpGet:
		got()
		s.remove(i)
		p.ReadSize = bodySize(rep.Body, ex.Reply.Header)
		p.End = ex.ReplyEnd
		p.Kind = scenarios.PageReadOnly
		b.send(p)
	case rep.Status == protocol.StatusBadRequest:
		s.remove(i) // the client throws (e.1): the page ends without its lock
		p.End, p.Unfinished = ex.ReplyEnd, true
		b.send(p)
	case rep.Status == protocol.StatusOK && bodySize(rep.Body, ex.Reply.Header) > 0:
		got()
		s.remove(i)
		p.Acquired = ex.ReplyEnd
		p.ReadSize = bodySize(rep.Body, ex.Reply.Header)
		if s.holders == nil {
			s.holders = map[int32]*Page{}
		}
		if old := s.holders[rep.LockCookie]; old != nil {
			// The same cookie again: the older holder's end was lost.
			old.Unfinished = true
			b.send(old)
		}
		s.holders[rep.LockCookie] = p
	default:
		// No item (404, another status, an empty 200): the create dance.
		w.creating, w.created = true, false
	}
}

// set handles a PUT: the create dance's, a modify page's end, or a lone
// PUT of a brand-new session.
func (b *PageBuilder) set(s *sessPages, ex *Exchange, rep *protocol.Reply) {
	h := ex.Request.Header
	flags, _ := headerInt32(h, protocol.HeaderExtraFlags)
	timeout, _ := headerInt32(h, protocol.HeaderTimeout)
	cookie, _ := headerInt32(h, protocol.HeaderLockCookie)
	if flags&protocol.ExtraFlagUninitialized != 0 {
		if _, w := s.waiter(ex, protocol.OpGetExclusive, true, b.poll); w != nil {
			w.note(ex)
			w.created = true
			w.p.Created = true
			w.p.Timeout = timeout
		}
		return // a create PUT of a page the capture began inside: nothing to rebuild
	}
	p := s.holders[cookie]
	if p != nil {
		delete(s.holders, cookie)
		p.Exec = ex.RequestStart.Sub(p.Acquired)
	} else {
		p = newPage(s, ex)
		if cookie == 0 {
			p.Created = true // e.1: the PUT of a brand-new session
		} else {
			p.Partial = true
		}
	}
	p.BodySize = bodySize(ex.Request.Body, h)
	p.Timeout = timeout
	p.LostWrite = rep != nil && rep.Status == protocol.StatusLocked
	b.finish(p, ex, scenarios.PageModify)
}

// end handles a release or DELETE with cookie: the end of the page holding
// it, or of a page the capture began inside.
func (b *PageBuilder) end(s *sessPages, ex *Exchange, cookie int32, kind scenarios.PageKind) {
	p := s.holders[cookie]
	if p != nil {
		delete(s.holders, cookie)
		p.Exec = ex.RequestStart.Sub(p.Acquired)
	} else {
		p = newPage(s, ex)
		p.Partial = true
	}
	b.finish(p, ex, kind)
}

// forced reports whether a release is a waiter breaking another page's lock
// (e.3): sent on the connection of the waiter's 423, right after it, with
// that 423's cookie, when its LockAge was at least a second. The waiter's
// page takes the exchange; the holder keeps its lock until its own end.
func (b *PageBuilder) forced(s *sessPages, ex *Exchange, cookie int32) bool {
	for _, w := range s.waiting {
		l := w.locked
		if l == nil || l.LockCookie != cookie || w.lastConn != ex.Conn || w.lastSeq+1 != ex.Seq || lockAgeSeconds(l) < 1 {
			continue
		}
		w.p.Exchanges++
		w.p.Breaks++
		w.p.BreakAge = max(w.p.BreakAge, lockAgeSeconds(l))
		w.lastReq, w.lastConn, w.lastSeq = ex.RequestStart, ex.Conn, ex.Seq
		if ex.Reply != nil {
			w.lastReply = ex.ReplyEnd
		}
		w.locked = nil
		return true
	}
	return false
}

// lockAgeSeconds is a 423's LockAge, or 0 without one.
func lockAgeSeconds(r *protocol.Reply) int64 {
	if r.HasLockAge && r.LockAge > 0 {
		return r.LockAge
	}
	return 0
}

// ReadPages reads captures as Read does and hands fn the pages rebuilt from
// their exchanges (a PageBuilder over Read): the page source of trace fit
// and of replays. The pages in flight at the capture's end come last, as
// Unfinished.
func ReadPages(ctx context.Context, paths []string, opt Options, fn func(*Page) error) (Stats, error) {
	b := NewPageBuilder(fn)
	st, err := Read(ctx, paths, opt, b.Add)
	if err != nil {
		return st, err
	}
	return st, b.Flush()
}
