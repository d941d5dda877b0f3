package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/loadgen/capacity"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
	"github.com/aspstate/aspstate/trace"
)

// planOptions are the flags of aspstate plan.
type planOptions struct {
	scenario, out, metrics string
	targets, slos          []string
	set                    capacity.Settings
	container              *containerFlags
	overwrite              bool
	waitTarget             time.Duration
	// trace: plan over multiples of recorded traffic.
	trace     []string
	tracePort int
	maxTimes  float64
	replay    *trace.Replay
}

func newPlanCmd() *cobra.Command {
	o := &planOptions{}
	c := &cobra.Command{
		Use:   "plan --scenario NAME|FILE | --trace FILE… [--slo 'page-state p99 < 50ms'] [--slo 'op p99 < 10ms'] [--slo 'errors < 0.1%'] [flags]",
		Short: "find the highest rate a state server sustains within SLOs, and a capacity sheet",
		Long: "Find the highest page rate a state server sustains within the objectives: fixed-rate steps of\n" +
			"the open model (the scenario's pages at a constant rate), an exponential ramp, then bisection.\n" +
			"A step fails on a broken objective, on dropped or late schedule slots (the generator could not\n" +
			"keep up), on a shortfall of the offered rate, on failed pages (unless an errors objective allows\n" +
			"some) or on correctness violations; a marginal failure is run once more before it counts.\n" +
			"Prints the answer, the knee and a capacity sheet (users, pages per web server, sessions held,\n" +
			"memory) and writes plan.json, plan.md, plan.txt, latency-throughput.png/.svg and every step's\n" +
			"result directory under --out. Objectives use the threshold syntax of 'aspstate compare'\n" +
			"([SCOPE] METRIC OP VALUE; SCOPE page-state (the pages' time in state-server calls and lock waits,\n" +
			"their emulated execution time left out), page-state:KIND, op (each operation), op:NAME, page\n" +
			"(whole pages, execution time included) or page:KIND). Default objectives:\n" +
			"  " + strings.Join(capacity.DefaultSLOs, "; ") + "\n" +
			"--trace FILE… plans over the captured farm's own traffic instead: every step replays the capture\n" +
			"(as aspstate load --trace does) at a multiple of today's traffic, as copies with their own sessions,\n" +
			"spread over the capture's loop, and faster; the search runs over the multiple (--start, default 1,\n" +
			"up to --max-times) and the answer reads \"carries N × today's traffic = R pages/s within objectives\".\n" +
			"Exit 0 with an answer, 1 when no rate passed or a step could not run, 2 usage or target error.",
		Example: `  # a quick plan against the in-process reference server: 1-second steps, 20 seconds in all
  aspstate plan --scenario ajax-heavy --slo 'page-state p99 < 50ms' --slo 'errors < 0.1%' --step 1s --warmup 500ms --max-time 20s --out runs/plan`,
		Args: noArgs,
	}
	c.RunE = action(o.run)
	o.addFlags(commandFlags(c))
	return c
}

func (o *planOptions) addFlags(fs *pflag.FlagSet) {
	s := &o.set
	fs.StringVar(&o.scenario, "scenario", "", "builtin scenario name or YAML file (see aspstate load --list)")
	fs.StringArrayVar(&o.trace, "trace", nil, "plan over multiples of this capture's traffic (pcap, pcapng; repeatable) instead of a scenario's rate")
	fs.IntVar(&o.tracePort, "trace-port", 42424, "with --trace: the state server's TCP port in the capture")
	fs.Float64Var(&o.maxTimes, "max-times", 64, "with --trace: the highest multiple of today's traffic tried")
	fs.StringArrayVar(&o.slos, "slo", nil, "objective every step must meet, e.g. 'page-state p99 < 50ms', 'op p99 < 10ms', 'page-state:modify p99.9 < 200ms',\n"+
		"'errors < 0.1%' (repeatable; default: "+strings.Join(capacity.DefaultSLOs, ", ")+")")
	fs.StringArrayVar(&o.targets, "target", nil, "state server: "+target.Syntax+" (repeat for partitions; default inproc, started afresh for every step)")
	fs.StringVar(&o.out, "out", "", "plan directory, new or empty (default results/runs/plan-<scenario>-<timestamp>)")
	fs.BoolVar(&o.overwrite, "overwrite", false, "replace the plan already in --out")
	fs.DurationVar(&o.waitTarget, "wait-target", 0, "wait up to this long for a target that is starting (default: fail within a second)")
	fs.DurationVar(&s.Step, "step", 10*time.Second, "measured length of each step")
	fs.DurationVar(&s.Warmup, "warmup", capacity.DefaultWarmup, "warm-up before each step's measured window (not judged)")
	fs.DurationVar(&s.MaxTime, "max-time", 4*time.Minute, "bound on the whole plan; a step starts only when it fits")
	fs.IntVar(&s.MaxSteps, "max-steps", 20, "bound on the number of steps")
	fs.Float64Var(&s.Start, "start", 0, "first rate of the ramp in pages/s (0 = the scenario's mean rate); with --trace, the first multiple of today's traffic (0 = 1)")
	fs.Float64Var(&s.Factor, "factor", 2, "ramp factor between steps")
	fs.Float64Var(&s.Tolerance, "tolerance", 0.05, "bisection stops when (fail - pass) / fail is at most this")
	fs.Float64Var(&s.MaxRate, "max-rate", 200000, "highest rate tried, pages/s")
	fs.DurationVar(&s.LateThreshold, "late", 10*time.Millisecond, "a slot that starts later than this counts as late")
	fs.Float64Var(&s.MaxLate, "max-late", capacity.DefaultMaxLate, "largest share of late slots before a step counts as one the generator could not keep up with")
	fs.DurationVar(&s.Minute, "minute", 0, "protocol minute of an inproc target (time scale), e.g. 600ms; 0 = 1m")
	o.container = addContainerFlags(fs)
	fs.IntVar(&s.Workers, "workers", 1024, "most pages in progress at once")
	fs.BoolVar(&s.SteadyStart, "steady-start", true, "start every step from the steady state: write the sessions a farm at the step's rate holds\n"+
		"(rate × mean think time) before its schedule, unmeasured; --steady-start=false starts from an empty store (a cold farm)")
	fs.Uint64Var(&s.Seed, "seed", 1, "seed of every step's plan")
	fs.StringVar(&o.metrics, "target-metrics", "", "Prometheus endpoint of the target (aspstate serve --metrics ADDR → http://ADDR/metrics), read around every step:\n"+
		"session counts, and memory per session from process_resident_memory_bytes")
	fs.StringVar(&o.metrics, "metrics", "", "the same as --target-metrics")
	fs.Float64Var(&s.OverheadBytes, "overhead", 0, "the server's memory per stored session beyond its body, bytes (default: the reference server's\n"+
		"for the reference server, measured from --target-metrics when it can be, else unknown for this target)")
}

// planFields maps capacity.Settings fields to the flags that set them.
var planFields = map[string]string{
	"Step": "step", "Warmup": "warmup", "MaxTime": "max-time", "Start": "start", "MaxRate": "max-rate",
	"MaxLate": "max-late", "LateThreshold": "late", "Minute": "minute", "OverheadBytes": "overhead",
	"Factor": "factor", "Tolerance": "tolerance", "MaxSteps": "max-steps", "Workers": "workers",
}

// check validates the flags, reads the scenario (or the captures) and
// parses the objectives. code is the exit code of a failure.
func (o *planOptions) check(ctx context.Context, stderr io.Writer) (*scenarios.Scenario, []capacity.SLO, []target.Spec, int) {
	usage := func(err error) (*scenarios.Scenario, []capacity.SLO, []target.Spec, int) {
		return nil, nil, nil, usageError(stderr, "plan", "%v", err)
	}
	switch {
	case len(o.trace) > 0 && o.scenario != "":
		return usage(fmt.Errorf("--trace plans over a capture's traffic: drop --scenario"))
	case len(o.trace) > 0 && !(o.maxTimes > 0):
		return usage(fmt.Errorf("--max-times %g: want a positive multiple of today's traffic", o.maxTimes))
	case len(o.trace) > 0 && o.set.Start > o.maxTimes:
		return usage(fmt.Errorf("--start %g is above --max-times %g", o.set.Start, o.maxTimes))
	case len(o.trace) == 0 && o.scenario == "":
		return usage(fmt.Errorf("--scenario is required (a builtin name from 'aspstate load --list', or a YAML file), or --trace FILE"))
	}
	if len(o.slos) == 0 {
		o.slos = append(o.slos, capacity.DefaultSLOs...)
	}
	var problems []string
	if err := fieldErrors(o.set.Validate(), planFields); err != nil {
		problems = append(problems, err.Error())
	}
	slos, err := capacity.ParseSLOs(o.slos)
	if err != nil {
		problems = append(problems, strings.Split(err.Error(), "\n")...)
	}
	if len(problems) > 0 {
		return usage(fmt.Errorf("%s", strings.Join(problems, "\n  ")))
	}
	var sc *scenarios.Scenario
	if len(o.trace) > 0 {
		r, code := readReplay(ctx, "plan", o.trace, o.tracePort, stderr)
		if code != 0 {
			return nil, nil, nil, code
		}
		o.replay, o.set.SteadyStart = r, false
		if sc, err = r.Scenario(trace.ReplayOptions{Speed: 1, Copies: 1}); err != nil {
			fmt.Fprintf(stderr, "aspstate plan: %v\n", err)
			return nil, nil, nil, 1
		}
		if o.set.Start == 0 {
			o.set.Start = 1
		}
	} else if sc, err = scenarios.Load(o.scenario); err != nil {
		return usage(err)
	}
	if err := capacity.CheckScenario(slos, sc); err != nil {
		return usage(err)
	}
	if o.set.Start == 0 {
		o.set.Start = scenarioRate(sc)
	}
	if err := fieldErrors(o.set.Validate(), planFields); err != nil {
		return usage(err)
	}
	specs, err := parseTargets(o.targets, o.set.Minute)
	if err != nil {
		return usage(err)
	}
	return sc, slos, specs, 0
}

// scenarioRate is a scenario's mean page rate, rounded, at least 1.
func scenarioRate(sc *scenarios.Scenario) float64 {
	r := sc.PagesPerSecondAt(0)
	if sc.Users.Population == 0 && sc.Duration > 0 {
		r = sc.ExpectedPages() / sc.Duration.D().Seconds()
	}
	return math.Max(1, math.Round(r))
}

// run implements aspstate plan: a capacity search over fixed-rate steps,
// then the answer, the knee, a latency–throughput chart and a capacity sheet.
func (o *planOptions) run(ctx context.Context, c *cobra.Command, _ []string) int {
	t0 := time.Now()
	stdout, stderr := c.OutOrStdout(), c.ErrOrStderr()
	sc, slos, specs, code := o.check(ctx, stderr)
	if o.replay != nil {
		defer o.replay.Close()
	}
	if code != 0 {
		return code
	}
	generatorGC(specs)
	runner, err := o.runner(sc, slos, specs, stderr)
	if err != nil {
		return usageError(stderr, "plan", "%v", err)
	}
	if err := runner.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "aspstate plan: %v\n", err)
		return 2
	}
	defer runner.Close()
	plan, serr := o.search(ctx, t0, runner, stderr)
	if len(plan.Outcome.Steps) > 0 {
		if err := plan.Write(runner.OutDir); err != nil {
			fmt.Fprintf(stderr, "aspstate plan: writing the plan: %v\n", err)
			return 1
		}
	}
	fmt.Fprintln(stdout)
	if err := plan.Text(stdout); err != nil {
		return 1
	}
	fmt.Fprintf(stdout, "time taken: %s\n", time.Since(t0).Round(time.Second))
	if serr != nil {
		fmt.Fprintf(stderr, "aspstate plan: %v\n", serr)
		return 1
	}
	if plan.Outcome.Max == 0 {
		return 1
	}
	return 0
}

// runner prepares the steps' load runner and the plan directory.
func (o *planOptions) runner(sc *scenarios.Scenario, slos []capacity.SLO, specs []target.Spec, stderr io.Writer) (*capacity.LoadRunner, error) {
	inproc := true
	for _, s := range specs {
		inproc = inproc && s.Kind == target.KindInProc
	}
	topts := target.Options{Log: stderr, ReadyTimeout: readyTimeout(specs, o.waitTarget)}
	if err := o.container.apply(&topts); err != nil {
		return nil, err
	}
	dir, err := resultDir(o.out, "plan-"+sc.Name, o.overwrite)
	if err != nil {
		return nil, err
	}
	v, rev := buildVersion()
	s := o.set
	return &capacity.LoadRunner{Replay: o.replayStep(),
		Scenario: sc, Specs: specs, TargetOptions: topts, FreshTargets: inproc, OutDir: dir,
		Step: s.Step, Warmup: s.Warmup, Minute: s.Minute, Workers: s.Workers, LateThreshold: s.LateThreshold, Seed: s.Seed, SteadyStart: s.SteadyStart,
		Harness:    results.Harness{Version: v, Revision: rev, Go: runtime.Version()},
		Criteria:   capacity.Criteria{SLOs: slos, MaxLate: s.MaxLate},
		MetricsURL: o.metrics,
	}, nil
}

// replayStep makes a plan step a replay at a multiple of the capture's
// traffic (nil without --trace).
func (o *planOptions) replayStep() func(float64, time.Duration) (capacity.ReplayStep, error) {
	r := o.replay
	if r == nil {
		return nil
	}
	return func(times float64, length time.Duration) (capacity.ReplayStep, error) {
		m, err := r.Multiple(times, length)
		if err != nil {
			return capacity.ReplayStep{}, err
		}
		sc, err := m.Scenario()
		if err != nil {
			return capacity.ReplayStep{}, err
		}
		src, seeds := m.Source()
		return capacity.ReplayStep{Scenario: sc, Offered: m.Offered, Apply: func(c *loadgen.Config) {
			c.Pages, c.Seeds, c.SourceOptions = src, seeds, m.Options(c.Minute)
		}}, nil
	}
}

// search runs the capacity search within the time budget and returns the plan.
func (o *planOptions) search(ctx context.Context, t0 time.Time, runner *capacity.LoadRunner, stderr io.Writer) (*capacity.Plan, error) {
	s := o.set
	s.MinAchieved = capacity.DefaultMinAchieved
	var targetNames []string
	for _, spec := range runner.Specs {
		targetNames = append(targetNames, spec.String())
	}
	maxRate, from := s.MaxRate, fmt.Sprintf("%.0f pages/s", s.Start)
	if o.replay != nil {
		maxRate, from = o.maxTimes, fmt.Sprintf("%g × today's traffic (%.1f pages/s)", s.Start, o.replay.RecordedRate())
	}
	opts := capacity.Options{
		Times: o.replay != nil, Start: s.Start, Factor: s.Factor, Max: maxRate, Tolerance: s.Tolerance, MaxSteps: s.MaxSteps,
		MaxTime:  s.MaxTime - time.Since(t0) - capacity.PlanReserve,
		StepCost: s.Warmup + s.Step + time.Second, // the drain is short unless the step fails
		OnStep:   func(st capacity.StepResult) { fmt.Fprintln(stderr, stepLine(st)) },
	}
	fmt.Fprintf(stderr, "plan: %s against %s, objectives %s; steps of %s + %s warm-up from %s, budget %s; results into %s\n",
		runner.Scenario.Name, strings.Join(targetNames, ", "), strings.Join(o.slos, "; "), s.Step, s.Warmup, from, s.MaxTime, runner.OutDir)
	// A hard deadline too, should a step overrun its expected time.
	sctx, cancel := context.WithDeadline(ctx, t0.Add(s.MaxTime-capacity.PlanReserve/2))
	defer cancel()
	outcome, serr := capacity.Search(sctx, runner, opts)
	plan := &capacity.Plan{
		Schema: capacity.PlanSchema, Scenario: runner.Scenario.Name, Targets: targetNames, SLOs: o.slos, Harness: runner.Harness, Started: t0.UTC(),
		Settings: s, Outcome: outcome,
		Knee:       capacity.FindKnee(outcome.Steps),
		Saturation: capacity.FindSaturation(outcome.Steps, capacity.DefaultMinAchieved),
	}
	if o.replay != nil {
		plan.Traffic = &capacity.Traffic{Files: o.replay.Files, Rate: o.replay.RecordedRate(), MaxTimes: o.maxTimes}
	}
	if at, ok := plan.Answer(); ok {
		mem := capacity.TargetMemory(at)
		switch {
		case s.OverheadBytes > 0:
			mem = capacity.GivenMemory(s.OverheadBytes)
		case runner.FreshTargets:
			mem = capacity.ReferenceMemory("in-process")
		}
		sheet := capacity.NewSheet(runner.Scenario, at, mem, len(runner.Specs))
		plan.Sheet = &sheet
	}
	return plan, serr
}

// stepLine is the progress line of one finished step.
func stepLine(st capacity.StepResult) string {
	times := ""
	if st.Times > 0 {
		times = fmt.Sprintf("%6.3g × today = ", st.Times)
	}
	line := fmt.Sprintf("step %2d %-9s %s%8.0f/s offered  %8.0f/s achieved  page-state p99 %9s ms  page p99 %9s ms  errors %.3f%%  late %.2f%%  ",
		st.Index+1, st.Phase, times, st.Rate, st.Achieved, fmt.Sprintf("%.3f", float64(st.StateP99)/1e6), fmt.Sprintf("%.3f", float64(st.P99)/1e6),
		st.ErrorRate*100, st.LateFraction*100)
	if st.Pass {
		return line + "pass"
	}
	return line + "FAIL: " + strings.Join(st.Reasons, "; ")
}
