package loadgen

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/aspstate/aspstate/scenarios"
)

// Schedule yields the intended start times of page requests, fixed in
// advance by the rate shape and a seed: it never looks at replies (open
// model). Times are offsets from the start of the run, in increasing order,
// all before the run's duration.
//
// The rate r(t) is piecewise linear (constant, ramp, steps). Even spacing puts
// arrival i where the cumulative rate Λ(t) reaches i; the Poisson variant puts
// it where Λ reaches the sum of i unit exponentials, which is an
// inhomogeneous Poisson process with intensity r(t).
type Schedule struct {
	segs     []segment
	duration time.Duration
	poisson  bool
	rng      *rand.Rand

	target float64 // Λ value of the next arrival
	seg    int     // segment holding the last arrival
	base   float64 // Λ at the start of seg
}

// segment is a piece of the rate function: from start for dur seconds, the
// rate goes linearly from r0 to r1 (pages per second).
type segment struct {
	start, dur float64
	r0, r1     float64
}

// ShapeName returns the name results use for a rate: constant, ramp, steps,
// with "-poisson" appended for Poisson arrivals.
func ShapeName(r scenarios.Rate) string {
	s := string(r.Shape)
	if s == "" {
		s = string(scenarios.ShapeConstant)
	}
	if r.Poisson {
		s += "-poisson"
	}
	return s
}

// NewSchedule builds the schedule of rate r over d. seed makes Poisson
// arrivals reproducible.
func NewSchedule(r scenarios.Rate, d time.Duration, seed uint64) (*Schedule, error) {
	if d <= 0 {
		return nil, fmt.Errorf("schedule duration %s: must be positive", d)
	}
	total := d.Seconds()
	var segs []segment
	add := func(start, dur, r0, r1 float64) {
		if dur > 0 && start < total {
			if start+dur > total {
				// cut the piece at the end of the run, interpolating the rate
				r1 = r0 + (r1-r0)*(total-start)/dur
				dur = total - start
			}
			segs = append(segs, segment{start, dur, r0, r1})
		}
	}
	switch r.Shape {
	case scenarios.ShapeConstant, "":
		if r.PagesPerSecond <= 0 {
			return nil, fmt.Errorf("constant rate %v pages/s: must be positive", r.PagesPerSecond)
		}
		add(0, total, r.PagesPerSecond, r.PagesPerSecond)
	case scenarios.ShapeRamp:
		if r.From < 0 || r.To < 0 || r.From+r.To <= 0 {
			return nil, fmt.Errorf("ramp from %v to %v pages/s: rates must be >= 0 and not both 0", r.From, r.To)
		}
		over := r.Over.D().Seconds()
		if over <= 0 || over > total {
			over = total
		}
		add(0, over, r.From, r.To)
		add(over, total-over, r.To, r.To)
	case scenarios.ShapeSteps:
		if len(r.Steps) == 0 {
			return nil, errors.New("steps rate has no steps")
		}
		at := 0.0
		for i, s := range r.Steps {
			if s.PagesPerSecond < 0 || s.Duration <= 0 {
				return nil, fmt.Errorf("step %d: rate %v must be >= 0 and duration %s > 0", i+1, s.PagesPerSecond, s.Duration)
			}
			add(at, s.Duration.D().Seconds(), s.PagesPerSecond, s.PagesPerSecond)
			at += s.Duration.D().Seconds()
		}
		last := r.Steps[len(r.Steps)-1].PagesPerSecond
		add(at, total-at, last, last)
	default:
		return nil, fmt.Errorf("rate shape %q: want constant, ramp or steps", r.Shape)
	}
	s := &Schedule{segs: segs, duration: d, poisson: r.Poisson, rng: rand.New(rand.NewPCG(seed, 0x5ced))}
	if s.Expected() <= 0 {
		return nil, errors.New("the rate is zero for the whole run: nothing to schedule")
	}
	s.target = s.step()
	return s, nil
}

// Expected returns Λ(duration): the expected number of arrivals (exact for
// even spacing, up to one).
func (s *Schedule) Expected() float64 {
	sum := 0.0
	for _, g := range s.segs {
		sum += g.area(g.dur)
	}
	return sum
}

// MeanRate returns the mean intended rate, Expected per second.
func (s *Schedule) MeanRate() float64 { return s.Expected() / s.duration.Seconds() }

// area is ∫₀^τ r over the segment.
func (g segment) area(tau float64) float64 {
	k := (g.r1 - g.r0) / g.dur
	return g.r0*tau + k*tau*tau/2
}

// invert returns τ in [0, dur] with area(τ) = x, or false when x is beyond
// the segment.
func (g segment) invert(x float64) (float64, bool) {
	// An arrival exactly at the end of a piece belongs to the next piece
	// (after a zero-rate step it starts the next step).
	if x >= g.area(g.dur)-1e-9 {
		return 0, false
	}
	k := (g.r1 - g.r0) / g.dur
	if math.Abs(k) < 1e-12 {
		if g.r0 <= 0 {
			return 0, false
		}
		return math.Min(x/g.r0, g.dur), true
	}
	disc := g.r0*g.r0 + 2*k*x
	if disc < 0 {
		disc = 0
	}
	tau := (math.Sqrt(disc) - g.r0) / k
	return math.Min(math.Max(tau, 0), g.dur), true
}

func (s *Schedule) step() float64 {
	if s.poisson {
		return s.rng.ExpFloat64()
	}
	return 1
}

// Next returns the intended start of the next arrival, or false when the
// schedule is over.
func (s *Schedule) Next() (time.Duration, bool) {
	// The first arrival of an evenly spaced schedule is at Λ = 0 (t = 0), so
	// a constant rate R gives 0, 1/R, 2/R, …
	x := s.target - s.step0()
	for s.seg < len(s.segs) {
		g := s.segs[s.seg]
		if tau, ok := g.invert(x - s.base); ok {
			t := time.Duration((g.start + tau) * float64(time.Second))
			if t >= s.duration {
				return 0, false
			}
			s.target += s.step()
			return t, true
		}
		s.base += g.area(g.dur)
		s.seg++
	}
	return 0, false
}

// step0 shifts even schedules so the first arrival is at time 0.
func (s *Schedule) step0() float64 {
	if s.poisson {
		return 0
	}
	return 1
}

// StartRate returns the rate at time 0 in pages per second.
func (s *Schedule) StartRate() float64 {
	if len(s.segs) == 0 {
		return 0
	}
	return s.segs[0].r0
}
