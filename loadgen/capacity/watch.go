package capacity

import (
	"fmt"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/results/compare"
)

// Evaluate checks every objective against a whole run (no warm-up left
// out), as `aspstate load --threshold` does at the end of a run, and returns
// the outcomes in the results' form. An objective without samples in its
// scope fails.
func Evaluate(run *results.Run, slos []SLO) ([]results.Objective, error) {
	w, err := measure(run, 0)
	if err != nil {
		return nil, err
	}
	var out []results.Objective
	for _, s := range slos {
		v, ok := w.value(run, s.Scope, s.Metric)
		r := s.check(v, ok)
		out = append(out, results.Objective{Text: s.Text, Pass: r.Pass && ok, Value: r.Text})
	}
	return out, nil
}

// Watch follows a run interval by interval (loadgen.Progress) and tells
// when an objective is broken beyond recovery: whatever the rest of the
// run does, the objective will not hold at its end.
//
//   - A latency percentile pQ < L is lost once more than (100-Q)% of the
//     run's pages in its scope (the planned total, scaled to the scope's
//     share so far) took L or longer; max < L at the first such page.
//   - errors < X% is lost once the failed pages exceed X% of the planned
//     total.
//   - Without a planned total (population and closed-loop runs), an
//     objective is lost once it has been broken for MinBrokenIntervals
//     intervals in a row, as k6's abortOnFail judges on the data so far.
//   - Lower bounds (throughput >= N) are judged at the end only.
type Watch struct {
	slos    []SLO
	hist    map[compare.Scope]*hdrhistogram.Histogram
	pages   int64
	failed  int64
	planned int64
	streak  []int
}

// MinBrokenIntervals is how many intervals in a row an objective must be
// broken before Watch gives it up when the run has no planned total.
const MinBrokenIntervals = 5

// NewWatch returns a Watch of the objectives.
func NewWatch(slos []SLO) *Watch {
	return &Watch{slos: slos, hist: map[compare.Scope]*hdrhistogram.Histogram{}, streak: make([]int, len(slos))}
}

// Add takes one interval: its corrected histograms, and the run's pages,
// failed pages and planned total so far.
func (w *Watch) Add(logs []results.LogEntry, pages, failed, planned int64) error {
	for _, e := range logs {
		if e.Corrected {
			if err := mergeEntry(w.hist, e); err != nil {
				return err
			}
		}
	}
	w.pages, w.failed, w.planned = pages, failed, planned
	return nil
}

// Lost returns the first objective broken beyond recovery and why.
func (w *Watch) Lost() (SLO, string, bool) {
	for i, s := range w.slos {
		if s.Op == ">" || s.Op == ">=" {
			continue
		}
		why, lost := w.lost(s)
		if w.planned == 0 {
			// No planned total: judge on the data so far, once it has
			// held for several intervals.
			if why != "" {
				w.streak[i]++
			} else {
				w.streak[i] = 0
			}
			lost = w.streak[i] >= MinBrokenIntervals
		}
		if lost {
			return s, why, true
		}
	}
	return SLO{}, "", false
}

// lost reports whether s is broken now (why != "") and whether it is lost
// for good given the planned total.
func (w *Watch) lost(s SLO) (why string, lost bool) {
	if s.Metric == compare.Errors {
		if w.pages == 0 {
			return "", false
		}
		if now := float64(w.failed) / float64(w.pages); !s.Holds(now) {
			why = fmt.Sprintf("%d of %d pages failed so far", w.failed, w.pages)
		}
		return why, w.planned > 0 && !s.Holds(float64(w.failed)/float64(w.planned))
	}
	if !s.Metric.IsLatency() {
		return "", false
	}
	scopes := []compare.Scope{s.Scope}
	if s.Scope.EachOp() {
		scopes = nil
		for sc := range w.hist {
			if sc.Kind == compare.ScopeOp {
				scopes = append(scopes, sc)
			}
		}
	}
	for _, sc := range scopes {
		h := w.hist[sc]
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		var at int64 // samples at or above the limit: they break it
		for _, b := range h.Distribution() {
			if b.Count > 0 && !s.Holds(float64(b.From)) {
				at += b.Count
			}
		}
		if at == 0 {
			continue
		}
		n := h.TotalCount()
		allowed := 0.0 // share of samples that may lie beyond the limit
		if q := s.Metric.Quantile(); q < 100 {
			allowed = 1 - q/100
		}
		if float64(at) > allowed*float64(n) {
			why = fmt.Sprintf("%d of %d %s samples so far at or above %s", at, n, sc, compare.FormatValue(s.Metric, s.Limit))
		}
		if w.planned > 0 && w.pages > 0 {
			// The scope's expected total at the end: its share of the
			// pages so far, applied to the planned pages.
			total := float64(n) * max(1, float64(w.planned)/float64(w.pages))
			if float64(at) > allowed*total {
				return why, true
			}
		}
		if why != "" {
			return why, false
		}
	}
	return why, false
}
