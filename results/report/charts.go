package report

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// chart is one figure of the report.
type chart struct {
	// name is the file stem of the PNG and the anchor in the HTML.
	name string
	// title is the heading; caption says how to read the chart.
	title, caption string
	p              *plot.Plot
	// curves counts the data curves drawn (grid and markers left out).
	curves int
}

// renderedChart is a chart with its PNG file name and inline SVG.
type renderedChart struct {
	chart
	png string
	svg template.HTML
}

// Chart size: two charts side by side on a laptop screen, the report's
// first screen holding the verdict and the charts over time.
const (
	chartWidth  = 6.4 * vg.Inch
	chartHeight = 3.9 * vg.Inch
)

// palette is the Okabe–Ito colour-blind-safe palette, yellow last (weak on
// white). Run i gets palette[i % len(palette)].
var palette = []color.Color{
	color.RGBA{0x00, 0x72, 0xB2, 0xff}, // blue
	color.RGBA{0xD5, 0x5E, 0x00, 0xff}, // vermillion
	color.RGBA{0x00, 0x9E, 0x73, 0xff}, // bluish green
	color.RGBA{0xCC, 0x79, 0xA7, 0xff}, // reddish purple
	color.RGBA{0xE6, 0x9F, 0x00, 0xff}, // orange
	color.RGBA{0x56, 0xB4, 0xE9, 0xff}, // sky blue
	color.RGBA{0x00, 0x00, 0x00, 0xff}, // black
	color.RGBA{0xF0, 0xE4, 0x42, 0xff}, // yellow
}

func runColor(i int) color.Color { return palette[i%len(palette)] }

var (
	sansFont   = font.Font{Typeface: "Liberation", Variant: "Sans"}
	dashed     = []vg.Length{vg.Points(5), vg.Points(3)}
	dotted     = []vg.Length{vg.Points(1.5), vg.Points(2)}
	faultColor = color.RGBA{0x80, 0x80, 0x80, 0xff}
)

// newPlot returns a plot with sans-serif text, a grid and the legend at the
// top left (curves of latency and load rise to the right).
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sansFont, 13)
	p.Title.Padding = vg.Points(6)
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = font.From(sansFont, 11)
		ax.Tick.Label.Font = font.From(sansFont, 9)
	}
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.X.Tick.Marker = uniformTicks{}
	p.Y.Tick.Marker = uniformTicks{}
	p.Legend.TextStyle.Font = font.From(sansFont, 9)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(6)
	p.Legend.YOffs = -vg.Points(4)
	p.Legend.ThumbnailWidth = vg.Points(22)
	p.Legend.Padding = vg.Points(1.5)
	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{0xdd}
	grid.Horizontal.Color = color.Gray{0xdd}
	p.Add(grid)
	return p
}

// uniformTicks are gonum's default ticks with every label of an axis
// printed with the same number of decimals ("0.0 2.5 5.0", not "0 2.5 5").
type uniformTicks struct{}

// Ticks implements plot.Ticker.
func (uniformTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	dec := 0
	for _, t := range ts {
		if t.Label != "" {
			dec = max(dec, decimals(t.Value))
		}
	}
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', dec, 64)
		}
	}
	return ts
}

// decimals is the fewest decimals that print v exactly (at most 6).
func decimals(v float64) int {
	for d := 0; d < 6; d++ {
		x := v * math.Pow10(d)
		if math.Abs(x-math.Round(x)) < 1e-6*math.Max(1, math.Abs(x)) {
			return d
		}
	}
	return 6
}

// render draws c as "svg" or "png".
func render(c chart, format string) ([]byte, error) {
	wt, err := c.p.WriterTo(chartWidth, chartHeight, format)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var xmlProlog = regexp.MustCompile(`^\s*<\?xml[^>]*\?>\s*(<!--[^>]*-->\s*)?`)

// inlineSVG strips the XML prolog so the SVG can sit inside HTML.
func inlineSVG(svg []byte) template.HTML {
	// The SVG is produced by gonum/plot from our own labels, which the
	// SVG writer escapes; it is trusted markup.
	return template.HTML(xmlProlog.ReplaceAll(svg, nil)) //nolint:gosec // generated, escaped by the SVG writer
}

// line adds a polyline in colour col, solid or with a dash pattern, and a
// legend entry when legend is not "", and counts it among the chart's
// curves.
func (ch *chart) line(xys plotter.XYs, col color.Color, dash []vg.Length, legend string) error {
	if len(xys) == 0 {
		return nil
	}
	ch.curves++
	p, c := ch.p, col
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.Color = c
	l.Width = vg.Points(1.6)
	l.Dashes = dash
	p.Add(l)
	if legend != "" {
		p.Legend.Add(legend, l)
	}
	return nil
}

// buildCharts makes every chart of the report, in reading order: latency
// over time beside throughput; one percentile chart per family (page-state,
// operations, whole pages), every kind overlaid; lock waits when a run
// waited; errors when a run had any.
func buildCharts(ctx context.Context, ins []Input) ([]chart, error) {
	var out []chart
	add := func(c chart, err error) error {
		if err != nil {
			return fmt.Errorf("chart %s: %w", c.name, err)
		}
		out = append(out, c)
		return ctx.Err()
	}
	makers := []func([]Input) (chart, error){latencyOverTime, throughputOverTime}
	for _, f := range families {
		if len(scopeNames(ins, f.kind)) > 0 {
			makers = append(makers, func(ins []Input) (chart, error) { return familyChart(ins, f) })
		}
	}
	var waited, locked, errs bool
	for _, in := range ins {
		waited = waited || in.Run.Locks.Waited > 0
		for _, iv := range in.Run.Intervals {
			locked = locked || iv.LockWaits > 0
			errs = errs || iv.Errors > 0
		}
	}
	if waited {
		makers = append(makers, lockWaitChart)
	}
	if locked {
		makers = append(makers, lockWaitsOverTime)
	}
	if errs {
		makers = append(makers, errorsOverTime)
	}
	for _, f := range makers {
		if err := add(f(ins)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// family is a set of latencies drawn in one percentile chart.
type family struct {
	kind, title, caption string
}

// families are the percentile charts, in reading order.
var families = []family{
	{"page-state", "Page-state latency by percentile (the state server's share of each page)",
		"Per page type: the page's time in state-server calls and lock waits, its emulated execution time left out; " +
			"corrected (from the intended start). The x axis is 1/(1-q): each grid decade is one more nine."},
	{"op", "Operation latency by percentile",
		"Per protocol operation, corrected (its own latency plus its page's start delay)."},
	{"page", "Whole-page latency by percentile (emulated execution time included)",
		"Per page type, from the intended start to the end of the page, the scenario's own execution time included: " +
			"it judges the scenario as much as the server."},
}

// runDashes tell runs apart where colour tells kinds apart.
var runDashes = [][]vg.Length{nil, dashed, dotted}

// familyChart draws the corrected percentile curve of every kind of a
// family, a colour per kind and, for several runs, a dash pattern per run.
func familyChart(ins []Input, f family) (chart, error) {
	c := chart{name: "latency-" + f.kind, title: f.title, caption: f.caption}
	c.p = newPlot(c.title, "percentile", "latency (ms)")
	if len(ins) > 1 {
		c.caption += " Runs: " + runDashText(ins) + "."
	}
	xmax, ymax := 1.0, 0.0
	for k, name := range scopeNames(ins, f.kind) {
		for i, in := range ins {
			s := stats(in.Run, f.kind, name)
			if s == nil {
				continue
			}
			h, err := s.Corrected.Decode()
			if err != nil {
				return c, fmt.Errorf("%s %s %s: %w", in.Label, f.kind, name, err)
			}
			xys := percentileCurve(h)
			if len(xys) == 0 {
				continue
			}
			xmax = math.Max(xmax, xys[len(xys)-1].X)
			ymax = math.Max(ymax, xys[len(xys)-1].Y)
			legend := name
			if len(ins) > 1 {
				legend += " · " + in.Label
			}
			if err := c.line(xys, runColor(k), runDashes[i%len(runDashes)], legend); err != nil {
				return c, err
			}
		}
	}
	percentileAxis(c.p, xmax, ymax)
	return c, nil
}

// runDashText says which dash pattern is which run.
func runDashText(ins []Input) string {
	names := []string{"solid", "dashed", "dotted"}
	var parts []string
	for i, in := range ins {
		parts = append(parts, names[i%len(names)]+" "+in.Label)
	}
	return strings.Join(parts, ", ")
}

// pageOrder is the reading order of page kinds; others follow sorted.
var pageOrder = []string{
	string(scenarios.PageModify), string(scenarios.PageReadUnchanged), string(scenarios.PageReadOnly),
	string(scenarios.PageSessionless), string(scenarios.PageAbandon),
}

// scopeNames returns the page kinds ("page") or operations ("op") any run
// recorded, pages in pageOrder, operations sorted.
func scopeNames(ins []Input, kind string) []string {
	set := map[string]bool{}
	for _, in := range ins {
		for k, s := range statsOf(in.Run, kind) {
			if s != nil && s.Count > 0 {
				set[k] = true
			}
		}
	}
	names := make([]string, 0, len(set))
	for k := range set {
		names = append(names, k)
	}
	rank := func(s string) int {
		if kind != "op" {
			if i := slices.Index(pageOrder, s); i >= 0 {
				return i
			}
		}
		return len(pageOrder)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b))
	})
	return names
}

func stats(r *results.Run, kind, name string) *results.Stats { return statsOf(r, kind)[name] }

// statsOf returns the run's statistics of a family: "page", "page-state"
// or "op".
func statsOf(r *results.Run, kind string) map[string]*results.Stats {
	switch kind {
	case "page":
		return r.Pages
	case "page-state":
		return r.PageState
	}
	return r.Ops
}

// maxPercentileX caps the percentile axis at 99.9999% (1/(1-q) = 1e6).
const maxPercentileX = 1e6

// percentileCurve samples h along the HdrHistogram percentile axis: x is
// 1/(1-q), from 1 (q = 0) to the sample count (the last sample), in ms.
// The last point is the maximum.
func percentileCurve(h *hdrhistogram.Histogram) plotter.XYs {
	n := h.TotalCount()
	if n == 0 {
		return nil
	}
	xmax := math.Min(math.Max(float64(n), 2), maxPercentileX)
	const steps = 240
	xys := make(plotter.XYs, 0, steps+1)
	for i := 0; i <= steps; i++ {
		x := math.Pow(xmax, float64(i)/steps)
		q := 100 * (1 - 1/x)
		v := h.ValueAtQuantile(q)
		if i == steps {
			v = h.Max()
		}
		xys = append(xys, plotter.XY{X: x, Y: ms(v)})
	}
	return xys
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// percentileLabel names 10^k on the percentile axis: 0%, 90%, 99%, 99.9%…
func percentileLabel(k int) string {
	switch k {
	case 0:
		return "0%"
	case 1:
		return "90%"
	case 2:
		return "99%"
	}
	return "99." + strings.Repeat("9", k-2) + "%"
}

// percentileAxis sets x to the log percentile axis up to the decade that
// holds xmax (at least 99.9%), and y from 0 with head room above ymax so
// that no curve runs along the top border.
func percentileAxis(p *plot.Plot, xmax, ymax float64) {
	decades := max(3, int(math.Ceil(math.Log10(math.Max(xmax, 1))-1e-9)))
	var ticks []plot.Tick
	for k := 0; k <= decades; k++ {
		d := math.Pow(10, float64(k))
		ticks = append(ticks, plot.Tick{Value: d, Label: percentileLabel(k)})
		if k < decades {
			for m := 2; m < 10; m++ {
				ticks = append(ticks, plot.Tick{Value: float64(m) * d})
			}
		}
	}
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min = 1
	p.X.Max = math.Pow(10, float64(decades))
	p.Y.Min = 0
	p.Y.Max = math.Max(ymax*headRoom, 1e-3)
}

// headRoom is the share of an axis above the highest value: the legend
// sits there, and no curve runs along the border.
const headRoom = 1.3

// lockWaitChart draws the distribution of the time pages waited for a lock
// (per acquire that waited), on the percentile axis; only drawn when a run
// waited.
func lockWaitChart(ins []Input) (chart, error) {
	c := chart{
		name:  "lock-wait",
		title: "Lock wait by percentile (acquires that waited)",
		caption: "Time a writable page spent polling a locked session before it got the lock, " +
			"for the acquires that saw at least one 423 (the client polls every 500 ms).",
	}
	c.p = newPlot(c.title, "percentile", "lock wait (ms)")
	xmax, ymax := 1.0, 0.0
	for i, in := range ins {
		h, err := in.Run.Locks.Wait.Decode()
		if err != nil {
			return c, fmt.Errorf("%s lock wait: %w", in.Label, err)
		}
		xys := percentileCurve(h)
		if len(xys) == 0 {
			continue
		}
		xmax = math.Max(xmax, xys[len(xys)-1].X)
		ymax = math.Max(ymax, xys[len(xys)-1].Y)
		legend := fmt.Sprintf("%s (%d waited)", in.Label, in.Run.Locks.Waited)
		if err := c.line(xys, runColor(i), nil, legend); err != nil {
			return c, err
		}
	}
	percentileAxis(c.p, xmax, ymax)
	return c, nil
}

// intervalSeconds returns the end of each interval and its length, in
// seconds from the run start, and whether it is a full interval: the last
// one (the drain, or an interrupted end) is often a fraction of the others,
// and its rate or percentile would draw a false cliff or spike.
func intervalSeconds(r *results.Run) (ends, lengths []float64, full []bool) {
	prev := 0.0
	for _, iv := range r.Intervals {
		e := time.Duration(iv.Elapsed).Seconds()
		ends = append(ends, e)
		lengths = append(lengths, math.Max(e-prev, 1e-9))
		prev = e
	}
	typical := medianOf(lengths)
	for _, l := range lengths {
		full = append(full, l >= typical/2)
	}
	return ends, lengths, full
}

// medianOf returns the median of xs (0 when empty).
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// familySeries merges the corrected interval histograms of every tag with
// prefix ("page-state.", "op.") and returns, per quantile, the series of
// its values at the interval ends (seconds from the start, ms), partial
// intervals left out.
func familySeries(r *results.Run, prefix string, quantiles ...float64) ([]plotter.XYs, error) {
	type key struct{ start, end time.Time }
	merged := map[key]*hdrhistogram.Histogram{}
	var keys []key
	for _, e := range r.Logs {
		if !e.Corrected || !strings.HasPrefix(e.Tag, prefix) {
			continue
		}
		h, err := e.Decode()
		if err != nil {
			return nil, fmt.Errorf("log %s at %s: %w", e.Tag, e.Start.Format(time.RFC3339), err)
		}
		k := key{e.Start, e.End}
		if m := merged[k]; m != nil {
			m.Merge(h)
		} else {
			merged[k] = h
			keys = append(keys, k)
		}
	}
	out := make([]plotter.XYs, len(quantiles))
	if len(keys) == 0 {
		return out, nil
	}
	slices.SortFunc(keys, func(a, b key) int { return a.end.Compare(b.end) })
	// The first interval begins at the run start. Anchor on it rather than
	// on r.Start: the .hlog StartTime header holds whole seconds, so log
	// times read back from a result directory lose the start's fraction of
	// a second.
	origin := keys[0].start
	var lengths []float64
	for _, k := range keys {
		if k.start.Before(origin) {
			origin = k.start
		}
		lengths = append(lengths, k.end.Sub(k.start).Seconds())
	}
	typical := medianOf(lengths)
	for i, k := range keys {
		h := merged[k]
		if h.TotalCount() == 0 || lengths[i] < typical/2 {
			continue
		}
		for j, q := range quantiles {
			out[j] = append(out[j], plotter.XY{X: k.end.Sub(origin).Seconds(), Y: ms(h.ValueAtQuantile(q))})
		}
	}
	return out, nil
}

// latencyOverTime draws, per interval, the p99 (solid) and p50 (dashed) of
// the pages' state time and of the protocol operations, corrected. Results
// recorded before page-state fall back to whole pages.
func latencyOverTime(ins []Input) (chart, error) {
	c := chart{
		name:  "latency-over-time",
		title: "Latency over time: page-state and operations",
		caption: "Per interval, corrected: p99 solid, p50 dashed; page-state is the pages' time in state-server calls " +
			"and lock waits (their execution time left out), op every protocol call. The last, partial interval is left out. " +
			"Grey dotted lines mark the scenario's faults.",
	}
	c.p = newPlot(c.title, "time since start (s)", "latency (ms)")
	ymax, xmax := 0.0, 0.0
	for i, in := range ins {
		fams := []string{"page-state.", "op."}
		if len(in.Run.PageState) == 0 {
			fams[0] = "page."
		}
		for f, prefix := range fams {
			series, err := familySeries(in.Run, prefix, 99, 50)
			if err != nil {
				return c, fmt.Errorf("%s: %w", in.Label, err)
			}
			col := runColor(f)
			name := strings.TrimSuffix(prefix, ".")
			if len(ins) > 1 {
				col, name = runColor(i), in.Label+" "+name
				if f == 1 {
					name += " (dotted)"
				}
			}
			for j, xys := range series {
				for _, xy := range xys {
					ymax, xmax = math.Max(ymax, xy.Y), math.Max(xmax, xy.X)
				}
				dash := []vg.Length(nil)
				if j == 1 {
					dash = dashed
				}
				if len(ins) > 1 && f == 1 {
					dash = dotted
				}
				if err := c.line(xys, col, dash, name+[]string{" p99", " p50"}[j]); err != nil {
					return c, err
				}
			}
		}
	}
	timeAxes(c.p, xmax, ymax)
	return c, faultMarkers(c.p, ins, ymax)
}

// throughputOverTime draws achieved pages/s per full interval (solid) and
// the intended rate of the schedule (dashed), when the run had one.
func throughputOverTime(ins []Input) (chart, error) {
	c := chart{
		name:  "throughput",
		title: "Throughput: intended and achieved",
		caption: "Solid: pages completed per second in each interval (the last, partial interval left out). Dashed: the rate " +
			"the schedule intended; not drawn for population and closed-loop runs, which have no fixed schedule.",
	}
	c.p = newPlot(c.title, "time since start (s)", "pages per second")
	ymax, xmax := 0.0, 0.0
	for i, in := range ins {
		ends, _, full := intervalSeconds(in.Run)
		var got plotter.XYs
		for j, iv := range in.Run.Intervals {
			if !full[j] {
				continue
			}
			got = append(got, plotter.XY{X: ends[j], Y: iv.Throughput})
			ymax = math.Max(ymax, iv.Throughput)
		}
		if len(ends) > 0 {
			xmax = math.Max(xmax, ends[len(ends)-1])
		}
		legend := in.Label + " achieved"
		if in.Run.Config.Mode == results.ModeClosedLoop {
			legend = in.Label + " saturation"
		}
		if err := c.line(got, runColor(i), nil, legend); err != nil {
			return c, err
		}
		want := intendedSeries(in.Run)
		for _, xy := range want {
			ymax = math.Max(ymax, xy.Y)
		}
		if err := c.line(want, runColor(i), dashed, in.Label+" intended"); err != nil {
			return c, err
		}
	}
	timeAxes(c.p, xmax, ymax)
	return c, faultMarkers(c.p, ins, ymax)
}

// intendedSeries is the schedule's rate over the planned duration: the
// scenario's rate shape scaled so its mean equals Rate.Intended (which counts
// every scheduled slot, burst requests included). Nil without a schedule.
func intendedSeries(r *results.Run) plotter.XYs {
	if r.Config.Mode != results.ModeOpen || r.Rate.Intended <= 0 {
		return nil
	}
	d := time.Duration(r.Config.Duration)
	if d <= 0 {
		return nil
	}
	const steps = 200
	xs := make([]float64, 0, steps+1)
	ys := make([]float64, 0, steps+1)
	sc := r.Config.Scenario
	sum := 0.0
	for i := 0; i <= steps; i++ {
		t := d * time.Duration(i) / steps
		y := 1.0
		if sc != nil {
			y = sc.PagesPerSecondAt(t)
		}
		xs = append(xs, t.Seconds())
		ys = append(ys, y)
		sum += y
	}
	scale := 1.0
	if mean := sum / float64(len(ys)); mean > 0 {
		scale = r.Rate.Intended / mean
	}
	xys := make(plotter.XYs, len(xs))
	for i := range xs {
		xys[i] = plotter.XY{X: xs[i], Y: ys[i] * scale}
	}
	return xys
}

// perSecondSeries draws a per-interval count as a rate.
func perSecondSeries(ins []Input, c chart, count func(results.Interval) int64) (chart, error) {
	ymax, xmax := 0.0, 0.0
	for i, in := range ins {
		ends, lengths, full := intervalSeconds(in.Run)
		var xys plotter.XYs
		for j, iv := range in.Run.Intervals {
			if !full[j] {
				continue
			}
			y := float64(count(iv)) / lengths[j]
			xys = append(xys, plotter.XY{X: ends[j], Y: y})
			ymax = math.Max(ymax, y)
		}
		if len(ends) > 0 {
			xmax = math.Max(xmax, ends[len(ends)-1])
		}
		if err := c.line(xys, runColor(i), nil, in.Label); err != nil {
			return c, err
		}
	}
	timeAxes(c.p, xmax, math.Max(ymax, 1))
	return c, faultMarkers(c.p, ins, ymax)
}

func errorsOverTime(ins []Input) (chart, error) {
	c := chart{
		name:    "errors",
		title:   "Errors over time",
		caption: "Failed pages and operations per second in each interval (timeouts, refused or reset connections, protocol errors).",
	}
	c.p = newPlot(c.title, "time since start (s)", "errors per second")
	return perSecondSeries(ins, c, func(iv results.Interval) int64 { return iv.Errors })
}

func lockWaitsOverTime(ins []Input) (chart, error) {
	c := chart{
		name:    "lock-waits-over-time",
		title:   "Locked (423) replies over time",
		caption: "423 replies received per second in each interval: how often pages found their session locked.",
	}
	c.p = newPlot(c.title, "time since start (s)", "423 replies per second")
	return perSecondSeries(ins, c, func(iv results.Interval) int64 { return iv.LockWaits })
}

// timeAxes fixes both axes to start at 0 and leaves head room for labels.
func timeAxes(p *plot.Plot, xmax, ymax float64) {
	p.X.Min = 0
	p.X.Max = math.Max(xmax*1.03, 1) // the last point off the right border
	p.Y.Min = 0
	p.Y.Max = math.Max(ymax*headRoom, 1e-3)
}

// faultMarkers draws a grey dotted vertical line at each fault of each
// run's scenario (once per distinct time and kind), labelled with the kind.
func faultMarkers(p *plot.Plot, ins []Input, ymax float64) error {
	type mark struct {
		at   time.Duration
		text string
	}
	seen := map[mark]bool{}
	var marks []mark
	for _, in := range ins {
		sc := in.Run.Config.Scenario
		if sc == nil {
			continue
		}
		for _, f := range sc.SortedFaults() {
			m := mark{f.At.D(), faultText(f)}
			if !seen[m] {
				seen[m] = true
				marks = append(marks, m)
			}
		}
	}
	if len(marks) == 0 {
		return nil
	}
	top := math.Max(ymax, 1e-3) * (headRoom - 0.05)
	var labels plotter.XYLabels
	for i, m := range marks {
		x := m.at.Seconds()
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: top}})
		if err != nil {
			return err
		}
		l.Color = faultColor
		l.Width = vg.Points(1)
		l.Dashes = dotted
		p.Add(l)
		if i == 0 {
			p.Legend.Add("fault", l)
		}
		labels.XYs = append(labels.XYs, plotter.XY{X: x, Y: top})
		labels.Labels = append(labels.Labels, m.text)
	}
	lb, err := plotter.NewLabels(labels)
	if err != nil {
		return err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].Font = font.From(sansFont, 7)
		lb.TextStyle[i].Color = faultColor
		lb.TextStyle[i].Rotation = math.Pi / 2
		lb.TextStyle[i].XAlign = draw.XRight
		lb.TextStyle[i].YAlign = draw.YTop
	}
	p.Add(lb)
	return nil
}

func faultText(f scenarios.Fault) string {
	s := string(f.Kind)
	if f.Params.WebServer > 0 {
		s += fmt.Sprintf(" ws%d", f.Params.WebServer)
	}
	if f.Params.Partition > 0 {
		s += fmt.Sprintf(" p%d", f.Params.Partition)
	}
	if f.Duration > 0 {
		s += " " + f.Duration.D().String()
	}
	return s
}
