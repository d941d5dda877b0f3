package capacity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/results/compare"
	"github.com/aspstate/aspstate/scenarios"
)

// ReplayStep is one step of a plan over recorded traffic (LoadRunner.Replay):
// the farm the step runs on, the page rate it offers over its measured
// window (pages/s; what the achieved rate is judged against), and what
// makes the step's config a replay (page source, seeds, options).
type ReplayStep struct {
	Scenario *scenarios.Scenario
	Offered  func(from time.Duration) float64
	Apply    func(*loadgen.Config)
}

// stepScenario returns a step's scenario, the page rate it offers over the
// measured window and, for a replay, what makes its config one.
func (l *LoadRunner) stepScenario(rate float64) (*scenarios.Scenario, float64, func(*loadgen.Config), error) {
	if l.Replay == nil {
		sc, err := StepScenario(l.Scenario, rate, l.Warmup+l.Step)
		return sc, rate, nil, err
	}
	st, err := l.Replay(rate, l.Warmup+l.Step)
	if err != nil {
		return nil, 0, nil, err
	}
	return st.Scenario, st.Offered(l.Warmup), func(c *loadgen.Config) {
		c.Rate, c.SteadyStart = 0, false
		st.Apply(c)
	}, nil
}

// Traffic is the recorded traffic a plan searched multiples of (aspstate
// plan --trace).
type Traffic struct {
	// Files are the captures; Rate their mean page rate, pages/s (today's
	// traffic).
	Files []string `json:"files"`
	Rate  float64  `json:"pages_per_s"`
	// MaxTimes is the highest multiple tried.
	MaxTimes float64 `json:"max_times"`
}

// PlanSchema is the value of Plan.Schema.
const PlanSchema = "aspstate/plan/v1"

// Output file names in a plan directory.
const (
	PlanJSON     = "plan.json"
	PlanMarkdown = "plan.md"
	PlanText     = "plan.txt"
	ChartStem    = "latency-throughput" // .png and .svg
)

// Settings records how a plan was run.
type Settings struct {
	Step          time.Duration `json:"step_ns"`
	Warmup        time.Duration `json:"warmup_ns"`
	LateThreshold time.Duration `json:"late_threshold_ns"`
	MaxLate       float64       `json:"max_late"`
	MinAchieved   float64       `json:"min_achieved"`
	Start         float64       `json:"start_rate"`
	Factor        float64       `json:"factor"`
	Tolerance     float64       `json:"tolerance"`
	MaxSteps      int           `json:"max_steps"`
	MaxTime       time.Duration `json:"max_time_ns"`
	Seed          uint64        `json:"seed"`
	Workers       int           `json:"workers,omitempty"`
	Minute        time.Duration `json:"minute_ns,omitempty"`
	// SteadyStart: every step started from the steady state (sessions
	// seeded); false: from an empty store.
	SteadyStart bool `json:"steady_start"`
	// MaxRate is the highest rate tried, pages/s (0 in plans written
	// before it was recorded).
	MaxRate float64 `json:"max_rate,omitempty"`
	// OverheadBytes is the server's memory per stored session beyond its
	// body, used by the capacity sheet.
	OverheadBytes float64 `json:"overhead_bytes,omitempty"`
}

// startName says how steps started, for people.
func (s Settings) startName() string {
	if s.SteadyStart {
		return "steady start (the sessions of rate × think time seeded first)"
	}
	return "cold start (empty store)"
}

// Plan is a whole capacity plan: how it ran, every step, the answer, the
// knee and the capacity sheet.
type Plan struct {
	Schema   string          `json:"schema"`
	Scenario string          `json:"scenario"`
	Targets  []string        `json:"targets"`
	SLOs     []string        `json:"slos"`
	Settings Settings        `json:"settings"`
	Harness  results.Harness `json:"harness"`
	Started  time.Time       `json:"started"`
	// Outcome is the search: steps, answer, why it stopped.
	Outcome *Outcome `json:"outcome"`
	// Knee is where p99 starts to climb.
	Knee Knee `json:"knee"`
	// Saturation is the most pages per second any step completed.
	Saturation Saturation `json:"saturation"`
	// Sheet is the capacity sheet at the answer (nil when no rate passed).
	Sheet *Sheet `json:"sheet,omitempty"`
	// Dir is where the plan was written.
	Dir string `json:"dir,omitempty"`
	// Traffic is set when the plan searched multiples of recorded traffic
	// (plan --trace): Outcome's rates are then multiples of it.
	Traffic *Traffic `json:"traffic,omitempty"`
}

// maxRate is the answer in pages/s (0 when none).
func (p *Plan) maxRate() float64 {
	if p.Traffic == nil {
		return p.Outcome.Max
	}
	at, _ := p.Answer()
	return at.Rate
}

// Answer returns the step that established the answer, if any.
func (p *Plan) Answer() (StepResult, bool) {
	if p.Outcome == nil || p.Outcome.MaxStep < 0 || p.Outcome.MaxStep >= len(p.Outcome.Steps) {
		return StepResult{}, false
	}
	return p.Outcome.Steps[p.Outcome.MaxStep], true
}

// Headline is the one-line answer.
func (p *Plan) Headline() string {
	o := p.Outcome
	if p.Traffic != nil && o != nil && o.Max > 0 {
		head := fmt.Sprintf("carries %s today's traffic = %.0f pages/s within objectives", times(o.Max), p.maxRate())
		if o.Upper == 0 {
			return fmt.Sprintf("%s (nothing failed up to there; stopped: %s)", head, o.Stopped)
		}
		return fmt.Sprintf("%s (the next multiple tried, %s, failed; stopped: %s)", head, times(o.Upper), o.Stopped)
	}
	switch {
	case o == nil:
		return "no search ran"
	case o.Max == 0:
		return fmt.Sprintf("no rate met the objectives (lowest tried failed; stopped: %s)", o.Stopped)
	case o.Upper == 0:
		return fmt.Sprintf("maximum sustainable rate: at least %.0f pages/s (nothing failed up to there; stopped: %s)", o.Max, o.Stopped)
	}
	return fmt.Sprintf("maximum sustainable rate: %.0f pages/s (the next rate tried, %.0f pages/s, failed; stopped: %s)", o.Max, o.Upper, o.Stopped)
}

// times writes a multiple of today's traffic.
func times(m float64) string { return strconv.FormatFloat(m, 'g', 4, 64) + " ×" }

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

func mib(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", b/(1<<10))
}

func verdict(st StepResult) string {
	if st.Pass {
		return "pass"
	}
	if st.GeneratorLimited {
		return "FAIL (generator)"
	}
	return "FAIL"
}

// Text writes the plan for a terminal.
func (p *Plan) Text(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "plan: %s against %s; objectives: %s\n", p.what(), strings.Join(p.Targets, ", "), strings.Join(p.SLOs, "; "))
	fmt.Fprintf(b, "steps: %s measured after a %s warm-up from a %s, late threshold %s; ramp from %s ×%g, bisection to %.0f%%; budget %s or %d steps\n\n",
		p.Settings.Step, p.Settings.Warmup, p.startName(), p.Settings.LateThreshold, p.startRate(), p.Settings.Factor, p.Settings.Tolerance*100, p.Settings.MaxTime, p.Settings.MaxSteps)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\tphase\t"+p.timesHead("\t")+"offered/s\tachieved/s\tpage-state p99 ms\tpage p50 ms\tpage p99 ms\tpage p99.9 ms\terrors\tlate\tverdict\t")
	for _, st := range p.Outcome.Steps {
		fmt.Fprintf(tw, "%d\t%s\t%s%.0f\t%.0f\t%s\t%s\t%s\t%s\t%.3f%%\t%.2f%%\t%s\t\n", st.Index+1, st.Phase, p.timesCell(st, "\t"), st.Rate, st.Achieved,
			ms(st.StateP99), ms(st.P50), ms(st.P99), ms(st.P999), st.ErrorRate*100, st.LateFraction*100, verdict(st))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, st := range p.Outcome.Steps {
		for _, r := range st.Reasons {
			fmt.Fprintf(b, "  step %d (%.0f/s): %s\n", st.Index+1, st.Rate, r)
		}
	}
	fmt.Fprintf(b, "\n%s\n", p.Headline())
	if p.Knee.Found {
		fmt.Fprintf(b, "knee: %.0f pages/s (p99 %s ms); p99 climbs steeply past it\n", p.Knee.Rate, ms(p.Knee.P99))
	} else {
		fmt.Fprintf(b, "knee: none found: %s\n", p.Knee.Note)
	}
	fmt.Fprintf(b, "saturation: %s\n", p.Saturation.Describe(p.maxRate()))
	fmt.Fprintf(b, "search: %d steps in %s\n", len(p.Outcome.Steps), p.Outcome.Elapsed.Round(time.Second))
	if s := p.Sheet; s != nil {
		b.WriteString("\ncapacity sheet at " + p.sheetAt() + ":\n")
		for _, row := range s.rows() {
			fmt.Fprintf(b, "  %-34s %s\n", row[0], row[1])
		}
		b.WriteString("assumptions:\n")
		for _, a := range s.Assumptions {
			fmt.Fprintf(b, "  - %s\n", a)
		}
	}
	if p.Dir != "" {
		fmt.Fprintf(b, "\nplan: %s (plan.json, plan.md, %s.png/.svg, steps/)\n", p.Dir, ChartStem)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// what names what the plan loaded the target with.
func (p *Plan) what() string {
	if p.Traffic != nil {
		return fmt.Sprintf("the traffic of %s (today: %.1f pages/s)", strings.Join(p.Traffic.Files, ", "), p.Traffic.Rate)
	}
	return "scenario " + p.Scenario
}

// startName says how steps started.
func (p *Plan) startName() string {
	if p.Traffic != nil {
		return "replay (the sessions that existed before the capture seeded)"
	}
	return p.Settings.startName()
}

// startRate is the first rate of the ramp.
func (p *Plan) startRate() string {
	if p.Traffic != nil {
		return times(p.Settings.Start) + " today's traffic"
	}
	return fmt.Sprintf("%.0f pages/s", p.Settings.Start)
}

// timesHead is the step table's column of multiples of today's traffic
// (none unless the plan replayed traffic), ending in sep.
func (p *Plan) timesHead(sep string) string {
	if p.Traffic == nil {
		return ""
	}
	return "× today" + sep
}

func (p *Plan) timesCell(st StepResult, sep string) string {
	if p.Traffic == nil {
		return ""
	}
	return strconv.FormatFloat(st.Times, 'g', 4, 64) + sep
}

// sheetAt says what rate the capacity sheet is for.
func (p *Plan) sheetAt() string {
	if p.Traffic != nil && p.Outcome.Max > 0 {
		return fmt.Sprintf("%s today's traffic = %.0f pages/s", times(p.Outcome.Max), p.Sheet.Rate)
	}
	return fmt.Sprintf("%.0f pages/s", p.Sheet.Rate)
}

// rows are the sheet's figures as label/value pairs.
func (s *Sheet) rows() [][2]string {
	r := [][2]string{
		{"pages per second (farm)", fmt.Sprintf("%.0f", s.Rate)},
		{"pages per second per web server", fmt.Sprintf("%.0f (%s)", s.PagesPerWebServer, plural(s.WebServers, "web server"))},
		{"state-server requests per second", fmt.Sprintf("%.0f (%.2f per page, measured; %s)", s.RequestsPerSecond, s.RequestsPerPage, plural(s.Partitions, "partition"))},
		{"concurrent users", fmt.Sprintf("%.0f (think time %s)", s.ConcurrentUsers, s.ThinkTime.Round(time.Millisecond))},
		{"new sessions per second", fmt.Sprintf("%.1f (%.2f pages per session)", s.SessionsPerSecond, s.PagesPerSession)},
		{"sessions active (in use)", fmt.Sprintf("%.0f (life %s)", s.SessionsActive, s.SessionLife.Round(time.Second))},
		{"sessions held in the store", fmt.Sprintf("%.0f (timeout %s)", s.SessionsHeld, s.SessionTimeout)},
	}
	if s.Memory.Known {
		r = append(r, [2]string{"bytes per session", fmt.Sprintf("%.0f body + %.0f server overhead", s.BytesPerSession, s.OverheadBytes)},
			[2]string{"memory for session state", mib(s.MemoryBytes)})
	} else {
		r = append(r, [2]string{"bytes per session", fmt.Sprintf("%.0f body; server overhead unknown for this target", s.BytesPerSession)},
			[2]string{"memory for session state", "unknown for this target (session bodies alone: " + mib(s.BodyBytes) + ")"})
	}
	if o := s.Observed; o != nil {
		seeded := ""
		if o.Seeded > 0 {
			seeded = fmt.Sprintf(" (and %d seeded before it)", o.Seeded)
		}
		r = append(r, [2]string{"observed in that step (" + o.Source + ")", fmt.Sprintf("%d sessions created%s, %d in the store, %d requests", o.SessionsCreated, seeded, o.SessionsInStore, o.Requests)})
	}
	return r
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Markdown writes the plan as Markdown.
func (p *Plan) Markdown(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "# Capacity plan: %s\n\n", p.what())
	fmt.Fprintf(b, "**%s**\n\n", p.Headline())
	if p.Knee.Found {
		fmt.Fprintf(b, "Knee: **%.0f pages/s** (p99 %s ms).\n\n", p.Knee.Rate, ms(p.Knee.P99))
	} else {
		fmt.Fprintf(b, "Knee: none found (%s).\n\n", p.Knee.Note)
	}
	fmt.Fprintf(b, "Saturation: %s.\n\n", p.Saturation.Describe(p.maxRate()))
	fmt.Fprintf(b, "Target %s; objectives: %s. Steps of %s after a %s warm-up from a %s; %d steps in %s.\n\n",
		strings.Join(p.Targets, ", "), "`"+strings.Join(p.SLOs, "`, `")+"`", p.Settings.Step, p.Settings.Warmup, p.startName(),
		len(p.Outcome.Steps), p.Outcome.Elapsed.Round(time.Second))
	fmt.Fprintf(b, "![latency vs throughput](%s.png)\n\n", ChartStem)
	b.WriteString("| step | phase | " + p.timesHead(" | ") + "offered/s | achieved/s | page-state p99 ms | page p50 ms | page p99 ms | page p99.9 ms | errors | late | verdict |\n")
	b.WriteString("| ---: | --- | " + strings.Repeat("---: | ", len(strings.Fields(p.timesHead(" ")))/2) + "---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, st := range p.Outcome.Steps {
		fmt.Fprintf(b, "| %d | %s | %s%.0f | %.0f | %s | %s | %s | %s | %.3f%% | %.2f%% | %s |\n", st.Index+1, st.Phase, p.timesCell(st, " | "), st.Rate, st.Achieved,
			ms(st.StateP99), ms(st.P50), ms(st.P99), ms(st.P999), st.ErrorRate*100, st.LateFraction*100, verdict(st))
	}
	var reasons []string
	for _, st := range p.Outcome.Steps {
		for _, r := range st.Reasons {
			reasons = append(reasons, fmt.Sprintf("- step %d (%.0f/s): %s", st.Index+1, st.Rate, r))
		}
	}
	if len(reasons) > 0 {
		b.WriteString("\nWhy steps failed:\n\n" + strings.Join(reasons, "\n") + "\n")
	}
	if s := p.Sheet; s != nil {
		fmt.Fprintf(b, "\n## Capacity sheet at %s\n\n| figure | value |\n| --- | --- |\n", p.sheetAt())
		for _, row := range s.rows() {
			fmt.Fprintf(b, "| %s | %s |\n", row[0], row[1])
		}
		b.WriteString("\nAssumptions:\n\n")
		for _, a := range s.Assumptions {
			fmt.Fprintf(b, "- %s\n", a)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSON returns the plan as indented JSON (SLOs keep their < and >).
func (p *Plan) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Write writes plan.json, plan.md, plan.txt and the latency–throughput
// chart (PNG and SVG) into dir, and sets p.Dir.
func (p *Plan) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p.Dir = dir
	js, err := p.JSON()
	if err != nil {
		return err
	}
	var md, txt strings.Builder
	if err := p.Markdown(&md); err != nil {
		return err
	}
	if err := p.Text(&txt); err != nil {
		return err
	}
	files := map[string][]byte{PlanJSON: js, PlanMarkdown: []byte(md.String()), PlanText: []byte(txt.String())}
	for _, format := range []string{"png", "svg"} {
		img, err := p.Chart(format)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		files[ChartStem+"."+format] = img
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// latencySLOs returns the latency objectives on every page together (whole
// pages or their state time), drawn
// on the chart.
func (p *Plan) latencySLOs() []SLO {
	var out []SLO
	for _, t := range p.SLOs {
		s, err := ParseSLO(t)
		if err == nil && (s.Scope.Kind == compare.ScopeAll || s.Scope == compare.Scope{Kind: compare.ScopePageState}) && s.Metric.IsLatency() {
			out = append(out, s)
		}
	}
	return out
}
