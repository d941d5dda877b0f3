// Package report renders one or several load results (result directories
// written by the results package) as a self-contained HTML page with inline
// SVG charts, PNG files of the same charts, and a Markdown summary.
//
// The charts are drawn with gonum.org/v1/plot, which renders SVG and PNG in
// pure Go (no cgo, no browser, no CDN), so a report opens offline:
//
//   - latency by percentile, per page type and per operation, on the
//     HdrHistogram log axis (x = 1/(1-q): 0%, 90%, 99%, 99.9%, …), corrected
//     (from the intended start) solid and uncorrected dashed;
//   - latency over time (per-interval p99 and p50 of all pages), with the
//     scenario's faults marked;
//   - intended against achieved throughput over time;
//   - the lock-wait distribution and 423 (locked) replies over time;
//   - errors over time.
//
// Several runs overlay in each chart, one colour per run, with a legend.
package report

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aspstate/aspstate/results"
)

// Report file names inside the output directory.
const (
	HTMLFile     = "report.html"
	MarkdownFile = "report.md"
)

// Input is one run to draw.
type Input struct {
	// Label names the run in legends and tables (by default the base name
	// of its directory, made unique).
	Label string
	// Dir is the result directory the run was read from ("" if built in
	// memory).
	Dir string
	// Run is the result.
	Run *results.Run
}

// Format selects the files Write produces.
type Format struct {
	HTML, PNG, Markdown bool
}

// ParseFormat parses a comma-separated list of html, png and md
// (markdown is accepted for md).
func ParseFormat(s string) (Format, error) {
	var f Format
	for part := range strings.SplitSeq(s, ",") {
		switch strings.ToLower(strings.TrimSpace(part)) {
		case "html":
			f.HTML = true
		case "png":
			f.PNG = true
		case "md", "markdown":
			f.Markdown = true
		case "":
		default:
			return Format{}, fmt.Errorf("unknown report format %q (want a comma-separated list of html, png and md)", part)
		}
	}
	if f == (Format{}) {
		return Format{}, errors.New("no report format given (want a comma-separated list of html, png and md)")
	}
	return f, nil
}

// Files lists what Write produced (absolute or as given by the output
// directory), "" or empty when a format was not asked for.
type Files struct {
	HTML     string
	Markdown string
	PNGs     []string
}

// Load reads result directories into Inputs labelled by their base names,
// with a numeric suffix where two names collide. Every problem is reported,
// naming the directory.
func Load(dirs []string) ([]Input, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no result directory given")
	}
	var errs []error
	var ins []Input
	for _, d := range dirs {
		st, err := os.Stat(d)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("result directory %s: %w", d, err))
			continue
		case !st.IsDir():
			errs = append(errs, fmt.Errorf("%s is not a directory (give the directory holding %s)", d, results.ResultFile))
			continue
		}
		r, err := results.Read(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("result directory %s: %w", d, err))
			continue
		}
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("result directory %s: %w", d, err))
			continue
		}
		ins = append(ins, Input{Dir: d, Run: r})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	Label(ins)
	return ins, nil
}

// Label sets the Label of every input that has none to the base name of its
// directory (or "run N"), then makes labels unique by appending "#2", "#3"…
func Label(ins []Input) {
	seen := map[string]int{}
	for i := range ins {
		if ins[i].Label == "" {
			if ins[i].Dir != "" {
				abs, err := filepath.Abs(ins[i].Dir)
				if err != nil {
					abs = ins[i].Dir
				}
				ins[i].Label = filepath.Base(abs)
			} else {
				ins[i].Label = fmt.Sprintf("run %d", i+1)
			}
		}
		seen[ins[i].Label]++
		if n := seen[ins[i].Label]; n > 1 {
			ins[i].Label = fmt.Sprintf("%s#%d", ins[i].Label, n)
		}
	}
}

// Write renders the inputs into dir (created if needed) in the asked
// formats and returns the files written. It checks ctx between charts.
func Write(ctx context.Context, dir string, ins []Input, f Format) (Files, error) {
	if len(ins) == 0 {
		return Files{}, errors.New("report: no runs to draw")
	}
	for i, in := range ins {
		if in.Run == nil {
			return Files{}, fmt.Errorf("report: input %d (%s) has no run", i, in.Label)
		}
	}
	if f == (Format{}) {
		return Files{}, errors.New("report: no format selected")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("report directory: %w", err)
	}
	charts, err := buildCharts(ctx, ins)
	if err != nil {
		return Files{}, err
	}
	var out Files
	var svgs []renderedChart
	for _, c := range charts {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		rc := renderedChart{chart: c}
		if f.PNG {
			png, err := render(c, "png")
			if err != nil {
				return out, fmt.Errorf("chart %s: %w", c.name, err)
			}
			p := filepath.Join(dir, c.name+".png")
			if err := os.WriteFile(p, png, 0o644); err != nil {
				return out, err
			}
			out.PNGs = append(out.PNGs, p)
			rc.png = c.name + ".png"
		}
		if f.HTML {
			svg, err := render(c, "svg")
			if err != nil {
				return out, fmt.Errorf("chart %s: %w", c.name, err)
			}
			rc.svg = inlineSVG(svg)
		}
		svgs = append(svgs, rc)
	}
	tables := summaryTables(ins)
	if f.Markdown {
		p := filepath.Join(dir, MarkdownFile)
		if err := os.WriteFile(p, []byte(markdown(ins, tables, svgs)), 0o644); err != nil {
			return out, err
		}
		out.Markdown = p
	}
	if f.HTML {
		p := filepath.Join(dir, HTMLFile)
		page, err := html(ins, tables, svgs)
		if err != nil {
			return out, err
		}
		if err := os.WriteFile(p, page, 0o644); err != nil {
			return out, err
		}
		out.HTML = p
	}
	return out, nil
}
