package capacity

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var (
	blue      = color.RGBA{0x00, 0x72, 0xB2, 0xff}
	vermilion = color.RGBA{0xD5, 0x5E, 0x00, 0xff}
	green     = color.RGBA{0x00, 0x9E, 0x73, 0xff}
	purple    = color.RGBA{0xCC, 0x79, 0xA7, 0xff}
	orange    = color.RGBA{0xE6, 0x9F, 0x00, 0xff}
	grey      = color.Gray{0x80}
	sans      = font.Font{Typeface: "Liberation", Variant: "Sans"}
	dashes    = []vg.Length{vg.Points(5), vg.Points(3)}
)

// Chart draws latency against throughput: p50, p99 and p99.9 (log scale) of
// every offered rate at the throughput it achieved, failed steps marked with
// a cross, the latency objectives on every page as dashed lines, and the
// answer and the knee as vertical lines. format is "png" or "svg".
func (p *Plan) Chart(format string) ([]byte, error) {
	pl := plot.New()
	pl.Title.Text = fmt.Sprintf("Page latency (corrected) vs throughput: %s", p.Scenario)
	pl.Title.TextStyle.Font = font.From(sans, 13)
	pl.X.Label.Text = "achieved throughput (pages/s)"
	pl.Y.Label.Text = "page latency (ms)"
	for _, ax := range []*plot.Axis{&pl.X, &pl.Y} {
		ax.Label.TextStyle.Font = font.From(sans, 11)
		ax.Tick.Label.Font = font.From(sans, 9)
	}
	pl.Legend.TextStyle.Font = font.From(sans, 9)
	pl.Legend.Top, pl.Legend.Left = true, true
	pl.Legend.XOffs = vg.Points(6)
	pl.Legend.YOffs = -vg.Points(4)
	pl.Legend.ThumbnailWidth = vg.Points(22)
	grid := plotter.NewGrid()
	grid.Vertical.Color, grid.Horizontal.Color = color.Gray{0xdd}, color.Gray{0xdd}
	pl.Add(grid)
	pl.Y.Scale = plot.LogScale{}
	pl.Y.Tick.Marker = plot.LogTicks{Prec: -1}

	curve := Curve(p.Outcome.Steps)
	ymin, ymax, xmax := math.Inf(1), 0.0, 0.0
	for _, q := range []struct {
		name string
		c    color.Color
		get  func(StepResult) float64
	}{
		{"p50", green, func(s StepResult) float64 { return float64(s.P50) / 1e6 }},
		{"p99", blue, func(s StepResult) float64 { return float64(s.P99) / 1e6 }},
		{"p99.9", purple, func(s StepResult) float64 { return float64(s.P999) / 1e6 }},
		{"page-state p99", orange, func(s StepResult) float64 { return float64(s.StateP99) / 1e6 }},
	} {
		var pts, bad plotter.XYs
		for _, st := range curve {
			y := q.get(st)
			if y <= 0 || st.Achieved <= 0 {
				continue
			}
			pts = append(pts, plotter.XY{X: st.Achieved, Y: y})
			if !st.Pass {
				bad = append(bad, plotter.XY{X: st.Achieved, Y: y})
			}
			ymin, ymax, xmax = math.Min(ymin, y), math.Max(ymax, y), math.Max(xmax, st.Achieved)
		}
		if len(pts) == 0 {
			continue
		}
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		l.Color, s.Color = q.c, q.c
		l.Width = vg.Points(1.5)
		s.Shape = draw.CircleGlyph{}
		s.Radius = vg.Points(2.5)
		pl.Add(l, s)
		pl.Legend.Add(q.name, l, s)
		if len(bad) > 0 {
			x, err := plotter.NewScatter(bad)
			if err != nil {
				return nil, err
			}
			x.Color = vermilion
			x.Shape = draw.CrossGlyph{}
			x.Radius = vg.Points(5)
			pl.Add(x)
		}
	}
	if ymax == 0 {
		ymin, ymax = 0.1, 1
	}
	for i, s := range p.latencySLOs() {
		y := s.Limit / 1e6
		ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: y}, {X: math.Max(xmax, 1) * 1.05, Y: y}})
		if err != nil {
			return nil, err
		}
		l.Color, l.Dashes = vermilion, dashes
		if i > 0 {
			l.Color = grey
		}
		pl.Add(l)
		pl.Legend.Add("SLO "+s.Text, l)
	}
	vline := func(x float64, c color.Color, label string) error {
		if x <= 0 {
			return nil
		}
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: ymin / 1.5}, {X: x, Y: ymax * 4}})
		if err != nil {
			return err
		}
		l.Color, l.Dashes = c, []vg.Length{vg.Points(2), vg.Points(2)}
		pl.Add(l)
		pl.Legend.Add(label, l)
		return nil
	}
	if st, ok := p.Answer(); ok {
		if err := vline(st.Achieved, color.Black, fmt.Sprintf("max sustainable %.0f/s offered", st.Rate)); err != nil {
			return nil, err
		}
	}
	if p.Knee.Found {
		for _, st := range Curve(p.Outcome.Steps) {
			if st.Rate == p.Knee.Rate {
				if err := vline(st.Achieved, grey, fmt.Sprintf("knee %.0f/s offered", st.Rate)); err != nil {
					return nil, err
				}
			}
		}
	}
	// Whole decades (LogTicks runs from one power of ten to the next, and
	// ticks beyond the range would push the data area down), with room for
	// the legend above the curves.
	pl.Y.Min = math.Pow10(int(math.Floor(math.Log10(ymin / 1.5))))
	pl.Y.Max = math.Pow10(int(math.Ceil(math.Log10(ymax * 8))))
	pl.X.Min = 0
	pl.X.Max = math.Max(xmax, 1) * 1.05
	wt, err := pl.WriterTo(8*vg.Inch, 4.5*vg.Inch, format)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
