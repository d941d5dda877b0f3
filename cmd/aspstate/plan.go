package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/aspstate/aspstate/loadgen/capacity"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// planReserve is kept out of the search's time budget for starting the
// target and writing the plan.
const planReserve = 5 * time.Second

// sloList is a repeatable --slo flag.
type sloList []string

func (s *sloList) String() string { return strings.Join(*s, "; ") }
func (s *sloList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// runPlan implements `aspstate plan`: a capacity search over fixed-rate
// steps, then the answer, the knee, a latency–throughput chart and a capacity
// sheet.
func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	t0 := time.Now()
	fs := newFlagSet("plan", "--scenario NAME|FILE [--slo 'page-state p99 < 50ms'] [--slo 'op p99 < 10ms'] [--slo 'errors < 0.1%'] [flags]",
		"Find the highest page rate a state server sustains within the objectives: fixed-rate steps of\n"+
			"the open model (the scenario's pages at a constant rate), an exponential ramp, then bisection.\n"+
			"A step fails on a broken objective, on dropped or late schedule slots (the generator could not\n"+
			"keep up), on a shortfall of the offered rate, on failed pages (unless an errors objective allows\n"+
			"some) or on correctness violations; a marginal failure is run once more before it counts.\n"+
			"Prints the answer, the knee and a capacity sheet (users, pages per web server, sessions held,\n"+
			"memory) and writes plan.json, plan.md, plan.txt, latency-throughput.png/.svg and every step's\n"+
			"result directory under --out. Objectives use the threshold syntax of 'aspstate compare'\n"+
			"([SCOPE] METRIC OP VALUE; SCOPE page-state (the pages' time in state-server calls and lock waits,\n"+
			"their emulated execution time left out), page-state:KIND, op (each operation), op:NAME, page\n"+
			"(whole pages, execution time included) or page:KIND). Default objectives:\n"+
			"  "+strings.Join(capacity.DefaultSLOs, "; ")+"\n"+
			"Exit 0 with an answer, 1 when no rate passed or a step could not run, 2 usage or target error.", stderr)
	var targets targetList
	var slos sloList
	scenario := fs.String("scenario", "", "builtin scenario name or YAML file (see aspstate load --list)")
	fs.Var(&slos, "slo", "objective every step must meet, e.g. 'page-state p99 < 50ms', 'op p99 < 10ms', 'page-state:modify p99.9 < 200ms',\n"+
		"'errors < 0.1%' (repeatable; default: "+strings.Join(capacity.DefaultSLOs, ", ")+")")
	fs.Var(&targets, "target", "state server: "+target.Syntax+" (repeat for partitions; default inproc, started afresh for every step)")
	out := fs.String("out", "", "plan directory (default results/runs/plan-<scenario>-<timestamp>)")
	step := fs.Duration("step", 10*time.Second, "measured length of each step")
	warmup := fs.Duration("warmup", capacity.DefaultWarmup, "warm-up before each step's measured window (not judged)")
	maxTime := fs.Duration("max-time", 4*time.Minute, "bound on the whole plan; a step starts only when it fits")
	maxSteps := fs.Int("max-steps", 20, "bound on the number of steps")
	start := fs.Float64("start", 0, "first rate of the ramp in pages/s (0 = the scenario's mean rate)")
	factor := fs.Float64("factor", 2, "ramp factor between steps")
	tolerance := fs.Float64("tolerance", 0.05, "bisection stops when (fail - pass) / fail is at most this")
	maxRate := fs.Float64("max-rate", 200000, "highest rate tried, pages/s")
	lateThreshold := fs.Duration("late", 10*time.Millisecond, "a slot that starts later than this counts as late")
	maxLate := fs.Float64("max-late", capacity.DefaultMaxLate, "largest share of late slots before a step counts as one the generator could not keep up with")
	minute := fs.Duration("minute", 0, "protocol minute of an inproc target (time scale), e.g. 600ms; 0 = 1m")
	container := addContainerFlags(fs)
	workers := fs.Int("workers", 1024, "most pages in progress at once")
	steady := fs.Bool("steady-start", true, "start every step from the steady state: write the sessions a farm at the step's rate holds\n"+
		"(rate × mean think time) before its schedule, unmeasured; --steady-start=false starts from an empty store (a cold farm)")
	seed := fs.Uint64("seed", 1, "seed of every step's plan")
	metrics := fs.String("target-metrics", "", "Prometheus endpoint of the target (aspstate serve --metrics ADDR → http://ADDR/metrics), read around every step:\n"+
		"session counts, and memory per session from process_resident_memory_bytes")
	fs.StringVar(metrics, "metrics", "", "the same as --target-metrics")
	overhead := fs.Float64("overhead", 0, "the server's memory per stored session beyond its body, bytes (default: the reference server's\n"+
		"for the reference server, measured from --target-metrics when it can be, else unknown for this target)")
	if done, code := parseFlags(fs, args, false); done {
		return code
	}
	if *scenario == "" {
		return usageError(stderr, "plan", "--scenario is required (a builtin name from 'aspstate load --list', or a YAML file)")
	}
	if len(slos) == 0 {
		slos = append(slos, capacity.DefaultSLOs...)
	}
	var problems []string
	if *step < time.Second {
		problems = append(problems, fmt.Sprintf("--step %s: want at least 1s (a step must be long enough to mean something; 10s is the default)", *step))
	}
	if *warmup < 0 {
		problems = append(problems, fmt.Sprintf("--warmup %s: want zero or more", *warmup))
	}
	if *maxTime <= planReserve {
		problems = append(problems, fmt.Sprintf("--max-time %s: want more than %s", *maxTime, planReserve))
	}
	if *start < 0 || math.IsNaN(*start) {
		problems = append(problems, fmt.Sprintf("--start %v: want a positive rate in pages/s, or 0 for the scenario's", *start))
	}
	if *maxRate <= 0 || *maxRate > scenarios.MaxPagesPerSecond {
		problems = append(problems, fmt.Sprintf("--max-rate %v: want a rate in (0, %d]", *maxRate, scenarios.MaxPagesPerSecond))
	}
	if *maxLate <= 0 || *maxLate >= 1 {
		problems = append(problems, fmt.Sprintf("--max-late %v: want a fraction such as 0.02", *maxLate))
	}
	if *lateThreshold <= 0 {
		problems = append(problems, fmt.Sprintf("--late %s: want a positive duration such as 5ms", *lateThreshold))
	}
	if *minute != 0 && *minute < 60*time.Millisecond {
		problems = append(problems, fmt.Sprintf("--minute %s: want at least 60ms", *minute))
	}
	if *overhead < 0 {
		problems = append(problems, fmt.Sprintf("--overhead %v: want bytes >= 0", *overhead))
	}
	parsed, err := capacity.ParseSLOs(slos)
	if err != nil {
		problems = append(problems, strings.Split(err.Error(), "\n")...)
	}
	if len(problems) > 0 {
		return usageError(stderr, "plan", "%s", strings.Join(problems, "\n  "))
	}
	sc, err := scenarios.Load(*scenario)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate plan: %v\n", err)
		return 2
	}
	if err := capacity.CheckScenario(parsed, sc); err != nil {
		return usageError(stderr, "plan", "%v", err)
	}
	if *start == 0 {
		*start = sc.PagesPerSecondAt(0)
		if sc.Users.Population == 0 && sc.Duration > 0 {
			*start = sc.ExpectedPages() / sc.Duration.D().Seconds()
		}
		*start = math.Max(1, math.Round(*start))
	}
	if *start > *maxRate {
		return usageError(stderr, "plan", "--start %.0f is above --max-rate %.0f", *start, *maxRate)
	}

	if len(targets) == 0 {
		targets = targetList{"inproc"}
	}
	var specs []target.Spec
	inproc := true
	for _, t := range targets {
		spec, err := target.Parse(t)
		if err != nil {
			return usageError(stderr, "plan", "%v", err)
		}
		inproc = inproc && spec.Kind == target.KindInProc
		specs = append(specs, spec)
	}
	generatorGC(specs)
	if *minute != 0 && !inproc {
		return usageError(stderr, "plan", "--minute applies only to inproc targets (the others have their own clock)")
	}

	topts := target.Options{Log: stderr}
	if err := container.apply(&topts); err != nil {
		return usageError(stderr, "plan", "%v", err)
	}
	v, rev := buildVersion()
	runner := &capacity.LoadRunner{
		Scenario: sc, Specs: specs, TargetOptions: topts, FreshTargets: inproc,
		Step: *step, Warmup: *warmup, Minute: *minute, Workers: *workers, LateThreshold: *lateThreshold, Seed: *seed, SteadyStart: *steady,
		Harness:    results.Harness{Version: v, Revision: rev, Go: runtime.Version()},
		Criteria:   capacity.Criteria{SLOs: parsed, MaxLate: *maxLate},
		MetricsURL: *metrics,
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join("results", "runs", "plan-"+sc.Name+"-"+time.Now().Format("20060102-150405"))
	}
	runner.OutDir = dir
	if err := runner.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "aspstate plan: %v\n", err)
		return 2
	}
	defer runner.Close()

	var targetNames []string
	for _, s := range specs {
		targetNames = append(targetNames, s.String())
	}
	budget := *maxTime - time.Since(t0) - planReserve
	opts := capacity.Options{
		Start: *start, Factor: *factor, Max: *maxRate, Tolerance: *tolerance, MaxSteps: *maxSteps,
		MaxTime: budget, StepCost: *warmup + *step + time.Second, // the drain is short unless the step fails
		OnStep: func(st capacity.StepResult) {
			line := fmt.Sprintf("step %2d %-9s %8.0f/s offered  %8.0f/s achieved  page-state p99 %9s ms  page p99 %9s ms  errors %.3f%%  late %.2f%%  ",
				st.Index+1, st.Phase, st.Rate, st.Achieved, fmt.Sprintf("%.3f", float64(st.StateP99)/1e6), fmt.Sprintf("%.3f", float64(st.P99)/1e6),
				st.ErrorRate*100, st.LateFraction*100)
			if st.Pass {
				line += "pass"
			} else {
				line += "FAIL: " + strings.Join(st.Reasons, "; ")
			}
			fmt.Fprintln(stderr, line)
		},
	}
	fmt.Fprintf(stderr, "plan: %s against %s, objectives %s; steps of %s + %s warm-up from %.0f pages/s, budget %s\n",
		sc.Name, strings.Join(targetNames, ", "), strings.Join(slos, "; "), *step, *warmup, *start, *maxTime)
	// A hard deadline too, should a step overrun its expected time.
	sctx, cancel := context.WithDeadline(ctx, t0.Add(*maxTime-planReserve/2))
	defer cancel()
	outcome, serr := capacity.Search(sctx, runner, opts)
	plan := &capacity.Plan{
		Schema: capacity.PlanSchema, Scenario: sc.Name, Targets: targetNames, SLOs: slos, Harness: runner.Harness, Started: t0.UTC(),
		Settings: capacity.Settings{Step: *step, Warmup: *warmup, LateThreshold: *lateThreshold, MaxLate: *maxLate,
			MinAchieved: capacity.DefaultMinAchieved, Start: *start, Factor: *factor, Tolerance: *tolerance, MaxSteps: *maxSteps, MaxTime: *maxTime,
			Seed: *seed, Workers: *workers, Minute: *minute, SteadyStart: *steady},
		Outcome:    outcome,
		Knee:       capacity.FindKnee(outcome.Steps),
		Saturation: capacity.FindSaturation(outcome.Steps, capacity.DefaultMinAchieved),
	}
	if at, ok := plan.Answer(); ok {
		mem := capacity.TargetMemory(at)
		switch {
		case *overhead > 0:
			mem = capacity.GivenMemory(*overhead)
		case inproc:
			mem = capacity.ReferenceMemory("in-process")
		}
		sheet := capacity.NewSheet(sc, at, mem, len(specs))
		plan.Sheet = &sheet
	}
	if len(outcome.Steps) > 0 {
		if err := plan.Write(dir); err != nil {
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
	if outcome.Max == 0 {
		return 1
	}
	return 0
}
