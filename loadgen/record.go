package loadgen

import (
	"sort"
	"strconv"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/results"
)

// opRecord is one protocol call of a page.
type opRecord struct {
	op         protocol.Op
	status     int    // 0 when the call failed
	errKind    string // "" when a reply arrived
	start, end time.Time
}

// pageRecord is everything one page request did. A worker fills it and
// hands it to the collector, which alone touches the histograms
// (hdrhistogram-go is not safe for concurrent use).
type pageRecord struct {
	id       int64
	kind     string
	intended time.Time // from the schedule (= start in closed-loop mode)
	start    time.Time // when a worker began it
	end      time.Time
	errKind  string
	ops      []opRecord
	acquire  bool // a writable page (one exclusive acquire)
	waited   bool
	locked   int // 423 replies
	polls    int
	lockWait time.Duration
	// exec is the time the page spent in its emulated execution (the
	// handler's own work between acquire and write-back), as slept; the
	// page's state time (page-state) is its latency less this.
	exec time.Duration
	// execPlanned is the execution time the schedule drew; exec −
	// execPlanned is how late the sleep's timer fired (the machine's
	// scheduling delay, compare's yardstick).
	execPlanned time.Duration
	forced      int
	gaveUp      bool
	lostWrite   bool

	// The page's last reply and its body, copied out of the Conn (which
	// reuses its own) so the connection can go back to the pool at once.
	reply protocol.Reply
	body  []byte
	// out is the space the page's session body is written in.
	out []byte
}

// records holds page records the collector is done with, so that a page
// reuses a record's operation list and body buffer instead of allocating
// them (at 50,000 pages/s the allocations were a tenth of the generator's
// user time).
var records = sync.Pool{New: func() any { return new(pageRecord) }}

// newPageRecord returns an empty record, reusing a freed one's buffers.
func newPageRecord() *pageRecord {
	p := records.Get().(*pageRecord)
	p.reset()
	return p
}

// reset empties the record and keeps its buffers.
func (p *pageRecord) reset() {
	*p = pageRecord{ops: p.ops[:0], body: p.body[:0], out: p.out[:0]}
}

// free hands the record back for reuse. Nothing may touch it afterwards.
func (p *pageRecord) free() {
	if cap(p.body) > maxPooledBody || cap(p.out) > maxPooledBody {
		p.body, p.out = nil, nil // a rare large session is not held on to
	}
	records.Put(p)
}

// maxPooledBody is the largest body buffer a freed record keeps.
const maxPooledBody = 64 << 10

// keep copies rep into the page and returns the copy.
func (p *pageRecord) keep(rep *protocol.Reply) *protocol.Reply {
	p.body = append(p.body[:0], rep.Body...)
	p.reply = *rep
	p.reply.Body, p.reply.Response = p.body, nil
	return &p.reply
}

// tagHists are the corrected and uncorrected histograms of one tag.
type tagHists struct {
	corr, uncorr *hdrhistogram.Histogram
}

func newTagHists() *tagHists {
	return &tagHists{corr: results.NewHistogram(), uncorr: results.NewHistogram()}
}

func (t *tagHists) record(corr, uncorr time.Duration) {
	// Values beyond the histogram's range are clamped to it rather than lost.
	_ = t.corr.RecordValue(clampNS(corr))
	_ = t.uncorr.RecordValue(clampNS(uncorr))
}

func clampNS(d time.Duration) int64 {
	switch {
	case d < time.Duration(results.HistLowest):
		return results.HistLowest
	case d > time.Duration(results.HistHighest):
		return results.HistHighest
	}
	return int64(d)
}

// counts are the per-tag counters.
type counts struct {
	n        int64
	errors   map[string]int64
	statuses map[string]int64
}

func (c *counts) add(errKind string, status int) {
	c.n++
	if errKind != "" {
		if c.errors == nil {
			c.errors = map[string]int64{}
		}
		c.errors[errKind]++
	}
	if status != 0 {
		if c.statuses == nil {
			c.statuses = map[string]int64{}
		}
		c.statuses[strconv.Itoa(status)]++
	}
}

// collector owns every histogram and counter of a run. Records arrive from
// the workers over a channel; flush closes an interval: it writes the
// interval histograms as log entries, merges them into the totals and
// appends a point to the time series.
type collector struct {
	start     time.Time
	threshold time.Duration // lateness above which a slot is late
	// closedLoop leaves failed pages out of the interval throughput: in
	// closed loop it is a saturation figure, which counts served pages only.
	closedLoop bool

	total    map[string]*tagHists // by tag: "page.KIND", "op.NAME"
	interval map[string]*tagHists
	counts   map[string]*counts
	errors   map[string]int64
	lockWait *hdrhistogram.Histogram
	timerLag *hdrhistogram.Histogram // how late execution sleeps ended
	pageTags map[string]string
	// stateTags are "page-state." + kind, built once per kind.
	stateTags map[string]string

	ivStart                       time.Time
	ivAll                         *tagHists // every page of the interval
	ivPages, ivOps, ivErr, ivLock int64
	ivLate, ivFailed              int64

	acquires, waited, locked, polls, maxPolls, forced, gaveUp, lostWrites int64
	completed, late, started                                              int64
	cutOff                                                                int64 // pages cut off by the run's end, not recorded
	failed                                                                int64 // completed pages that ended with an error
	maxLateness                                                           time.Duration
	firstStart, lastEnd                                                   time.Time

	logs      []results.LogEntry
	intervals []results.Interval
	err       error // first encoding error
}

func newCollector(start time.Time, late time.Duration, closedLoop bool) *collector {
	return &collector{
		start: start, threshold: late, ivStart: start, closedLoop: closedLoop,
		total: map[string]*tagHists{}, interval: map[string]*tagHists{}, counts: map[string]*counts{},
		errors: map[string]int64{}, lockWait: results.NewHistogram(), timerLag: results.NewHistogram(), ivAll: newTagHists(),
		pageTags: map[string]string{}, stateTags: map[string]string{},
	}
}

func (c *collector) hists(tag string) *tagHists {
	h := c.interval[tag]
	if h == nil {
		h = newTagHists()
		c.interval[tag] = h
	}
	return h
}

func (c *collector) count(tag string) *counts {
	n := c.counts[tag]
	if n == nil {
		n = &counts{}
		c.counts[tag] = n
	}
	return n
}

// opTags are the operations' histogram tags, so that recording a page
// builds no strings.
var opTags = func() (t [8]string) {
	for i := range t {
		t[i] = "op." + protocol.Op(i).String()
	}
	return
}()

func opTag(o protocol.Op) string {
	if o >= 0 && int(o) < len(opTags) {
		return opTags[o]
	}
	return "op." + o.String()
}

// pageTag returns "page." + kind, built once per kind.
func (c *collector) pageTag(kind string) string {
	t, ok := c.pageTags[kind]
	if !ok {
		t = "page." + kind
		c.pageTags[kind] = t
	}
	return t
}

// stateTag returns results.PageStateTagPrefix + kind, built once per kind.
func (c *collector) stateTag(kind string) string {
	t, ok := c.stateTags[kind]
	if !ok {
		t = results.PageStateTagPrefix + kind
		c.stateTags[kind] = t
	}
	return t
}

// add records one page. A page cut off by the end of the run (Ctrl-C, an
// abort, or the end of the drain) is counted as such and nothing else: it
// neither completed nor failed, and its latency is only as long as the run
// let it be.
func (c *collector) add(r *pageRecord) {
	c.started++
	if r.errKind == ErrCanceled {
		c.cutOff++
		return
	}
	c.completed++
	lateness := r.start.Sub(r.intended)
	if lateness > c.threshold {
		c.late++
		c.ivLate++
	}
	if lateness > c.maxLateness {
		c.maxLateness = lateness
	}
	if c.firstStart.IsZero() || r.intended.Before(c.firstStart) {
		c.firstStart = r.intended
	}
	if r.end.After(c.lastEnd) {
		c.lastEnd = r.end
	}
	ptag := c.pageTag(r.kind)
	corr, uncorr := r.end.Sub(r.intended), r.end.Sub(r.start)
	c.hists(ptag).record(corr, uncorr)
	c.ivAll.record(corr, uncorr)
	c.count(ptag).add(r.errKind, 0)
	// The page's state time: what is left of its latency without its
	// emulated execution, i.e. its state-server calls, lock waits and (for
	// the corrected figure) its start delay.
	stag := c.stateTag(r.kind)
	c.hists(stag).record(corr-r.exec, uncorr-r.exec)
	c.count(stag).add(r.errKind, 0)
	c.ivPages++
	if r.errKind != "" {
		c.errors[r.errKind]++
		c.ivErr++
		c.failed++
		c.ivFailed++
	}
	for _, o := range r.ops {
		otag := opTag(o.op)
		d := o.end.Sub(o.start)
		// An operation's corrected latency adds the page's start delay: the
		// time the page spent waiting for its turn is part of what the user
		// would have seen for that call.
		c.hists(otag).record(d+max(lateness, 0), d)
		c.count(otag).add(o.errKind, o.status)
		c.ivOps++
		if o.errKind != "" && o.errKind != r.errKind {
			c.ivErr++
		}
		if o.status == protocol.StatusLocked {
			c.ivLock++
		}
	}
	if r.execPlanned > 0 && r.exec >= r.execPlanned && r.errKind == "" {
		_ = c.timerLag.RecordValue(clampNS(r.exec - r.execPlanned))
	}
	if r.acquire {
		c.acquires++
	}
	if r.waited {
		c.waited++
		_ = c.lockWait.RecordValue(clampNS(r.lockWait))
	}
	c.locked += int64(r.locked)
	c.polls += int64(r.polls)
	c.maxPolls = max(c.maxPolls, int64(r.polls))
	c.forced += int64(r.forced)
	if r.gaveUp {
		c.gaveUp++
	}
	if r.lostWrite {
		c.lostWrites++
	}
}

// flush closes the interval ending at now.
func (c *collector) flush(now time.Time) {
	if !now.After(c.ivStart) {
		return
	}
	tags := make([]string, 0, len(c.interval))
	for t := range c.interval {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	for _, tag := range tags {
		h := c.interval[tag]
		for _, corrected := range []bool{true, false} {
			src := h.uncorr
			if corrected {
				src = h.corr
			}
			e, err := results.NewLogEntry(corrected, tag, c.ivStart, now, src)
			if err != nil && c.err == nil {
				c.err = err
			}
			c.logs = append(c.logs, e)
		}
		tot := c.total[tag]
		if tot == nil {
			tot = newTagHists()
			c.total[tag] = tot
		}
		tot.corr.Merge(h.corr)
		tot.uncorr.Merge(h.uncorr)
	}
	clear(c.interval) // fresh histograms next interval: tags come and go
	secs := now.Sub(c.ivStart).Seconds()
	served := c.ivPages
	if c.closedLoop {
		served -= c.ivFailed
	}
	c.intervals = append(c.intervals, results.Interval{
		Elapsed:        results.Duration(now.Sub(c.start)),
		Pages:          c.ivPages,
		Ops:            c.ivOps,
		Errors:         c.ivErr,
		LockWaits:      c.ivLock,
		Late:           c.ivLate,
		P99:            c.ivAll.corr.ValueAtQuantile(99),
		P99Uncorrected: c.ivAll.uncorr.ValueAtQuantile(99),
		Throughput:     float64(served) / secs,
	})
	c.ivAll.corr.Reset()
	c.ivAll.uncorr.Reset()
	c.ivPages, c.ivOps, c.ivErr, c.ivLock, c.ivLate, c.ivFailed = 0, 0, 0, 0, 0, 0
	c.ivStart = now
}

// stats builds the per-tag results with the given prefix ("page.",
// "page-state." or "op.").
func (c *collector) stats(prefix string) (map[string]*results.Stats, error) {
	out := map[string]*results.Stats{}
	for tag, n := range c.counts {
		if len(tag) <= len(prefix) || tag[:len(prefix)] != prefix {
			continue
		}
		h := c.total[tag]
		if h == nil {
			h = newTagHists()
		}
		corr, err := results.NewLatency(h.corr)
		if err != nil {
			return nil, err
		}
		uncorr, err := results.NewLatency(h.uncorr)
		if err != nil {
			return nil, err
		}
		s := &results.Stats{Count: n.n, Corrected: corr, Uncorrected: uncorr, Errors: n.errors, Statuses: n.statuses}
		if s.Errors == nil {
			s.Errors = map[string]int64{}
		}
		if s.Statuses == nil {
			s.Statuses = map[string]int64{}
		}
		out[tag[len(prefix):]] = s
	}
	return out, nil
}
