package capacity

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aspstate/aspstate/results/compare"
	"github.com/aspstate/aspstate/scenarios"
)

// DefaultSLOs are the objectives of a plan given none: the server's share
// of a page (its state-server calls and lock waits), each protocol call, and
// failed pages.
var DefaultSLOs = []string{"page-state p99 < 50ms", "op p99 < 10ms", "errors < 0.1%"}

// SLO is one service-level objective a step must meet: an absolute
// threshold in the syntax of `aspstate compare` (compare.ParseThreshold),
// with "page" or "pages" accepted as the scope of every page together and
// "op" as that of each protocol operation:
//
//	page-state p99 < 50ms    the pages' time in state-server calls and lock
//	                         waits, their emulated execution time left out
//	page-state:modify p99 < 50ms
//	op p99 < 10ms            every protocol operation, each one judged
//	page p99 < 50ms          every page end to end, execution time included
//	                         (same as "p99 < 50ms")
//	page:modify p99.9 < 200ms
//	op:get-exclusive p99 < 5ms
//	errors < 0.1%            failed pages / pages
//	throughput >= 500/s      pages completed per second in the measured window
type SLO struct {
	compare.Threshold
}

// String returns the SLO as written.
func (s SLO) String() string { return s.Text }

// SLOResult is one SLO checked against one step.
type SLOResult struct {
	// SLO is the objective as written.
	SLO string `json:"slo"`
	// Value is the measured value: nanoseconds, pages/s or a fraction.
	Value float64 `json:"value"`
	// Limit is the objective's limit in the same unit.
	Limit float64 `json:"limit"`
	// Pass reports that the objective held; Samples is false when the step
	// had no request in the SLO's scope (the SLO is then not judged).
	Pass    bool `json:"pass"`
	Samples bool `json:"samples"`
	// Text is the measured value formatted with its unit.
	Text string `json:"text"`
}

var (
	pagesScope      = regexp.MustCompile(`(?i)^\s*pages?\s+`)
	pageScopePrefix = regexp.MustCompile(`(?i)^\s*(?:all|pages?(?::\S+)?)\s+`)
)

// ParseSLO parses one SLO (see SLO for the syntax). Relative limits ("+10%")
// are refused: a plan has no base run to compare with.
func ParseSLO(s string) (SLO, error) {
	norm := pagesScope.ReplaceAllString(s, "all ")
	t, err := compare.ParseThreshold(norm)
	if err != nil {
		// Name the SLO as the user wrote it.
		msg := strings.Replace(err.Error(), fmt.Sprintf("threshold %q", strings.TrimSpace(norm)), fmt.Sprintf("--slo %q", strings.TrimSpace(s)), 1)
		return SLO{}, errors.New(msg)
	}
	t.Text = strings.TrimSpace(s)
	if t.Relative {
		return SLO{}, fmt.Errorf("--slo %q: a capacity plan has no base run to compare with; give an absolute limit such as 'page-state p99 < 50ms' or 'errors < 0.1%%'", t.Text)
	}
	if t.Metric == compare.Errors && (t.Op == ">" || t.Op == ">=") {
		return SLO{}, fmt.Errorf("--slo %q: an error objective is an upper bound; write 'errors < %s'", t.Text, compare.FormatValue(compare.Errors, t.Limit))
	}
	if t.Metric.IsLatency() && (t.Op == ">" || t.Op == ">=") {
		return SLO{}, fmt.Errorf("--slo %q: a latency objective is an upper bound; write '%s %s < %s'", t.Text, t.Scope, t.Metric, compare.FormatValue(t.Metric, t.Limit))
	}
	return SLO{Threshold: t}, nil
}

// ParseSLOs parses every SLO and reports every problem at once.
func ParseSLOs(texts []string) ([]SLO, error) {
	var out []SLO
	var errs []error
	for _, t := range texts {
		s, err := ParseSLO(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// CheckScenario reports SLOs whose page scope the scenario never requests
// (a page kind with no weight in its page or burst mix): such an objective
// could never be judged.
func CheckScenario(slos []SLO, sc *scenarios.Scenario) error {
	var errs []error
	for _, s := range slos {
		if err := checkExecTime(s, sc); err != nil {
			errs = append(errs, err)
		}
		if (s.Scope.Kind != compare.ScopePage && s.Scope.Kind != compare.ScopePageState) || s.Scope.Name == "" {
			continue
		}
		k := scenarios.PageKind(s.Scope.Name)
		if sc.Pages.Mix.Fraction(k) > 0 || (sc.Pages.Burst.Probability > 0 && sc.Pages.BurstMix().Fraction(k) > 0) {
			continue
		}
		if k == scenarios.PageAbandon && sc.Users.AbandonFraction > 0 {
			continue
		}
		var kinds []string
		for _, kk := range sc.Pages.Mix.Kinds() {
			kinds = append(kinds, string(kk))
		}
		errs = append(errs, fmt.Errorf("--slo %q: scenario %s has no %s pages (its page mix: %s)", s.Text, sc.Name, k, strings.Join(kinds, ", ")))
	}
	return errors.Join(errs...)
}

// execKinds are the page kinds that run for the scenario's execution time
// while holding the session lock (loadgen's writable pages).
var execKinds = []scenarios.PageKind{scenarios.PageModify, scenarios.PageReadUnchanged, scenarios.PageAbandon}

// checkExecTime refuses a latency objective on whole pages whose bound lies
// at or below the same percentile of the scenario's own emulated execution
// time over the pages in scope: such an objective judges the scenario's
// random page time, not the server, and no rate can be found for it.
func checkExecTime(s SLO, sc *scenarios.Scenario) error {
	if !s.Metric.IsLatency() || (s.Scope.Kind != compare.ScopeAll && s.Scope.Kind != compare.ScopePage) {
		return nil
	}
	q := ExecQuantile(sc, s.Scope, s.Metric)
	if q <= 0 || s.Limit > float64(q) {
		return nil
	}
	scope := "every page"
	if s.Scope.Kind == compare.ScopePage {
		scope = s.Scope.Name + " pages"
	}
	state := "page-state"
	if s.Scope.Name != "" {
		state += ":" + s.Scope.Name
	}
	return fmt.Errorf("--slo %q: the scenario's own emulated page execution time already has a %s of %s over %s (pages.exec_time), "+
		"so no server can meet it; use '%s %s' to judge the page's time in state-server calls and lock waits",
		s.Text, s.Metric, compare.FormatValue(s.Metric, float64(q)), scope, state, pageScopePrefix.ReplaceAllString(s.Text, ""))
}

// ExecQuantile estimates metric m (a percentile, or max as p99.99) of the
// emulated execution time of the pages of sc in scope (every page, or one
// page kind): the pages that hold the lock run for pages.exec_time, the
// others for no time. The distribution is sampled with a fixed seed.
func ExecQuantile(sc *scenarios.Scenario, scope compare.Scope, m compare.Metric) time.Duration {
	share := 0.0 // of the pages in scope that run for the exec time
	switch scope.Kind {
	case compare.ScopeAll:
		for _, k := range execKinds {
			share += sc.Pages.Mix.Fraction(k)
		}
	case compare.ScopePage:
		if slices.Contains(execKinds, scenarios.PageKind(scope.Name)) {
			share = 1
		}
	}
	if share <= 0 {
		return 0
	}
	quant := min(m.Quantile(), 99.99)
	// The quantile of the mixture: pages without execution time take the
	// bottom 1 - share of it.
	level := (quant/100 - (1 - share)) / share
	if level <= 0 {
		return 0
	}
	const n = 20000
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = sc.Pages.ExecTime.Sample(rng)
	}
	slices.Sort(xs)
	i := min(int(level*n), n-1)
	return time.Duration(xs[i] * float64(time.Second))
}

// check evaluates s on a value (ok=false: no samples in scope).
func (s SLO) check(v float64, ok bool) SLOResult {
	r := SLOResult{SLO: s.Text, Limit: s.Limit, Samples: ok, Value: v}
	if !ok {
		r.Pass, r.Text = true, "no samples"
		return r
	}
	r.Pass = s.Holds(v)
	r.Text = compare.FormatValue(s.Metric, v)
	return r
}

// severity is how far past its limit a failed SLO is (1 = at the limit):
// value/limit for upper bounds, limit/value for lower bounds.
func (r SLOResult) severity(op string) float64 {
	switch {
	case op == "<" || op == "<=":
		if r.Limit == 0 {
			if r.Value > 0 {
				return 1e9
			}
			return 1
		}
		return r.Value / r.Limit
	case r.Value == 0:
		return 1e9
	}
	return r.Limit / r.Value
}
