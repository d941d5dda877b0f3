package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/aspstate/aspstate/conformance"
	"github.com/aspstate/aspstate/servers/target"
)

// conformSelf returns the program to re-execute for one target of a matrix
// run and the arguments that go before "conform". Tests replace it.
var conformSelf = func() (string, []string, error) {
	exe, err := os.Executable()
	return exe, nil, err
}

// splitList splits comma-separated flag values, dropping empty items.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// conformOptions are the parsed flags of aspstate conform.
type conformOptions struct {
	targets      []target.Spec
	minute       time.Duration
	minuteSet    bool
	labelFilter  string
	levels       []string
	rules        []string
	list         bool
	deviations   map[string]string
	deviationsAt string
	junit, json  string
	html, out    string
	seed         int64
	readyTimeout time.Duration
	child        bool
	container    *containerFlags
	raw          conformRaw

	rawTargets, rawLevels, rawRules []string
}

// conformRaw keeps the flag values as given, to pass them on to children.
type conformRaw struct {
	minute, levels, rules, labelFilter, deviations, readyTimeout string
}

const conformAbout = `Check a state server against every [MS-ASP] rule: the cases of the protocol
digest (PROTOCOL.md h), the decision tables c.1–c.5 and a robustness corpus.
The suite is compiled in: no Go toolchain is needed. Several --target flags run
the suite against each (in its own process) and print a rules × targets matrix.

Rules have a level: must (normative, and what Microsoft's service does, backed
by a capture, its source, the spec or a KB article), ref (what Microsoft's
service does where the spec is silent or wrong), advice (what a robust server
does where Microsoft's behaviour is unknown; failures do not fail the run) and
client (the project's ASP.NET client emulation). Failures are grouped by root
cause, each with its fix. Rule ids look like
3.1.5.4-release-wrong; "3.1.5.4/release-wrong" is accepted too.

Timing rules (expiry, sliding expiry, lock age, idle connections) take a few
protocol minutes: tell the suite the target's time scale with --minute. A
reference server the harness starts (inproc, docker:reference, exec: of
'aspstate serve') runs with a 600ms minute unless --minute is given; other
targets default to 1m. A short probe checks the target's minute first. With a
minute of 10s or more the timing rules carry the label "slow" and run at once,
each in its own process, beside the others (a 1m run takes about 3 minutes).

Exit status: 0 every selected rule passed (or is a listed deviation, or an
advice rule), 1 a must, ref or client rule failed, 2 bad usage or a target
that could not be started, 130 interrupted (Ctrl-C: the rule running is
marked interrupted and the summary covers the rules that finished).`

func newConformCmd() *cobra.Command {
	o := &conformOptions{}
	c := &cobra.Command{
		Use:   "conform [flags]",
		Short: "check a state server against every [MS-ASP] rule",
		Long:  conformAbout,
		Example: `  # the rules, their levels and what each checks
  aspstate conform --list
  # the normative rules that need no waiting, against the in-process reference server
  aspstate conform --levels must --label-filter '!timing'
  # a server already running, with reports for CI
  aspstate conform --target tcp://127.0.0.1:42424 --rules '3.1.5.4-*' --junit conform.xml --html conform.html`,
		Args: noArgs,
	}
	c.RunE = action(o.run)
	o.addFlags(commandFlags(c))
	return c
}

func (o *conformOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.rawTargets, "target", nil, "server under test, repeatable: "+target.Syntax+" (default inproc)")
	fs.DurationVar(&o.minute, "minute", time.Minute, "the target's protocol minute, as given to 'aspstate serve --minute' (inproc default 600ms)")
	fs.StringVar(&o.labelFilter, "label-filter", "", "Ginkgo label filter, e.g. '!slow' or 'level:must && !timing'")
	fs.StringArrayVar(&o.rawLevels, "levels", nil, "rule levels to run, comma-separated: must,ref,advice,client (default all)")
	fs.StringArrayVar(&o.rawRules, "rules", nil, "rule id globs to run, comma-separated, e.g. '3.1.5.4-*,2.2.3.9-*' (default all)")
	fs.BoolVar(&o.list, "list", false, "list every rule with its level and description, then exit")
	fs.StringVar(&o.deviationsAt, "deviations", "", "YAML file mapping rule id → reason: those failures are reported as deviations")
	fs.StringVar(&o.junit, "junit", "", "write a JUnit XML report to this file")
	fs.StringVar(&o.json, "json", "", "write the JSON report to this file")
	fs.StringVar(&o.html, "html", "", "write a self-contained HTML report (transcripts of failures) to this file")
	fs.StringVar(&o.out, "out", "", "write conformance.json, conformance.xml and conformance.html into this directory")
	fs.Int64Var(&o.seed, "seed", 0, "random order seed (0 = from the clock)")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 30*time.Second, "how long to wait for a tcp/exec/docker target to answer")
	fs.BoolVar(&o.child, "child", false, "internal: one target of a matrix run (live lines only)")
	_ = fs.MarkHidden("child")
	o.container = addContainerFlags(fs)
}

// check validates the flags and fills the parsed fields of o.
func (o *conformOptions) check(fs *pflag.FlagSet) error {
	if err := o.container.apply(&target.Options{}); err != nil {
		return err
	}
	o.minuteSet = fs.Changed("minute")
	o.raw = conformRaw{levels: strings.Join(o.rawLevels, ","), rules: strings.Join(o.rawRules, ","),
		labelFilter: o.labelFilter, deviations: o.deviationsAt}
	if o.minuteSet {
		o.raw.minute = o.minute.String()
	}
	if fs.Changed("ready-timeout") {
		o.raw.readyTimeout = o.readyTimeout.String()
	}
	if len(o.rawTargets) == 0 {
		o.rawTargets = []string{target.KindInProc}
	}
	for _, t := range o.rawTargets {
		spec, err := target.Parse(t)
		if err != nil {
			return fmt.Errorf("--target: %v", err)
		}
		o.targets = append(o.targets, spec)
	}
	if o.minuteSet && o.minute <= 0 {
		return fmt.Errorf("--minute %v must be positive, e.g. 1m or 600ms", o.minute)
	}
	if o.readyTimeout <= 0 {
		return fmt.Errorf("--ready-timeout %v must be positive", o.readyTimeout)
	}
	o.levels, o.rules = splitList(o.rawLevels), splitList(o.rawRules)
	if o.deviationsAt != "" {
		dev, err := readDeviations(o.deviationsAt)
		if err != nil {
			return fmt.Errorf("--deviations: %v", err)
		}
		o.deviations = dev
	}
	return o.checkSelection()
}

// checkSelection checks the rule selection once, before any target starts.
func (o *conformOptions) checkSelection() error {
	probe := conformance.Config{Minute: time.Minute, Levels: o.levels, Rules: o.rules, LabelFilter: o.labelFilter, Deviations: o.deviations}
	err := probe.Validate()
	if err == nil {
		return nil
	}
	var msgs []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, "no target") {
			msgs = append(msgs, line)
		}
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

// run implements aspstate conform.
func (o *conformOptions) run(ctx context.Context, c *cobra.Command, _ []string) int {
	stdout, stderr := c.OutOrStdout(), c.ErrOrStderr()
	if o.list {
		return listRules(stdout)
	}
	if err := o.check(c.Flags()); err != nil {
		return usageError(stderr, "conform", "%v", err)
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano() % 1_000_000
	}
	if len(o.targets) > 1 {
		m, targetErr := conformMatrix(ctx, *o, stdout, stderr)
		return o.finish(m, targetErr, stdout, stderr)
	}
	rep, err := conformOne(ctx, *o, o.targets[0], stdout)
	if err == nil {
		return o.finish(conformance.NewMatrix(rep), false, stdout, stderr)
	}
	fmt.Fprintf(stderr, "aspstate conform: target error: %v\n", err)
	if o.child {
		return 2
	}
	m := conformance.NewMatrix(failedTarget(o.targets[0], err))
	if werr := writeReports(m, *o); werr != nil {
		fmt.Fprintf(stderr, "aspstate conform: %v\n", werr)
	}
	fmt.Fprintln(stdout, m.Summary())
	return 2
}

// finish prints the table, the failures by cause and the summary (not in a
// child), writes the reports and returns the exit code.
func (o *conformOptions) finish(m *conformance.Matrix, targetErr bool, stdout, stderr io.Writer) int {
	if !o.child {
		o.printSummary(m, stdout)
	}
	if err := writeReports(m, *o); err != nil {
		fmt.Fprintf(stderr, "aspstate conform: %v\n", err)
		return 2
	}
	switch {
	case m.Interrupted():
		if !o.child {
			fmt.Fprintln(stdout, "interrupted: the summary above covers the rules that finished")
		}
		return exitInterrupted
	case targetErr:
		return 2
	case m.BlockingFailures() > 0:
		return 1
	}
	return 0
}

// printSummary prints the rules × targets table, each target's failures
// grouped by cause, its minute probe and level summary, and the totals.
func (o *conformOptions) printSummary(m *conformance.Matrix, stdout io.Writer) {
	fmt.Fprintln(stdout)
	m.WriteTable(stdout)
	for _, r := range m.Reports {
		if len(m.Reports) > 1 {
			fmt.Fprintf(stdout, "\n%s:", r.Target.Spec)
		}
		r.WriteFailures(stdout)
		if r.MinuteProbe != "" {
			fmt.Fprintf(stdout, "protocol minute: %s\n", r.MinuteProbe)
		}
		fmt.Fprintf(stdout, "by level: %s\n", r.LevelSummary())
	}
	if _, _, _, deviations := m.Totals(); deviations > 0 {
		fmt.Fprintf(stdout, "deviations: %d (known differences listed in %s)\n", deviations, o.deviationsAt)
	}
	fmt.Fprintln(stdout, m.Summary())
}

// exitInterrupted is the exit status of a run stopped by Ctrl-C (128+SIGINT).
const exitInterrupted = 130

// listRules prints the catalogue.
func listRules(w io.Writer) int {
	rules := conformance.Catalogue()
	for _, r := range rules {
		timing := ""
		if r.Timing {
			timing = " [timing]"
		}
		fmt.Fprintf(w, "%-42s %-6s %s%s (evidence: %s)\n", r.ID, r.Level, r.Description, timing, r.Evidence)
	}
	n := map[string]int{}
	for _, r := range rules {
		n[r.Level]++
	}
	var parts []string
	for _, l := range conformance.AllLevels {
		parts = append(parts, fmt.Sprintf("%d %s", n[l], l))
	}
	fmt.Fprintf(w, "%d rules (%s)\n", len(rules), strings.Join(parts, ", "))
	return 0
}

// readDeviations reads a YAML map of rule id → reason.
func readDeviations(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var dev map[string]string
	if err := yaml.Unmarshal(b, &dev); err != nil {
		return nil, fmt.Errorf("%s: want a YAML map of rule id to reason (e.g. `3.1.5.4-release-wrong: \"why\"`): %v", path, err)
	}
	for id, why := range dev {
		if strings.TrimSpace(why) == "" {
			return nil, fmt.Errorf("%s: rule %s has no reason; say why the target differs", path, id)
		}
	}
	return dev, nil
}

// minuteFor returns the protocol minute for a target: without --minute, a
// reference server the harness starts itself (inproc, docker:reference, or
// an exec: target running this very binary's serve command) gets the scaled
// DefaultInProcMinute, since the harness sets its minute; any other target
// is assumed to run with the real minute.
func minuteFor(o conformOptions, spec target.Spec) time.Duration {
	if !o.minuteSet && startsOwnServer(spec) {
		return conformance.DefaultInProcMinute
	}
	return o.minute
}

// startsOwnServer reports whether spec is a reference server the harness
// starts and can give a minute: inproc, docker:reference, or exec: of this
// binary's (or an "aspstate" binary's) serve command.
func startsOwnServer(spec target.Spec) bool {
	switch spec.Kind {
	case target.KindInProc:
		return true
	case target.KindDocker:
		return spec.Image == "reference"
	case target.KindExec:
		return len(spec.Command) > 1 && spec.Command[1] == "serve" && isSelf(spec.Command[0])
	}
	return false
}

// isSelf reports whether path names this executable or an aspstate binary.
func isSelf(path string) bool {
	if filepath.Base(path) == "aspstate" {
		return true
	}
	self, err := os.Executable()
	if err != nil {
		return false
	}
	a, errA := filepath.EvalSymlinks(self)
	b, errB := exec.LookPath(path)
	if errA != nil || errB != nil {
		return false
	}
	b, errB = filepath.EvalSymlinks(b)
	return errB == nil && a == b
}

// withMinute gives an exec: target of this binary's serve command the
// minute, unless its command line sets one.
func withMinute(spec target.Spec, minute time.Duration) target.Spec {
	if spec.Kind != target.KindExec || !startsOwnServer(spec) || slices.ContainsFunc(spec.Command, func(a string) bool {
		return a == "--minute" || strings.HasPrefix(a, "--minute=")
	}) {
		return spec
	}
	spec.Command = append(slices.Clone(spec.Command), "--minute", minute.String())
	return spec
}

// conformOne starts one target and runs the suite against it in this process.
func conformOne(ctx context.Context, o conformOptions, spec target.Spec, stdout io.Writer) (*conformance.RunReport, error) {
	minute := minuteFor(o, spec)
	opts := target.Options{Minute: minute, ReadyTimeout: o.readyTimeout}
	if err := o.container.apply(&opts); err != nil {
		return nil, err
	}
	if spec.Kind == target.KindInProc {
		cfg := conformance.InProcServerConfig(minute)
		opts.Server = &cfg
	}
	tgt, err := target.Start(ctx, withMinute(spec, minute), opts)
	if err != nil {
		return nil, err
	}
	defer tgt.Close()
	info := tgt.Info()
	if !o.child {
		fmt.Fprintf(stdout, "conformance: %s (%s) at %s, protocol minute %v, seed %d\n", info.Spec, info.Description, info.Addr, minute, o.seed)
		if minute >= conformance.SlowMinute {
			fmt.Fprintf(stdout, "timing rules wait several protocol minutes each and are labelled slow; skip them with --label-filter '!slow'\n")
		}
	}
	cfg := conformance.Config{
		Target: tgt, Minute: minute, Levels: o.levels, Rules: o.rules, LabelFilter: o.labelFilter,
		Deviations: o.deviations, Seed: o.seed,
	}
	// The minute probe runs here rather than inside Run, so that a target
	// running with another minute is named before minutes of timing rules.
	var probe string
	if !o.child {
		if probe, _ = conformance.ProbeMinute(ctx, tgt.Addr(), minute); probe != "" {
			fmt.Fprintf(stdout, "protocol minute: %s; the timing rules will fail for that reason\n", probe)
		}
	}
	out := &lockedWriter{w: stdout}
	cfg.Progress = func(rr conformance.RuleResult) { fmt.Fprintln(out, conformance.LiveLine(rr)) }
	var timing *timingRun
	if rules := timingRules(o, minute); len(rules) > 0 {
		fmt.Fprintf(stdout, "%d timing rules run at once, each in its own process, beside the others\n", len(rules))
		if timing, err = startTiming(ctx, o, tgt.Addr(), minute, rules, out); err != nil {
			return nil, err
		}
		cfg.LabelFilter = withoutTiming(cfg.LabelFilter)
	}
	rep, err := conformance.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rep.MinuteProbe = probe
	if timing != nil {
		rep.LabelFilter = o.labelFilter
		if err := timing.wait(rep); err != nil {
			return nil, err
		}
		rep.Duration = conformance.Millis(time.Since(rep.Started))
	}
	return rep, nil
}

// failedTarget is the report of a target that could not be tested.
func failedTarget(spec target.Spec, err error) *conformance.RunReport {
	return &conformance.RunReport{Format: conformance.ReportFormat, Started: time.Now().UTC(),
		Target: target.Info{Spec: spec.String(), Kind: spec.Kind}, Error: err.Error()}
}

// conformMatrix runs the suite against each target in a child process (the
// suite runs once per process), one after another, streaming each child's
// live lines prefixed with its column, then merges the reports.
func conformMatrix(ctx context.Context, o conformOptions, stdout, stderr io.Writer) (*conformance.Matrix, bool) {
	exe, prefix, err := conformSelf()
	if err != nil {
		fmt.Fprintf(stderr, "aspstate conform: cannot re-run myself for a matrix: %v\n", err)
		return conformance.NewMatrix(), true
	}
	dir, err := os.MkdirTemp("", "aspstate-conform-")
	if err != nil {
		fmt.Fprintf(stderr, "aspstate conform: %v\n", err)
		return conformance.NewMatrix(), true
	}
	defer os.RemoveAll(dir)
	m := conformance.NewMatrix()
	targetErr := false
	for i, spec := range o.targets {
		col := fmt.Sprintf("T%d", i+1)
		fmt.Fprintf(stdout, "%s = %s (protocol minute %v, seed %d)\n", col, spec, minuteFor(o, spec), o.seed)
		out := filepath.Join(dir, col+".json")
		args := childArgs(o, prefix, spec.Raw, out)
		if code, msg := runConformChild(ctx, exe, args, col+" ", stdout); code != 0 && code != 1 {
			fmt.Fprintf(stderr, "%s %s: %s\n", col, spec, msg)
			m.Reports = append(m.Reports, failedTarget(spec, errors.New(msg)))
			targetErr = true
			continue
		}
		child, err := conformance.ReadMatrix(out)
		if err != nil || len(child.Reports) != 1 {
			m.Reports = append(m.Reports, failedTarget(spec, fmt.Errorf("reading the child's report: %v", err)))
			targetErr = true
			continue
		}
		m.Reports = append(m.Reports, child.Reports[0])
	}
	return m, targetErr
}

// runConformChild runs one child conform process, copying its live lines to
// stdout behind prefix. It returns the child's exit code and, for a code
// other than 0 and 1, what went wrong. On cancellation the child gets an
// interrupt, so it can write its partial report.
func runConformChild(ctx context.Context, exe string, args []string, prefix string, stdout io.Writer) (int, string) {
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	var errBuf strings.Builder
	cmd.Stderr = &errBuf
	pipe, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		return -1, err.Error()
	}
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		fmt.Fprintf(stdout, "%s%s\n", prefix, sc.Text())
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	code := 0
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		code = -1
	}
	msg := strings.TrimSpace(errBuf.String())
	if msg == "" && err != nil {
		msg = err.Error()
	}
	return code, msg
}

// childArgs is the command line of a child conform run against spec,
// writing its report to out, with this run's selection and settings.
func childArgs(o conformOptions, prefix []string, spec, out string) []string {
	args := append(append([]string{}, prefix...), "conform", "--child", "--target", spec, "--json", out, "--seed", strconv.FormatInt(o.seed, 10))
	args = append(args, o.container.args()...)
	for _, kv := range [][2]string{{"minute", o.raw.minute}, {"levels", o.raw.levels}, {"rules", o.raw.rules},
		{"label-filter", o.raw.labelFilter}, {"deviations", o.raw.deviations}, {"ready-timeout", o.raw.readyTimeout}} {
		if kv[1] != "" {
			args = append(args, "--"+kv[0], kv[1])
		}
	}
	return args
}

// writeReports writes the requested report files.
func writeReports(m *conformance.Matrix, o conformOptions) error {
	type file struct {
		path  string
		write func(io.Writer) error
	}
	var files []file
	add := func(path string, w func(io.Writer) error) {
		if path != "" {
			files = append(files, file{path, w})
		}
	}
	add(o.json, m.WriteJSON)
	add(o.junit, m.WriteJUnit)
	add(o.html, m.WriteHTML)
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return err
		}
		add(filepath.Join(o.out, "conformance.json"), m.WriteJSON)
		add(filepath.Join(o.out, "conformance.xml"), m.WriteJUnit)
		add(filepath.Join(o.out, "conformance.html"), m.WriteHTML)
	}
	for _, f := range files {
		fh, err := os.Create(f.path)
		if err != nil {
			return err
		}
		werr := f.write(fh)
		if cerr := fh.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("writing %s: %w", f.path, werr)
		}
	}
	return nil
}
