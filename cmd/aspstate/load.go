package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/loadgen/capacity"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// loadOptions are the flags of aspstate load.
type loadOptions struct {
	scenario, out, shard, startAt  string
	targets                        []string
	rate                           float64
	duration, minute, waitTarget   time.Duration
	container                      *containerFlags
	list, closed, steady, checkLin bool
	faultProxy, overwrite          bool
	abortOnFail                    bool
	conns, workers                 int
	seed                           uint64
	faults                         faultFlags
	sourceAddrs                    string
	thresholds                     []string
	replay                         *traceLoadFlags
}

func newLoadCmd() *cobra.Command {
	o := &loadOptions{}
	c := &cobra.Command{
		Use:   "load --scenario NAME|FILE [flags]",
		Short: "replay a web-farm scenario against a state server and record latency",
		Long: "Replay a web-farm scenario against a state server (open model: latency from the intended\n" +
			"start, coordinated omission corrected) and write result.json, .hlog files and summary.txt\n" +
			"into a new result directory. Several --target values are partitions. --trace replays a capture\n" +
			"instead of a scenario. --threshold checks an objective at the end of the run ('page-state p99 < 50ms',\n" +
			"'op p99 < 10ms', 'errors < 0.1%'); --abort-on-fail stops the run once one is broken beyond recovery,\n" +
			"keeping what was recorded. Ctrl-C stops the run and keeps its results, marked interrupted.\n" +
			"Exit 0 ok, 1 a broken threshold, correctness violations or run failure, 2 usage or target error,\n" +
			"130 interrupted.",
		Example: `  # the builtin scenarios
  aspstate load --list
  # a builtin scenario for 3 seconds against the in-process reference server
  aspstate load --scenario ajax-heavy --duration 3s --out runs/base
  # a server already running, with a restart 1 second in
  aspstate load --scenario ajax-heavy --duration 3s --target tcp://127.0.0.1:42424 --fault restart@1s --out runs/restart
  # a CI gate on the server's share of a page
  aspstate load --scenario read-mostly-portal --duration 3s --threshold 'op p99 < 2s' --threshold 'errors < 1%' --out runs/gate`,
		Args: noArgs,
	}
	c.RunE = action(o.run)
	o.addFlags(commandFlags(c))
	return c
}

func (o *loadOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.scenario, "scenario", "", "builtin scenario name or YAML file (see --list)")
	fs.StringArrayVar(&o.targets, "target", nil, "state server: "+target.Syntax+" (repeat for partitions; default inproc)")
	fs.Float64Var(&o.rate, "rate", 0, "mean page rate in pages/s (scales the scenario's rate shape; 0 = the scenario's)")
	fs.DurationVar(&o.duration, "duration", 0, "run length (0 = the scenario's)")
	fs.StringVar(&o.out, "out", "", "result directory, new or empty (default results/runs/<scenario>-<timestamp>)")
	fs.BoolVar(&o.overwrite, "overwrite", false, "replace the result already in --out")
	fs.DurationVar(&o.waitTarget, "wait-target", 0, "wait up to this long for a target that is starting (default: fail within a second)")
	fs.DurationVar(&o.minute, "minute", 0, "protocol minute of an inproc target (time scale), e.g. 600ms; 0 = 1m")
	o.container = addContainerFlags(fs)
	fs.BoolVar(&o.list, "list", false, "list the builtin scenarios and exit")
	fs.BoolVar(&o.closed, "closed-loop", false, "closed-loop saturation: --connections users back to back (measures capacity, not an offered rate)")
	fs.IntVar(&o.conns, "connections", 16, "closed-loop users")
	fs.IntVar(&o.workers, "workers", 1024, "open model: most pages in progress at once")
	fs.BoolVar(&o.steady, "steady-start", false, "open model: start from a running farm's steady state — write the sessions it holds mid-life\n"+
		"(rate × mean think time, or one per user) before the schedule, unmeasured; default: an empty store, where\n"+
		"for the first think times most pages create their sessions")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the plan (session lengths, page kinds, Poisson arrivals; session ids are random in every run)")
	fs.BoolVar(&o.checkLin, "check-linearizability", false, "record every session's protocol operations and check them for linearizability against\n"+
		"PROTOCOL.md c.1–c.4 (porcupine); a violation fails the run (HTML of one failing session in the result directory)")
	fs.Var(&o.faults, "fault", "add a fault to the scenario's timeline (repeatable): "+faultFlagSyntax)
	fs.BoolVar(&o.faultProxy, "fault-proxy", false, "route the load through the in-process fault proxy even without network faults (on whenever there is one)")
	fs.StringVar(&o.shard, "shard", "", "run shard I/N of the farm: its share of the web servers and rate (auto/N: JOB_COMPLETION_INDEX+1); merge the shards with aspstate merge")
	fs.StringVar(&o.startAt, "start-at", "", "start the schedule at this time (RFC 3339, Unix seconds or +DURATION); give every shard the same")
	fs.StringVar(&o.sourceAddrs, "source-addrs", "", "bind emulated web server i to its own local address, from a range (127.0.0.2-127.0.0.9)\n"+
		"or a prefix (127.0.0.0/28), so a capture shows a farm of distinct clients; default: the system's choice")
	fs.StringArrayVar(&o.thresholds, "threshold", nil, "objective checked at the end of the run, e.g. 'page-state p99 < 50ms', 'op p99 < 10ms', 'errors < 0.1%'\n"+
		"(repeatable; syntax of aspstate plan --slo); a broken one exits 1")
	fs.BoolVar(&o.abortOnFail, "abort-on-fail", false, "stop the run as soon as a --threshold is broken beyond recovery (k6's abortOnFail), keeping what was recorded")
	o.replay = addTraceLoadFlags(fs)
}

// run implements aspstate load.
func (o *loadOptions) run(ctx context.Context, c *cobra.Command, _ []string) int {
	stdout, stderr := c.OutOrStdout(), c.ErrOrStderr()
	if o.list {
		for _, info := range scenarios.Builtin() {
			fmt.Fprintf(stdout, "%-20s %s\n", info.Name, info.Description)
		}
		return 0
	}
	if err := o.replay.check(c.Flags()); err != nil {
		return usageError(stderr, "load", "%v", err)
	}
	var replaySc *scenarios.Scenario
	var asReplay func(*loadgen.Config)
	if o.replay.set() {
		if o.scenario != "" || o.closed || o.steady || o.rate != 0 {
			return usageError(stderr, "load", "--trace replays a capture: drop --scenario, --closed-loop, --steady-start and --rate (use --speed and --copies)")
		}
		var code int
		if replaySc, asReplay, code = o.replay.replay(ctx, stderr); code != 0 {
			return code
		}
	}
	cfg, specs, slos, err := o.config(replaySc)
	if err != nil {
		return usageError(stderr, "load", "%v", err)
	}
	dir, err := resultDir(o.out, cfg.Scenario.Name, o.overwrite)
	if err != nil {
		return usageError(stderr, "load", "%v", err)
	}
	topts := target.Options{Minute: o.minute, Log: stderr}
	if err := o.container.apply(&topts); err != nil {
		return usageError(stderr, "load", "%v", err)
	}
	started, err := startTargets(ctx, specs, topts, o.waitTarget)
	defer closeTargets(started)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate load: %v\n", err)
		return 2
	}
	cfg.Targets = started
	if asReplay != nil {
		asReplay(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return usageError(stderr, "load", "%v", err)
	}
	loadHeader(stderr, &cfg, dir)
	return o.runAndRecord(ctx, cfg, slos, dir, stdout, stderr)
}

// config checks the flags and fills a loadgen.Config (without targets);
// replay is the farm of a --trace capture, nil for a scenario run. It also
// returns the parsed --threshold objectives.
func (o *loadOptions) config(replay *scenarios.Scenario) (loadgen.Config, []target.Spec, []capacity.SLO, error) {
	var cfg loadgen.Config
	switch {
	case o.scenario == "" && replay == nil:
		return cfg, nil, nil, errors.New("--scenario is required (a builtin name from --list, or a YAML file)")
	case o.steady && o.closed:
		return cfg, nil, nil, errors.New("--steady-start applies to the open model: closed-loop users run their sessions back to back and create them as they go; drop one of the two")
	case o.minute != 0 && o.minute < 60*time.Millisecond:
		return cfg, nil, nil, fmt.Errorf("--minute %s: want at least 60ms", o.minute)
	}
	sc, err := replay, error(nil)
	if sc == nil {
		sc, err = o.loadScenario()
	}
	if err != nil {
		return cfg, nil, nil, err
	}
	slos, err := o.objectives(sc)
	if err != nil {
		return cfg, nil, nil, err
	}
	specs, err := parseTargets(o.targets, o.minute)
	if err != nil {
		return cfg, nil, nil, err
	}
	generatorGC(specs)
	cfg = loadgen.Config{
		Scenario: sc, Rate: o.rate, Duration: o.duration, Minute: o.minute, ClosedLoop: o.closed,
		Connections: o.conns, Workers: o.workers, Seed: o.seed, FaultProxy: o.faultProxy, SteadyStart: o.steady,
	}
	if o.shard != "" {
		if cfg.Shard, err = parseShardFlag(o.shard); err != nil {
			return cfg, nil, nil, err
		}
	}
	if o.startAt != "" {
		if cfg.StartAt, err = parseStartAt(o.startAt, time.Now()); err != nil {
			return cfg, nil, nil, err
		}
	}
	if o.sourceAddrs != "" {
		var sources []netip.Addr
		if sources, err = loadgen.ParseSourceAddrs(o.sourceAddrs); err != nil {
			return cfg, nil, nil, fmt.Errorf("--source-addrs: %v", err)
		}
		cfg.SourceAddrs = sources
	}
	v, rev := buildVersion()
	cfg.Harness = results.Harness{Version: v, Revision: rev}
	return cfg, specs, slos, nil
}

// objectives parses the --threshold objectives and checks them against the
// scenario (a page objective below its own execution time is refused).
func (o *loadOptions) objectives(sc *scenarios.Scenario) ([]capacity.SLO, error) {
	slos, err := capacity.ParseSLOs(o.thresholds)
	if err == nil {
		err = capacity.CheckScenario(slos, sc)
	}
	if err != nil {
		return nil, errors.New(strings.ReplaceAll(err.Error(), "--slo", "--threshold"))
	}
	if o.abortOnFail && len(slos) == 0 {
		return nil, errors.New("--abort-on-fail needs at least one --threshold to watch")
	}
	return slos, nil
}

// loadScenario reads the scenario, adds the --fault timeline and sets the
// --duration in force, then validates the result so that a fault outside
// the run is refused naming the flags.
func (o *loadOptions) loadScenario() (*scenarios.Scenario, error) {
	sc, err := scenarios.Load(o.scenario)
	if err != nil {
		return nil, err
	}
	fromFile := len(sc.Faults)
	sc.Faults = append(sc.Faults, o.faults...)
	if o.duration > 0 {
		sc.Duration = scenarios.Duration(o.duration)
	}
	if err := sc.Validate(); err != nil {
		return nil, o.scenarioErrors(err, fromFile)
	}
	return sc, nil
}

// faultIndex finds the fault a scenario field path names.
var faultIndex = regexp.MustCompile(`^faults\[(\d+)\]`)

// scenarioErrors names the flags behind scenario problems: a fault given
// with --fault, a run length set with --duration.
func (o *loadOptions) scenarioErrors(err error, fromFile int) error {
	var lines []string
	for _, e := range joined(err) {
		var fe *scenarios.FieldError
		if !errors.As(e, &fe) {
			lines = append(lines, e.Error())
			continue
		}
		msg := e.Error()
		if m := faultIndex.FindStringSubmatch(fe.Path); m != nil {
			var i int
			fmt.Sscan(m[1], &i)
			if i >= fromFile {
				f := o.faults[i-fromFile]
				msg = fmt.Sprintf("--fault %s@%s: %s", f.Kind, f.At, fe.Msg)
			}
			if o.duration > 0 {
				msg = strings.Replace(msg, "(duration ", "(--duration ", 1)
			}
		}
		lines = append(lines, msg)
	}
	return errors.New(strings.Join(lines, "\n  "))
}

// joined splits an errors.Join error into its parts.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// loadHeader says what is about to run, before it runs.
func loadHeader(w io.Writer, cfg *loadgen.Config, dir string) {
	sc := cfg.Scenario
	what := fmt.Sprintf("intended %.1f pages/s", sc.PagesPerSecondAt(0))
	switch {
	case cfg.ClosedLoop:
		what = fmt.Sprintf("closed loop, %d users back to back", cfg.Connections)
	case cfg.Rate > 0:
		what = fmt.Sprintf("intended %.1f pages/s on average", cfg.Rate)
	case sc.Users.Population == 0 && sc.Duration > 0:
		what = fmt.Sprintf("intended %.1f pages/s on average", sc.ExpectedPages()/sc.Duration.D().Seconds())
	case sc.Users.Population > 0:
		what += fmt.Sprintf(" (%d users / mean think time %.3gs)", sc.Users.Population, sc.Users.ThinkTime.Mean())
	}
	d := cfg.Duration
	if d == 0 {
		d = sc.Duration.D()
	}
	var ts []string
	for _, t := range cfg.Targets {
		ts = append(ts, t.Info().Spec)
	}
	fmt.Fprintf(w, "aspstate load: scenario %s against %s for %s, %s; results into %s\n",
		sc.Name, strings.Join(ts, ", "), d, what, dir)
}

// runAndRecord runs the load, checks linearizability and the thresholds,
// writes the result directory and prints the summary; it returns the exit
// code.
func (o *loadOptions) runAndRecord(ctx context.Context, cfg loadgen.Config, slos []capacity.SLO, dir string, stdout, stderr io.Writer) int {
	bar := newProgress(stderr)
	cfg.Progress = bar.update
	// --abort-on-fail: the collector hands every interval to a Watch; a
	// threshold lost for good cancels the run, which then ends as an
	// interrupted one does, its results kept.
	runCtx, abort := context.WithCancel(ctx)
	defer abort()
	var lost *abortReason
	if o.abortOnFail {
		cfg.Progress = abortWatch(slos, bar.update, &lost, abort, stderr)
	}
	if o.checkLin {
		cfg.Linearizability, cfg.LinearizabilityHTML = true, filepath.Join(dir, "linearizability.html")
	}
	run, err := loadgen.Run(runCtx, cfg)
	bar.finish()
	if err != nil {
		fmt.Fprintf(stderr, "aspstate load: %v\n", err)
		return 1
	}
	if err := judgeThresholds(run, slos, lost); err != nil {
		fmt.Fprintf(stderr, "aspstate load: thresholds: %v\n", err)
		return 1
	}
	if err := results.Write(dir, run); err != nil {
		fmt.Fprintf(stderr, "aspstate load: writing results: %v\n", err)
		return 1
	}
	results.Summary(stdout, run)
	fmt.Fprintf(stdout, "\nresults: %s\n", dir)
	return loadVerdict(run, ctx.Err() != nil, stderr)
}

// abortReason is the threshold --abort-on-fail stopped a run for.
type abortReason struct{ slo, why string }

// abortWatch wraps the progress callback: every interval goes to a Watch of
// the objectives, and the first one lost for good is stored in *lost and
// cancels the run.
func abortWatch(slos []capacity.SLO, show func(loadgen.Progress), lost **abortReason, abort func(), stderr io.Writer) func(loadgen.Progress) {
	watch := capacity.NewWatch(slos)
	return func(p loadgen.Progress) {
		show(p)
		if *lost != nil {
			return
		}
		if err := watch.Add(p.Logs, p.Pages, p.Failed, p.Planned); err != nil {
			fmt.Fprintf(stderr, "aspstate load: --abort-on-fail: %v\n", err)
			return
		}
		if s, why, ok := watch.Lost(); ok {
			*lost = &abortReason{slo: s.Text, why: why}
			abort()
		}
	}
}

// judgeThresholds evaluates the objectives on the run and marks the one an
// --abort-on-fail stopped it for.
func judgeThresholds(run *results.Run, slos []capacity.SLO, lost *abortReason) error {
	if len(slos) > 0 {
		var err error
		if run.Objectives, err = capacity.Evaluate(run, slos); err != nil {
			return err
		}
	}
	if lost != nil {
		for i := range run.Objectives {
			if run.Objectives[i].Text == lost.slo {
				run.Objectives[i].Aborted = true
			}
		}
		run.Failure = fmt.Sprintf("aborted: threshold %q broken beyond recovery (%s)", lost.slo, lost.why)
	}
	return nil
}

// loadVerdict is the exit code of a finished run; interrupted says Ctrl-C
// stopped it.
func loadVerdict(run *results.Run, interrupted bool, stderr io.Writer) int {
	broken := 0
	for _, o := range run.Objectives {
		if !o.Pass {
			broken++
		}
	}
	switch {
	case interrupted:
		fmt.Fprintln(stderr, "aspstate load: interrupted; the results so far are kept, marked interrupted")
		return 130
	case broken > 0:
		fmt.Fprintf(stderr, "aspstate load: %d of %d thresholds broken\n", broken, len(run.Objectives))
		return 1
	case run.Correctness.Total > 0:
		fmt.Fprintf(stderr, "aspstate load: %d correctness violations\n", run.Correctness.Total)
		return 1
	case run.Linearizability != nil && run.Linearizability.Violations > 0:
		fmt.Fprintf(stderr, "aspstate load: %d sessions are not linearizable\n", run.Linearizability.Violations)
		return 1
	case run.Failure != "":
		return 1
	case run.Rate.Completed == 0 && !run.Interrupted:
		fmt.Fprintln(stderr, "aspstate load: no page request completed")
		return 1
	}
	return 0
}
