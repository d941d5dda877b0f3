// Package capacity finds how much load a state server sustains within
// service-level objectives, and turns that rate into a capacity sheet in the
// farm's terms.
//
// The search (Search) runs fixed-rate steps of the open model: an exponential
// ramp (Start, Start×Factor, …) until a step fails, then bisection between the
// highest passing and the lowest failing rate until they are within Tolerance
// of each other, then one confirmation run of the answer. A step fails when an
// SLO breaks, when the generator could not keep to its schedule (dropped or
// badly late slots: the figure would not be an offered rate), when the rate
// achieved falls short of the rate offered, or on errors and correctness
// violations (see Judge). A failure that is close to its limits is run once
// more before it counts, so one noisy step does not halve the answer; a
// severe failure is believed at once. The search is bounded by a number of
// steps and by a time budget: a step starts only when it is expected to end
// within the budget.
//
// Steps are run by a Runner: LoadRunner runs real load with the loadgen
// package (a fresh in-process server per step, or a server already running),
// tests use a fake. Knee finds where p99 starts to climb steeply, Sheet turns
// the answer into users, pages per web server, sessions held and memory, and
// Plan carries everything for the text, Markdown, JSON and chart outputs.
package capacity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// StepResult is what one fixed-rate step measured and how it was judged.
type StepResult struct {
	// Index is the step's position in the search, from 0.
	Index int `json:"index"`
	// Phase is "ramp", "ramp-down", "bisect", "retry" or "confirm".
	Phase string `json:"phase"`
	// Rate is the offered (intended) page rate of the step, pages/s.
	Rate float64 `json:"rate"`
	// Times is the multiple of the recorded traffic a replay step offered
	// (aspstate plan --trace; 0 for a scenario's step): the search's
	// variable then, Rate the page rate it came to.
	Times float64 `json:"times,omitempty"`
	// Achieved is the page rate completed over the measured window.
	Achieved float64 `json:"achieved"`
	// Pass is the verdict; Reasons say why a step failed (empty when it
	// passed) and Notes carry remarks that did not fail it.
	Pass    bool     `json:"pass"`
	Reasons []string `json:"reasons,omitempty"`
	Notes   []string `json:"notes,omitempty"`
	// SteadyStart: the step started from the steady state, its sessions
	// seeded before the schedule (loadgen.Config.SteadyStart).
	SteadyStart bool `json:"steady_start,omitempty"`
	// Severe marks a failure far past its limits (not worth a retry).
	Severe bool `json:"severe,omitempty"`
	// GeneratorLimited marks a step the load generator could not keep to its
	// schedule (dropped or badly late slots).
	GeneratorLimited bool `json:"generator_limited,omitempty"`
	// Latency of every page together over the measured window (corrected:
	// from the intended start).
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p99_9_ns"`
	Max  time.Duration `json:"max_ns"`
	// StateP50 and StateP99 are the page-state latency of every page
	// together: the pages' time in state-server calls and lock waits, their
	// emulated execution left out (0 for steps recorded before it was).
	StateP50 time.Duration `json:"state_p50_ns,omitempty"`
	StateP99 time.Duration `json:"state_p99_ns,omitempty"`
	// Pages is the pages completed in the measured window; Window its length.
	Pages  int64         `json:"pages"`
	Window time.Duration `json:"window_ns"`
	// RequestsPerSecond is state-server requests per second in the window.
	RequestsPerSecond float64 `json:"requests_per_s"`
	// ErrorRate is failed pages / pages over the whole step.
	ErrorRate float64 `json:"error_rate"`
	// Schedule figures of the whole step.
	Scheduled int64 `json:"scheduled"`
	Dropped   int64 `json:"dropped"`
	NoWorker  int64 `json:"no_worker"`
	// LateFraction is the share of measured-window pages whose slot started
	// later than the late threshold.
	LateFraction float64 `json:"late_fraction"`
	// Violations is the correctness violations of the step.
	Violations int64 `json:"violations"`
	// SLOs is every SLO checked against the step.
	SLOs []SLOResult `json:"slos,omitempty"`
	// Server holds what the server's own counters said, when it exposes them.
	Server *ServerSample `json:"server,omitempty"`
	// Dir is the step's result directory ("" when not written).
	Dir string `json:"dir,omitempty"`
	// Wall is how long the step took, setup and drain included.
	Wall time.Duration `json:"wall_ns"`
}

// ServerSample is what the server's counters said about one step.
type ServerSample struct {
	// Source names where the figures came from ("in-process Stats",
	// "prometheus http://…").
	Source string `json:"source"`
	// SessionsCreated is the sessions the server created during the step,
	// not counting Seeded.
	SessionsCreated int64 `json:"sessions_created"`
	// Seeded is the sessions written before the step's schedule for its
	// steady start.
	Seeded int64 `json:"seeded,omitempty"`
	// SessionsInStore is the items in the store after the step.
	SessionsInStore int64 `json:"sessions_in_store"`
	// Requests is the requests the server answered during the step (the
	// seeding's PUTs included).
	Requests int64 `json:"requests"`
	// Reference reports that the counters came from the reference server
	// (its in-process Stats, or an endpoint with aspstate_ metrics).
	Reference bool `json:"reference,omitempty"`
	// ResidentBefore and ResidentAfter are the target process's resident
	// memory (process_resident_memory_bytes) before and after the step,
	// 0 when its metrics do not expose it.
	ResidentBefore int64 `json:"resident_before,omitempty"`
	ResidentAfter  int64 `json:"resident_after,omitempty"`
}

// Runner runs one fixed-rate step. index numbers the steps from 0; phase says
// why the step runs (see StepResult.Phase). The Runner fills and judges the
// result (Index and Phase are set by Search). An error stops the search: it
// is for a step that could not run at all, not for a step that failed.
type Runner interface {
	RunStep(ctx context.Context, index int, phase string, rate float64) (StepResult, error)
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, index int, phase string, rate float64) (StepResult, error)

// RunStep calls f.
func (f RunnerFunc) RunStep(ctx context.Context, index int, phase string, rate float64) (StepResult, error) {
	return f(ctx, index, phase, rate)
}

// Options bound and tune the search.
type Options struct {
	// Start is the first rate of the ramp, pages/s (> 0).
	Start float64
	// Factor multiplies the rate at each ramp step (> 1; default 2).
	Factor float64
	// Min is the lowest rate worth trying when even Start fails (default
	// Start / 64); Max is the highest rate tried (default 1e6).
	Min, Max float64
	// Tolerance is the relative width (hi - lo) / hi at which bisection stops
	// (default 0.05).
	Tolerance float64
	// MaxSteps bounds the number of steps (default 20).
	MaxSteps int
	// MaxTime bounds the whole search (default 4m). A step starts only when
	// the time used plus StepCost fits in it.
	MaxTime time.Duration
	// StepCost is the expected wall time of one step; the larger of it and
	// the mean step so far is used for the budget check (required).
	StepCost time.Duration
	// Retries is how many times a failure that is not severe is run again
	// before it counts (default 1; -1 for none).
	Retries int
	// NoConfirm skips the confirmation run of the answer.
	NoConfirm bool
	// Now is the clock (default time.Now); tests pass a fake one.
	Now func() time.Time
	// OnStep, when set, is called after every step.
	OnStep func(StepResult)
	// Times: the rates searched are multiples of recorded traffic (plan
	// --trace). A step's multiple goes into StepResult.Times, and its Rate
	// keeps the page rate the Runner offered.
	Times bool
}

func (o *Options) defaults() error {
	if o.Factor == 0 {
		o.Factor = 2
	}
	if o.Max == 0 {
		o.Max = 1e6
	}
	if o.Min == 0 {
		o.Min = o.Start / 64
	}
	if o.Tolerance == 0 {
		o.Tolerance = 0.05
	}
	if o.MaxSteps == 0 {
		o.MaxSteps = 20
	}
	if o.MaxTime == 0 {
		o.MaxTime = 4 * time.Minute
	}
	if o.Retries == 0 {
		o.Retries = 1
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var errs []error
	if !(o.Start > 0) || math.IsInf(o.Start, 0) {
		errs = append(errs, fmt.Errorf("start rate %v: want a positive rate in pages/s", o.Start))
	}
	if !(o.Factor > 1) || math.IsInf(o.Factor, 0) {
		errs = append(errs, fmt.Errorf("ramp factor %v: want more than 1, e.g. 2", o.Factor))
	}
	if !(o.Min > 0) || o.Min > o.Start {
		errs = append(errs, fmt.Errorf("min rate %v: want a positive rate no higher than the start rate %v", o.Min, o.Start))
	}
	if o.Max < o.Start {
		errs = append(errs, fmt.Errorf("max rate %v is below the start rate %v", o.Max, o.Start))
	}
	if !(o.Tolerance > 0 && o.Tolerance < 1) {
		errs = append(errs, fmt.Errorf("tolerance %v: want a fraction between 0 and 1, e.g. 0.05", o.Tolerance))
	}
	if o.MaxSteps < 1 {
		errs = append(errs, fmt.Errorf("max steps %d: want at least 1", o.MaxSteps))
	}
	if o.MaxTime <= 0 {
		errs = append(errs, fmt.Errorf("max time %s: want a positive duration", o.MaxTime))
	}
	if o.StepCost <= 0 {
		errs = append(errs, fmt.Errorf("step cost %s: want the expected wall time of one step", o.StepCost))
	}
	return errors.Join(errs...)
}

// Stop reasons of an Outcome.
const (
	StopConverged = "converged"        // bisection reached the tolerance
	StopMaxRate   = "max rate reached" // every rate up to Options.Max passed
	StopNoPass    = "nothing passed"   // even Options.Min failed
	StopTime      = "time budget"      // the next step would not fit in MaxTime, or the context's deadline passed
	StopSteps     = "step budget"      // MaxSteps steps were run
	StopCanceled  = "canceled"         // the context ended
)

// Outcome is the result of a search.
type Outcome struct {
	// Steps is every step in the order run.
	Steps []StepResult `json:"steps"`
	// Max is the highest rate that passed and was not contradicted by a
	// failure at or below it (0 when none passed).
	Max float64 `json:"max_rate"`
	// MaxStep is the index in Steps of the step that established Max
	// (-1 when none).
	MaxStep int `json:"max_step"`
	// Upper is the lowest rate that failed (0 when none failed): the answer
	// lies in [Max, Upper).
	Upper float64 `json:"upper_rate"`
	// Stopped says why the search ended (Stop… constants).
	Stopped string `json:"stopped"`
	// Converged reports that the bracket [Max, Upper) reached the tolerance.
	Converged bool `json:"converged"`
	// Elapsed is the wall time of the search.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// errStop ends the search loop with a reason.
type errStop struct{ reason string }

func (e errStop) Error() string { return e.reason }

// searcher is the state of one search.
type searcher struct {
	ctx     context.Context
	r       Runner
	o       Options
	start   time.Time
	out     *Outcome
	ranWall time.Duration
	// Final verdicts by rate (after retries), latest wins: a pass at r
	// overrules earlier failures at or below r, a failure at r overrules
	// earlier passes at or above r. passes maps a rate to its step index,
	// fails to whether the failure was severe.
	passes map[float64]int
	fails  map[float64]bool
}

// bracket returns the highest pass (0, -1 when none) and the lowest failure
// (0 when none).
func (s *searcher) bracket() (lo float64, loStep int, hi float64) {
	loStep = -1
	for r, i := range s.passes {
		if r > lo {
			lo, loStep = r, i
		}
	}
	for r := range s.fails {
		if hi == 0 || r < hi {
			hi = r
		}
	}
	return lo, loStep, hi
}

// Search finds the highest rate the Runner's steps pass (see the package
// comment). It returns an error only for bad options or a Runner error; the
// Outcome is returned in every case with the steps run so far.
func Search(ctx context.Context, r Runner, o Options) (*Outcome, error) {
	out := &Outcome{MaxStep: -1}
	if err := o.defaults(); err != nil {
		return out, err
	}
	s := &searcher{ctx: ctx, r: r, o: o, start: o.Now(), out: out, passes: map[float64]int{}, fails: map[float64]bool{}}
	err := s.run()
	var stop errStop
	if errors.As(err, &stop) {
		out.Stopped, err = stop.reason, nil
	}
	out.Max, out.MaxStep, out.Upper = s.bracket()
	out.Converged = out.Max > 0 && out.Upper > 0 && (out.Upper-out.Max)/out.Upper <= o.Tolerance
	out.Elapsed = o.Now().Sub(s.start)
	return out, err
}

// maxChecks bounds the confirmation runs of the answer and re-checks of the
// failure above it in one search.
const maxChecks = 4

func (s *searcher) run() error {
	checks := 0
	var confirmed, rechecked float64
	for {
		lo, _, hi := s.bracket()
		switch {
		case hi == 0: // nothing failed yet: ramp up
			rate := s.o.Start
			if lo > 0 {
				if lo >= s.o.Max {
					return errStop{StopMaxRate}
				}
				rate = math.Min(lo*s.o.Factor, s.o.Max)
			}
			if err := s.try("ramp", rate); err != nil {
				return err
			}
		case lo == 0: // even the lowest rate tried failed: ramp down
			rate := hi / s.o.Factor
			if rate < s.o.Min {
				return errStop{StopNoPass}
			}
			if err := s.try("ramp-down", rate); err != nil {
				return err
			}
		case (hi-lo)/hi > s.o.Tolerance:
			if err := s.try("bisect", (lo+hi)/2); err != nil {
				return err
			}
		case s.o.NoConfirm || checks >= maxChecks:
			return errStop{StopConverged}
		case confirmed != lo:
			// Run the answer once more: a lucky pass must not stand.
			checks++
			confirmed = lo
			if err := s.try("confirm", lo); err != nil {
				return err
			}
		case rechecked != hi && !s.fails[hi]:
			// The failure above the answer was marginal: check it once
			// more, so two unlucky steps do not cap the answer.
			checks++
			rechecked = hi
			if err := s.try("recheck", hi); err != nil {
				return err
			}
		default:
			return errStop{StopConverged}
		}
	}
}

// try runs a step at rate (and its retries) and records the final verdict.
func (s *searcher) try(phase string, rate float64) error {
	res, err := s.step(phase, rate)
	if err != nil {
		return err
	}
	for i := 0; !res.Pass && !res.Severe && i < s.o.Retries; i++ {
		if res, err = s.step("retry", rate); err != nil {
			return err
		}
	}
	if res.Pass {
		for r := range s.fails {
			if r <= rate {
				delete(s.fails, r)
			}
		}
		s.passes[rate] = res.Index
		return nil
	}
	for r := range s.passes {
		if r >= rate {
			delete(s.passes, r)
		}
	}
	s.fails[rate] = res.Severe
	return nil
}

// ctxStop is the stop reason of an ended context: a deadline is the time
// budget, anything else a cancellation.
func (s *searcher) ctxStop() errStop {
	if errors.Is(s.ctx.Err(), context.DeadlineExceeded) {
		return errStop{StopTime}
	}
	return errStop{StopCanceled}
}

// step runs one step if the budgets allow it.
func (s *searcher) step(phase string, rate float64) (StepResult, error) {
	if s.ctx.Err() != nil {
		return StepResult{}, s.ctxStop()
	}
	n := len(s.out.Steps)
	if n >= s.o.MaxSteps {
		return StepResult{}, errStop{StopSteps}
	}
	cost := s.o.StepCost
	if n > 0 {
		cost = max(cost, s.ranWall/time.Duration(n))
	}
	if s.o.Now().Sub(s.start)+cost > s.o.MaxTime {
		return StepResult{}, errStop{StopTime}
	}
	t0 := s.o.Now()
	res, err := s.r.RunStep(s.ctx, n, phase, rate)
	if err != nil {
		if s.ctx.Err() != nil {
			return StepResult{}, s.ctxStop()
		}
		return StepResult{}, fmt.Errorf("step %d at %.1f pages/s: %w", n+1, rate, err)
	}
	if s.ctx.Err() != nil {
		// A step cut short by the end of the context says nothing.
		return StepResult{}, s.ctxStop()
	}
	wall := s.o.Now().Sub(t0)
	s.ranWall += wall
	res.Index, res.Phase = n, phase
	if s.o.Times {
		res.Times = rate
	} else {
		res.Rate = rate
	}
	if res.Wall == 0 {
		res.Wall = wall
	}
	s.out.Steps = append(s.out.Steps, res)
	if s.o.OnStep != nil {
		s.o.OnStep(res)
	}
	return res, nil
}

// Curve returns the steps as a latency-throughput curve: one point per
// distinct offered rate, in rate order, with the later run of a rate that was
// retried or confirmed.
func Curve(steps []StepResult) []StepResult {
	byRate := map[float64]StepResult{}
	for _, st := range steps {
		byRate[st.Rate] = st
	}
	out := make([]StepResult, 0, len(byRate))
	for _, st := range byRate {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b StepResult) int {
		switch {
		case a.Rate < b.Rate:
			return -1
		case a.Rate > b.Rate:
			return 1
		}
		return 0
	})
	return out
}
