package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aspstate/aspstate/servers/target"
)

// ReportFormat names the version of the report file layout.
const ReportFormat = "aspstate-conformance/1"

// Results of a rule.
const (
	ResultPassed    = "passed"
	ResultFailed    = "failed"
	ResultSkipped   = "skipped"
	ResultDeviation = "deviation" // failed, and the deviations file says why
	ResultNotRun    = "not-run"   // every spec was filtered out; listed in RunReport.NotRun
	// ResultInterrupted: the run was stopped while the rule ran.
	ResultInterrupted = "interrupted"
)

// Millis is a duration written to JSON as milliseconds.
type Millis time.Duration

// MarshalJSON writes the duration as a number of milliseconds.
func (m Millis) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(time.Duration(m).Seconds()*1000, 'f', 3, 64)), nil
}

// UnmarshalJSON reads a number of milliseconds.
func (m *Millis) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration in milliseconds: %w", err)
	}
	*m = Millis(time.Duration(f * float64(time.Millisecond)))
	return nil
}

// String formats the duration for tables.
func (m Millis) String() string {
	d := time.Duration(m)
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.0fms", d.Seconds()*1000)
	}
	return d.Round(100 * time.Millisecond).String()
}

// RunReport is the outcome of one run against one target.
type RunReport struct {
	Format      string      `json:"format"`
	Target      target.Info `json:"target"`
	Minute      string      `json:"minute"`
	Seed        int64       `json:"seed"`
	LabelFilter string      `json:"label_filter,omitempty"`
	Levels      []string    `json:"levels,omitempty"`
	RuleGlobs   []string    `json:"rules_selected,omitempty"`
	Started     time.Time   `json:"started"`
	Duration    Millis      `json:"duration_ms"`
	// Error is set when the target could not be started or the run could
	// not happen; Rules is then empty.
	Error string       `json:"error,omitempty"`
	Rules []RuleResult `json:"rules"`
	// NotRun lists the selected rules whose every spec the label filter
	// left out.
	NotRun []string `json:"not_run,omitempty"`
	// MinuteProbe is set (by the caller, from ProbeMinute) when the short
	// probe before the run found that the target's protocol minute is not
	// Minute: what it measured. It explains the timing rules' failures.
	MinuteProbe string `json:"minute_probe,omitempty"`
	// Interrupted is set when the run was stopped (Ctrl-C) before the end:
	// the rules are those that finished, and the one running is marked
	// interrupted.
	Interrupted bool `json:"interrupted,omitempty"`
	Passed      int  `json:"passed"`
	Failed      int  `json:"failed"`
	Skipped     int  `json:"skipped"`
	Deviations  int  `json:"deviations"`
}

// RuleResult is the outcome of one rule.
type RuleResult struct {
	ID          string       `json:"id"`
	Level       string       `json:"level"`
	Section     string       `json:"section"`
	Description string       `json:"description"`
	Timing      bool         `json:"timing,omitempty"`
	Result      string       `json:"result"`
	Reason      string       `json:"reason,omitempty"` // why skipped, or the deviation's reason
	Duration    Millis       `json:"duration_ms"`
	Specs       []SpecResult `json:"specs"`
}

// SpecResult is the outcome of one spec of a rule.
type SpecResult struct {
	Text     string `json:"text"`
	State    string `json:"state"`
	Duration Millis `json:"duration_ms"`
	// Failure is the failure message (expected vs observed) or the skip reason.
	Failure  string `json:"failure,omitempty"`
	Location string `json:"location,omitempty"`
	// Transcript is the wire bytes of every connection the spec opened, for
	// failed specs only.
	Transcript string `json:"transcript,omitempty"`
}

func (r *RunReport) count() {
	r.Passed, r.Failed, r.Skipped, r.Deviations = 0, 0, 0, 0
	for _, rr := range r.Rules {
		switch rr.Result {
		case ResultPassed:
			r.Passed++
		case ResultFailed:
			r.Failed++
		case ResultSkipped:
			r.Skipped++
		case ResultDeviation:
			r.Deviations++
		}
	}
}

// Merge adds the rules of other, a run of some of the same target's rules
// (the timing rules run apart), to r: the rules come in catalogue order, a
// rule other ran is no longer "not run", and the counts are redone.
func (r *RunReport) Merge(other *RunReport) {
	ran := map[string]bool{}
	for _, rr := range other.Rules {
		ran[rr.ID] = true
	}
	r.Rules = append(r.Rules, other.Rules...)
	r.NotRun = slices.DeleteFunc(r.NotRun, func(id string) bool { return ran[id] })
	for _, id := range other.NotRun {
		if !slices.Contains(r.NotRun, id) {
			r.NotRun = append(r.NotRun, id)
		}
	}
	pos := map[string]int{}
	for i, c := range catalogue {
		pos[c.ID] = i
	}
	slices.SortStableFunc(r.Rules, func(a, b RuleResult) int { return pos[a.ID] - pos[b.ID] })
	r.Interrupted = r.Interrupted || other.Interrupted
	r.count()
}

// BlockingFailures counts the failed rules that fail the run: every level
// but advice.
func (r *RunReport) BlockingFailures() int {
	n := 0
	for _, rr := range r.Rules {
		if rr.Result == ResultFailed && rr.Level != LevelAdvice {
			n++
		}
	}
	return n
}

// LevelSummary is the outcome split by level, then the rules not run:
// "must 61 passed, 1 failed; ref 30 passed; ...; 9 not run (left out by
// --label-filter '!slow')".
func (r *RunReport) LevelSummary() string {
	type count struct{ passed, failed, skipped, deviations, interrupted int }
	by := map[string]*count{}
	for _, rr := range r.Rules {
		c := by[rr.Level]
		if c == nil {
			c = &count{}
			by[rr.Level] = c
		}
		switch rr.Result {
		case ResultPassed:
			c.passed++
		case ResultFailed:
			c.failed++
		case ResultSkipped:
			c.skipped++
		case ResultDeviation:
			c.deviations++
		case ResultInterrupted:
			c.interrupted++
		}
	}
	var parts []string
	for _, l := range AllLevels {
		c := by[l]
		if c == nil {
			continue
		}
		p := fmt.Sprintf("%s %d passed", l, c.passed)
		for _, x := range []struct {
			n    int
			what string
		}{{c.failed, "failed"}, {c.skipped, "skipped"}, {c.deviations, "deviations"}, {c.interrupted, "interrupted"}} {
			if x.n > 0 {
				p += fmt.Sprintf(", %d %s", x.n, x.what)
			}
		}
		if l == LevelAdvice && c.failed > 0 {
			p += " (advice: does not fail the run)"
		}
		parts = append(parts, p)
	}
	out := strings.Join(parts, "; ")
	switch {
	case len(r.NotRun) > 0 && r.Interrupted:
		out += fmt.Sprintf("; %d not run (interrupted before they started)", len(r.NotRun))
	case len(r.NotRun) > 0:
		out += fmt.Sprintf("; %d not run (left out by --label-filter '%s')", len(r.NotRun), r.LabelFilter)
	}
	return out
}

// Rule returns the result of rule id.
func (r *RunReport) Rule(id string) (RuleResult, bool) {
	for _, rr := range r.Rules {
		if rr.ID == id {
			return rr, true
		}
	}
	return RuleResult{}, false
}

// FailedRules returns the ids of the rules that failed (deviations excluded).
func (r *RunReport) FailedRules() []string {
	var out []string
	for _, rr := range r.Rules {
		if rr.Result == ResultFailed {
			out = append(out, rr.ID)
		}
	}
	return out
}

// Matrix is the results of one run of the suite against several targets
// (Autobahn style: targets × rules). A single target is a matrix of one.
type Matrix struct {
	Format  string       `json:"format"`
	Reports []*RunReport `json:"targets"`
}

// NewMatrix returns a matrix of reports.
func NewMatrix(reports ...*RunReport) *Matrix {
	return &Matrix{Format: ReportFormat, Reports: reports}
}

// Totals sums the counts over every target.
func (m *Matrix) Totals() (passed, failed, skipped, deviations int) {
	for _, r := range m.Reports {
		passed += r.Passed
		failed += r.Failed
		skipped += r.Skipped
		deviations += r.Deviations
	}
	return
}

// WriteJSON writes the matrix as indented JSON.
func (m *Matrix) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// ReadMatrix reads a file written by WriteJSON.
func ReadMatrix(path string) (*Matrix, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Matrix
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: not a conformance report: %w", path, err)
	}
	if m.Format != ReportFormat {
		return nil, fmt.Errorf("%s: report format %q, want %q", path, m.Format, ReportFormat)
	}
	return &m, nil
}

// LiveLine is the one line printed as a rule finishes.
func LiveLine(rr RuleResult) string {
	tag := map[string]string{ResultPassed: "PASS", ResultFailed: "FAIL", ResultSkipped: "SKIP", ResultDeviation: "DEVN", ResultInterrupted: "INTR"}[rr.Result]
	line := fmt.Sprintf("%-4s %-44s %-6s %8s", tag, rr.ID, rr.Level, rr.Duration)
	if rr.Result == ResultFailed {
		if msg := firstFailure(rr); msg != "" {
			line += "  " + msg
		}
	}
	if rr.Reason != "" {
		line += "  (" + rr.Reason + ")"
	}
	return line
}

func firstFailure(rr RuleResult) string {
	for _, s := range rr.Specs {
		if s.State != "passed" && s.State != "skipped" && s.Failure != "" {
			msg := firstLineOf(s.Failure)
			if len(msg) > 200 {
				msg = msg[:200] + "…"
			}
			return msg
		}
	}
	return ""
}

// WriteTable writes the final table: one row per rule (rule, level, result,
// time) and, with several targets, one result column per target.
func (m *Matrix) WriteTable(w io.Writer) {
	if len(m.Reports) == 1 {
		r := m.Reports[0]
		fmt.Fprintf(w, "%-44s %-6s %-9s %9s\n", "RULE", "LEVEL", "RESULT", "TIME")
		for _, rr := range r.Rules {
			fmt.Fprintf(w, "%-44s %-6s %-9s %9s\n", rr.ID, rr.Level, rr.Result, rr.Duration)
		}
		if r.Error != "" {
			fmt.Fprintf(w, "target error: %s\n", r.Error)
		}
		return
	}
	ids, levels := m.ruleIDs()
	fmt.Fprintf(w, "%-44s %-6s", "RULE", "LEVEL")
	for i := range m.Reports {
		fmt.Fprintf(w, " %-14s", fmt.Sprintf("T%d", i+1))
	}
	fmt.Fprintln(w)
	for _, id := range ids {
		fmt.Fprintf(w, "%-44s %-6s", id, levels[id])
		for _, r := range m.Reports {
			cell := "-"
			if rr, ok := r.Rule(id); ok {
				cell = rr.Result + " " + rr.Duration.String()
			}
			fmt.Fprintf(w, " %-14s", cell)
		}
		fmt.Fprintln(w)
	}
	for i, r := range m.Reports {
		fmt.Fprintf(w, "T%d = %s: %d passed, %d failed, %d skipped, %d deviations", i+1, r.Target.Spec, r.Passed, r.Failed, r.Skipped, r.Deviations)
		if r.Error != "" {
			fmt.Fprintf(w, " (target error: %s)", r.Error)
		}
		fmt.Fprintln(w)
	}
}

// ruleIDs returns every rule id reported by any target, in catalogue order.
func (m *Matrix) ruleIDs() ([]string, map[string]string) {
	levels := map[string]string{}
	for _, r := range m.Reports {
		for _, rr := range r.Rules {
			levels[rr.ID] = rr.Level
		}
	}
	var ids []string
	for _, c := range Catalogue() {
		if _, ok := levels[c.ID]; ok {
			ids = append(ids, c.ID)
		}
	}
	for id := range levels {
		if _, ok := ruleByID(id); !ok {
			ids = append(ids, id)
		}
	}
	return ids, levels
}

// Summary is the closing line: "conformance: N passed, N failed, N
// skipped", with the rules not run and an interruption when there are.
func (m *Matrix) Summary() string {
	p, f, s, _ := m.Totals()
	out := fmt.Sprintf("conformance: %d passed, %d failed, %d skipped", p, f, s)
	notRun, interrupted := 0, false
	for _, r := range m.Reports {
		notRun += len(r.NotRun)
		interrupted = interrupted || r.Interrupted
	}
	if notRun > 0 {
		out += fmt.Sprintf(", %d not run", notRun)
	}
	if interrupted {
		out += " (interrupted: partial results)"
	}
	return out
}

// Interrupted reports whether any target's run was interrupted.
func (m *Matrix) Interrupted() bool {
	return slices.ContainsFunc(m.Reports, func(r *RunReport) bool { return r.Interrupted })
}

// BlockingFailures sums RunReport.BlockingFailures over every target.
func (m *Matrix) BlockingFailures() int {
	n := 0
	for _, r := range m.Reports {
		n += r.BlockingFailures()
	}
	return n
}

// sanitize keeps a string printable for XML and HTML.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || r >= 0x20 && r != 0x7f && r != 0xFFFD {
			return r
		}
		return '?'
	}, s)
}
