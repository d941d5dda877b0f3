package report

import (
	"context"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/results/resultstest"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// A real run of a scenario with a fault timeline and lock contention
// (AJAX bursts), made once for the package's tests.
var real struct {
	once sync.Once
	run  *results.Run
	err  error
}

const faultyScenario = `
name: report-test
description: short run with lock contention and faults for the report tests
duration: 2s
farm: {web_servers: 2}
users:
  pages_per_session: {dist: constant, value: 6}
  think_time: {dist: constant, value: 50ms}
pages:
  mix: {modify: 3, read-unchanged: 2, read-only: 1, sessionless: 1}
  exec_time: {dist: constant, value: 2ms}
  burst: {probability: 0.3}
rate: {shape: ramp, from: 20, to: 60, over: 2s}
faults:
  - {at: 700ms, kind: recycle, params: {web_server: 1}}
  - {at: 1400ms, kind: reset-connections}
`

func realRun(t *testing.T) *results.Run {
	t.Helper()
	if testing.Short() {
		t.Skip("runs real load for two seconds")
	}
	real.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sc, err := scenarios.Parse([]byte(faultyScenario), "report-test.yaml")
		if err != nil {
			real.err = err
			return
		}
		tg, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{})
		if err != nil {
			real.err = err
			return
		}
		defer tg.Close()
		real.run, real.err = loadgen.Run(ctx, loadgen.Config{Scenario: sc, Targets: []target.Target{tg},
			Interval: 200 * time.Millisecond, Drain: 5 * time.Second})
	})
	if real.err != nil {
		t.Fatal(real.err)
	}
	return real.run
}

// synthetic is a small run built in memory: three one-second intervals of
// 50 modify pages and 50 SETs, latencies around center.
func synthetic(t *testing.T, center time.Duration) *results.Run {
	t.Helper()
	r := resultstest.Run(resultstest.Spec{Seed: uint64(center), Intervals: 3,
		Pages: []resultstest.Kind{{Name: "modify", Latency: center, PerInterval: 50}},
		Ops:   []resultstest.Kind{{Name: "set", Latency: center, PerInterval: 50}}})
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	f, err := ParseFormat("html, PNG,md")
	if err != nil || f != (Format{HTML: true, PNG: true, Markdown: true}) {
		t.Errorf("all three: %+v, %v", f, err)
	}
	if f, err := ParseFormat("markdown"); err != nil || f != (Format{Markdown: true}) {
		t.Errorf("markdown: %+v, %v", f, err)
	}
	for _, bad := range []string{"", "pdf", "html,svg", " , "} {
		if _, err := ParseFormat(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestPercentileAxis(t *testing.T) {
	t.Parallel()
	for k, want := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"} {
		if got := percentileLabel(k); got != want {
			t.Errorf("10^%d: %q, want %q", k, got, want)
		}
	}
	h := results.NewHistogram()
	for v := int64(1); v <= 1000; v++ {
		_ = h.RecordValue(v * 1000) // 1µs … 1ms
	}
	xys := percentileCurve(h)
	first, last := xys[0], xys[len(xys)-1]
	if first.X != 1 || last.X != 1000 {
		t.Errorf("x runs from %v to %v; want 1 (0%%) to 1000 (the last of 1000 samples)", first.X, last.X)
	}
	if first.Y > 0.0011 || last.Y < 0.999 || last.Y > 1.001 {
		t.Errorf("y runs from %vms to %vms; want about 0.001ms to the max 1ms", first.Y, last.Y)
	}
	for i := 1; i < len(xys); i++ {
		if xys[i].Y < xys[i-1].Y || xys[i].X <= xys[i-1].X {
			t.Fatalf("curve not monotonic at %d: %v then %v", i, xys[i-1], xys[i])
		}
	}
	// Half-way along the log axis (x = sqrt(1000) ≈ 31.6, q = 96.8%) sits p96.8.
	mid := xys[len(xys)/2]
	if mid.Y < 0.96 || mid.Y > 0.975 {
		t.Errorf("x=%.1f: %vms, want about 0.968ms", mid.X, mid.Y)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	badJSON := filepath.Join(dir, "bad")
	if err := os.MkdirAll(badJSON, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(badJSON, results.ResultFile), []byte("{nope"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load([]string{filepath.Join(dir, "missing"), notDir, badJSON})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"missing", "is not a directory", "bad/result.json", "not a result file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := Load(nil); err == nil {
		t.Error("no directories: want an error")
	}
}

func TestLabelsAreUnique(t *testing.T) {
	t.Parallel()
	ins := []Input{{Dir: "/a/run"}, {Dir: "/b/run"}, {}, {Label: "mine"}}
	Label(ins)
	got := []string{ins[0].Label, ins[1].Label, ins[2].Label, ins[3].Label}
	want := []string{"run", "run#2", "run 3", "mine"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("labels %v, want %v", got, want)
			break
		}
	}
}

func TestWriteSyntheticOverlay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "fast"), filepath.Join(dir, "slow")
	if err := results.Write(a, synthetic(t, time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := results.Write(b, synthetic(t, 3*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	ins, err := Load([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	// Read back, the interval p50s sit at the interval ends (1s, 2s, 3s).
	series, err := familySeries(ins[0].Run, "page.", 50)
	if err != nil {
		t.Fatal(err)
	}
	if p50 := series[0]; len(p50) != 3 || p50[0].X != 1 || p50[2].X != 3 {
		t.Errorf("p50 series x: %v, want 1, 2, 3", p50)
	}
	out := filepath.Join(dir, "report")
	files, err := Write(context.Background(), out, ins, Format{HTML: true, PNG: true, Markdown: true})
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(files.HTML)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	// Self-contained: inline SVG, nothing fetched from elsewhere.
	if n := strings.Count(html, "<svg"); n != len(files.PNGs) {
		t.Errorf("%d inline SVGs, want one per chart (%d)", n, len(files.PNGs))
	}
	if m := regexp.MustCompile(`(src|href)="(https?:)?//`).FindString(html); m != "" {
		t.Errorf("report links outside itself: %s", m)
	}
	for _, want := range []string{"fast", "slow", "Whole-page latency by percentile", "Operation latency by percentile",
		"99.9%", "Throughput: intended and achieved", "#0072b2", "#d55e00", "PASS — 50 of 50 pages/s"} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	md, err := os.ReadFile(files.Markdown)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| modify | fast | 150 | 0 |") || !strings.Contains(string(md), "](latency-page.png)") {
		t.Errorf("report.md lacks the latency row or the chart link:\n%s", md)
	}
	// No lock waits and no errors: no chart of them.
	wantPNGs := []string{"latency-over-time", "throughput", "latency-op", "latency-page"}
	if len(files.PNGs) != len(wantPNGs) {
		t.Errorf("PNGs %v, want %v", files.PNGs, wantPNGs)
	}
	for _, name := range wantPNGs {
		f, err := os.Open(filepath.Join(out, name+".png"))
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s.png: %v", name, err)
			continue
		}
		if b := img.Bounds(); b.Dx() < 600 || b.Dy() < 300 {
			t.Errorf("%s.png is %dx%d", name, b.Dx(), b.Dy())
		}
	}
}

func TestWriteRealRunWithFaults(t *testing.T) {
	run := realRun(t)
	if run.Locks.Waited == 0 {
		t.Logf("note: no lock waits in this run (%+v)", run.Locks)
	}
	dir := t.TempDir()
	ins := []Input{{Label: "real", Run: run}}
	files, err := Write(context.Background(), dir, ins, Format{HTML: true, Markdown: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(files.PNGs) != 0 {
		t.Errorf("PNG not asked for, got %v", files.PNGs)
	}
	page, err := os.ReadFile(files.HTML)
	if err != nil {
		t.Fatal(err)
	}
	// The fault markers are labelled in the time charts, and the faults table lists them.
	for _, want := range []string{"recycle ws1", "reset-connections", "<td>700ms</td>", "Latency over time: page-state and operations"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	// The ramp's intended line reaches the schedule's mean.
	want := intendedSeries(run)
	if len(want) == 0 || want[0].Y >= want[len(want)-1].Y {
		t.Errorf("intended rate of a 20→60 ramp should rise: %v … %v", want[0], want[len(want)-1])
	}
}

func TestWriteHonoursCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ins := []Input{{Label: "a", Run: synthetic(t, time.Millisecond)}}
	if _, err := Write(ctx, t.TempDir(), ins, Format{PNG: true}); err == nil {
		t.Error("cancelled context: want an error")
	}
	if _, err := Write(context.Background(), t.TempDir(), nil, Format{PNG: true}); err == nil {
		t.Error("no runs: want an error")
	}
}
