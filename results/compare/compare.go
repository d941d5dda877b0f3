// Package compare compares two sets of load results (BASE and NEW, each one
// or several result directories of the same scenario) and decides, metric by
// metric, whether NEW is a regression, an improvement or no change, and
// whether user thresholds hold.
//
// For each scope (all pages together, each page type, each protocol
// operation) it compares p50, p90, p99, p99.9, max, throughput and the error
// rate. The point values are those of the merged totals of each side (all
// runs' histograms merged). The verdict is noise-aware, in the manner of
// benchstat: the samples are the per-interval values of every run of a side
// (the interval percentiles from the corrected .hlog histograms, pages per
// second per interval), compared with the two-sided Mann–Whitney U test; the
// error rate, a proportion, is compared with a two-proportion z-test over the
// counts. A change is a regression or an improvement only when p < Alpha and
// the relative delta is at least MinEffect; otherwise it is "no change".
//
// Latency is the corrected latency (from the intended start). Every metric
// is per side, not per run: several runs of a side are pooled.
package compare

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
)

// Metric names a compared figure.
type Metric string

// The metrics, in the order rows are listed.
const (
	P50        Metric = "p50"
	P90        Metric = "p90"
	P99        Metric = "p99"
	P999       Metric = "p99.9"
	Max        Metric = "max"
	Throughput Metric = "throughput"
	Errors     Metric = "errors"
)

// Metrics lists every metric in row order.
var Metrics = []Metric{P50, P90, P99, P999, Max, Throughput, Errors}

// IsLatency reports whether m is a latency (nanoseconds).
func (m Metric) IsLatency() bool {
	switch m {
	case P50, P90, P99, P999, Max:
		return true
	}
	return false
}

// HigherIsBetter reports whether a larger value of m is an improvement.
func (m Metric) HigherIsBetter() bool { return m == Throughput }

// Quantile is the 0–100 quantile of a percentile metric (100 for max).
func (m Metric) Quantile() float64 {
	switch m {
	case P50:
		return 50
	case P90:
		return 90
	case P99:
		return 99
	case P999:
		return 99.9
	}
	return 100
}

// Scope kinds.
const (
	ScopeAll  = "all"
	ScopePage = "page"
	ScopeOp   = "op"
	// ScopePageState is a page's state time (results.Run.PageState): with
	// no Name every page together, else one page type.
	ScopePageState = "page-state"
)

// Scope selects what a metric is measured over: every page together
// (Kind ScopeAll), one page type, one protocol operation, or the state time
// of every page (Kind ScopePageState, no Name) or of one page type.
type Scope struct {
	Kind string
	Name string
}

// String spells the scope as thresholds do: "all", "page:modify", "op:get",
// "page-state", "page-state:modify".
func (s Scope) String() string {
	if s.Kind == ScopeAll || s.Name == "" {
		return s.Kind
	}
	return s.Kind + ":" + s.Name
}

// TagScopes returns the scopes an .hlog tag's histogram counts in: "page.K"
// in page:K and all, "page-state.K" in page-state:K and page-state, "op.N"
// in op:N; none for another tag.
func TagScopes(tag string) []Scope {
	kind, name, ok := strings.Cut(tag, ".")
	if !ok {
		return nil
	}
	return kindScopes(kind, name)
}

// kindScopes is TagScopes for a tag's kind and name.
func kindScopes(kind, name string) []Scope {
	switch kind {
	case ScopePage:
		return []Scope{{Kind: ScopePage, Name: name}, {Kind: ScopeAll}}
	case ScopePageState:
		return []Scope{{Kind: ScopePageState, Name: name}, {Kind: ScopePageState}}
	case ScopeOp:
		return []Scope{{Kind: ScopeOp, Name: name}}
	}
	return nil
}

// Verdict is the decision on one metric.
type Verdict string

// Verdicts.
const (
	NoChange    Verdict = "no change"
	Regression  Verdict = "regression"
	Improvement Verdict = "improvement"
)

// Row is one compared metric of one scope.
type Row struct {
	Scope  Scope
	Metric Metric
	// Base and New are the values of the merged totals of each side:
	// nanoseconds for latency, pages or operations per second for
	// throughput, a fraction (0–1) for errors.
	Base, New float64
	// Delta is (New - Base) / Base; +Inf when Base is 0 and New is not, 0
	// when both are 0.
	Delta float64
	// P is the two-sided p-value of the test; NaN when there were too few
	// samples to test.
	P float64
	// Q is P adjusted for the number of rows tested (Benjamini–Hochberg,
	// see Options.Correction); the verdict compares Q with Alpha. Q equals
	// P without correction.
	Q float64
	// NBase and NNew are the sample counts: intervals for latency and
	// throughput, completed requests for errors.
	NBase, NNew int64
	// Test names the test: "mann-whitney" or "two-proportion-z".
	Test string
	// Verdict is the decision and Note why ("p=0.43", "|delta| < 5%", …).
	Verdict Verdict
	Note    string

	// Machine is how much of a latency change the machine explains:
	// MachineFactor × the machine's timer lag at the same percentile, the
	// larger of the two sides' (0 when a side did not record it). A latency
	// change must exceed it as well as the minimum effect.
	Machine float64

	// dir is the direction the samples moved (> 0: NEW higher).
	dir float64
}

// MachineFactor is how many scheduling delays a latency is taken to suffer:
// a page crosses several threads several times (the client's writes, the
// server's reads and replies, the client's reads, its lock polls), each
// delayed by up to the machine's timer lag, so on a machine whose timers lag
// by d a latency may move by MachineFactor × d for no reason of the build's.
const MachineFactor = 8

// Options tune the verdict.
type Options struct {
	// Alpha is the significance level (default 0.05).
	Alpha float64
	// MinEffects are the smallest changes, per metric, reported as a
	// regression or an improvement (practical significance); a metric not
	// listed has none. DefaultEffects are the defaults.
	MinEffects map[Metric]Effect
	// MinSamples is the fewest samples per side a test needs (default 3);
	// with fewer the verdict is no change, "too few samples".
	MinSamples int
	// Correction is how p-values are adjusted for the many rows tested at
	// once: CorrectionBH (default) or CorrectionNone.
	Correction string
	// AllowDifferent lists the workload fields (WorkloadFields, or "all")
	// on which BASE and NEW may differ; by default Compare refuses runs of
	// different workloads with a MismatchError.
	AllowDifferent []string
}

// Effect is a minimum effect: a change counts only when it is at least Rel
// relative to BASE and at least Abs in the metric's unit (nanoseconds for
// latency, pages per second for throughput, a fraction of requests for
// errors).
type Effect struct {
	Rel float64
	Abs float64
}

// DefaultEffects are the minimum effects of the default verdict, chosen so
// that two runs of one build on a shared 2-core machine compare as no
// change: tail percentiles move far more with the machine's other work than
// medians do, and sub-millisecond latencies move by large fractions.
//
//	p50        +15% and 0.5ms
//	p90        +20% and 1ms
//	p99, p99.9, max  reported, not judged: on a shared machine they move
//	           tenfold with the other tenants' work (lock polls of 500 ms
//	           start when pages slow down); judge them with a threshold,
//	           or with --min-effect p99=50%+5ms on a dedicated machine
//	throughput 10% (closed loop; an open model is judged against its offered rate)
//	errors     0.1 percentage points
//
// Beside these, a latency change must exceed what the machine explains
// (Row.Machine).
var DefaultEffects = map[Metric]Effect{
	P50:        {Rel: 0.15, Abs: 0.5e6},
	P90:        {Rel: 0.20, Abs: 1e6},
	P99:        {Rel: math.Inf(1)},
	P999:       {Rel: math.Inf(1)},
	Max:        {Rel: math.Inf(1)},
	Throughput: {Rel: 0.10},
	Errors:     {Abs: 0.001},
}

// Text prints the effect of metric m: "15% and 500.0µs", "0.1%".
func (e Effect) Text(m Metric) string {
	var parts []string
	if e.Rel > 0 {
		parts = append(parts, pct(e.Rel))
	}
	if e.Abs > 0 {
		parts = append(parts, FormatValue(m, e.Abs))
	}
	if math.IsInf(e.Rel, 1) {
		return "not judged"
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " and ")
}

// EffectsText lists the minimum effects of every metric.
func (o Options) EffectsText() string {
	var parts []string
	for _, m := range Metrics {
		parts = append(parts, string(m)+" "+o.MinEffects[m].Text(m))
	}
	return strings.Join(parts, ", ")
}

// Multiple-comparison corrections.
const (
	// CorrectionBH controls the false discovery rate across all rows
	// (Benjamini–Hochberg): a comparison tests some seventy metrics, so at
	// Alpha 0.05 per metric two runs of the same build would show a few
	// "regressions" by chance. With it, one isolated small p-value is not
	// enough, while a real change that moves many metrics still is.
	CorrectionBH = "bh"
	// CorrectionNone judges every metric on its own p-value, as benchstat
	// does.
	CorrectionNone = "none"
)

// DefaultOptions returns Alpha 0.05, the DefaultEffects, MinSamples 3 and
// the Benjamini–Hochberg correction.
func DefaultOptions() Options {
	return Options{Alpha: 0.05, MinEffects: maps.Clone(DefaultEffects), MinSamples: 3, Correction: CorrectionBH}
}

// Validate reports bad options.
func (o Options) Validate() error {
	var errs []error
	// Each problem starts with the Options field it names; the CLI maps
	// field names to its flags.
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !(o.Alpha > 0 && o.Alpha < 1) {
		bad("Alpha %v: want a significance level between 0 and 1, such as 0.05", o.Alpha)
	}
	for _, m := range Metrics {
		e := o.MinEffects[m]
		if !(e.Rel >= 0) || !(e.Abs >= 0) || math.IsInf(e.Abs, 0) {
			bad("MinEffects of %s %+v: want fractions and amounts >= 0, such as 0.05 for 5%%", m, e)
		}
	}
	if _, err := ParseAllowDifferent(strings.Join(o.AllowDifferent, ",")); err != nil {
		errs = append(errs, err)
	}
	if o.Correction != CorrectionBH && o.Correction != CorrectionNone {
		bad("Correction %q: want %s or %s", o.Correction, CorrectionBH, CorrectionNone)
	}
	if o.MinSamples < 2 {
		bad("MinSamples %d: want at least 2", o.MinSamples)
	}
	return errors.Join(errs...)
}

// Side is one side of a comparison: one or several runs and their names.
type Side struct {
	Names []string
	Runs  []*results.Run
}

// Result is a whole comparison.
type Result struct {
	Options    Options
	Base, New  Side
	Rows       []Row
	Thresholds []ThresholdResult
	// NoYardstick is set when a side did not record the machine's timer
	// lag (a result of an older harness): its latency verdicts cannot tell
	// a busier machine from a slower build.
	NoYardstick bool
}

// Count returns how many rows have verdict v.
func (r *Result) Count(v Verdict) int {
	n := 0
	for _, row := range r.Rows {
		if row.Verdict == v {
			n++
		}
	}
	return n
}

// Broken returns how many thresholds failed.
func (r *Result) Broken() int {
	n := 0
	for _, t := range r.Thresholds {
		if !t.Pass {
			n++
		}
	}
	return n
}

// Pass reports that no metric regressed and every threshold held.
func (r *Result) Pass() bool { return r.Count(Regression) == 0 && r.Broken() == 0 }

// Row returns the row of scope and metric, if the runs had that scope.
func (r *Result) Row(s Scope, m Metric) (Row, bool) {
	for _, row := range r.Rows {
		if row.Scope == s && row.Metric == m {
			return row, true
		}
	}
	return Row{}, false
}

// Compare compares NEW against BASE and evaluates the thresholds.
func Compare(base, new Side, opts Options, thresholds []Threshold) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if len(base.Runs) == 0 || len(new.Runs) == 0 {
		return nil, errors.New("compare: each side needs at least one run")
	}
	for _, r := range append(slices.Clone(base.Runs), new.Runs...) {
		if r == nil {
			return nil, errors.New("compare: a run is nil")
		}
	}
	if err := checkWorkloads(base, new, opts.AllowDifferent); err != nil {
		return nil, err
	}
	b, err := collect(base.Runs)
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	n, err := collect(new.Runs)
	if err != nil {
		return nil, fmt.Errorf("new: %w", err)
	}
	res := &Result{Options: opts, Base: base, New: new, NoYardstick: b.lag == nil || n.lag == nil}
	for _, s := range scopes(b, n) {
		for _, m := range Metrics {
			res.Rows = append(res.Rows, testOne(s, m, b, n, opts))
		}
	}
	adjust(res.Rows, opts.Correction)
	for i := range res.Rows {
		decide(&res.Rows[i], opts)
	}
	for _, t := range thresholds {
		res.Thresholds = append(res.Thresholds, t.evaluate(res, b, n))
	}
	return res, nil
}

// sideData is what one side contributes: totals and per-interval samples.
type sideData struct {
	total    map[Scope]*hdrhistogram.Histogram // corrected, all runs merged
	count    map[Scope]int64
	errs     map[Scope]int64
	window   float64                             // seconds measured, all runs
	offered  float64                             // pages offered over the windows (open model), 0 otherwise
	open     bool                                // every run is an open-model run with an offered rate
	lag      *hdrhistogram.Histogram             // the machine's timer lag, all runs (nil: not recorded)
	interval map[Scope][]*hdrhistogram.Histogram // per interval (nil: none), all runs
	secs     []float64                           // length of each interval, same order
}

// collect merges the runs of a side.
func collect(runs []*results.Run) (*sideData, error) {
	d := &sideData{
		total: map[Scope]*hdrhistogram.Histogram{}, count: map[Scope]int64{}, errs: map[Scope]int64{},
		interval: map[Scope][]*hdrhistogram.Histogram{},
	}
	for ri, r := range runs {
		if r == nil {
			return nil, fmt.Errorf("run %d is nil", ri+1)
		}
		w := time.Duration(r.Rate.Window).Seconds()
		if w <= 0 {
			w = r.End.Sub(r.Start).Seconds()
		}
		d.window += w
		if r.Machine != nil {
			h, err := r.Machine.TimerLag.Decode()
			if err != nil {
				return nil, fmt.Errorf("run %d machine timer lag: %w", ri+1, err)
			}
			if d.lag == nil {
				d.lag = results.NewHistogram()
			}
			d.lag.Merge(h)
		}
		d.offered += r.Rate.Intended * w
		if ri == 0 {
			d.open = true
		}
		d.open = d.open && r.Config.Mode == results.ModeOpen && r.Rate.Intended > 0
		for _, kind := range []string{ScopePage, ScopePageState, ScopeOp} {
			m := r.Ops
			switch kind {
			case ScopePage:
				m = r.Pages
			case ScopePageState:
				m = r.PageState
			}
			for name, st := range m {
				if st == nil || st.Count == 0 {
					continue
				}
				h, err := st.Corrected.Decode()
				if err != nil {
					return nil, fmt.Errorf("run %d %s %s: %w", ri+1, kind, name, err)
				}
				for _, s := range kindScopes(kind, name) {
					mergeInto(d.total, s, h)
					d.count[s] += st.Count
					for _, e := range st.Errors {
						d.errs[s] += e
					}
				}
			}
		}
		if err := d.addIntervals(r); err != nil {
			return nil, fmt.Errorf("run %d: %w", ri+1, err)
		}
	}
	return d, nil
}

func mergeInto(m map[Scope]*hdrhistogram.Histogram, s Scope, h *hdrhistogram.Histogram) {
	if t := m[s]; t != nil {
		t.Merge(h)
		return
	}
	t := results.NewHistogram()
	t.Merge(h)
	m[s] = t
}

// addIntervals appends the run's per-interval histograms of every scope.
// Intervals much shorter than the typical one (the drain at the end of a
// run) are left out: their rates and percentiles stand for a fraction of a
// period.
func (d *sideData) addIntervals(r *results.Run) error {
	type key struct{ start, end time.Time }
	byKey := map[key]map[Scope]*hdrhistogram.Histogram{}
	var keys []key
	for _, e := range r.Logs {
		if !e.Corrected {
			continue
		}
		scs := TagScopes(e.Tag)
		if len(scs) == 0 {
			continue
		}
		h, err := e.Decode()
		if err != nil {
			return fmt.Errorf("interval log %s at %s: %w", e.Tag, e.Start.Format(time.RFC3339Nano), err)
		}
		k := key{e.Start, e.End}
		m := byKey[k]
		if m == nil {
			m = map[Scope]*hdrhistogram.Histogram{}
			byKey[k] = m
			keys = append(keys, k)
		}
		for _, s := range scs {
			mergeInto(m, s, h)
		}
	}
	slices.SortFunc(keys, func(a, b key) int { return a.start.Compare(b.start) })
	lengths := make([]float64, len(keys))
	for i, k := range keys {
		lengths[i] = k.end.Sub(k.start).Seconds()
	}
	typical := median(lengths)
	for i, k := range keys {
		if lengths[i] <= 0 || lengths[i] < typical/2 {
			continue
		}
		// Every scope gets an entry per interval (nil when it had no
		// request then), so throughput samples count idle intervals as 0.
		for s := range byKey[k] {
			if _, ok := d.interval[s]; !ok {
				d.interval[s] = make([]*hdrhistogram.Histogram, len(d.secs))
			}
		}
		for s := range d.interval {
			d.interval[s] = append(d.interval[s], byKey[k][s])
		}
		d.secs = append(d.secs, lengths[i])
	}
	return nil
}

// samples returns the per-interval values of metric m for scope s.
func (d *sideData) samples(s Scope, m Metric) []float64 {
	var out []float64
	for i, h := range d.interval[s] {
		switch {
		case m == Throughput:
			c := 0.0
			if h != nil {
				c = float64(h.TotalCount())
			}
			out = append(out, c/d.secs[i])
		case h == nil || h.TotalCount() == 0:
		case m == Max:
			out = append(out, float64(h.Max()))
		default:
			out = append(out, float64(h.ValueAtQuantile(m.Quantile())))
		}
	}
	return out
}

// EachOp reports whether s is the scope of every operation taken one by
// one ("op p99 < 10ms" holds when it holds for each operation).
func (s Scope) EachOp() bool { return s.Kind == ScopeOp && s.Name == "" }

// Worst returns the worst value of m among the scopes (the highest, or the
// lowest for throughput) that value answers for, and whether any did.
func Worst(scopes []Scope, m Metric, value func(Scope, Metric) (float64, bool)) (float64, bool) {
	var w float64
	found := false
	for _, s := range scopes {
		v, ok := value(s, m)
		if !ok {
			continue
		}
		if !found || (m.HigherIsBetter() && v < w) || (!m.HigherIsBetter() && v > w) {
			w, found = v, true
		}
	}
	return w, found
}

// opScopes lists the operation scopes among the keys of m.
func opScopes[V any](m map[Scope]V) []Scope {
	var out []Scope
	for s := range m {
		if s.Kind == ScopeOp && s.Name != "" {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, compareScopes)
	return out
}

// value returns the side's point value of m for s and whether it has one.
func (d *sideData) value(s Scope, m Metric) (float64, bool) {
	if s.EachOp() {
		return Worst(opScopes(d.count), m, d.value)
	}
	n := d.count[s]
	switch {
	case n == 0:
		return 0, false
	case m == Throughput:
		if d.window <= 0 {
			return 0, false
		}
		return float64(n) / d.window, true
	case m == Errors:
		return float64(d.errs[s]) / float64(n), true
	case m == Max:
		return float64(d.total[s].Max()), true
	}
	return float64(d.total[s].ValueAtQuantile(m.Quantile())), true
}

// scopes lists the scopes either side recorded: all, pages, operations.
func scopes(sides ...*sideData) []Scope {
	set := map[Scope]bool{}
	for _, d := range sides {
		for s, n := range d.count {
			if n > 0 {
				set[s] = true
			}
		}
	}
	out := make([]Scope, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.SortFunc(out, compareScopes)
	return out
}

var kindOrder = map[string]int{ScopeAll: 0, ScopePage: 1, ScopePageState: 2, ScopeOp: 3}

func compareScopes(a, b Scope) int {
	return cmp.Or(cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]), cmp.Compare(pageRank(a), pageRank(b)),
		strings.Compare(a.Name, b.Name))
}

// PageKinds lists the page types the load generator records, in reading
// order.
var PageKinds = []string{
	string(scenarios.PageModify), string(scenarios.PageReadUnchanged), string(scenarios.PageReadOnly),
	string(scenarios.PageSessionless), string(scenarios.PageAbandon),
}

func pageRank(s Scope) int {
	if s.Kind == ScopePage || s.Kind == ScopePageState {
		if s.Name == "" {
			return -1
		}
		if i := slices.Index(PageKinds, s.Name); i >= 0 {
			return i
		}
	}
	return len(PageKinds)
}

// relDelta is (n - b) / b with the conventions of Row.Delta.
func relDelta(b, n float64) float64 {
	switch {
	case b == n:
		return 0
	case b == 0:
		return math.Inf(1)
	}
	return (n - b) / b
}

// testOne fills one row's values and runs its test; decide gives the
// verdict once every row's p-value is known.
func testOne(s Scope, m Metric, b, n *sideData, o Options) Row {
	row := Row{Scope: s, Metric: m, P: math.NaN(), Q: math.NaN(), Verdict: NoChange}
	bv, bok := b.value(s, m)
	nv, nok := n.value(s, m)
	row.Base, row.New = bv, nv
	switch {
	case !bok && !nok:
		row.Note = "no samples"
		return row
	case !bok:
		row.Note = "only in new"
		row.Delta = math.Inf(1)
		return row
	case !nok:
		row.Note = "only in base"
		row.Delta = math.Inf(-1)
		return row
	}
	row.Delta = relDelta(bv, nv)
	if m == Throughput && b.open && n.open {
		offeredRow(&row, b, n, o.MinEffects[Throughput])
		return row
	}
	if m == Errors {
		row.Test = "two-proportion-z"
		row.NBase, row.NNew = b.count[s], n.count[s]
		row.P = twoProportionZ(b.errs[s], b.count[s], n.errs[s], n.count[s])
		row.dir = nv - bv
		return row
	}
	row.Test = "mann-whitney"
	if m.IsLatency() && b.lag != nil && n.lag != nil && b.lag.TotalCount() > 0 && n.lag.TotalCount() > 0 {
		row.Machine = MachineFactor * float64(max(n.lag.ValueAtQuantile(m.Quantile()), b.lag.ValueAtQuantile(m.Quantile())))
	}
	xs, ys := b.samples(s, m), n.samples(s, m)
	row.NBase, row.NNew = int64(len(xs)), int64(len(ys))
	if len(xs) < o.MinSamples || len(ys) < o.MinSamples {
		row.Note = fmt.Sprintf("too few samples (%d+%d, need %d each)", len(xs), len(ys), o.MinSamples)
		return row
	}
	_, p, err := MannWhitneyU(xs, ys)
	if err != nil {
		row.Note = err.Error()
		return row
	}
	row.P = p
	row.dir = median(ys) - median(xs)
	return row
}

// offeredRow judges the throughput of two open-model sides: the offered
// rate sets it, so a side is judged by the share of its offered rate it
// achieved. NEW regressed only when it fell short of its own offered rate by
// more than the minimum effect, and by that much more than BASE did (a run
// that achieved its offered rate did not regress because BASE offered
// more). Other scopes' throughput follows the offered page mix: no verdict.
func offeredRow(row *Row, b, n *sideData, e Effect) {
	row.Test = "offered-rate"
	if row.Scope.Kind != ScopeAll {
		row.Note = "open model: set by the offered rate"
		return
	}
	bShare, nShare := 0.0, 0.0
	if b.offered > 0 {
		v, _ := b.value(row.Scope, Throughput)
		bShare = v * b.window / b.offered
	}
	if n.offered > 0 {
		v, _ := n.value(row.Scope, Throughput)
		nShare = v * n.window / n.offered
	}
	row.Note = fmt.Sprintf("achieved %s of offered (base %s)", pct(nShare), pct(bShare))
	switch {
	case 1-nShare > e.Rel && bShare-nShare > e.Rel:
		row.Verdict = Regression
	case 1-bShare > e.Rel && nShare-bShare > e.Rel:
		row.Verdict = Improvement
	}
}

// adjust sets Q for every tested row: Benjamini–Hochberg adjusted p-values
// (q_i = min over j >= i of m/j * p_(j), at most 1, p sorted ascending, m
// the number of tested rows), or Q = P.
func adjust(rows []Row, correction string) {
	var idx []int
	for i, r := range rows {
		if math.IsNaN(r.P) {
			rows[i].Q = math.NaN()
			continue
		}
		idx = append(idx, i)
	}
	if correction != CorrectionBH {
		for _, i := range idx {
			rows[i].Q = rows[i].P
		}
		return
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(rows[a].P, rows[b].P) })
	m := float64(len(idx))
	q := 1.0
	for k := len(idx) - 1; k >= 0; k-- {
		i := idx[k]
		q = math.Min(q, rows[i].P*m/float64(k+1))
		rows[i].Q = q
	}
}

// decide sets the verdict of a tested row.
func decide(row *Row, o Options) {
	if math.IsNaN(row.Q) {
		return
	}
	switch {
	case !(row.Q < o.Alpha):
		if o.Correction == CorrectionBH {
			row.Note = fmt.Sprintf("q=%.3g", row.Q)
		} else {
			row.Note = fmt.Sprintf("p=%.3g", row.P)
		}
	case math.IsInf(o.MinEffects[row.Metric].Rel, 1):
		row.Note = "not judged (reported; see --min-effect)"
	case math.Abs(row.Delta) < o.MinEffects[row.Metric].Rel:
		row.Note = fmt.Sprintf("|delta| < %s", pct(o.MinEffects[row.Metric].Rel))
	case math.Abs(row.New-row.Base) < o.MinEffects[row.Metric].Abs:
		row.Note = fmt.Sprintf("|change| < %s", FormatValue(row.Metric, o.MinEffects[row.Metric].Abs))
	case math.Abs(row.New-row.Base) < row.Machine:
		row.Note = fmt.Sprintf("|change| < %s the machine's timer lag explains", FormatValue(row.Metric, row.Machine))
	case row.dir == 0 || (row.dir > 0) != (row.Delta > 0):
		row.Note = "samples and totals disagree"
	case (row.Delta > 0) != row.Metric.HigherIsBetter():
		row.Verdict = Regression
	default:
		row.Verdict = Improvement
	}
}

// pct formats a fraction as a percentage without needless decimals.
func pct(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", f*100), "0"), ".") + "%"
}
