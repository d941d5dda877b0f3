package trace

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/aspstate/aspstate/internal/junit"
)

// Verdict is the report's result in a few words.
func (r *DiffReport) Verdict() string {
	switch {
	case r.Error != "":
		return "FAILED: the replay stopped: " + r.Error
	case r.Unexplained > 0:
		return fmt.Sprintf("FAILED: %d unexplained differences", r.Unexplained)
	}
	return "OK: no unexplained difference"
}

// WriteText writes the report for a terminal: a summary, then every group
// with its first example.
func (r *DiffReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "replayed %d exchanges on %d connections (%d sessions, %d seeded as existing before the capture) against %s at speed %g in %.1fs (capture span %.1fs)\n",
		r.Exch, r.Conns, r.Session, r.Seeded, r.Target, r.Speed, r.DurationMS/1000, r.SpanMS/1000)
	fmt.Fprintf(w, "capture %s\n", r.Skipped)
	fmt.Fprintf(w, "compared %d replies: %d same, %d unexplained differences, %d timing-dependent\n",
		r.Compared, r.Same, r.Unexplained, r.TimingDependent)
	for _, g := range r.Groups {
		fmt.Fprintf(w, "\n%s\n", g.Title())
		if len(g.Examples) > 0 {
			ex := g.Examples[0]
			fmt.Fprintf(w, "  first: %s #%d: %s\n", ex.Conn, ex.Seq, ex.Detail)
			for _, l := range strings.SplitAfter(strings.TrimRight(ex.Transcript, "\n"), "\n") {
				fmt.Fprintf(w, "    %s", strings.TrimRight(l, "\n")+"\n")
			}
		}
	}
	fmt.Fprintf(w, "\n%s\n", r.Verdict())
}

// WriteJSON writes the report as indented JSON.
func (r *DiffReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteJUnit writes the report as JUnit XML: one test case per group of
// differences (failed unless timing-dependent, which is skipped with its
// reason), or one passing case when the replies agree.
func (r *DiffReport) WriteJUnit(w io.Writer) error {
	secs := fmt.Sprintf("%.3f", r.DurationMS/1000)
	s := junit.Suite{Name: "trace diff " + r.Target, Time: secs, Timestamp: r.Started.Format("2006-01-02T15:04:05Z07:00"),
		Properties: []junit.Property{{Name: "target", Value: r.Target}, {Name: "files", Value: strings.Join(r.Files, ", ")},
			{Name: "speed", Value: fmt.Sprint(r.Speed)}, {Name: "exchanges", Value: fmt.Sprint(r.Exch)}}}
	if r.Error != "" {
		s.Cases = append(s.Cases, junit.Case{Name: "replay", Classname: "trace.diff", Error: &junit.Message{Message: r.Error, Type: "replay"}})
		s.Errors++
	}
	for _, g := range r.Groups {
		c := junit.Case{Name: g.Title(), Classname: "trace.diff." + g.Kind}
		var text strings.Builder
		for _, ex := range g.Examples {
			fmt.Fprintf(&text, "--- %s #%d: %s ---\n%s\n", ex.Conn, ex.Seq, ex.Detail, ex.Transcript)
		}
		msg := g.Title()
		if len(g.Examples) > 0 {
			msg = g.Examples[0].Detail
		}
		if g.Timing {
			c.Skipped = &junit.Message{Message: "timing-dependent: " + msg}
			c.SystemOut = text.String()
			s.Skipped++
		} else {
			c.Failure = &junit.Message{Message: msg, Type: g.Kind, Text: text.String()}
			s.Failures++
		}
		s.Cases = append(s.Cases, c)
	}
	if len(s.Cases) == 0 {
		s.Cases = append(s.Cases, junit.Case{Name: fmt.Sprintf("%d replies compared, no difference", r.Compared), Classname: "trace.diff"})
	}
	s.Tests = len(s.Cases)
	return junit.Write(w, junit.Suites{Name: "aspstate trace diff", Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped,
		Time: secs, Suites: []junit.Suite{s}})
}

var diffHTML = template.Must(template.New("diff").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>aspstate trace diff: {{.R.Target}}</title>
<style>body{font-family:sans-serif;margin:2em}pre{background:#f6f6f6;padding:.5em;overflow-x:auto}
.bad{color:#b00}.ok{color:#070}.timing{color:#a60}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}</style></head>
<body><h1>aspstate trace diff</h1>
<p class="{{if .R.Failed}}bad{{else}}ok{{end}}"><b>{{.R.Verdict}}</b></p>
<table>
<tr><th>target</th><td>{{.R.Target}}</td></tr>
<tr><th>captures</th><td>{{range .R.Files}}{{.}} {{end}}</td></tr>
<tr><th>replay</th><td>{{.R.Exch}} exchanges, {{.R.Conns}} connections, {{.R.Session}} sessions ({{.R.Seeded}} seeded), speed {{.R.Speed}}</td></tr>
<tr><th>compared</th><td>{{.R.Compared}} replies: {{.R.Same}} same, {{.R.Unexplained}} unexplained, {{.R.TimingDependent}} timing-dependent</td></tr>
<tr><th>capture</th><td>{{.R.Skipped}}</td></tr>
</table>
{{range .R.Groups}}<h2 class="{{if .Timing}}timing{{else}}bad{{end}}">{{.Title}}</h2>
{{range .Examples}}<p>{{.Conn}} #{{.Seq}}: {{.Detail}}</p>
<p><small>wire transcript (→ sent by the replay, ← the live reply, then the recorded reply; bodies as lengths only)</small></p><pre>{{.Transcript}}</pre>{{end}}{{end}}
</body></html>
`))

// WriteHTML writes the report as one self-contained HTML page.
func (r *DiffReport) WriteHTML(w io.Writer) error {
	return diffHTML.Execute(w, struct{ R *DiffReport }{r})
}
