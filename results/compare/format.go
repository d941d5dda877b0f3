package compare

import (
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/aspstate/aspstate/internal/junit"
)

// summary is the one-line outcome.
func (r *Result) summary() string {
	verdict := "PASS"
	if !r.Pass() {
		verdict = "FAIL"
	}
	s := fmt.Sprintf("%s: %d regressions, %d improvements, %d unchanged", verdict,
		r.Count(Regression), r.Count(Improvement), r.Count(NoChange))
	if len(r.Thresholds) > 0 {
		s += fmt.Sprintf("; thresholds: %d of %d held", len(r.Thresholds)-r.Broken(), len(r.Thresholds))
	}
	return s
}

func sideText(s Side) string {
	return fmt.Sprintf("%d run(s): %s", len(s.Runs), strings.Join(s.Names, ", "))
}

func (r *Result) method() string {
	tested := 0
	for _, row := range r.Rows {
		if !math.IsNaN(row.P) {
			tested++
		}
	}
	corr := fmt.Sprintf("q = p corrected for the %d metrics tested (Benjamini–Hochberg)", tested)
	if r.Options.Correction == CorrectionNone {
		corr = "q = p (no correction for the number of metrics)"
	}
	return fmt.Sprintf("test: Mann–Whitney U over per-interval values (errors: two-proportion z-test over counts); %s\n"+
		"change: q < %g and at least the minimum effect (%s); open-model throughput against the offered rate;\n"+
		"latency is corrected (from the intended start)%s", corr, r.Options.Alpha, r.Options.EffectsText(), r.yardstickText())
}

// yardstickText warns when the machine's timer lag is missing on a side.
func (r *Result) yardstickText() string {
	if !r.NoYardstick {
		return ""
	}
	return "\nwarning: a side has no record of the machine's timer lag (an older result): latency verdicts cannot tell a busier machine from a slower build; record the base again"
}

func pText(p float64) string {
	if math.IsNaN(p) {
		return "–"
	}
	return fmt.Sprintf("%.3g", p)
}

func deltaText(row Row) string {
	if row.Note == "only in new" || row.Note == "only in base" || row.Note == "no samples" {
		return "–"
	}
	return FormatDelta(row.Delta)
}

func valueText(m Metric, v float64, ok bool) string {
	if !ok {
		return "–"
	}
	return FormatValue(m, v)
}

// Text writes the comparison as an aligned table, then the thresholds and
// the outcome.
func (r *Result) Text(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "base: %s\nnew:  %s\n%s\n\n", sideText(r.Base), sideText(r.New), r.method())
	cells := [][]string{{"scope", "metric", "base", "new", "delta", "p", "q", "n", "verdict"}}
	for _, row := range r.Rows {
		bok := row.Note != "only in new" && row.Note != "no samples"
		nok := row.Note != "only in base" && row.Note != "no samples"
		v := string(row.Verdict)
		if row.Verdict == NoChange && row.Note != "" {
			v += " (" + row.Note + ")"
		}
		cells = append(cells, []string{row.Scope.String(), string(row.Metric),
			valueText(row.Metric, row.Base, bok), valueText(row.Metric, row.New, nok), deltaText(row), pText(row.P),
			pText(row.Q), fmt.Sprintf("%d+%d", row.NBase, row.NNew), v})
	}
	writeAligned(&b, cells, []bool{false, false, true, true, true, true, true, true, false})
	if len(r.Thresholds) > 0 {
		b.WriteString("\nthresholds:\n")
		for _, t := range r.Thresholds {
			mark := "PASS"
			if !t.Pass {
				mark = "FAIL"
			}
			fmt.Fprintf(&b, "  %s  %s  (%s)\n", mark, t.Text, t.Reason)
		}
	}
	fmt.Fprintf(&b, "\n%s\n", r.summary())
	_, err := io.WriteString(w, b.String())
	return err
}

// writeAligned writes rows of cells in columns two spaces apart, numbers
// (right[i]) aligned right, text left, without trailing blanks.
func writeAligned(b *strings.Builder, rows [][]string, right []bool) {
	width := make([]int, len(right))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				line.WriteString("  ")
			}
			if right[i] {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// Markdown writes the comparison for a pull-request comment: the outcome,
// the thresholds, the changed metrics, and the full table folded away.
func (r *Result) Markdown(w io.Writer) error {
	var b strings.Builder
	icon := "✅"
	if !r.Pass() {
		icon = "❌"
	}
	fmt.Fprintf(&b, "### %s aspstate compare — %s\n\n", icon, r.summary())
	fmt.Fprintf(&b, "- **base**: %s\n- **new**: %s\n- %s\n", mdCell(sideText(r.Base)), mdCell(sideText(r.New)),
		strings.ReplaceAll(r.method(), "\n", "\n- "))
	if len(r.Thresholds) > 0 {
		b.WriteString("\n| threshold | result | detail |\n| --- | --- | --- |\n")
		for _, t := range r.Thresholds {
			mark := "pass"
			if !t.Pass {
				mark = "**FAIL**"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", mdCell(t.Text), mark, mdCell(t.Reason))
		}
	}
	header := "| scope | metric | base | new | delta | p | q | n | verdict |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n"
	rowText := func(row Row) string {
		bok := row.Note != "only in new" && row.Note != "no samples"
		nok := row.Note != "only in base" && row.Note != "no samples"
		v := string(row.Verdict)
		if row.Verdict == Regression {
			v = "**regression**"
		}
		if row.Verdict == NoChange && row.Note != "" {
			v += " (" + row.Note + ")"
		}
		return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %d+%d | %s |\n", row.Scope, row.Metric,
			valueText(row.Metric, row.Base, bok), valueText(row.Metric, row.New, nok), deltaText(row), pText(row.P),
			pText(row.Q), row.NBase, row.NNew, mdCell(v))
	}
	var changed []Row
	for _, row := range r.Rows {
		if row.Verdict != NoChange {
			changed = append(changed, row)
		}
	}
	if len(changed) > 0 {
		b.WriteString("\n**Significant changes**\n\n" + header)
		for _, row := range changed {
			b.WriteString(rowText(row))
		}
	} else {
		b.WriteString("\nNo significant change in any metric.\n")
	}
	b.WriteString("\n<details><summary>All metrics</summary>\n\n" + header)
	for _, row := range r.Rows {
		b.WriteString(rowText(row))
	}
	b.WriteString("\n</details>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// JUnit writes the comparison as JUnit XML for CI: one test case per metric
// (a regression fails it) and one per threshold.
func (r *Result) JUnit(w io.Writer) error {
	metrics := junit.Suite{Name: "aspstate compare: metrics"}
	for _, row := range r.Rows {
		detail := fmt.Sprintf("base %s, new %s, delta %s, p %s, q %s, n %d+%d, %s",
			FormatValue(row.Metric, row.Base), FormatValue(row.Metric, row.New), deltaText(row), pText(row.P),
			pText(row.Q), row.NBase, row.NNew, row.Verdict)
		if row.Note != "" {
			detail += " (" + row.Note + ")"
		}
		c := junit.Case{Name: string(row.Metric), Classname: "compare." + row.Scope.String(), SystemOut: detail}
		if row.Verdict == Regression {
			c.Failure = &junit.Message{Message: "regression: " + detail, Type: "regression", Text: detail}
			metrics.Failures++
		}
		metrics.Cases = append(metrics.Cases, c)
	}
	metrics.Tests = len(metrics.Cases)
	suites := junit.Suites{Suites: []junit.Suite{metrics}}
	if len(r.Thresholds) > 0 {
		th := junit.Suite{Name: "aspstate compare: thresholds"}
		for _, t := range r.Thresholds {
			c := junit.Case{Name: t.Text, Classname: "threshold." + t.Scope.String(), SystemOut: t.Reason}
			if !t.Pass {
				c.Failure = &junit.Message{Message: "threshold broken: " + t.Reason, Type: "threshold", Text: t.Reason}
				th.Failures++
			}
			th.Cases = append(th.Cases, c)
		}
		th.Tests = len(th.Cases)
		suites.Suites = append(suites.Suites, th)
	}
	for _, s := range suites.Suites {
		suites.Tests += s.Tests
		suites.Failures += s.Failures
	}
	return junit.Write(w, suites)
}
