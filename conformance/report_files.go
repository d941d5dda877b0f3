package conformance

import (
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aspstate/aspstate/internal/junit"
)

func secs(m Millis) string { return fmt.Sprintf("%.3f", time.Duration(m).Seconds()) }

// WriteJUnit writes the matrix as JUnit XML: one testsuite per target, one
// testcase per rule (classname "conformance.LEVEL"). A deviation is a
// passing testcase whose system-out says why.
func (m *Matrix) WriteJUnit(w io.Writer) error {
	doc := junit.Suites{Name: "aspstate conformance"}
	var total time.Duration
	for _, r := range m.Reports {
		s := junit.Suite{Name: r.Target.Spec, Time: secs(r.Duration), Timestamp: r.Started.Format(time.RFC3339),
			Properties: []junit.Property{{Name: "target", Value: r.Target.Description}, {Name: "addr", Value: r.Target.Addr},
				{Name: "minute", Value: r.Minute}, {Name: "seed", Value: fmt.Sprint(r.Seed)}, {Name: "label_filter", Value: r.LabelFilter}}}
		total += time.Duration(r.Duration)
		if r.Error != "" {
			s.Tests, s.Errors = 1, 1
			s.Cases = append(s.Cases, junit.Case{Name: "target", Classname: "conformance.target",
				Error: &junit.Message{Message: sanitize(r.Error), Type: "target"}})
		}
		for _, rr := range r.Rules {
			c := junit.Case{Name: rr.ID + ": " + rr.Description, Classname: "conformance." + rr.Level, Time: secs(rr.Duration)}
			s.Tests++
			switch rr.Result {
			case ResultFailed:
				s.Failures++
				var text strings.Builder
				for _, sp := range rr.Specs {
					if sp.Failure == "" || sp.State == "skipped" {
						continue
					}
					fmt.Fprintf(&text, "It %s\n%s\n%s\n\n", sp.Text, sp.Failure, sp.Location)
				}
				c.Failure = &junit.Message{Message: sanitize(firstFailure(rr)), Type: "rule", Text: sanitize(text.String())}
				c.SystemOut = sanitize(transcripts(rr))
			case ResultSkipped:
				s.Skipped++
				c.Skipped = &junit.Message{Message: sanitize(rr.Reason)}
			case ResultDeviation:
				c.SystemOut = sanitize("known deviation: " + rr.Reason + "\n\n" + firstFailure(rr) + "\n\n" + transcripts(rr))
			}
			s.Cases = append(s.Cases, c)
		}
		doc.Tests += s.Tests
		doc.Failures += s.Failures + s.Errors
		doc.Skipped += s.Skipped
		doc.Suites = append(doc.Suites, s)
	}
	doc.Time = secs(Millis(total))
	return junit.Write(w, doc)
}

func transcripts(rr RuleResult) string {
	var b strings.Builder
	for _, sp := range rr.Specs {
		if sp.Transcript != "" {
			fmt.Fprintf(&b, "--- wire transcript: %s ---\n%s\n", sp.Text, sp.Transcript)
		}
	}
	return b.String()
}

// htmlRow is one rule in the HTML matrix.
type htmlRow struct {
	ID, Level, Description string
	Cells                  []htmlCell
}

type htmlCell struct {
	Result, Time, Anchor string
}

type htmlDetail struct {
	Anchor, Target string
	Rule           RuleResult
	Fix            string
}

const htmlSource = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>aspstate conformance</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td.passed{background:#e3f6e3}td.failed{background:#fbdede}td.skipped{background:#eee;color:#666}td.deviation{background:#fff3cd}
pre{background:#f8f8f8;border:1px solid #ddd;padding:.6em;overflow-x:auto;font:12px/1.35 ui-monospace,monospace;white-space:pre-wrap;overflow-wrap:anywhere}
td{overflow-wrap:anywhere}
.summary{font-weight:bold}
h3{margin-top:2em}
small{color:#666}
</style></head><body>
<h1>[MS-ASP] conformance</h1>
<p class="summary">{{.Summary}}</p>
{{range $i, $r := .Reports}}<p>T{{inc $i}} by level: {{$r.LevelSummary}}</p>
{{if $r.MinuteProbe}}<p><b>protocol minute:</b> {{$r.MinuteProbe}}</p>{{end}}
{{with $r.CauseGroups}}<h2>T{{inc $i}} failures by cause</h2><ul>{{range .}}<li><b>{{.Cause.Title}}: {{len .Rules}} rules</b><br>consequence: {{.Cause.Consequence}}<br>fix: {{.Cause.Fix}}<br><small>{{range .Rules}}<a href="#t{{inc $i}}-{{.}}">{{.}}</a> {{end}}</small></li>{{end}}</ul>{{end}}
{{end}}
<table><tr><th>#</th><th>target</th><th>minute</th><th>seed</th><th>passed</th><th>failed</th><th>skipped</th><th>deviations</th><th>time</th></tr>
{{range $i, $r := .Reports}}<tr><td>T{{inc $i}}</td><td><code>{{$r.Target.Spec}}</code><br><small>{{$r.Target.Description}} {{$r.Target.Addr}}</small>{{if $r.Error}}<br><b>target error:</b> {{$r.Error}}{{end}}</td><td>{{$r.Minute}}</td><td>{{$r.Seed}}</td><td>{{$r.Passed}}</td><td>{{$r.Failed}}</td><td>{{$r.Skipped}}</td><td>{{$r.Deviations}}</td><td>{{$r.Duration}}</td></tr>
{{end}}</table>
<table><tr><th>rule</th><th>level</th><th>description</th>{{range $i, $r := .Reports}}<th>T{{inc $i}}</th>{{end}}</tr>
{{range .Rows}}<tr><td><code>{{.ID}}</code></td><td>{{.Level}}</td><td>{{.Description}}</td>{{range .Cells}}<td class="{{.Result}}">{{if .Anchor}}<a href="#{{.Anchor}}">{{.Result}}</a>{{else}}{{.Result}}{{end}} <small>{{.Time}}</small></td>{{end}}</tr>
{{end}}</table>
{{range .Details}}<h3 id="{{.Anchor}}">{{.Rule.ID}} <small>({{.Rule.Level}}) on {{.Target}}: {{.Rule.Result}}</small></h3>
<p>{{.Rule.Description}}{{if .Rule.Reason}}<br><b>reason:</b> {{.Rule.Reason}}{{end}}{{if .Fix}}<br><b>fix:</b> {{.Fix}}{{end}}</p>
{{range .Rule.Specs}}{{if .Failure}}{{if ne .State "skipped"}}<h4>It {{.Text}} <small>{{.State}}, {{.Duration}}</small></h4>
<p><b>expected vs observed</b> <small>{{.Location}}</small></p><pre>{{.Failure}}</pre>
{{if .Transcript}}<p><b>wire transcript</b> <small>(→ sent by the suite, ← sent by the server, #N = connection)</small></p><pre>{{.Transcript}}</pre>{{end}}{{end}}{{end}}{{end}}
{{end}}
</body></html>
`

var htmlTemplate = template.Must(template.New("report").
	Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).
	Parse(htmlSource))

// WriteHTML writes a self-contained HTML report (no scripts, no external
// resources): the targets, the rules × targets matrix, and for each failing
// rule the expected vs observed message and the wire transcript.
func (m *Matrix) WriteHTML(w io.Writer) error {
	ids, levels := m.ruleIDs()
	desc := map[string]string{}
	for _, r := range m.Reports {
		for _, rr := range r.Rules {
			desc[rr.ID] = rr.Description
		}
	}
	// Failures first: rows with a failed or deviating cell lead, in
	// catalogue order among themselves.
	bad := func(id string) bool {
		for _, r := range m.Reports {
			if rr, ok := r.Rule(id); ok && (rr.Result == ResultFailed || rr.Result == ResultDeviation) {
				return true
			}
		}
		return false
	}
	slices.SortStableFunc(ids, func(a, b string) int {
		switch ba, bb := bad(a), bad(b); {
		case ba && !bb:
			return -1
		case bb && !ba:
			return 1
		}
		return 0
	})
	var rows []htmlRow
	var details []htmlDetail
	for _, id := range ids {
		row := htmlRow{ID: id, Level: levels[id], Description: desc[id]}
		for ti, r := range m.Reports {
			cell := htmlCell{Result: "-"}
			if rr, ok := r.Rule(id); ok {
				cell = htmlCell{Result: rr.Result, Time: rr.Duration.String()}
				if rr.Result == ResultFailed || rr.Result == ResultDeviation {
					cell.Anchor = fmt.Sprintf("t%d-%s", ti+1, id)
					d := htmlDetail{Anchor: cell.Anchor, Target: r.Target.Spec, Rule: sanitizeRule(rr)}
					if rr.Result == ResultFailed {
						d.Fix = r.Fix(rr)
					}
					details = append(details, d)
				}
			}
			row.Cells = append(row.Cells, cell)
		}
		rows = append(rows, row)
	}
	data := struct {
		Summary string
		Reports []*RunReport
		Rows    []htmlRow
		Details []htmlDetail
	}{m.Summary(), m.Reports, rows, details}
	return htmlTemplate.Execute(w, data)
}

func sanitizeRule(rr RuleResult) RuleResult {
	specs := make([]SpecResult, len(rr.Specs))
	for i, s := range rr.Specs {
		s.Failure, s.Transcript = sanitize(s.Failure), sanitize(s.Transcript)
		specs[i] = s
	}
	rr.Specs = specs
	return rr
}
