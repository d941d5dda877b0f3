package trace

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

// DiffFormat names the JSON layout of a DiffReport.
const DiffFormat = "aspstate-trace-diff/1"

// The kinds of difference Diff reports.
const (
	DiffStatus           = "status"            // another status code or status line
	DiffHeaderMissing    = "header-missing"    // the recorded reply had the header, the live one not
	DiffHeaderPresent    = "header-present"    // the live reply has a header the recorded one had not
	DiffHeaderValue      = "header-value"      // both have it, with values that differ after normalising
	DiffHeaderOrder      = "header-order"      // the same headers in another order
	DiffBodyLength       = "body-length"       // bodies of different lengths
	DiffBodyBytes        = "body-bytes"        // bodies of one length with different bytes
	DiffConnectionClosed = "connection-closed" // the target closed the connection (or failed) instead of answering
)

// DiffOptions configure Diff.
type DiffOptions struct {
	// Target is the server to replay against, host:port.
	Target string
	// Read configures the capture reader.
	Read Options
	// Speed divides the recorded offsets (1, the default, replays at the
	// recorded pace).
	Speed float64
	// Examples bounds the wire transcripts kept per group of differences
	// (default 3).
	Examples int
	// ReplyTimeout bounds the wait for one live reply (default 10s).
	ReplyTimeout time.Duration
}

// DiffReport is what Diff found. Bodies are compared, never kept: a
// difference in a body is reported by its lengths and the offset of its
// first differing byte.
type DiffReport struct {
	Format  string    `json:"format"`
	Files   []string  `json:"files"`
	Target  string    `json:"target"`
	Speed   float64   `json:"speed"`
	Started time.Time `json:"started"`
	// DurationMS is how long the replay ran.
	DurationMS float64 `json:"duration_ms"`
	// Capture is what the reader saw; Span the capture's length.
	Capture Stats   `json:"-"`
	Skipped string  `json:"skipped"`
	SpanMS  float64 `json:"capture_span_ms"`
	Conns   int     `json:"connections"`
	Exch    int     `json:"exchanges"`
	Seeded  int     `json:"sessions_seeded"`
	Session int     `json:"sessions"`
	// Compared counts the exchanges whose replies were compared (those
	// the capture holds a whole reply for); Same those without any
	// difference.
	Compared int `json:"compared"`
	Same     int `json:"same"`
	// Unexplained counts the differences that fail the check;
	// TimingDependent those the replay's own timing explains.
	Unexplained     int         `json:"unexplained"`
	TimingDependent int         `json:"timing_dependent"`
	Groups          []DiffGroup `json:"groups"`
	// Error is set when the replay could not go on (the target failed);
	// everything compared before it is kept.
	Error string `json:"error,omitempty"`
}

// Failed reports whether the check fails: an unexplained difference, or a
// replay that could not finish.
func (r *DiffReport) Failed() bool { return r.Unexplained > 0 || r.Error != "" }

// DiffGroup is the differences of one kind on one op with one pair of
// statuses (and one header, for header kinds).
type DiffGroup struct {
	Kind     string `json:"kind"`
	Op       string `json:"op"`
	Recorded int    `json:"recorded_status"`
	Live     int    `json:"live_status"`
	Header   string `json:"header,omitempty"`
	// Timing marks differences the replay's own timing explains.
	Timing   bool          `json:"timing_dependent"`
	Count    int           `json:"count"`
	Examples []DiffExample `json:"examples"`
}

// Title is the group in one line, e.g. "header-missing X-AspNet-Version on
// get-exclusive 200/200 ×43".
func (g *DiffGroup) Title() string {
	s := g.Kind
	if g.Header != "" {
		s += " " + g.Header
	}
	s += fmt.Sprintf(" on %s %s/%s ×%d", g.Op, orDash(g.Recorded), orDash(g.Live), g.Count)
	if g.Timing {
		s += " (timing-dependent)"
	}
	return s
}

func orDash(s int) string {
	if s == 0 {
		return "-"
	}
	return strconv.Itoa(s)
}

// DiffExample is one difference: what differs and the wire transcript of the
// live exchange with the recorded reply beside it (bodies shown as their
// lengths only).
type DiffExample struct {
	Conn       string `json:"conn"`
	Seq        int    `json:"seq"`
	Detail     string `json:"detail"`
	Transcript string `json:"transcript"`
}

// recEx is one recorded exchange held for the replay, bodies included (in
// memory only, for the comparison).
type recEx struct {
	Exchange
	key  string // recorded item key
	idx  int    // index among all exchanges, in start order
	conn int    // index of its connection
	// closed: a connection-closed difference was noted for it already.
	closed bool
	deps   []int // exchanges of the same session that ended before it began
	done   chan struct{}
	live   *protocol.Response
	lerr   error
	sent   time.Time
	liveT  string // live target
}

// Diff replays the exchanges of the captures in paths against the target,
// connection by connection in their recorded order and timing, and compares
// every live reply with the recorded one (see DiffExchanges). The
// exchanges are held in memory, bodies included, for the comparison; they
// are never written anywhere.
func Diff(ctx context.Context, paths []string, opt DiffOptions) (*DiffReport, error) {
	var exs []*Exchange
	st, err := Read(ctx, paths, opt.Read, func(e *Exchange) error {
		c := *e
		req := *e.Request
		req.Header = append(protocol.Header(nil), req.Header...)
		req.Body = append([]byte(nil), req.Body...)
		c.Request = &req
		if e.Reply != nil {
			rep := *e.Reply
			rep.Header = append(protocol.Header(nil), rep.Header...)
			rep.Body = append([]byte(nil), rep.Body...)
			c.Reply = &rep
		}
		exs = append(exs, &c)
		return nil
	})
	if err != nil {
		return &DiffReport{Format: DiffFormat, Files: paths, Target: opt.Target, Capture: st, Skipped: st.Skipped.String()}, err
	}
	rep, err := DiffExchanges(ctx, exs, opt)
	rep.Files, rep.Capture, rep.Skipped = paths, st, st.Skipped.String()
	return rep, err
}

// DiffExchanges replays exs (recorded exchanges, bodies included) against
// opt.Target, connection by connection in their recorded order and timing,
// and compares every live reply with the recorded one. Session ids are
// remapped to fresh ones, lock cookies mapped between the recorded and the
// live ones, and the sessions that existed before the capture began are
// created first. An exchange also waits for the exchanges of its session
// that ended, in the recording, before it began, so that a slower target
// does not reorder a session's requests. A target failing mid-replay ends
// the replay; the report keeps everything compared so far and says why it
// stopped (Error).
func DiffExchanges(ctx context.Context, exs []*Exchange, opt DiffOptions) (*DiffReport, error) {
	if opt.Speed <= 0 {
		opt.Speed = 1
	}
	if opt.Examples <= 0 {
		opt.Examples = 3
	}
	if opt.ReplyTimeout <= 0 {
		opt.ReplyTimeout = 10 * time.Second
	}
	rep := &DiffReport{Format: DiffFormat, Target: opt.Target, Speed: opt.Speed, Exch: len(exs), Skipped: Skipped{}.String()}
	if len(exs) == 0 {
		return rep, nil
	}
	recs := make([]*recEx, len(exs))
	for i, e := range exs {
		recs[i] = &recEx{Exchange: *e, done: make(chan struct{}), key: protocol.Key(e.Request.Target)}
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].RequestStart.Before(recs[j].RequestStart) })
	d := newDiffer(opt, rep, recs)
	if err := d.prepare(); err != nil {
		return rep, err
	}
	rep.Started = time.Now()
	if err := d.seed(ctx); err != nil {
		rep.Error = err.Error()
	} else {
		d.run(ctx)
	}
	rep.DurationMS = float64(time.Since(rep.Started)) / float64(time.Millisecond)
	d.finish()
	return rep, nil
}

// differ is one replay in progress.
type differ struct {
	opt   DiffOptions
	rep   *DiffReport
	exs   []*recEx
	conns [][]*recEx
	first time.Time

	ids   map[string]string // recorded key -> live target suffix (fresh session id)
	seeds []*seedItem

	mu      sync.Mutex
	cookies map[cookieKey]int32 // (recorded key, recorded cookie) -> live cookie
	back    map[cookieKey]int32 // (recorded key, live cookie) -> recorded cookie
	held    map[cookieKey]bool  // (recorded key, live cookie) -> lock not yet released live
	diverge map[string]bool     // recorded keys whose replay diverged by timing
	groups  map[groupKey]*DiffGroup
	failed  error
}

type cookieKey struct {
	key    string
	cookie int32
}

type groupKey struct {
	kind, op       string
	recorded, live int
	header         string
	timing         bool
}

// seedItem is a session that existed before the capture began.
type seedItem struct {
	target  string // live target
	key     string
	body    []byte
	timeout int32
	uninit  bool
	locked  bool  // the session was locked when the capture began
	cookie  int32 // the recorded cookie of that lock
	hasLock bool
}

func newDiffer(opt DiffOptions, rep *DiffReport, exs []*recEx) *differ {
	return &differ{opt: opt, rep: rep, exs: exs, ids: map[string]string{},
		cookies: map[cookieKey]int32{}, back: map[cookieKey]int32{}, held: map[cookieKey]bool{},
		diverge: map[string]bool{}, groups: map[groupKey]*DiffGroup{}}
}

// prepare groups the exchanges by connection, gives every session a fresh
// id, finds each exchange's same-session predecessors and the sessions to
// seed.
func (d *differ) prepare() error {
	d.first = d.exs[0].RequestStart
	last := d.first
	connIdx := map[ConnID]int{}
	bySession := map[string][]*recEx{}
	var order []string
	for i, e := range d.exs {
		ci, ok := connIdx[e.Conn]
		if !ok {
			ci = len(d.conns)
			connIdx[e.Conn] = ci
			d.conns = append(d.conns, nil)
		}
		e.conn, e.idx = ci, i
		d.conns[ci] = append(d.conns[ci], e)
		if _, ok := d.ids[e.key]; !ok {
			id, err := protocol.NewSessionID(rand.Reader)
			if err != nil {
				return err
			}
			d.ids[e.key] = id
			order = append(order, e.key)
		}
		e.liveT = d.liveTarget(e.Request.Target, e.key)
		for _, p := range bySession[e.key] {
			if p.Reply != nil && !p.ReplyEnd.After(e.RequestStart) {
				e.deps = append(e.deps, p.idx)
			}
		}
		bySession[e.key] = append(bySession[e.key], e)
		end := e.RequestStart
		if e.Reply != nil {
			end = e.ReplyEnd
		}
		if end.After(last) {
			last = end
		}
	}
	for _, c := range d.conns {
		sort.SliceStable(c, func(i, j int) bool { return c[i].Seq < c[j].Seq })
	}
	d.rep.Conns, d.rep.Session = len(d.conns), len(order)
	d.rep.SpanMS = float64(last.Sub(d.first)) / float64(time.Millisecond)
	for _, k := range order {
		if s := seedOf(bySession[k]); s != nil {
			s.key, s.target = k, bySession[k][0].liveT
			d.seeds = append(d.seeds, s)
		}
	}
	d.rep.Seeded = len(d.seeds)
	return nil
}

// liveTarget rewrites a recorded request target to the session's fresh id,
// keeping the recorded spelling of the rest.
func (d *differ) liveTarget(target, key string) string {
	id := d.ids[key]
	slash := strings.LastIndexByte(key, '/')
	old := key[slash+1:]
	if old != "" && strings.HasSuffix(target, old) {
		return target[:len(target)-len(old)] + id
	}
	return protocol.URLEncode(key[:slash+1] + id)
}

// seedOf decides from a session's exchanges (in start order) whether it
// existed before the capture began, and with what.
func seedOf(exs []*recEx) *seedItem {
	f := exs[0]
	if f.Reply == nil {
		return nil
	}
	op := f.Op()
	st := f.Reply.Status
	s := &seedItem{timeout: protocol.DefaultTimeout}
	switch {
	case st == protocol.StatusLocked:
		s.locked = true
		s.cookie, s.hasLock = headerInt32(f.Reply.Header, protocol.HeaderLockCookie)
	case st != protocol.StatusOK:
		return nil
	case op == protocol.OpSet:
		// A PUT with the cookie of a lock taken before the capture; any
		// other PUT may have created the session.
		c, ok := headerInt32(f.Request.Header, protocol.HeaderLockCookie)
		if !ok || c == 0 {
			return nil
		}
		s.locked, s.cookie, s.hasLock = true, c, true
	case op == protocol.OpReleaseExclusive || op == protocol.OpRemove:
		s.locked = true
		s.cookie, s.hasLock = headerInt32(f.Request.Header, protocol.HeaderLockCookie)
	}
	// The session's state is the body of its first read before any write.
	for _, e := range exs {
		if e.Op() == protocol.OpSet {
			break
		}
		if e.Reply != nil && e.Reply.Status == protocol.StatusOK && (e.Op() == protocol.OpGet || e.Op() == protocol.OpGetExclusive) {
			s.body = e.Reply.Body
			if t, ok := headerInt32(e.Reply.Header, protocol.HeaderTimeout); ok && t > 0 {
				s.timeout = t
			}
			if af, _ := headerInt32(e.Reply.Header, protocol.HeaderActionFlags); af&protocol.ExtraFlagUninitialized != 0 {
				s.uninit = true
			}
			break
		}
	}
	return s
}

// dial opens one live connection.
func (d *differ) dial(ctx context.Context) (*protocol.Conn, error) {
	return protocol.Dial(ctx, d.opt.Target, protocol.ConnOptions{Timeout: d.opt.ReplyTimeout})
}

// seed creates the sessions that existed before the capture began (and
// takes the locks that were held then), mapping those locks' cookies.
func (d *differ) seed(ctx context.Context) error {
	if len(d.seeds) == 0 {
		return nil
	}
	c, err := d.dial(ctx)
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	defer c.Close()
	for _, s := range d.seeds {
		p := protocol.SetParams{Timeout: s.timeout}
		if s.uninit {
			p.ExtraFlags = protocol.ExtraFlagUninitialized
		}
		r, err := c.Set(ctx, s.target, s.body, p)
		if err != nil {
			return fmt.Errorf("seeding: %w", err)
		}
		if r.Status != protocol.StatusOK {
			return fmt.Errorf("seeding: PUT of a session that existed before the capture answered %d", r.Status)
		}
		if !s.locked {
			continue
		}
		r, err = c.GetExclusive(ctx, s.target)
		if err != nil {
			return fmt.Errorf("seeding: %w", err)
		}
		if r.Status != protocol.StatusOK || !r.HasCookie {
			return fmt.Errorf("seeding: the acquire of a session locked before the capture answered %d", r.Status)
		}
		if s.hasLock {
			d.mapCookie(s.key, s.cookie, r.LockCookie)
		}
	}
	return nil
}

// mapCookie records that the recorded lock rc is the live lock lc.
func (d *differ) mapCookie(key string, rc, lc int32) {
	d.cookies[cookieKey{key, rc}] = lc
	d.back[cookieKey{key, lc}] = rc
	d.held[cookieKey{key, lc}] = true
}

// run replays every connection at once, each on its own live connection.
func (d *differ) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range d.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.replayConn(ctx, start, c); err != nil {
				d.mu.Lock()
				if d.failed == nil {
					d.failed = err
				}
				d.mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if d.failed != nil {
		d.rep.Error = d.failed.Error()
	} else if err := ctx.Err(); err != nil {
		d.rep.Error = err.Error()
	}
}

// replayConn replays one recorded connection. It returns an error only when
// the target cannot be reached at all.
func (d *differ) replayConn(ctx context.Context, start time.Time, exs []*recEx) error {
	var c *protocol.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
		for _, e := range exs {
			closeOnce(e.done)
		}
	}()
	for _, e := range exs {
		due := start.Add(time.Duration(float64(e.RequestStart.Sub(d.first)) / d.opt.Speed))
		if err := sleepUntil(ctx, due); err != nil {
			return nil
		}
		for _, j := range e.deps {
			select {
			case <-d.exs[j].done:
			case <-ctx.Done():
				return nil
			}
		}
		req := d.liveRequest(e)
		for attempt := 0; ; attempt++ {
			if c == nil {
				var err error
				if c, err = d.dial(ctx); err != nil {
					return fmt.Errorf("target %s: %w", d.opt.Target, err)
				}
			}
			e.sent = time.Now()
			resp, err := c.Do(ctx, req)
			if err == nil {
				e.live, e.lerr = resp, nil
				break
			}
			c.Close()
			c = nil
			if ctx.Err() != nil {
				return nil
			}
			e.lerr = err
			if attempt > 0 {
				break
			}
			// Report the closed connection, then try once more on a fresh
			// one so the rest of the replay goes on.
			e.closed = true
			d.note(e, req, DiffConnectionClosed, "", "the target closed the connection or failed instead of answering: "+err.Error(), false)
		}
		d.compare(e, req)
		close(e.done)
	}
	return nil
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// liveRequest is the recorded request with the session's fresh id and the
// live lock cookie in place of the recorded one.
func (d *differ) liveRequest(e *recEx) *protocol.Request {
	req := *e.Request
	req.Target = e.liveT
	req.Header = append(protocol.Header(nil), e.Request.Header...)
	for i, f := range req.Header {
		if !strings.EqualFold(f.Name, protocol.HeaderLockCookie) {
			continue
		}
		if rc, ok := protocol.ParseInt32(f.Value); ok {
			d.mu.Lock()
			lc, known := d.cookies[cookieKey{e.key, rc}]
			d.mu.Unlock()
			if known {
				req.Header[i].Value = strconv.FormatInt(int64(lc), 10)
			}
		}
	}
	return &req
}

// compare sets the live reply of e beside the recorded one.
func (d *differ) compare(e *recEx, req *protocol.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rec, live := e.Reply, e.live
	if live == nil {
		if rec != nil && !e.closed {
			d.noteLocked(e, req, DiffConnectionClosed, "", "no reply from the target: "+errString(e.lerr), false)
		}
		return
	}
	d.track(e, req, live)
	if rec == nil {
		return
	}
	d.rep.Compared++
	before := d.rep.Unexplained + d.rep.TimingDependent
	if rec.Status != live.Status || rec.Proto != live.Proto {
		timing := d.timing(e, live)
		detail := fmt.Sprintf("recorded %s, live %s", replyStatusLine(rec), replyStatusLine(live))
		d.noteLocked(e, req, DiffStatus, "", detail, timing)
		if timing {
			d.diverge[e.key] = true
		}
		return
	}
	timing := d.diverge[e.key]
	d.compareHeaders(e, req, timing)
	if len(rec.Body) != len(live.Body) {
		d.noteLocked(e, req, DiffBodyLength, "", fmt.Sprintf("recorded body %d bytes, live %d bytes", len(rec.Body), len(live.Body)), timing)
	} else if i := firstDiff(rec.Body, live.Body); i >= 0 {
		d.noteLocked(e, req, DiffBodyBytes, "", fmt.Sprintf("bodies of %d bytes differ from byte %d on", len(rec.Body), i), timing)
	}
	if d.rep.Unexplained+d.rep.TimingDependent == before {
		d.rep.Same++
	}
}

func errString(err error) string {
	if err == nil {
		return "none"
	}
	if errors.Is(err, io.EOF) {
		return "connection closed (EOF)"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	return err.Error()
}

func replyStatusLine(r *protocol.Response) string {
	s := strconv.Itoa(r.Status) + " " + r.Reason
	if r.Proto != "" {
		s = r.Proto + " " + s
	}
	return strconv.Quote(s)
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// track follows the live locks: which recorded lock each live cookie is, and
// whether it is still held.
func (d *differ) track(e *recEx, req *protocol.Request, live *protocol.Response) {
	if live.Status != protocol.StatusOK {
		return
	}
	switch e.Op() {
	case protocol.OpGetExclusive:
		lc, ok := headerInt32(live.Header, protocol.HeaderLockCookie)
		if !ok {
			return
		}
		d.held[cookieKey{e.key, lc}] = true
	case protocol.OpReleaseExclusive, protocol.OpSet, protocol.OpRemove:
		if lc, ok := headerInt32(req.Header, protocol.HeaderLockCookie); ok {
			delete(d.held, cookieKey{e.key, lc})
		}
	}
}

// timing decides whether a 200/423 swap is the replay's own timing: a 423
// live whose lock the replay has not released yet, or a 200 live where the
// recording found the session locked by a lock the replay has already
// released (or never took).
func (d *differ) timing(e *recEx, live *protocol.Response) bool {
	if d.diverge[e.key] {
		return true
	}
	rec := e.Reply
	switch {
	case rec.Status == protocol.StatusOK && live.Status == protocol.StatusLocked:
		lc, ok := headerInt32(live.Header, protocol.HeaderLockCookie)
		if !ok {
			return false
		}
		_, mapped := d.back[cookieKey{e.key, lc}]
		return mapped && d.held[cookieKey{e.key, lc}]
	case rec.Status == protocol.StatusLocked && live.Status == protocol.StatusOK:
		rc, ok := headerInt32(rec.Header, protocol.HeaderLockCookie)
		if !ok {
			return false
		}
		lc, mapped := d.cookies[cookieKey{e.key, rc}]
		return !mapped || !d.held[cookieKey{e.key, lc}]
	}
	return false
}

// compareHeaders compares the reply headers after normalising the values
// that must differ. Content-Length is compared as the body's length.
func (d *differ) compareHeaders(e *recEx, req *protocol.Request, timing bool) {
	rec, live := e.Reply, e.live
	seen := map[string]bool{}
	for _, f := range rec.Header {
		name := canonical(f.Name)
		if seen[name] || name == protocol.HeaderContentLength {
			continue
		}
		seen[name] = true
		lv, ok := live.Header.Get(name)
		if !ok {
			d.noteLocked(e, req, DiffHeaderMissing, name, fmt.Sprintf("the recorded reply has %s: %s, the live one has no %s", name, shown(name, f.Value), name), timing)
			continue
		}
		if why := d.sameValue(e, name, f.Value, lv); why != "" {
			d.noteLocked(e, req, DiffHeaderValue, name, why, timing)
		}
	}
	for _, f := range live.Header {
		name := canonical(f.Name)
		if !seen[name] && name != protocol.HeaderContentLength && !rec.Header.Has(name) {
			seen[name] = true
			d.noteLocked(e, req, DiffHeaderPresent, name, fmt.Sprintf("the live reply has %s: %s, the recorded one has no %s", name, shown(name, f.Value), name), timing)
		}
	}
	rn, ln := canonicalNames(rec.Header), canonicalNames(live.Header)
	if sameSet(rn, ln) && strings.Join(rn, ",") != strings.Join(ln, ",") {
		d.noteLocked(e, req, DiffHeaderOrder, "", "recorded order "+strings.Join(rn, ", ")+"; live order "+strings.Join(ln, ", "), timing)
	}
}

// shown is a header value as reports may print it (the value of a header
// whose value must differ is left out).
func shown(name, v string) string {
	switch name {
	case protocol.HeaderLockDate, protocol.HeaderLockAge, protocol.HeaderLockCookie:
		return "…"
	}
	return v
}

// sameValue compares one header's values after normalising; it returns why
// they differ, or "".
func (d *differ) sameValue(e *recEx, name, rv, lv string) string {
	switch name {
	case protocol.HeaderLockDate, protocol.HeaderLockAge:
		if _, err := strconv.ParseInt(lv, 10, 64); err != nil {
			return fmt.Sprintf("%s: live value %q is not a number", name, lv)
		}
		return ""
	case protocol.HeaderVersion:
		if versionMajor(rv) != versionMajor(lv) {
			return fmt.Sprintf("%s: recorded %q, live %q (majors differ)", name, rv, lv)
		}
		return ""
	case protocol.HeaderLockCookie:
		rc, ok1 := protocol.ParseInt32(rv)
		lc, ok2 := protocol.ParseInt32(lv)
		if !ok1 || !ok2 {
			if rv != lv {
				return fmt.Sprintf("%s: recorded %q, live %q", name, rv, lv)
			}
			return ""
		}
		if e.Op() == protocol.OpGetExclusive && e.Reply.Status == protocol.StatusOK {
			// A new lock: its live cookie must not be an earlier lock's.
			if other, taken := d.back[cookieKey{e.key, lc}]; taken && other != rc {
				return fmt.Sprintf("%s: the new lock got live cookie %d, the cookie of an earlier lock (recorded %d, now recorded %d): the cookie did not change between locks", name, lc, other, rc)
			}
			d.mapCookie(e.key, rc, lc)
			return ""
		}
		// Any other reply names a lock taken before: the same cookie as
		// the one acquired.
		want, mapped := d.cookies[cookieKey{e.key, rc}]
		if mapped && want != lc {
			return fmt.Sprintf("%s: the live reply names cookie %d where the lock acquired live has cookie %d (recorded %d)", name, lc, want, rc)
		}
		if !mapped {
			d.mapCookie(e.key, rc, lc)
		}
		return ""
	}
	if rv != lv {
		return fmt.Sprintf("%s: recorded %q, live %q", name, rv, lv)
	}
	return ""
}

// versionMajor is the X-AspNet-Version's part before the first ".".
func versionMajor(v string) string {
	if i := strings.IndexByte(v, '.'); i >= 0 {
		return v[:i]
	}
	return v
}

// canonical spells a header name as the protocol package does, whatever
// letter case the wire had.
func canonical(name string) string {
	for _, h := range []string{protocol.HeaderVersion, protocol.HeaderLockCookie, protocol.HeaderLockAge, protocol.HeaderLockDate,
		protocol.HeaderTimeout, protocol.HeaderActionFlags, protocol.HeaderCacheControl, protocol.HeaderContentLength} {
		if strings.EqualFold(name, h) {
			return h
		}
	}
	return name
}

func canonicalNames(h protocol.Header) []string {
	out := make([]string, len(h))
	for i, f := range h {
		out[i] = canonical(f.Name)
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// note records a difference (taking the lock).
func (d *differ) note(e *recEx, req *protocol.Request, kind, header, detail string, timing bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.noteLocked(e, req, kind, header, detail, timing)
}

func (d *differ) noteLocked(e *recEx, req *protocol.Request, kind, header, detail string, timing bool) {
	k := groupKey{kind: kind, op: e.Op().String(), header: header, timing: timing}
	if e.Reply != nil {
		k.recorded = e.Reply.Status
	}
	if e.live != nil {
		k.live = e.live.Status
	}
	g := d.groups[k]
	if g == nil {
		g = &DiffGroup{Kind: kind, Op: k.op, Recorded: k.recorded, Live: k.live, Header: header, Timing: timing}
		d.groups[k] = g
	}
	g.Count++
	if timing {
		d.rep.TimingDependent++
	} else {
		d.rep.Unexplained++
	}
	if len(g.Examples) < d.opt.Examples {
		g.Examples = append(g.Examples, DiffExample{Conn: e.Conn.String(), Seq: e.Seq, Detail: detail,
			Transcript: transcript(e, req, d.first)})
	}
}

// finish orders the groups: unexplained first, then by count.
func (d *differ) finish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, g := range d.groups {
		d.rep.Groups = append(d.rep.Groups, *g)
	}
	sort.Slice(d.rep.Groups, func(i, j int) bool {
		a, b := d.rep.Groups[i], d.rep.Groups[j]
		if a.Timing != b.Timing {
			return !a.Timing
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Title() < b.Title()
	})
}

// transcript renders the live exchange and the recorded reply in the style
// of the conformance reports: one line per wire line, "→" sent, "←"
// received, control bytes escaped. Bodies are shown as their lengths only.
func transcript(e *recEx, req *protocol.Request, first time.Time) string {
	var b strings.Builder
	at := fmt.Sprintf("%.1fms", float64(e.RequestStart.Sub(first))/float64(time.Millisecond))
	line := func(arrow, s string) { fmt.Fprintf(&b, "#%d %8s  %s %s\n", e.conn, at, arrow, escapeLine(s)) }
	line("→", req.Method+" "+req.Target+" "+req.Proto+"\r\n")
	for _, f := range req.Header {
		line("→", string(protocol.AppendField(nil, f)))
	}
	line("→", "\r\n")
	if len(req.Body) > 0 {
		fmt.Fprintf(&b, "#%d %8s  → (body: %d bytes)\n", e.conn, at, len(req.Body))
	}
	reply := func(label string, r *protocol.Response) {
		fmt.Fprintf(&b, "#%d %8s  ·· %s\n", e.conn, at, label)
		if r == nil {
			fmt.Fprintf(&b, "#%d %8s  ·· (none)\n", e.conn, at)
			return
		}
		status := strconv.Itoa(r.Status) + " " + r.Reason + "\r\n"
		if r.Proto != "" {
			status = r.Proto + " " + status
		}
		line("←", status)
		for _, f := range r.Header {
			line("←", string(protocol.AppendField(nil, f)))
		}
		line("←", "\r\n")
		if len(r.Body) > 0 {
			fmt.Fprintf(&b, "#%d %8s  ← (body: %d bytes)\n", e.conn, at, len(r.Body))
		}
	}
	reply("live reply", e.live)
	if e.live == nil && e.lerr != nil {
		fmt.Fprintf(&b, "#%d %8s  ·· %s\n", e.conn, at, errString(e.lerr))
	}
	reply("recorded reply", e.Reply)
	return b.String()
}

// escapeLine shows CR, LF and other control bytes escaped.
func escapeLine(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\\':
			b.WriteString(`\\`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
