package capacity

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// StepScenario returns the scenario one step runs: base at a constant rate
// of rate pages/s (Poisson or evenly spaced as base says) for d. A population
// scenario becomes an open one with the same users (think time, pages per
// session), since a step fixes the rate; the fault timeline is left out
// (a capacity step measures the steady state).
func StepScenario(base *scenarios.Scenario, rate float64, d time.Duration) (*scenarios.Scenario, error) {
	sc := base.Clone()
	sc.Users.Population = 0
	sc.Rate = scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: rate, Poisson: base.Rate.Poisson}
	sc.Faults = nil
	sc.Duration = scenarios.Duration(d)
	sc.ApplyDefaults()
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %s at %.1f pages/s for %s: %w", base.Name, rate, d, err)
	}
	return sc, nil
}

// LoadRunner runs steps as real load with the loadgen package.
type LoadRunner struct {
	// Scenario is the base scenario (see StepScenario).
	Scenario *scenarios.Scenario
	// Specs are the targets (partitions), started by Start.
	Specs []target.Spec
	// TargetOptions are passed to target.Start.
	TargetOptions target.Options
	// FreshTargets starts the targets anew for every step and closes them
	// after it, so no step inherits the sessions of the last (in-process
	// targets). Otherwise they are started once and kept until Close.
	FreshTargets bool
	// Step is the measured length of a step; Warmup runs before it and is
	// not judged; Drain is how long pages in progress may finish after the
	// schedule (default 2s).
	Step, Warmup, Drain time.Duration
	// Minute is the protocol minute of in-process targets (0 = 1m).
	Minute time.Duration
	// Workers bounds the pages in progress (0 = loadgen's default).
	Workers int
	// LateThreshold is the start delay above which a slot counts as late
	// (default 10ms).
	LateThreshold time.Duration
	// Seed is the plan seed of every step.
	Seed uint64
	// Harness names the build for the results.
	Harness results.Harness
	// Criteria judge every step (its Warmup is set from Warmup).
	Criteria Criteria
	// OutDir, when set, receives one result directory per step.
	OutDir string
	// MetricsURL, when set, is a Prometheus endpoint of the target
	// (aspstate serve --metrics) sampled before and after every step.
	MetricsURL string
	// Progress is passed to loadgen.Config.Progress.
	Progress func(loadgen.Progress)
	// SteadyStart starts every step from the steady state (see
	// loadgen.Config.SteadyStart): a capacity step measures a farm that has
	// been running, not one whose store was just emptied.
	SteadyStart bool
	// Replay, when set, makes every step a replay of recorded traffic
	// (aspstate plan --trace): a step's rate is a multiple of it (see
	// ReplayStep).
	Replay func(times float64, length time.Duration) (ReplayStep, error)

	targets []target.Target
}

func (l *LoadRunner) drain() time.Duration {
	if l.Drain > 0 {
		return l.Drain
	}
	return 2 * time.Second
}

// Start starts the targets (when they are not started per step), so a
// target that cannot start is reported before the search.
func (l *LoadRunner) Start(ctx context.Context) error {
	if l.Step <= 0 {
		return fmt.Errorf("step length %s: want a positive duration", l.Step)
	}
	if l.Warmup < 0 {
		return fmt.Errorf("warm-up %s: want zero or more", l.Warmup)
	}
	if len(l.Specs) == 0 {
		return errors.New("no target")
	}
	if l.FreshTargets {
		// Start one now anyway: a target that cannot start is an error
		// before any step.
		if err := l.startTargets(ctx); err != nil {
			return err
		}
		return l.Close()
	}
	return l.startTargets(ctx)
}

func (l *LoadRunner) startTargets(ctx context.Context) error {
	for _, spec := range l.Specs {
		opts := l.TargetOptions
		opts.Minute = l.Minute
		t, err := target.Start(ctx, spec, opts)
		if err != nil {
			_ = l.Close()
			return err
		}
		l.targets = append(l.targets, t)
	}
	return nil
}

// Close stops the targets the runner started.
func (l *LoadRunner) Close() error {
	var errs []error
	for _, t := range l.targets {
		errs = append(errs, t.Close())
	}
	l.targets = nil
	return errors.Join(errs...)
}

// RunStep runs one step at rate and judges it.
func (l *LoadRunner) RunStep(ctx context.Context, index int, phase string, rate float64) (StepResult, error) {
	t0 := time.Now()
	sc, offered, apply, err := l.stepScenario(rate)
	if err != nil {
		return StepResult{}, err
	}
	if l.FreshTargets || l.targets == nil {
		if err := l.startTargets(ctx); err != nil {
			return StepResult{}, err
		}
		if l.FreshTargets {
			defer l.Close()
		}
	}
	late := l.LateThreshold
	if late == 0 {
		late = 10 * time.Millisecond
	}
	cfg := loadgen.Config{
		Scenario: sc, Targets: l.targets, Rate: rate, Duration: l.Warmup + l.Step, Minute: l.Minute, Workers: l.Workers,
		LateThreshold: late, Drain: l.drain(), Seed: l.Seed, Harness: l.Harness, Progress: l.Progress, SteadyStart: l.SteadyStart,
	}
	if apply != nil {
		apply(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return StepResult{}, err
	}
	before, src, sampled := l.sample(ctx)
	run, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return StepResult{}, err
	}
	crit := l.Criteria
	crit.Warmup = l.Warmup
	if crit.Warmup == 0 {
		crit.Warmup = -1 // nothing to leave out (defaults() would put 2s)
	}
	res, err := Judge(run, offered, crit)
	if err != nil {
		return StepResult{}, err
	}
	res.SteadyStart = run.Seeding != nil
	if sampled {
		if after, _, ok := l.sample(ctx); ok {
			var seeded int64
			if run.Seeding != nil {
				seeded = run.Seeding.Sessions
			}
			res.Server = &ServerSample{Source: src, SessionsCreated: after.created - before.created - seeded, Seeded: seeded,
				SessionsInStore: after.inStore, Requests: after.requests - before.requests, Reference: after.reference,
				ResidentBefore: before.resident, ResidentAfter: after.resident}
		}
	}
	if l.OutDir != "" {
		res.Dir = filepath.Join(l.OutDir, "steps", fmt.Sprintf("%02d-%s-%s", index+1, phase, strconv.FormatFloat(rate, 'f', 0, 64)))
		if err := results.Write(res.Dir, run); err != nil {
			return StepResult{}, fmt.Errorf("writing step results: %w", err)
		}
	}
	res.Wall = time.Since(t0)
	return res, nil
}

// counters is one sample of the server's counters.
type counters struct {
	created, inStore, requests int64
	resident                   int64 // process_resident_memory_bytes, 0 unknown
	reference                  bool  // the reference server's counters
}

// sample reads the server's counters: in-process Stats when the (single)
// target is the in-process server, else the Prometheus endpoint when one was
// given.
func (l *LoadRunner) sample(ctx context.Context) (counters, string, bool) {
	if len(l.targets) == 1 {
		if ip, ok := l.targets[0].(target.InProcess); ok {
			st := ip.Server().Stats()
			return counters{created: st.SessionsTotal, inStore: st.SessionsActive, requests: st.RequestsTotal(), reference: true}, "in-process server Stats", true
		}
	}
	if l.MetricsURL == "" {
		return counters{}, "", false
	}
	c, err := ScrapeMetrics(ctx, l.MetricsURL)
	if err != nil {
		return counters{}, "", false
	}
	return c.counters(), "prometheus " + l.MetricsURL, true
}

// Metrics are the Prometheus metrics of a target a plan uses: the
// reference server's aspstate_ counters, and the standard process metric
// any Prometheus-instrumented server exposes.
type Metrics struct {
	SessionsTotal  int64
	SessionsActive int64
	Requests       int64
	// Reference reports that the endpoint has the reference server's
	// aspstate_ metrics.
	Reference bool
	// ResidentBytes is process_resident_memory_bytes, 0 when absent.
	ResidentBytes int64
}

func (m Metrics) counters() counters {
	return counters{created: m.SessionsTotal, inStore: m.SessionsActive, requests: m.Requests, resident: m.ResidentBytes, reference: m.Reference}
}

// ScrapeMetrics reads aspstate_sessions_total, aspstate_sessions_active,
// the sum of aspstate_requests_total and process_resident_memory_bytes from
// a Prometheus text endpoint (aspstate serve --metrics ADDR serves
// http://ADDR/metrics). An endpoint with neither the aspstate_ metrics nor
// the resident memory is an error.
func ScrapeMetrics(ctx context.Context, url string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Metrics{}, fmt.Errorf("metrics URL %q: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Metrics{}, fmt.Errorf("metrics %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Metrics{}, fmt.Errorf("metrics %s: HTTP %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (Metrics, error) {
	var m Metrics
	seen := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name, val := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		switch name {
		case "aspstate_sessions_total":
			m.SessionsTotal, m.Reference, seen = int64(v), true, true
		case "process_resident_memory_bytes":
			m.ResidentBytes, seen = int64(v), true
		case "aspstate_sessions_active":
			m.SessionsActive = int64(v)
		case "aspstate_requests_total":
			m.Requests += int64(v)
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if !seen {
		return m, errors.New("neither aspstate_sessions_total nor process_resident_memory_bytes: is this the target's Prometheus endpoint?")
	}
	return m, nil
}
