package trace

import (
	"fmt"
	"hash/maphash"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
)

// ModeCapture is results.Config.Mode of a result made from a capture: what a
// real server did, not a load run.
const ModeCapture = results.ModeCapture

// maxIntervals bounds the time series: when a capture spans more intervals,
// their width doubles (neighbours are merged), so memory stays bounded
// however long the capture.
const maxIntervals = 1200

// Inspection accumulates what `aspstate trace inspect` shows of a capture:
// who talked to whom, the exchanges by operation and status, the server's
// latency per operation, lock waits, body sizes and Timeout values, and a
// time series. Feed it every exchange with Add (it keeps no body and no key,
// only a hash of each key), then Write it or turn it into a results.Run.
type Inspection struct {
	origin time.Time
	width  time.Duration
	cur    int
	live   map[protocol.Op]*hdrhistogram.Histogram
	series []point
	// closed holds the closed intervals' latencies per operation as sparse
	// counts: encoding a histogram costs milliseconds, so it is done only
	// when a result is written (Run), once per interval that remains.
	closed []intervalCounts

	ops      map[protocol.Op]*opFigures
	clients  map[netip.Addr]int64
	servers  map[netip.AddrPort]int64
	apps     map[string]int64
	sessions map[uint64]struct{}
	seed     maphash.Seed

	acquires, locked int64
	waiting          map[uint64]time.Time // key hash -> first 423 of the acquire
	lockWait         *hdrhistogram.Histogram
	reqBody, repBody *hdrhistogram.Histogram
	timeouts         map[string]int64 // request Timeout header values
	replyTimeouts    map[string]int64
	unanswered       int64
	first, last      time.Time
	pages            map[scenarios.PageKind]int64 // by kind; "" for a page whose end the capture missed
	pageFirst        time.Time
	pageLast         time.Time
}

// opFigures are the totals of one operation.
type opFigures struct {
	count    int64
	statuses map[int]int64
	latency  *hdrhistogram.Histogram
}

// point is one interval of the time series (pages by the interval of their
// start).
type point struct{ exchanges, pages, locked, unanswered int64 }

// NewInspection returns an empty Inspection whose time series starts with
// one-second intervals.
func NewInspection() *Inspection {
	return &Inspection{
		width:         time.Second,
		live:          map[protocol.Op]*hdrhistogram.Histogram{},
		ops:           map[protocol.Op]*opFigures{},
		clients:       map[netip.Addr]int64{},
		servers:       map[netip.AddrPort]int64{},
		apps:          map[string]int64{},
		sessions:      map[uint64]struct{}{},
		seed:          maphash.MakeSeed(),
		waiting:       map[uint64]time.Time{},
		lockWait:      results.NewHistogram(),
		reqBody:       sizeHistogram(),
		repBody:       sizeHistogram(),
		timeouts:      map[string]int64{},
		replyTimeouts: map[string]int64{},
		pages:         map[scenarios.PageKind]int64{},
	}
}

// AddPage counts one page (e.g. from a PageBuilder fed the same exchanges)
// in the interval of its start. A page comes after the exchanges that
// start it, so its interval is in the series already.
func (in *Inspection) AddPage(p *Page) {
	in.pages[p.Kind]++
	if in.pageFirst.IsZero() || p.Start.Before(in.pageFirst) {
		in.pageFirst = p.Start
	}
	if p.Start.After(in.pageLast) {
		in.pageLast = p.Start
	}
	if in.series == nil {
		in.advance(p.Start)
	}
	idx := min(max(int(p.Start.Sub(in.origin)/in.width), 0), len(in.series)-1)
	in.series[idx].pages++
}

func sizeHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, 1<<32, 3) }

// SplitKey splits an item key (protocol.Key of a request target) into the
// application id and the session id: "/LM/W3SVC/1/ROOT(hash)/sid" gives
// "/LM/W3SVC/1/ROOT" and "sid"; a key without the 4.x hash ("/app/sid", as
// .NET 2.0 sends) gives "/app" and "sid".
func SplitKey(key string) (app, session string) {
	slash := strings.LastIndexByte(key, '/')
	if slash < 0 {
		return "", key
	}
	app, session = key[:slash], key[slash+1:]
	if strings.HasSuffix(app, ")") {
		if open := strings.LastIndexByte(app, '('); open >= 0 {
			app = app[:open]
		}
	}
	return app, session
}

// Add takes one exchange into the figures.
func (in *Inspection) Add(e *Exchange) {
	t := e.RequestStart
	if in.first.IsZero() || t.Before(in.first) {
		in.first = t
	}
	end := e.ReplyEnd
	if e.Reply == nil {
		end = e.RequestEnd
	}
	if end.After(in.last) {
		in.last = end
	}
	in.advance(t)
	p := &in.series[len(in.series)-1]
	p.exchanges++

	op := e.Op()
	f := in.ops[op]
	if f == nil {
		f = &opFigures{statuses: map[int]int64{}, latency: results.NewHistogram()}
		in.ops[op] = f
	}
	f.count++
	in.clients[e.Conn.Client.Addr()]++
	in.servers[e.Conn.Server]++
	key := protocol.Key(e.Request.Target)
	app, _ := SplitKey(key)
	in.apps[app]++
	kh := maphash.String(in.seed, key)
	in.sessions[kh] = struct{}{}

	if v, ok := e.Request.Header.Get(protocol.HeaderTimeout); ok {
		in.timeouts[v]++
	}
	if op == protocol.OpSet {
		_ = in.reqBody.RecordValue(int64(len(e.Request.Body)))
	}
	if e.Reply == nil {
		in.unanswered++
		p.unanswered++
		return
	}
	f.statuses[e.Reply.Status]++
	lat := max(0, e.Latency().Nanoseconds())
	_ = f.latency.RecordValue(lat)
	h := in.live[op]
	if h == nil {
		h = results.NewHistogram()
		in.live[op] = h
	}
	_ = h.RecordValue(lat)
	if v, ok := e.Reply.Header.Get(protocol.HeaderTimeout); ok {
		in.replyTimeouts[v]++
	}
	if (op == protocol.OpGet || op == protocol.OpGetExclusive) && e.Reply.Status == protocol.StatusOK {
		_ = in.repBody.RecordValue(int64(len(e.Reply.Body)))
	}
	if op == protocol.OpGetExclusive {
		if e.Reply.Status == protocol.StatusLocked {
			in.locked++
			p.locked++
			if _, ok := in.waiting[kh]; !ok {
				in.waiting[kh] = e.RequestStart
			}
		} else if e.Reply.Status == protocol.StatusOK {
			in.acquires++
			if since, ok := in.waiting[kh]; ok {
				_ = in.lockWait.RecordValue(max(0, e.ReplyEnd.Sub(since).Nanoseconds()))
				delete(in.waiting, kh)
			}
		}
	}
}

// advance moves the time series to the interval holding t. An exchange
// older than the current interval (they arrive in reply order, across
// files) is counted in the current one.
func (in *Inspection) advance(t time.Time) {
	if in.series == nil {
		in.origin = t.Truncate(time.Second)
		in.series = []point{{}}
	}
	idx := int(t.Sub(in.origin) / in.width)
	for in.cur < idx {
		in.closeInterval()
		in.cur++
		in.series = append(in.series, point{})
		if len(in.series) > maxIntervals {
			in.coarsen()
			idx = int(t.Sub(in.origin) / in.width)
		}
	}
}

// intervalCounts are one operation's latencies in one closed interval.
type intervalCounts struct {
	start  time.Time
	op     protocol.Op
	counts sparse
}

// sparse holds the non-zero counts of a results.NewHistogram by index.
type sparse []indexCount

type indexCount struct {
	i int32
	n int64
}

func sparseOf(h *hdrhistogram.Histogram) sparse {
	var s sparse
	for i, n := range h.Export().Counts {
		if n != 0 {
			s = append(s, indexCount{int32(i), n})
		}
	}
	return s
}

// histogram rebuilds the histogram s holds.
func (s sparse) histogram() *hdrhistogram.Histogram {
	snap := results.NewHistogram().Export()
	for _, c := range s {
		snap.Counts[c.i] = c.n
	}
	return hdrhistogram.Import(snap)
}

// merge adds the counts of two sparse histograms.
func (s sparse) merge(o sparse) sparse {
	out := make(sparse, 0, len(s)+len(o))
	i, j := 0, 0
	for i < len(s) || j < len(o) {
		switch {
		case j == len(o) || i < len(s) && s[i].i < o[j].i:
			out = append(out, s[i])
			i++
		case i == len(s) || o[j].i < s[i].i:
			out = append(out, o[j])
			j++
		default:
			out = append(out, indexCount{s[i].i, s[i].n + o[j].n})
			i, j = i+1, j+1
		}
	}
	return out
}

// closeInterval keeps the live histograms of the current interval.
func (in *Inspection) closeInterval() {
	start := in.origin.Add(time.Duration(in.cur) * in.width)
	for _, op := range protocol.Ops {
		h := in.live[op]
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		in.closed = append(in.closed, intervalCounts{start, op, sparseOf(h)})
		h.Reset()
	}
}

// coarsen doubles the interval width, merging neighbouring intervals.
func (in *Inspection) coarsen() {
	in.width *= 2
	merged := make([]point, 0, len(in.series)/2+1)
	for i, p := range in.series {
		if i%2 == 0 {
			merged = append(merged, p)
			continue
		}
		m := &merged[len(merged)-1]
		m.exchanges += p.exchanges
		m.pages += p.pages
		m.locked += p.locked
		m.unanswered += p.unanswered
	}
	in.series = merged
	in.cur = len(in.series) - 1
	// Closed intervals that now share an interval are merged; the live
	// interval takes back what now falls into it.
	curStart := in.origin.Add(time.Duration(in.cur) * in.width)
	var out []intervalCounts
	for _, c := range in.closed {
		c.start = in.origin.Add(c.start.Sub(in.origin) / in.width * in.width)
		if !c.start.Before(curStart) {
			if in.live[c.op] == nil {
				in.live[c.op] = results.NewHistogram()
			}
			in.live[c.op].Merge(c.counts.histogram())
			continue
		}
		// Entries are in time order: this operation's entry of the same
		// interval, if any, is among the last ones.
		found := false
		for k := len(out) - 1; k >= 0 && out[k].start.Equal(c.start); k-- {
			if out[k].op == c.op {
				out[k].counts = out[k].counts.merge(c.counts)
				found = true
				break
			}
		}
		if !found {
			out = append(out, c)
		}
	}
	in.closed = out
}

// Exchanges is how many exchanges were added.
func (in *Inspection) Exchanges() int64 {
	var n int64
	for _, f := range in.ops {
		n += f.count
	}
	return n
}

// sortedOps returns the operations seen, in protocol order.
func (in *Inspection) sortedOps() []protocol.Op {
	var ops []protocol.Op
	for _, op := range protocol.Ops {
		if in.ops[op] != nil {
			ops = append(ops, op)
		}
	}
	return ops
}

// Write prints the one-screen summary of the capture.
func (in *Inspection) Write(w io.Writer, st Stats) {
	span := st.Last.Sub(st.First)
	fmt.Fprintf(w, "capture: %d file(s), %s, %d packets (%d on the port), %d connections\n",
		st.Files, sizeText(st.Bytes), st.Packets, st.PortPackets, st.Connections)
	if !st.First.IsZero() {
		fmt.Fprintf(w, "time: %s to %s (%s)\n", st.First.UTC().Format("2006-01-02 15:04:05.000"),
			st.Last.UTC().Format("15:04:05.000"), span.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "web servers (clients): %d  %s\n", len(in.clients), topCounts(in.clients, func(a netip.Addr) string { return a.String() }))
	fmt.Fprintf(w, "partitions (servers): %d  %s\n", len(in.servers), topCounts(in.servers, func(a netip.AddrPort) string { return a.String() }))
	fmt.Fprintf(w, "apps: %d  %s\n", len(in.apps), topCounts(in.apps, func(s string) string { return strconv.Quote(s) }))
	fmt.Fprintf(w, "sessions: %d\n", len(in.sessions))
	fmt.Fprintf(w, "%s\n", st.Skipped)

	n := in.Exchanges()
	fmt.Fprintf(w, "\nexchanges: %d", n)
	if d := in.last.Sub(in.first); d > 0 {
		fmt.Fprintf(w, " (%.1f/s)", float64(n)/d.Seconds())
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\tstatuses\tlatency p50\tp90\tp99\tp99.9\tmax\t")
	for _, op := range in.sortedOps() {
		f := in.ops[op]
		h := f.latency
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", op, f.count, statusText(f.statuses),
			dur(h.ValueAtQuantile(50)), dur(h.ValueAtQuantile(90)), dur(h.ValueAtQuantile(99)),
			dur(h.ValueAtQuantile(99.9)), dur(h.Max()))
	}
	tw.Flush()
	fmt.Fprintln(w, "latency: the real server's, last request byte to first reply byte as the capture saw them")

	var pages int64
	for _, c := range in.pages {
		pages += c
	}
	fmt.Fprintln(w)
	if pages > 0 {
		fmt.Fprintf(w, "pages: %d", pages)
		if d := in.pageLast.Sub(in.pageFirst); d > 0 {
			fmt.Fprintf(w, " (%.1f/s)", float64(pages)/d.Seconds())
		}
		var kinds []string
		for _, k := range []scenarios.PageKind{scenarios.PageModify, scenarios.PageReadUnchanged, scenarios.PageReadOnly, scenarios.PageSessionless, scenarios.PageAbandon, ""} {
			if c := in.pages[k]; c > 0 {
				name := string(k)
				if k == "" {
					name = "unfinished"
				}
				kinds = append(kinds, fmt.Sprintf("%s %d", name, c))
			}
		}
		fmt.Fprintf(w, ": %s (rebuilt from the exchanges as aspstate trace fit does)\n", strings.Join(kinds, ", "))
		fmt.Fprintf(w, "pages/s over time (%s intervals, by page start): %s\n", in.width, in.sparkline(60, func(p point) int64 { return p.pages }))
	}
	fmt.Fprintf(w, "exchanges/s over time (%s intervals): %s\n", in.width, in.sparkline(60, func(p point) int64 { return p.exchanges }))
	if in.acquires+in.locked > 0 {
		fmt.Fprintf(w, "locks: %d acquires granted, %d 423 replies (%.1f%% of acquire attempts)", in.acquires, in.locked,
			100*float64(in.locked)/float64(in.acquires+in.locked))
		if lw := in.lockWait; lw.TotalCount() > 0 {
			fmt.Fprintf(w, "; lock wait over %d waits: p50 %s, p90 %s, p99 %s, max %s", lw.TotalCount(),
				dur(lw.ValueAtQuantile(50)), dur(lw.ValueAtQuantile(90)), dur(lw.ValueAtQuantile(99)), dur(lw.Max()))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "body sizes: PUT %s; GET reply %s\n", sizes(in.reqBody), sizes(in.repBody))
	fmt.Fprintf(w, "Timeout (minutes): requests %s; replies %s\n", valueCounts(in.timeouts), valueCounts(in.replyTimeouts))
	if in.unanswered > 0 {
		fmt.Fprintf(w, "unanswered requests (the capture ended or the connection closed first): %d\n", in.unanswered)
	}
}

// sparkline draws a count per second of the series (val of each interval)
// in at most width characters.
func (in *Inspection) sparkline(width int, val func(point) int64) string {
	if len(in.series) == 0 {
		return "(none)"
	}
	per := (len(in.series) + width - 1) / width
	var vals []float64
	for i := 0; i < len(in.series); i += per {
		var sum int64
		n := 0
		for j := i; j < i+per && j < len(in.series); j++ {
			sum += val(in.series[j])
			n++
		}
		vals = append(vals, float64(sum)/(float64(n)*in.width.Seconds()))
	}
	lo, hi := vals[0], vals[0]
	for _, v := range vals {
		lo, hi = min(lo, v), max(hi, v)
	}
	bars := []rune("▁▂▃▄▅▆▇█")
	var b strings.Builder
	for _, v := range vals {
		i := 0
		if hi > lo {
			i = int((v - lo) / (hi - lo) * float64(len(bars)-1))
		}
		b.WriteRune(bars[i])
	}
	return fmt.Sprintf("%s  min %.1f, max %.1f", b.String(), lo, hi)
}

// Run returns the inspection as a result (result.json and .hlog files) so
// that aspstate report draws it and aspstate compare sets it beside a load
// run. Pages are not rebuilt here: Pages is empty and the series counts
// exchanges.
func (in *Inspection) Run(st Stats, name string, harness results.Harness) (*results.Run, error) {
	if in.series != nil {
		in.closeInterval() // the last interval; closing resets it, so a second Run adds nothing
	}
	r := &results.Run{
		Schema:  results.Schema,
		Harness: harness,
		Start:   st.First.UTC(),
		End:     st.Last.UTC(),
		Config: results.Config{
			Duration:     results.Duration(st.Last.Sub(st.First)),
			Minute:       results.Duration(time.Minute),
			Mode:         ModeCapture,
			Shape:        ModeCapture,
			ScenarioName: name,
			Options: map[string]string{
				"latency":  "the real server's: last request byte to first reply byte",
				"interval": in.width.String(),
				"skipped":  st.Skipped.String(),
			},
		},
		Errors: map[string]int64{},
		Ops:    map[string]*results.Stats{},
		Pages:  map[string]*results.Stats{},
	}
	for _, c := range in.closed {
		// The server's latency has no intended start: the corrected and
		// the uncorrected logs carry the same histograms.
		e, err := results.NewLogEntry(true, "op."+c.op.String(), c.start, c.start.Add(in.width), c.counts.histogram())
		if err != nil {
			return nil, err
		}
		u := e
		u.Corrected = false
		r.Logs = append(r.Logs, e, u)
	}
	if in.unanswered > 0 {
		r.Errors["unanswered"] = in.unanswered
	}
	servers := make([]netip.AddrPort, 0, len(in.servers))
	for s := range in.servers {
		servers = append(servers, s)
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].Compare(servers[j]) < 0 })
	for _, s := range servers {
		r.Config.Targets = append(r.Config.Targets, results.Target{Addr: s.String(), Kind: ModeCapture, Spec: s.String(),
			Description: fmt.Sprintf("%d exchanges in the capture", in.servers[s])})
	}
	for _, op := range in.sortedOps() {
		f := in.ops[op]
		lat, err := results.NewLatency(f.latency)
		if err != nil {
			return nil, err
		}
		s := &results.Stats{Count: f.count, Corrected: lat, Uncorrected: lat, Errors: map[string]int64{}, Statuses: map[string]int64{}}
		for code, n := range f.statuses {
			s.Statuses[strconv.Itoa(code)] = n
		}
		r.Ops[op.String()] = s
	}
	wait, err := results.NewLatency(in.lockWait)
	if err != nil {
		return nil, err
	}
	r.Locks = results.Locks{Acquires: in.acquires, Locked: in.locked, Polls: in.locked,
		Waited: in.lockWait.TotalCount(), Wait: wait}
	if in.acquires > 0 {
		r.Locks.PollsPerAcquire = float64(in.locked) / float64(in.acquires)
	}
	for i, p := range in.series {
		r.Intervals = append(r.Intervals, results.Interval{
			Elapsed:   results.Duration(in.origin.Add(time.Duration(i+1) * in.width).Sub(r.Start)),
			Ops:       p.exchanges,
			LockWaits: p.locked,
			Errors:    p.unanswered,
		})
	}
	r.Rate.Window = results.Duration(st.Last.Sub(st.First))
	return r, nil
}

func dur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func sizes(h *hdrhistogram.Histogram) string {
	if h.TotalCount() == 0 {
		return "none"
	}
	return fmt.Sprintf("%d bodies, mean %.0f B, p50 %d B, p99 %d B, max %d B", h.TotalCount(), h.Mean(),
		h.ValueAtQuantile(50), h.ValueAtQuantile(99), h.Max())
}

func statusText(m map[int]int64) string {
	codes := make([]int, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", c, m[c]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func valueCounts(m map[string]int64) string {
	return topCounts(m, func(s string) string { return s })
}

// topCounts lists the five most frequent keys of m with their counts.
func topCounts[K comparable](m map[K]int64, name func(K) string) string {
	type kv struct {
		name string
		n    int64
	}
	var all []kv
	for k, n := range m {
		all = append(all, kv{name(k), n})
	}
	if len(all) == 0 {
		return "none"
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].name < all[j].name
	})
	var parts []string
	for i, e := range all {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("… %d more", len(all)-5))
			break
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", e.name, e.n))
	}
	return strings.Join(parts, ", ")
}

// Record is one exchange as `aspstate trace inspect --exchanges` prints it
// (and --json writes it). It never holds a body; Key is a pseudonym unless
// keys were asked for.
type Record struct {
	Time        time.Time `json:"time"`
	Conn        string    `json:"conn"`
	Seq         int       `json:"seq"`
	Op          string    `json:"op"`
	Key         string    `json:"key"`
	Status      int       `json:"status"` // 0: no whole reply in the capture
	RequestSize int       `json:"request_bytes"`
	ReplySize   int       `json:"reply_bytes"`
	LatencyNS   int64     `json:"latency_ns"`
}

// Keys names session keys in Records: the key itself when Show is set,
// otherwise a pseudonym ("s1", "s2", … in order of first appearance) that
// lets a reader follow one session without seeing it.
type Keys struct {
	Show bool
	seed maphash.Seed
	ids  map[uint64]int
}

// Name returns what a Record shows for key.
func (k *Keys) Name(key string) string {
	if k.Show {
		return key
	}
	if k.ids == nil {
		k.ids = map[uint64]int{}
		k.seed = maphash.MakeSeed()
	}
	h := maphash.String(k.seed, key)
	id, ok := k.ids[h]
	if !ok {
		id = len(k.ids) + 1
		k.ids[h] = id
	}
	return "s" + strconv.Itoa(id)
}

// NewRecord describes e for printing.
func NewRecord(e *Exchange, keys *Keys) Record {
	r := Record{Time: e.RequestStart.UTC(), Conn: e.Conn.String(), Seq: e.Seq, Op: e.Op().String(),
		Key: keys.Name(protocol.Key(e.Request.Target)), RequestSize: e.RequestSize, ReplySize: e.ReplySize}
	if e.Reply != nil {
		r.Status = e.Reply.Status
		r.LatencyNS = e.Latency().Nanoseconds()
	}
	return r
}

// String formats the record as one line of text.
func (r Record) String() string {
	status := "-"
	lat := "-"
	if r.Status != 0 {
		status = strconv.Itoa(r.Status)
		lat = dur(r.LatencyNS)
	}
	return fmt.Sprintf("%s %s #%d %s %s %s %dB/%dB %s", r.Time.Format("15:04:05.000000"), r.Conn, r.Seq, r.Op, r.Key,
		status, r.RequestSize, r.ReplySize, lat)
}
