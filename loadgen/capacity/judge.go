package capacity

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/results/compare"
)

// Defaults of Criteria.
const (
	DefaultWarmup       = 2 * time.Second
	DefaultMaxLate      = 0.02
	DefaultMinAchieved  = 0.95
	DefaultSevereFactor = 3
)

// Criteria decide whether a step passed, beside the SLOs.
type Criteria struct {
	// SLOs are the objectives every step must meet.
	SLOs []SLO
	// Warmup is left out of the measured window: intervals that start
	// before it are not judged (0 = default 2s, negative = none).
	Warmup time.Duration
	// MaxLate is the largest share of measured pages whose slot may start
	// later than the run's late threshold before the step counts as one the
	// generator could not keep up with (default 0.02). Slots late because
	// every worker was busy (pages in progress piled up at the target) are
	// the target's doing: the corrected latency and the SLOs judge them.
	MaxLate float64
	// MinAchieved is the smallest share of the offered rate the measured
	// window must achieve (default 0.95).
	MinAchieved float64
	// SevereFactor: a failure this far past its limit (value/limit) is not
	// retried (default 3).
	SevereFactor float64
}

func (c *Criteria) defaults() {
	if c.Warmup == 0 {
		c.Warmup = DefaultWarmup
	} else if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.MaxLate == 0 {
		c.MaxLate = DefaultMaxLate
	}
	if c.MinAchieved == 0 {
		c.MinAchieved = DefaultMinAchieved
	}
	if c.SevereFactor == 0 {
		c.SevereFactor = DefaultSevereFactor
	}
}

// window is the measured part of a run: per scope, the merged corrected
// histograms of the intervals after the warm-up.
type window struct {
	hist     map[compare.Scope]*hdrhistogram.Histogram
	pages    int64         // pages completed in scheduled intervals after the warm-up
	ops      int64         // operations completed in those intervals
	late     int64         // late slots in those intervals
	length   time.Duration // length of those intervals
	scopeCnt map[compare.Scope]int64
}

// measure cuts the warm-up off run and merges what is left.
func measure(run *results.Run, warmup time.Duration) (*window, error) {
	w := &window{hist: map[compare.Scope]*hdrhistogram.Histogram{}, scopeCnt: map[compare.Scope]int64{}}
	dur := time.Duration(run.Config.Duration)
	// Interval series: (prev, Elapsed] after the warm-up and within the
	// schedule (the drain is left out of the rate; its pages stay in the
	// latency below).
	var prev time.Duration
	for _, iv := range run.Intervals {
		end := time.Duration(iv.Elapsed)
		ivLen := end - prev
		if prev >= warmup-ivLen/2 && end <= dur+ivLen/4 && ivLen > 0 {
			w.pages += iv.Pages
			w.ops += iv.Ops
			w.late += iv.Late
			w.length += ivLen
		}
		prev = end
	}
	// Histograms: every interval that starts after the warm-up, drain
	// included (late pages of the schedule are part of its latency).
	var first time.Time
	for _, e := range run.Logs {
		if first.IsZero() || e.Start.Before(first) {
			first = e.Start
		}
	}
	for _, e := range run.Logs {
		if !e.Corrected {
			continue
		}
		ivLen := e.End.Sub(e.Start)
		if e.Start.Sub(first) < warmup-ivLen/2 {
			continue
		}
		if err := mergeEntry(w.hist, e); err != nil {
			return nil, err
		}
	}
	for s, h := range w.hist {
		w.scopeCnt[s] = h.TotalCount()
	}
	return w, nil
}

// mergeEntry merges a corrected interval histogram into every scope its tag
// counts in (compare.TagScopes).
func mergeEntry(hist map[compare.Scope]*hdrhistogram.Histogram, e results.LogEntry) error {
	scs := compare.TagScopes(e.Tag)
	if len(scs) == 0 {
		return nil
	}
	h, err := e.Decode()
	if err != nil {
		return fmt.Errorf("interval log %s: %w", e.Tag, err)
	}
	for _, s := range scs {
		if hist[s] == nil {
			hist[s] = results.NewHistogram()
		}
		hist[s].Merge(h)
	}
	return nil
}

// value is the step's value of metric m in scope s, and whether it had samples.
func (w *window) value(run *results.Run, s compare.Scope, m compare.Metric) (float64, bool) {
	if s.EachOp() {
		var ops []compare.Scope
		for name := range run.Ops {
			ops = append(ops, compare.Scope{Kind: compare.ScopeOp, Name: name})
		}
		return compare.Worst(ops, m, func(s compare.Scope, m compare.Metric) (float64, bool) { return w.value(run, s, m) })
	}
	if m == compare.Errors {
		var n, bad int64
		add := func(st *results.Stats) {
			if st == nil {
				return
			}
			n += st.Count
			for _, e := range st.Errors {
				bad += e
			}
		}
		switch {
		case s.Kind == compare.ScopeAll || (s.Kind == compare.ScopePageState && s.Name == ""):
			for _, st := range run.Pages {
				add(st)
			}
		case s.Kind == compare.ScopePage || s.Kind == compare.ScopePageState:
			add(run.Pages[s.Name])
		default:
			add(run.Ops[s.Name])
		}
		if n == 0 {
			return 0, false
		}
		return float64(bad) / float64(n), true
	}
	h := w.hist[s]
	if h == nil || h.TotalCount() == 0 {
		return 0, false
	}
	switch m {
	case compare.Throughput:
		secs := w.length.Seconds()
		if secs <= 0 {
			return 0, false
		}
		if s.Kind == compare.ScopeAll || (s.Kind == compare.ScopePageState && s.Name == "") {
			return float64(w.pages) / secs, true
		}
		return float64(h.TotalCount()) / secs, true
	case compare.Max:
		return float64(h.Max()), true
	case compare.P50:
		return float64(h.ValueAtQuantile(50)), true
	case compare.P90:
		return float64(h.ValueAtQuantile(90)), true
	case compare.P99:
		return float64(h.ValueAtQuantile(99)), true
	case compare.P999:
		return float64(h.ValueAtQuantile(99.9)), true
	}
	return 0, false
}

// Judge measures a step's run after its warm-up and decides whether the
// step passed: every SLO held; no slot was dropped and at most MaxLate of
// them started late for a reason other than waiting for a free worker (else
// the generator could not keep up, and says so); the measured window achieved
// MinAchieved of the offered rate; no correctness violation; and, unless an
// SLO on errors says how many are acceptable, no failed page.
func Judge(run *results.Run, rate float64, c Criteria) (StepResult, error) {
	c.defaults()
	res := StepResult{Rate: rate}
	w, err := measure(run, c.Warmup)
	if err != nil {
		return res, err
	}
	all := compare.Scope{Kind: compare.ScopeAll}
	if h := w.hist[all]; h != nil && h.TotalCount() > 0 {
		res.Mean = time.Duration(h.Mean())
		res.P50 = time.Duration(h.ValueAtQuantile(50))
		res.P90 = time.Duration(h.ValueAtQuantile(90))
		res.P99 = time.Duration(h.ValueAtQuantile(99))
		res.P999 = time.Duration(h.ValueAtQuantile(99.9))
		res.Max = time.Duration(h.Max())
	}
	if h := w.hist[compare.Scope{Kind: compare.ScopePageState}]; h != nil && h.TotalCount() > 0 {
		res.StateP50 = time.Duration(h.ValueAtQuantile(50))
		res.StateP99 = time.Duration(h.ValueAtQuantile(99))
	}
	res.Pages, res.Window = w.pages, w.length
	if secs := w.length.Seconds(); secs > 0 {
		res.Achieved = float64(w.pages) / secs
		res.RequestsPerSecond = float64(w.ops) / secs
	}
	if w.pages > 0 {
		res.LateFraction = float64(w.late) / float64(w.pages)
	}
	res.Scheduled, res.Dropped, res.NoWorker = run.Rate.Scheduled, run.Rate.Dropped, run.Rate.NoWorker
	res.Violations = run.Correctness.Total
	if v, ok := w.value(run, all, compare.Errors); ok {
		res.ErrorRate = v
	}

	severe := func(ratio float64) {
		if ratio >= c.SevereFactor {
			res.Severe = true
		}
	}
	fail := func(format string, args ...any) { res.Reasons = append(res.Reasons, fmt.Sprintf(format, args...)) }

	if run.Failure != "" {
		fail("the run failed: %s", run.Failure)
		res.Severe = true
	}
	if w.pages == 0 {
		fail("no page completed in the measured window (after the %s warm-up)", c.Warmup)
		res.Severe = true
	}
	if res.Violations > 0 {
		var kinds []string
		for _, k := range slices.Sorted(maps.Keys(run.Correctness.Violations)) {
			if n := run.Correctness.Violations[k]; n > 0 {
				kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
			}
		}
		fail("%d correctness violations (%s)", res.Violations, strings.Join(kinds, ", "))
	}
	lateThreshold := time.Duration(run.Rate.LateThreshold)
	if res.Dropped > 0 {
		if res.NoWorker >= res.Dropped {
			// Slots still queued for a worker when the step ended: pages
			// in progress had piled up at the target.
			fail("%d of %d slots never started: they were still waiting for a free worker when the step ended (the target was not keeping up)", res.Dropped, res.Scheduled)
		} else {
			res.GeneratorLimited = true
			fail("the load generator could not keep up: %d of %d slots dropped", res.Dropped, res.Scheduled)
		}
		if res.Scheduled > 0 {
			severe(float64(res.Dropped) / float64(res.Scheduled) / 0.01)
		}
	}
	var noWorker float64
	if res.Scheduled > 0 {
		noWorker = float64(res.NoWorker) / float64(res.Scheduled)
	}
	switch {
	case res.LateFraction > c.MaxLate && noWorker < res.LateFraction/2:
		// Late, and not because the slots waited for a worker: the
		// dispatcher itself fell behind its schedule.
		res.GeneratorLimited = true
		fail("the load generator could not keep up: %.1f%% of slots started more than %s late (limit %.1f%%)",
			res.LateFraction*100, lateThreshold, c.MaxLate*100)
		severe(res.LateFraction / c.MaxLate)
	case w.late > 0:
		res.Notes = append(res.Notes, fmt.Sprintf("%.2f%% of slots started more than %s late", res.LateFraction*100, lateThreshold))
	}
	if res.NoWorker > 0 {
		// Pages in progress reached the worker bound: the target was not
		// keeping up (or --workers is low on purpose, like the connections
		// of a web server). The wait is in the corrected latency, which the
		// SLOs judge.
		res.Notes = append(res.Notes, fmt.Sprintf("%d slots (%.1f%%) waited for a free worker; the wait counts in the corrected latency", res.NoWorker, noWorker*100))
	}
	if w.pages > 0 && res.Achieved < c.MinAchieved*rate {
		fail("achieved %.1f pages/s of the %.1f offered (%.1f%%, want at least %.0f%%)",
			res.Achieved, rate, res.Achieved/rate*100, c.MinAchieved*100)
		if res.Achieved > 0 {
			severe(c.MinAchieved * rate / res.Achieved)
		} else {
			res.Severe = true
		}
	}
	errorsSLO := false
	for _, s := range c.SLOs {
		v, ok := w.value(run, s.Scope, s.Metric)
		r := s.check(v, ok)
		res.SLOs = append(res.SLOs, r)
		if s.Metric == compare.Errors {
			errorsSLO = true
		}
		if !r.Pass {
			fail("SLO %s broken: %s", s.Text, r.Text)
			severe(r.severity(s.Op))
		}
	}
	if !errorsSLO && res.ErrorRate > 0 {
		errs := map[string]int64{}
		for _, st := range run.Pages {
			if st != nil {
				for k, n := range st.Errors {
					errs[k] += n
				}
			}
		}
		var kinds []string
		for _, k := range slices.Sorted(maps.Keys(errs)) {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, errs[k]))
		}
		fail("%.3f%% of pages failed (%s); add --slo 'errors < X%%' to accept some", res.ErrorRate*100, strings.Join(kinds, ", "))
	}
	res.Pass = len(res.Reasons) == 0
	return res, nil
}
