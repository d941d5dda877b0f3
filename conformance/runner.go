package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/formatter"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	"github.com/aspstate/aspstate/servers/stateserver"
	"github.com/aspstate/aspstate/servers/target"
)

// Levels of a rule.
const (
	// LevelMust: normative, and what Microsoft's service does, backed by a
	// capture, the managed source, the spec or a KB article.
	LevelMust = "must"
	// LevelRef: what Microsoft's service does where the spec is silent or
	// wrong (REF), or where its native layer is not known for sure.
	LevelRef = "ref"
	// LevelAdvice: what a robust server should do where Microsoft's
	// behaviour is unknown or inferred (UNK, INF: the native parser's
	// leniency, pipelining, limits, closing). A failure is reported but does
	// not fail the run.
	LevelAdvice = "advice"
	// LevelClient: the client side: the project's ASP.NET client emulation.
	LevelClient = "client"
)

// AllLevels lists the levels in the order they are reported.
var AllLevels = []string{LevelMust, LevelRef, LevelAdvice, LevelClient}

// DefaultInProcMinute is the protocol minute of the in-process reference
// server when the user gives none: scaled so the timing rules take seconds.
const DefaultInProcMinute = 600 * time.Millisecond

// Config is one conformance run against one target.
type Config struct {
	// Target is the running server under test.
	Target target.Target
	// Minute is the target's protocol minute (its time scale); timing rules
	// derive every wait and window from it.
	Minute time.Duration
	// Levels selects rules by level (empty = all).
	Levels []string
	// Rules selects rules by id glob ("*" matches anything, "/" is accepted
	// for the "-" after the section); empty = all.
	Rules []string
	// LabelFilter is a Ginkgo label filter applied on top, e.g. "!slow".
	LabelFilter string
	// Deviations maps rule ids to the reason the target is known to differ:
	// such a rule that fails is reported as a deviation, not a failure.
	Deviations map[string]string
	// Seed orders the specs randomly; 0 picks one from the clock.
	Seed int64
	// Progress, when set, is called once per rule as it finishes.
	Progress func(RuleResult)
	// GinkgoOutput receives Ginkgo's own reporter output (nil = discarded).
	GinkgoOutput io.Writer
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Target == nil {
		errs = append(errs, errors.New("no target: start one with target.Start"))
	}
	if c.Minute <= 0 {
		errs = append(errs, fmt.Errorf("minute %v must be positive (the target's protocol minute, e.g. 1m)", c.Minute))
	}
	for _, l := range c.Levels {
		if !slices.Contains(AllLevels, l) {
			errs = append(errs, fmt.Errorf("unknown level %q; use %s", l, strings.Join(AllLevels, ",")))
		}
	}
	for _, g := range c.Rules {
		if len(MatchRules(g)) == 0 {
			errs = append(errs, fmt.Errorf("rule pattern %q matches no rule; see the rule list (aspstate conform --list)", g))
		}
	}
	if c.LabelFilter != "" {
		if _, err := types.ParseLabelFilter(c.LabelFilter); err != nil {
			errs = append(errs, fmt.Errorf("label filter %q: %s", c.LabelFilter, labelFilterError(err)))
		}
	}
	for id := range c.Deviations {
		if _, ok := ruleByID(NormalizeID(id)); !ok {
			errs = append(errs, fmt.Errorf("deviation for unknown rule %q; see the rule list (aspstate conform --list)", id))
		}
	}
	return errors.Join(errs...)
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m|\\{\\{/?[a-z]*\\}\\}")

// labelFilterError turns Ginkgo's coloured, multi-line parse error into one line.
func labelFilterError(err error) string {
	var ge types.GinkgoError
	if errors.As(err, &ge) {
		return strings.Join(strings.Fields(ansi.ReplaceAllString(ge.Heading+": "+ge.Message, "")), " ")
	}
	return strings.Join(strings.Fields(ansi.ReplaceAllString(err.Error(), "")), " ")
}

func firstLineOf(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// NormalizeID turns a user-written rule id into the catalogue form: a
// leading "rule:" is dropped and the "/" that the issue text uses between
// section and name ("3.1.5.4/release-wrong") becomes the "-" Ginkgo labels
// allow ("3.1.5.4-release-wrong").
func NormalizeID(s string) string {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "rule:"))
	return strings.ReplaceAll(s, "/", "-")
}

// globRegexp compiles a rule glob: "*" matches any run of characters, "?"
// one character, everything else itself.
func globRegexp(glob string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range NormalizeID(glob) {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// MatchRules returns the ids of the catalogue rules that glob matches.
func MatchRules(glob string) []string {
	re := globRegexp(glob)
	var out []string
	for _, r := range Catalogue() {
		if re.MatchString(r.ID) {
			out = append(out, r.ID)
		}
	}
	return out
}

// Selects reports whether c's levels and rule globs select rule r (the
// label filter aside).
func (c Config) Selects(r RuleInfo) bool { return c.selector()(r.ID, r.Level) }

// selector returns the rule filter for c's levels and globs.
func (c Config) selector() func(id, level string) bool {
	res := make([]*regexp.Regexp, len(c.Rules))
	for i, g := range c.Rules {
		res[i] = globRegexp(g)
	}
	return func(id, level string) bool {
		if len(c.Levels) > 0 && !slices.Contains(c.Levels, level) {
			return false
		}
		if len(res) == 0 {
			return true
		}
		for _, re := range res {
			if re.MatchString(id) {
				return true
			}
		}
		return false
	}
}

// InProcServerConfig is the reference server configuration the suite uses
// for the inproc target: loopback on a free port, the given minute, and an
// idle timeout short enough that the idle-connection rule sees a close.
func InProcServerConfig(minute time.Duration) stateserver.Config {
	cfg := stateserver.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Minute = minute
	cfg.IdleTimeout = idleWindow(minute) / 2
	return cfg
}

var ran atomic.Bool

// ErrAlreadyRan is returned by a second Run in one process: Ginkgo runs its
// spec tree once per process. Run each target in its own process.
var ErrAlreadyRan = errors.New("conformance: the suite already ran in this process; run each target in its own process")

// failRecorder is the testing.T stand-in RunSpecs needs.
type failRecorder struct{ failed atomic.Bool }

// Fail records that the suite failed.
func (f *failRecorder) Fail() { f.failed.Store(true) }

// Run runs the suite once against cfg.Target and returns the report. It can
// be called once per process (ErrAlreadyRan otherwise). Rule failures are in
// the report, not the error; the error is for a configuration that cannot run.
func Run(ctx context.Context, cfg Config) (*RunReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !ran.CompareAndSwap(false, true) {
		return nil, ErrAlreadyRan
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000
	}
	e := newEnv(ctx, cfg.Target, cfg.Minute, cfg.selector())
	col := &collector{env: e, cfg: cfg, rules: map[string]*RuleResult{}, done: map[string]int{}}
	e.define(col.collect)

	gomega.RegisterFailHandler(ginkgo.Fail)
	suiteConfig, _ := ginkgo.GinkgoConfiguration()
	suiteConfig.RandomSeed = seed
	suiteConfig.RandomizeAllSpecs = true
	suiteConfig.LabelFilter = cfg.LabelFilter
	suiteConfig.FocusStrings, suiteConfig.SkipStrings = nil, nil
	suiteConfig.FailFast = false
	suiteConfig.DryRun = false
	suiteConfig.Timeout = 24 * time.Hour
	suiteConfig.PollProgressAfter = 0
	reporterConfig := types.ReporterConfig{NoColor: true, Succinct: true}
	out := cfg.GinkgoOutput
	if out == nil {
		out = io.Discard
	}
	// Ginkgo's default reporter writes to this package variable; the suite
	// prints its own per-rule lines instead.
	saved := formatter.ColorableStdOut
	formatter.ColorableStdOut = out
	start := time.Now()
	ginkgo.RunSpecs(&failRecorder{}, "MS-ASP conformance", suiteConfig, reporterConfig)
	formatter.ColorableStdOut = saved

	rep := &RunReport{
		Format:      ReportFormat,
		Target:      cfg.Target.Info(),
		Minute:      cfg.Minute.String(),
		Seed:        seed,
		LabelFilter: cfg.LabelFilter,
		Levels:      cfg.Levels,
		RuleGlobs:   cfg.Rules,
		Started:     start.UTC(),
		Duration:    Millis(time.Since(start)),
	}
	rep.Rules, rep.NotRun = col.results()
	rep.Interrupted = ctx.Err() != nil || slices.ContainsFunc(rep.Rules, func(rr RuleResult) bool { return rr.Result == ResultInterrupted })
	rep.count()
	return rep, nil
}

// collector turns Ginkgo spec reports into rule results as specs finish.
type collector struct {
	env   *env
	cfg   Config
	mu    sync.Mutex
	rules map[string]*RuleResult
	done  map[string]int
	order []string
}

func (c *collector) collect(r types.SpecReport) {
	labels := r.Labels()
	id := labelValue(labels, "rule")
	if id == "" {
		return
	}
	sr := SpecResult{
		Text:     r.LeafNodeText,
		State:    r.State.String(),
		Duration: Millis(r.RunTime),
	}
	switch {
	case r.State == types.SpecStateInterrupted || r.State.Is(types.SpecStateFailureStates) && c.env.runCtx.Err() != nil:
		// Stopped by the run's cancellation or Ginkgo's own interrupt
		// handler (both see Ctrl-C), not by the server.
		sr.State = ResultInterrupted
		sr.Failure = strings.TrimSpace(r.Failure.Message)
	case r.State.Is(types.SpecStateFailureStates):
		sr.Failure = strings.TrimSpace(r.Failure.Message)
		for _, af := range r.AdditionalFailures {
			sr.Failure += "\n\nalso: " + strings.TrimSpace(af.Failure.Message)
		}
		sr.Location = r.Failure.Location.String()
		sr.Transcript = c.env.rec.render()
	case r.State.Is(types.SpecStateSkipped):
		sr.Failure = strings.TrimSpace(r.Failure.Message) // the Skip reason; empty when filtered out
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rr, ok := c.rules[id]
	if !ok {
		info, _ := ruleByID(id)
		rr = &RuleResult{ID: id, Level: info.Level, Description: info.Description, Section: info.Section, Timing: info.Timing}
		c.rules[id] = rr
		c.order = append(c.order, id)
	}
	rr.Specs = append(rr.Specs, sr)
	rr.Duration += sr.Duration
	c.done[id]++
	if c.done[id] == c.env.counts[id] {
		rr.finish(c.cfg.Deviations)
		if c.cfg.Progress != nil && rr.Result != ResultNotRun {
			c.cfg.Progress(*rr)
		}
	}
}

// results returns the finished rules in catalogue order, and the ids of the
// rules the label filter left out.
func (c *collector) results() (out []RuleResult, notRun []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pos := map[string]int{}
	for i, r := range Catalogue() {
		pos[r.ID] = i
	}
	ids := slices.Clone(c.order)
	sort.SliceStable(ids, func(i, j int) bool {
		pi, oki := pos[ids[i]]
		pj, okj := pos[ids[j]]
		if oki != okj {
			return oki
		}
		return pi < pj
	})
	for _, id := range ids {
		rr := c.rules[id]
		if rr.Result == "" {
			rr.finish(c.cfg.Deviations)
		}
		if rr.Result == ResultNotRun {
			notRun = append(notRun, id)
			continue
		}
		out = append(out, *rr)
	}
	return out, notRun
}

// finish sets the rule's result from its specs: failed if any failed (a
// deviation when the deviations file names it), skipped if all were skipped
// for a reason, not run if all were filtered out, passed otherwise.
func (rr *RuleResult) finish(deviations map[string]string) {
	failed, skipped, filtered, interrupted := 0, 0, 0, 0
	var reasons []string
	for _, s := range rr.Specs {
		switch s.State {
		case "passed":
		case ResultInterrupted:
			interrupted++
		case "skipped":
			if s.Failure == "" || strings.HasPrefix(s.Failure, cancelledSkip) {
				filtered++
			} else {
				skipped++
				if !slices.Contains(reasons, s.Failure) {
					reasons = append(reasons, s.Failure)
				}
			}
		case "pending":
			filtered++
		default:
			failed++
		}
	}
	n := len(rr.Specs)
	switch {
	case failed > 0:
		rr.Result = ResultFailed
		for id, why := range deviations {
			if NormalizeID(id) == rr.ID {
				rr.Result, rr.Reason = ResultDeviation, why
			}
		}
	case interrupted > 0:
		rr.Result = ResultInterrupted
	case filtered == n:
		rr.Result = ResultNotRun
	case skipped+filtered == n:
		rr.Result, rr.Reason = ResultSkipped, strings.Join(reasons, "; ")
	default:
		rr.Result = ResultPassed
	}
}
