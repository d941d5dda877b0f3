package compare

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

// Threshold is a limit on one metric of NEW, absolute ("p99 < 5ms") or
// relative to BASE ("page:modify p99 <= +10%").
//
// Syntax: [SCOPE] METRIC OP VALUE, where
//
//	SCOPE  = all | page:KIND | op | op:NAME | page-state | page-state:KIND
//	         (op: each operation, the worst one counts)
//	         (default all: every page; page-state is the page's time in
//	         state-server calls and lock waits, its execution time left out)
//	METRIC = p50 | p90 | p99 | p99.9 | max | throughput | errors
//	OP     = < | <= | > | >=
//	VALUE  = a duration for latency (5ms, 500us, 1.5s),
//	         a rate for throughput (200/s or 200),
//	         a percentage for errors (0.1%),
//	         or a signed percentage for a change against BASE (+10%, -5%).
type Threshold struct {
	// Text is the threshold as written.
	Text   string
	Scope  Scope
	Metric Metric
	// Op is one of <, <=, >, >=.
	Op string
	// Limit is nanoseconds (latency), per second (throughput) or a
	// fraction (errors); for a relative threshold, the relative change
	// (0.10 for +10%).
	Limit float64
	// Relative marks a limit on the change against BASE.
	Relative bool
}

// ThresholdResult is a threshold checked against a comparison.
type ThresholdResult struct {
	Threshold
	// Value is what was checked: NEW's value, or the relative change.
	Value float64
	Pass  bool
	// Reason explains a failure or names the value checked.
	Reason string
}

var thresholdRE = regexp.MustCompile(`^\s*(?:([A-Za-z][A-Za-z-]*(?::[^\s<>=]*)?)\s+)?([A-Za-z][A-Za-z0-9.]*)\s*(<=|>=|<|>)\s*(\S+)\s*$`)

// ParseThreshold parses one threshold (see Threshold for the syntax). The
// scope must name a page type the load generator records or a protocol
// operation; the error says what is wrong and what would be accepted.
func ParseThreshold(s string) (Threshold, error) {
	t := Threshold{Text: strings.TrimSpace(s)}
	bad := func(format string, args ...any) (Threshold, error) {
		return Threshold{}, fmt.Errorf("threshold %q: %s", t.Text, fmt.Sprintf(format, args...))
	}
	m := thresholdRE.FindStringSubmatch(s)
	if m == nil {
		return bad("want [SCOPE] METRIC OP VALUE, such as 'page-state p99 < 50ms', 'op:get p99.9 < 2ms', 'errors < 0.1%%' or 'page-state:modify p99 <= +10%%'")
	}
	scope, metric, op, value := m[1], strings.ToLower(m[2]), m[3], m[4]
	var err error
	if t.Scope, err = parseScope(scope); err != nil {
		return bad("%v", err)
	}
	switch metric {
	case "p999":
		metric = string(P999)
	case "error", "error-rate", "errors-rate":
		metric = string(Errors)
	}
	t.Metric = Metric(metric)
	known := false
	for _, k := range Metrics {
		known = known || k == t.Metric
	}
	if !known {
		return bad("unknown metric %q (want p50, p90, p99, p99.9, max, throughput or errors)", m[2])
	}
	t.Op = op
	if strings.HasSuffix(value, "%") && (strings.HasPrefix(value, "+") || strings.HasPrefix(value, "-")) {
		f, err := strconv.ParseFloat(strings.TrimSuffix(value, "%"), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return bad("relative limit %q is not a number of percent such as +10%%", value)
		}
		t.Limit, t.Relative = f/100, true
		return t, nil
	}
	switch {
	case t.Metric.IsLatency():
		if strings.HasSuffix(value, "%") {
			return bad("%s takes a duration (5ms) or a signed change (+10%%), not %q", t.Metric, value)
		}
		d, err := time.ParseDuration(value)
		if err != nil {
			if _, nerr := strconv.ParseFloat(value, 64); nerr == nil {
				return bad("%s limit %q needs a unit, such as %sms", t.Metric, value, value)
			}
			return bad("%s limit %q is not a duration such as 5ms, 250us or 1.5s", t.Metric, value)
		}
		if d <= 0 {
			return bad("%s limit %s must be positive", t.Metric, value)
		}
		t.Limit = float64(d.Nanoseconds())
	case t.Metric == Throughput:
		v := strings.TrimSuffix(value, "/s")
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return bad("throughput limit %q is not a rate such as 200/s, or a signed change such as -5%%", value)
		}
		t.Limit = f
	case t.Metric == Errors:
		if !strings.HasSuffix(value, "%") {
			return bad("errors limit %q must be a percentage such as 0.1%% (or a signed change such as +10%%)", value)
		}
		f, err := strconv.ParseFloat(strings.TrimSuffix(value, "%"), 64)
		if err != nil || f < 0 || f > 100 {
			return bad("errors limit %q is not a percentage between 0%% and 100%%", value)
		}
		t.Limit = f / 100
	}
	return t, nil
}

// parseScope reads "", "all", "page:KIND", "op:NAME", "page-state" or
// "page-state:KIND".
func parseScope(s string) (Scope, error) {
	if s == "" || strings.EqualFold(s, ScopeAll) {
		return Scope{Kind: ScopeAll}, nil
	}
	if strings.EqualFold(s, ScopePageState) {
		return Scope{Kind: ScopePageState}, nil
	}
	if strings.EqualFold(s, ScopeOp) || strings.EqualFold(s, "ops") {
		return Scope{Kind: ScopeOp}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	kind = strings.ToLower(kind)
	if !ok || (kind != ScopePage && kind != ScopeOp && kind != ScopePageState) {
		return Scope{}, fmt.Errorf("unknown scope %q (want all, page:KIND, page-state, page-state:KIND, op or op:NAME)", s)
	}
	switch kind {
	case ScopePage, ScopePageState:
		for _, k := range PageKinds {
			if k == name {
				return Scope{Kind: kind, Name: name}, nil
			}
		}
		return Scope{}, fmt.Errorf("unknown page type %q (want one of %s)", name, strings.Join(PageKinds, ", "))
	default:
		if _, ok := protocol.ParseOp(name); !ok {
			names := make([]string, 0, len(protocol.Ops))
			for _, o := range protocol.Ops {
				names = append(names, o.String())
			}
			return Scope{}, fmt.Errorf("unknown operation %q (want one of %s)", name, strings.Join(names, ", "))
		}
		return Scope{Kind: kind, Name: name}, nil
	}
}

// Holds reports whether v satisfies the threshold's comparison: v Op Limit.
func (t Threshold) Holds(v float64) bool { return holds(v, t.Op, t.Limit) }

// holds reports whether v op limit.
func holds(v float64, op string, limit float64) bool {
	switch op {
	case "<":
		return v < limit
	case "<=":
		return v <= limit
	case ">":
		return v > limit
	case ">=":
		return v >= limit
	}
	return false
}

// evaluate checks t against the comparison. A threshold whose scope has no
// samples on a side it needs fails.
func (t Threshold) evaluate(res *Result, b, n *sideData) ThresholdResult {
	r := ThresholdResult{Threshold: t}
	nv, nok := n.value(t.Scope, t.Metric)
	if !nok {
		r.Reason = fmt.Sprintf("no samples: NEW has no %s requests", t.Scope)
		return r
	}
	if !t.Relative {
		r.Value = nv
		r.Pass = holds(nv, t.Op, t.Limit)
		r.Reason = fmt.Sprintf("new %s %s", t.Metric, FormatValue(t.Metric, nv))
		return r
	}
	bv, bok := b.value(t.Scope, t.Metric)
	if !bok {
		r.Reason = fmt.Sprintf("no samples: BASE has no %s requests to compare with", t.Scope)
		return r
	}
	r.Value = relDelta(bv, nv)
	r.Pass = holds(r.Value, t.Op, t.Limit)
	r.Reason = fmt.Sprintf("%s %s → %s (%s)", t.Metric, FormatValue(t.Metric, bv), FormatValue(t.Metric, nv), FormatDelta(r.Value))
	return r
}

// FormatValue formats a metric value: a duration for latency, a rate for
// throughput, a percentage for errors.
func FormatValue(m Metric, v float64) string {
	switch {
	case m.IsLatency():
		return formatNS(v)
	case m == Throughput:
		return strconv.FormatFloat(v, 'f', 1, 64) + "/s"
	}
	return strconv.FormatFloat(v*100, 'g', 3, 64) + "%"
}

// formatNS prints nanoseconds with a unit and about four significant digits.
func formatNS(v float64) string {
	switch {
	case v >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 3, 64) + "s"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 3, 64) + "ms"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "µs"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + "ns"
}

// FormatDelta prints a relative change as a signed percentage.
func FormatDelta(d float64) string {
	switch {
	case math.IsInf(d, 1):
		return "+∞"
	case math.IsInf(d, -1):
		return "-∞"
	case math.IsNaN(d):
		return "?"
	}
	return fmt.Sprintf("%+.1f%%", d*100)
}
