package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aspstate/aspstate/results"
)

// Status of one line of a verdict.
const (
	statusPass = "pass"
	statusFail = "fail"
	statusWarn = "warn"
	statusInfo = "info"
)

// verdictItem is one line of a run's verdict: what was judged, how it came
// out, and the figure behind it.
type verdictItem struct {
	What, Status, Text string
}

// verdict is the answer a report gives first for one run.
type verdict struct {
	Label string
	// Pass is false when any item failed.
	Pass bool
	// Headline is the answer in one line.
	Headline string
	Items    []verdictItem
	// History is the smallest failing linearizability history, one
	// operation a line; Examples explain the first failures.
	History, Examples []string
}

// judge builds the verdict of one run: objectives, correctness,
// linearizability, throughput intended against achieved, errors, and the
// latencies that answer "how fast was the server".
func judge(in Input) verdict {
	r := in.Run
	v := verdict{Label: in.Label, Pass: true}
	add := func(what, status, format string, args ...any) {
		v.Items = append(v.Items, verdictItem{what, status, fmt.Sprintf(format, args...)})
		if status == statusFail {
			v.Pass = false
		}
	}
	if r.Failure != "" {
		add("run", statusFail, "failed: %s", r.Failure)
	}
	if r.Interrupted {
		add("run", statusWarn, "interrupted after %s: the figures cover the part that ran", r.End.Sub(r.Start).Round(time.Second))
	}
	if len(r.Objectives) == 0 {
		add("objectives", statusInfo, "none set (aspstate load --threshold 'page-state p99 < 50ms')")
	}
	for _, o := range r.Objectives {
		status := statusPass
		if !o.Pass {
			status = statusFail
		}
		text := "measured " + o.Value
		if o.Aborted {
			text += "; the run was stopped when it broke (--abort-on-fail)"
		}
		add(o.Text, status, "%s", text)
	}
	if c := r.Correctness; c.Total > 0 {
		add("correctness", statusFail, "%d violations in %d checks (%s)", c.Total, c.Checks, countsText(c.Violations))
		v.Examples = append(v.Examples, c.Examples...)
	} else {
		add("correctness", statusPass, "no violation in %d checks of session bodies and locks", c.Checks)
	}
	switch l := r.Linearizability; {
	case l == nil:
		add("linearizability", statusInfo, "not checked (aspstate load --check-linearizability)")
	case l.Violations > 0:
		add("linearizability", statusFail, "%d of %d sessions are not linearizable (%d operations checked)", l.Violations, l.Sessions, l.Operations)
		v.History = l.SmallestHistory
		v.Examples = append(v.Examples, l.Examples...)
	case l.Unknown > 0:
		add("linearizability", statusWarn, "%d sessions checked, %d left undecided (time bound), none failed", l.Sessions, l.Unknown)
	default:
		add("linearizability", statusPass, "all %d sessions linearizable (%d operations)", l.Sessions, l.Operations)
	}
	rt := r.Rate
	switch {
	case r.Config.Mode == results.ModeClosedLoop:
		add("throughput", statusInfo, "saturation %.1f pages/s (closed loop, %s connections)", rt.Achieved, r.Config.Options["connections"])
	case rt.Intended > 0:
		share := rt.Achieved / rt.Intended
		status := statusPass
		if share < 0.95 {
			status = statusFail
		}
		add("throughput", status, "intended %.1f pages/s, achieved %.1f (%.0f%%); %d dropped, %d late", rt.Intended, rt.Achieved, share*100, rt.Dropped, rt.Late)
	default:
		add("throughput", statusInfo, "achieved %.1f pages/s (population scenario)", rt.Achieved)
	}
	var pages, failed int64
	for _, s := range r.Pages {
		pages += s.Count
		failed += sum(s.Errors)
	}
	switch {
	case failed == 0 && sum(r.Errors) == 0:
		add("errors", statusPass, "none in %d pages", pages)
	case failed == 0:
		add("errors", statusWarn, "no page failed; %d protocol calls did (%s)", sum(r.Errors), countsText(r.Errors))
	default:
		add("errors", statusFail, "%d of %d pages failed (%.3f%%): %s", failed, pages, 100*float64(failed)/float64(max(pages, 1)), countsText(r.Errors))
	}
	add("latency", statusInfo, "%s", latencyText(r))
	v.Headline = headline(v, r)
	return v
}

// latencyText names the figures that answer "how fast was the server":
// page-state (the pages' time in the state server) and the slowest
// operation's p99, then whole pages.
func latencyText(r *results.Run) string {
	var parts []string
	if st, err := mergeStats(r.PageState); err == nil && st.P99 > 0 {
		parts = append(parts, fmt.Sprintf("page-state p50 %s, p99 %s", msUnit(st.P50), msUnit(st.P99)))
	}
	worst, name := int64(0), ""
	for _, k := range slices.Sorted(maps.Keys(r.Ops)) {
		if p := r.Ops[k].Corrected.P99; p > worst {
			worst, name = p, k
		}
	}
	if name != "" {
		parts = append(parts, fmt.Sprintf("op p99 %s (slowest: %s)", msUnit(worst), name))
	}
	if st, err := mergeStats(r.Pages); err == nil && st.P99 > 0 {
		parts = append(parts, fmt.Sprintf("whole page p99 %s (execution time included)", msUnit(st.P99)))
	}
	if len(parts) == 0 {
		return "no page completed"
	}
	return strings.Join(parts, " · ")
}

// mergeStats merges the corrected latency of every entry of m.
func mergeStats(m map[string]*results.Stats) (results.Latency, error) {
	var ls []results.Latency
	for _, s := range m {
		if s != nil {
			ls = append(ls, s.Corrected)
		}
	}
	return results.MergeLatency(ls...)
}

// headline states the answer in one line: the outcome, what failed, and
// the figures an operator asks for first.
func headline(v verdict, r *results.Run) string {
	var failed []string
	for _, it := range v.Items {
		if it.Status == statusFail {
			failed = append(failed, it.What)
		}
	}
	out := "PASS"
	if len(failed) > 0 {
		out = "FAIL (" + strings.Join(failed, ", ") + ")"
	}
	var figs []string
	switch rt := r.Rate; {
	case r.Config.Mode == results.ModeClosedLoop:
		figs = append(figs, fmt.Sprintf("saturation %.0f pages/s", rt.Achieved))
	case rt.Intended > 0:
		figs = append(figs, fmt.Sprintf("%.0f of %.0f pages/s", rt.Achieved, rt.Intended))
	default:
		figs = append(figs, fmt.Sprintf("%.0f pages/s", rt.Achieved))
	}
	if st, err := mergeStats(r.PageState); err == nil && st.P99 > 0 {
		figs = append(figs, "page-state p99 "+msUnit(st.P99))
	}
	var ops []results.Latency
	for _, s := range r.Ops {
		ops = append(ops, s.Corrected)
	}
	if op, err := results.MergeLatency(ops...); err == nil && op.P99 > 0 {
		figs = append(figs, "op p99 "+msUnit(op.P99))
	}
	var pages, failedPages int64
	for _, s := range r.Pages {
		pages += s.Count
		failedPages += sum(s.Errors)
	}
	figs = append(figs, fmt.Sprintf("%d errors in %d pages", failedPages, pages))
	return out + " — " + strings.Join(figs, " · ")
}

// msUnit formats nanoseconds as milliseconds (seconds from 1 s) with a
// unit, three significant digits.
func msUnit(ns int64) string {
	ms := float64(ns) / 1e6
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.2f ms", ms)
}

// countsText lists counts by kind: "timeout 3, reset 1".
func countsText(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}
