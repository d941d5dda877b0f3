package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strings"
	"time"
)

// table is one summary table, rendered as Markdown and as HTML.
type table struct {
	title  string
	note   string
	header []string
	rows   [][]string
}

// summaryTables returns the run overview, latency per page type and per
// operation, locks, errors and faults, one column set per run.
func summaryTables(ins []Input) []table {
	var ts []table
	runs := table{
		title: "Runs",
		header: []string{"run", "scenario", "mode", "shape", "start (UTC)", "duration", "intended/s", "achieved/s",
			"completed", "late", "dropped", "errors", "correctness"},
	}
	for _, in := range ins {
		r := in.Run
		intended := fmt.Sprintf("%.1f", r.Rate.Intended)
		if r.Rate.Intended == 0 {
			intended = "–"
		}
		status := fmt.Sprintf("OK (%d checks)", r.Correctness.Checks)
		if r.Correctness.Total > 0 {
			status = fmt.Sprintf("%d violations", r.Correctness.Total)
		}
		dur := r.End.Sub(r.Start).Round(time.Millisecond).String()
		if r.Interrupted {
			dur += " (interrupted)"
		}
		runs.rows = append(runs.rows, []string{
			in.Label, r.Config.ScenarioName, r.Config.Mode, r.Config.Shape, r.Start.UTC().Format("2006-01-02 15:04:05"),
			dur, intended, fmt.Sprintf("%.1f", r.Rate.Achieved), fmt.Sprint(r.Rate.Completed),
			fmt.Sprint(r.Rate.Late), fmt.Sprint(r.Rate.Dropped), fmt.Sprint(sum(r.Errors)), status,
		})
	}
	ts = append(ts, runs)

	for _, kind := range []string{"page-state", "op", "page"} {
		title := map[string]string{
			"page-state": "Page-state latency: the pages' time in state-server calls and lock waits (ms, corrected; uncorrected p99 beside)",
			"op":         "Operation latency (ms, corrected; uncorrected p99 beside)",
			"page":       "Whole-page latency, execution time included (ms, corrected; uncorrected p99 beside)",
		}[kind]
		if len(scopeNames(ins, kind)) == 0 {
			continue
		}
		t := table{title: title, header: []string{kind, "run", "count", "errors", "p50", "p90", "p99", "p99.9", "max", "uncorr p99"}}
		for _, name := range scopeNames(ins, kind) {
			for _, in := range ins {
				s := stats(in.Run, kind, name)
				if s == nil {
					continue
				}
				c := s.Corrected
				t.rows = append(t.rows, []string{name, in.Label, fmt.Sprint(s.Count), fmt.Sprint(sum(s.Errors)),
					msText(c.P50), msText(c.P90), msText(c.P99), msText(c.P999), msText(c.Max), msText(s.Uncorrected.P99)})
			}
		}
		ts = append(ts, t)
	}

	locks := table{title: "Locks", header: []string{"run", "acquires", "waited", "423 replies", "polls/acquire",
		"max polls", "wait p50", "wait p99", "wait max", "forced breaks", "gave up"}}
	for _, in := range ins {
		l := in.Run.Locks
		locks.rows = append(locks.rows, []string{in.Label, fmt.Sprint(l.Acquires), fmt.Sprint(l.Waited),
			fmt.Sprint(l.Locked), fmt.Sprintf("%.3f", l.PollsPerAcquire), fmt.Sprint(l.MaxPollsPerAcquire),
			msText(l.Wait.P50), msText(l.Wait.P99), msText(l.Wait.Max), fmt.Sprint(l.ForcedBreaks), fmt.Sprint(l.WaitTimeouts)})
	}
	ts = append(ts, locks)

	errs := table{title: "Errors and violations", header: []string{"run", "what", "count"}}
	for _, in := range ins {
		for _, k := range slices.Sorted(maps.Keys(in.Run.Errors)) {
			errs.rows = append(errs.rows, []string{in.Label, "error " + k, fmt.Sprint(in.Run.Errors[k])})
		}
		for _, k := range slices.Sorted(maps.Keys(in.Run.Correctness.Violations)) {
			errs.rows = append(errs.rows, []string{in.Label, "violation " + k, fmt.Sprint(in.Run.Correctness.Violations[k])})
		}
		for _, ex := range in.Run.Correctness.Examples {
			errs.rows = append(errs.rows, []string{in.Label, "example: " + ex, ""})
		}
		if in.Run.Failure != "" {
			errs.rows = append(errs.rows, []string{in.Label, "run failed: " + in.Run.Failure, ""})
		}
	}
	if len(errs.rows) == 0 {
		errs.note = "No errors and no correctness violations."
	}
	ts = append(ts, errs)

	faults := table{title: "Faults", header: []string{"run", "at", "fault", "note"}}
	for _, in := range ins {
		if sc := in.Run.Config.Scenario; sc != nil {
			for _, f := range sc.SortedFaults() {
				faults.rows = append(faults.rows, []string{in.Label, f.At.D().String(), faultText(f), ""})
			}
		}
		for _, k := range slices.Sorted(maps.Keys(in.Run.Config.Options)) {
			if strings.HasPrefix(k, "fault_") {
				faults.rows = append(faults.rows, []string{in.Label, "", "", in.Run.Config.Options[k]})
			}
		}
	}
	if len(faults.rows) > 0 {
		ts = append(ts, faults)
	}
	return ts
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// msText formats nanoseconds as milliseconds with three decimals.
func msText(ns int64) string { return fmt.Sprintf("%.3f", float64(ns)/1e6) }

// mdEscape keeps a cell from breaking a Markdown table.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// markdown renders the summary tables and links the PNG charts.
func markdown(ins []Input, ts []table, charts []renderedChart) string {
	var b strings.Builder
	b.WriteString("# aspstate load report\n\n")
	for _, in := range ins {
		v := judge(in)
		fmt.Fprintf(&b, "## %s — %s\n\n", mdEscape(in.Label), mdEscape(v.Headline))
		for _, it := range v.Items {
			fmt.Fprintf(&b, "- **%s** %s: %s\n", strings.ToUpper(it.Status), mdEscape(it.What), mdEscape(it.Text))
		}
		if len(v.History) > 0 {
			b.WriteString("\nSmallest failing history:\n\n```\n" + strings.Join(v.History, "\n") + "\n```\n")
		}
		b.WriteString("\n")
	}
	b.WriteString("## Runs\n\n")
	for _, in := range ins {
		fmt.Fprintf(&b, "- **%s**: %s\n", mdEscape(in.Label), mdEscape(describe(in)))
	}
	for _, t := range ts {
		fmt.Fprintf(&b, "\n## %s\n\n", t.title)
		if t.note != "" {
			fmt.Fprintf(&b, "%s\n", t.note)
			continue
		}
		b.WriteString("| " + strings.Join(t.header, " | ") + " |\n")
		b.WriteString("|" + strings.Repeat(" --- |", len(t.header)) + "\n")
		for _, r := range t.rows {
			cells := make([]string, len(r))
			for i, c := range r {
				cells[i] = mdEscape(c)
			}
			b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
		}
	}
	var pngs []renderedChart
	for _, c := range charts {
		if c.png != "" {
			pngs = append(pngs, c)
		}
	}
	if len(pngs) > 0 {
		b.WriteString("\n## Charts\n")
		for _, c := range pngs {
			fmt.Fprintf(&b, "\n### %s\n\n%s\n\n![%s](%s)\n", c.title, c.caption, c.title, c.png)
		}
	}
	return b.String()
}

// describe is a one-line description of a run for headings.
func describe(in Input) string {
	r := in.Run
	s := fmt.Sprintf("scenario %s, %s mode, %s, started %s, %d targets",
		r.Config.ScenarioName, r.Config.Mode, r.End.Sub(r.Start).Round(time.Millisecond),
		r.Start.UTC().Format(time.RFC3339), len(r.Config.Targets))
	if in.Dir != "" {
		s += ", from " + in.Dir
	}
	if r.Harness.Version != "" || r.Harness.Revision != "" {
		s += strings.TrimRight(fmt.Sprintf(", aspstate %s %s", r.Harness.Version, r.Harness.Revision), " ")
	}
	return s
}

//go:embed report.html.tmpl
var htmlTemplate string

var pageTemplate = template.Must(template.New("report").Parse(htmlTemplate))

type legendEntry struct {
	Label, Color, Description string
}

// html renders the self-contained page: the verdict of every run first,
// then the charts as inline SVG, then the tables. Nothing is loaded from
// elsewhere.
func html(ins []Input, ts []table, charts []renderedChart) ([]byte, error) {
	type htmlTable struct {
		Title, Note string
		Header      []string
		Rows        [][]string
	}
	type htmlChart struct {
		Name, Title, Caption string
		SVG                  template.HTML
	}
	type htmlItem struct {
		What, Status, Mark, Text string
	}
	type htmlVerdict struct {
		Label, Headline   string
		Pass              bool
		Items             []htmlItem
		History, Examples []string
	}
	data := struct {
		Verdicts []htmlVerdict
		Runs     []legendEntry
		Tables   []htmlTable
		Charts   []htmlChart
	}{}
	marks := map[string]string{statusPass: "✔", statusFail: "✘", statusWarn: "!", statusInfo: "·"}
	for i, in := range ins {
		r, g, b, _ := runColor(i).RGBA()
		data.Runs = append(data.Runs, legendEntry{in.Label, fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, b>>8), describe(in)})
		v := judge(in)
		hv := htmlVerdict{Label: in.Label, Headline: v.Headline, Pass: v.Pass, History: v.History, Examples: v.Examples}
		for _, it := range v.Items {
			hv.Items = append(hv.Items, htmlItem{it.What, it.Status, marks[it.Status], it.Text})
		}
		data.Verdicts = append(data.Verdicts, hv)
	}
	for _, t := range ts {
		data.Tables = append(data.Tables, htmlTable{t.title, t.note, t.header, t.rows})
	}
	for _, c := range charts {
		if c.svg != "" {
			data.Charts = append(data.Charts, htmlChart{c.name, c.title, c.caption, c.svg})
		}
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("report.html: %w", err)
	}
	return b.Bytes(), nil
}
