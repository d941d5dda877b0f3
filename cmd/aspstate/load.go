package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/loadgen/capacity"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
	"golang.org/x/term"
)

// targetList is a repeatable --target flag.
type targetList []string

func (t *targetList) String() string { return strings.Join(*t, ",") }
func (t *targetList) Set(v string) error {
	*t = append(*t, v)
	return nil
}

// runLoad implements `aspstate load`.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("load", "--scenario NAME|FILE [flags]",
		"Replay a web-farm scenario against a state server (open model: latency from the intended\n"+
			"start, coordinated omission corrected) and write result.json, .hlog files and summary.txt.\n"+
			"Several --target values are partitions. --threshold checks an objective at the end of the run\n"+
			"('page-state p99 < 50ms', 'op p99 < 10ms', 'errors < 0.1%'); --abort-on-fail stops the run once one\n"+
			"is broken beyond recovery, keeping what was recorded. Ctrl-C stops the run and keeps its results,\n"+
			"marked interrupted. Exit 0 ok, 1 a broken threshold, correctness violations or run failure,\n"+
			"2 usage or target error, 130 interrupted.", stderr)
	var targets targetList
	scenario := fs.String("scenario", "", "builtin scenario name or YAML file (see --list)")
	fs.Var(&targets, "target", "state server: "+target.Syntax+" (repeat for partitions; default inproc)")
	rate := fs.Float64("rate", 0, "mean page rate in pages/s (scales the scenario's rate shape; 0 = the scenario's)")
	duration := fs.Duration("duration", 0, "run length (0 = the scenario's)")
	out := fs.String("out", "", "result directory (default results/runs/<scenario>-<timestamp>)")
	minute := fs.Duration("minute", 0, "protocol minute of an inproc target (time scale), e.g. 600ms; 0 = 1m")
	container := addContainerFlags(fs)
	list := fs.Bool("list", false, "list the builtin scenarios and exit")
	closed := fs.Bool("closed-loop", false, "closed-loop saturation: --connections users back to back (measures capacity, not an offered rate)")
	conns := fs.Int("connections", 16, "closed-loop users")
	workers := fs.Int("workers", 1024, "open model: most pages in progress at once")
	steady := fs.Bool("steady-start", false, "open model: start from a running farm's steady state — write the sessions it holds mid-life\n"+
		"(rate × mean think time, or one per user) before the schedule, unmeasured; default: an empty store, where\n"+
		"for the first think times most pages create their sessions")
	seed := fs.Uint64("seed", 1, "seed of the plan (session lengths, page kinds, Poisson arrivals; session ids are random in every run)")
	checkLin := fs.Bool("check-linearizability", false, "record every session's protocol operations and check them for linearizability against\n"+
		"PROTOCOL.md c.1–c.4 (porcupine); a violation fails the run (HTML of one failing session in the result directory)")
	var faults faultFlags
	fs.Var(&faults, "fault", "add a fault to the scenario's timeline (repeatable): "+faultFlagSyntax)
	faultProxy := fs.Bool("fault-proxy", false, "route the load through the in-process fault proxy even without network faults (on whenever there is one)")
	shardFlag := fs.String("shard", "", "run shard I/N of the farm: its share of the web servers and rate (auto/N: JOB_COMPLETION_INDEX+1); merge the shards with aspstate merge")
	sourceAddrs := fs.String("source-addrs", "", "bind emulated web server i to its own local address, from a range (127.0.0.2-127.0.0.9)\n"+
		"or a prefix (127.0.0.0/28), so a capture shows a farm of distinct clients; default: the system's choice")
	var thresholds sloList
	fs.Var(&thresholds, "threshold", "objective checked at the end of the run, e.g. 'page-state p99 < 50ms', 'op p99 < 10ms', 'errors < 0.1%'\n"+
		"(repeatable; syntax of aspstate plan --slo); a broken one exits 1")
	abortOnFail := fs.Bool("abort-on-fail", false, "stop the run as soon as a --threshold is broken beyond recovery (k6's abortOnFail), keeping what was recorded")
	startAt := fs.String("start-at", "", "start the schedule at this time (RFC 3339, Unix seconds or +DURATION); give every shard the same")
	replay := addTraceLoadFlags(fs)
	if done, code := parseFlags(fs, args, false); done {
		return code
	}
	if err := replay.check(fs); err != nil {
		return usageError(stderr, "load", "%v", err)
	}
	if *list {
		for _, info := range scenarios.Builtin() {
			fmt.Fprintf(stdout, "%-20s %s\n", info.Name, info.Description)
		}
		return 0
	}
	if replay.set() && (*scenario != "" || *closed || *steady || *rate != 0) {
		return usageError(stderr, "load", "--trace replays a capture: drop --scenario, --closed-loop, --steady-start and --rate (use --speed and --copies)")
	}
	if *scenario == "" && !replay.set() {
		return usageError(stderr, "load", "--scenario is required (a builtin name from --list, or a YAML file)")
	}
	if *steady && *closed {
		return usageError(stderr, "load", "--steady-start applies to the open model: closed-loop users run their sessions back to back and create them as they go; drop one of the two")
	}
	var sc *scenarios.Scenario
	var err error
	var asReplay func(*loadgen.Config)
	if replay.set() {
		var code int
		if sc, asReplay, code = replay.replay(ctx, stderr); code != 0 {
			return code
		}
	} else if sc, err = scenarios.Load(*scenario); err != nil {
		fmt.Fprintf(stderr, "aspstate load: %v\n", err)
		return 2
	}
	slos, err := capacity.ParseSLOs(thresholds)
	if err == nil {
		err = capacity.CheckScenario(slos, sc)
	}
	if err != nil {
		return usageError(stderr, "load", "%s", strings.ReplaceAll(err.Error(), "--slo", "--threshold"))
	}
	if *abortOnFail && len(slos) == 0 {
		return usageError(stderr, "load", "--abort-on-fail needs at least one --threshold to watch")
	}
	if *minute != 0 && *minute < 60*time.Millisecond {
		return usageError(stderr, "load", "--minute %s: want at least 60ms", *minute)
	}
	sc.Faults = append(sc.Faults, faults...)
	var shard loadgen.Shard
	if *shardFlag != "" {
		if shard, err = parseShardFlag(*shardFlag); err != nil {
			return usageError(stderr, "load", "%v", err)
		}
	}
	var start time.Time
	if *startAt != "" {
		if start, err = parseStartAt(*startAt, time.Now()); err != nil {
			return usageError(stderr, "load", "%v", err)
		}
	}
	var sources []netip.Addr
	if *sourceAddrs != "" {
		if sources, err = loadgen.ParseSourceAddrs(*sourceAddrs); err != nil {
			return usageError(stderr, "load", "--source-addrs: %v", err)
		}
	}
	if len(targets) == 0 {
		targets = targetList{"inproc"}
	}
	var specs []target.Spec
	for _, t := range targets {
		spec, err := target.Parse(t)
		if err != nil {
			return usageError(stderr, "load", "%v", err)
		}
		specs = append(specs, spec)
	}
	generatorGC(specs)
	if *minute != 0 {
		for _, s := range specs {
			if s.Kind != target.KindInProc {
				return usageError(stderr, "load", "--minute applies only to inproc targets (target %s has its own clock)", s)
			}
		}
	}

	var started []target.Target
	defer func() {
		for _, t := range started {
			t.Close()
		}
	}()
	topts := target.Options{Minute: *minute, Log: stderr}
	if err := container.apply(&topts); err != nil {
		return usageError(stderr, "load", "%v", err)
	}
	for _, spec := range specs {
		t, err := target.Start(ctx, spec, topts)
		if err != nil {
			fmt.Fprintf(stderr, "aspstate load: %v\n", err)
			return 2
		}
		started = append(started, t)
	}
	if err := checkFaultCapabilities(sc.Faults, started); err != nil {
		return usageError(stderr, "load", "%v", err)
	}
	cfg := loadgen.Config{
		Scenario: sc, Rate: *rate, Duration: *duration, Minute: *minute, ClosedLoop: *closed,
		Connections: *conns, Workers: *workers, Seed: *seed, Faults: targetFaults(started),
		FaultProxy: *faultProxy, Shard: shard, StartAt: start, SteadyStart: *steady, Log: stderr,
		Addr:        func(i int) string { return started[i].Addr() },
		SourceAddrs: sources,
	}
	for _, t := range started {
		cfg.Targets = append(cfg.Targets, t.Addr())
		in := t.Info()
		cfg.TargetInfo = append(cfg.TargetInfo, results.Target{Spec: in.Spec, Kind: in.Kind, Addr: in.Addr, Description: in.Description})
	}
	if asReplay != nil {
		asReplay(&cfg)
	}
	v, rev := buildVersion()
	cfg.Harness = results.Harness{Version: v, Revision: rev}
	if err := cfg.Validate(); err != nil {
		return usageError(stderr, "load", "%v", err)
	}
	cfg.Progress = progressPrinter(stderr)
	// --abort-on-fail: the collector hands every interval to a Watch; a
	// threshold lost for good cancels the run, which then ends as an
	// interrupted one does, its results kept.
	runCtx, abort := context.WithCancel(ctx)
	defer abort()
	var lost *abortReason
	if *abortOnFail {
		watch, show := capacity.NewWatch(slos), cfg.Progress
		cfg.Progress = func(p loadgen.Progress) {
			show(p)
			if lost != nil {
				return
			}
			if err := watch.Add(p.Logs, p.Pages, p.Failed, p.Planned); err != nil {
				fmt.Fprintf(stderr, "aspstate load: --abort-on-fail: %v\n", err)
				return
			}
			if s, why, ok := watch.Lost(); ok {
				lost = &abortReason{slo: s.Text, why: why}
				abort()
			}
		}
	}
	if *checkLin {
		cfg.History = loadgen.NewHistory(0)
	}

	dir := *out
	if dir == "" {
		dir = filepath.Join("results", "runs", sc.Name+"-"+time.Now().Format("20060102-150405"))
	}
	run, err := loadgen.Run(runCtx, cfg)
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintln(stderr) // end the progress line
	}
	if err != nil {
		fmt.Fprintf(stderr, "aspstate load: %v\n", err)
		return 1
	}
	if cfg.History != nil {
		lin, err := cfg.History.Check(ctx, loadgen.CheckOptions{Minute: time.Duration(run.Config.Minute),
			Visualization: filepath.Join(dir, "linearizability.html")})
		if err != nil && ctx.Err() == nil { // an interrupted check keeps its partial verdict
			fmt.Fprintf(stderr, "aspstate load: linearizability check: %v\n", err)
			return 1
		}
		run.Linearizability = lin
	}
	if len(slos) > 0 {
		if run.Objectives, err = capacity.Evaluate(run, slos); err != nil {
			fmt.Fprintf(stderr, "aspstate load: thresholds: %v\n", err)
			return 1
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
	if err := results.Write(dir, run); err != nil {
		fmt.Fprintf(stderr, "aspstate load: writing results: %v\n", err)
		return 1
	}
	results.Summary(stdout, run)
	fmt.Fprintf(stdout, "\nresults: %s\n", dir)
	broken := 0
	for _, o := range run.Objectives {
		if !o.Pass {
			broken++
		}
	}
	switch {
	case ctx.Err() != nil:
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

// abortReason is the threshold --abort-on-fail stopped a run for.
type abortReason struct{ slo, why string }

// progressPrinter shows progress: one updating line on a terminal, a plain
// line every five intervals otherwise.
func progressPrinter(w io.Writer) func(loadgen.Progress) {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	n := 0
	return func(p loadgen.Progress) {
		rateLabel := "rate"
		if p.ClosedLoop {
			rateLabel = "saturation"
		}
		line := fmt.Sprintf("%s/%s  %s %.0f/s  p99 %s  pages %d  errors %d  lock waits %d",
			p.Elapsed.Round(time.Second), p.Total, rateLabel, p.Rate, p.P99.Round(10*time.Microsecond),
			p.Pages, p.Errors, p.LockWaits)
		if p.Violations > 0 {
			line += fmt.Sprintf("  VIOLATIONS %d", p.Violations)
		}
		if tty {
			fmt.Fprintf(w, "\r\033[K%s", line)
			return
		}
		if n%5 == 0 {
			fmt.Fprintln(w, line)
		}
		n++
	}
}

// targetFaults adapts the targets' optional capabilities to loadgen's fault
// hooks; nil when no target can pause or restart.
func targetFaults(ts []target.Target) loadgen.FaultHooks {
	for _, t := range ts {
		_, p := t.(target.Pauser)
		_, r := t.(target.Restarter)
		if p || r {
			return faultHooks(ts)
		}
	}
	return nil
}

type faultHooks []target.Target

var errNoCapability = errors.New("this target cannot do that")

func (f faultHooks) Pause(ctx context.Context, i int) error {
	if p, ok := f[i].(target.Pauser); ok {
		return p.Pause(ctx)
	}
	return errNoCapability
}

func (f faultHooks) Resume(ctx context.Context, i int) error {
	if p, ok := f[i].(target.Pauser); ok {
		return p.Resume(ctx)
	}
	return errNoCapability
}

func (f faultHooks) Restart(ctx context.Context, i int) error {
	if r, ok := f[i].(target.Restarter); ok {
		return r.Restart(ctx)
	}
	return errNoCapability
}

// Kill makes faultHooks a loadgen.FaultKiller: a kill fault is a real hard
// kill (SIGKILL, docker kill) of targets that can take one.
func (f faultHooks) Kill(ctx context.Context, i int) error {
	if k, ok := f[i].(target.Killer); ok {
		return k.Kill(ctx)
	}
	return errNoCapability
}
