package scenarios

import (
	"cmp"
	"maps"
	"math/rand/v2"
	"slices"
	"time"
)

// PagesPerSecondAt returns the intended farm-wide page rate t after the
// start of the run (page views per second; burst requests come on top, see
// RequestsPerPage). Before 0 it is 0; after the shape ends the last rate is
// held. In the population model it is the constant
// Population / mean(ThinkTime).
func (s *Scenario) PagesPerSecondAt(t time.Duration) float64 {
	if t < 0 {
		return 0
	}
	if s.Users.Population > 0 {
		if m := s.Users.ThinkTime.Mean(); m > 0 {
			return float64(s.Users.Population) / m
		}
		return 0
	}
	r := &s.Rate
	switch r.Shape {
	case ShapeConstant:
		return r.PagesPerSecond
	case ShapeRamp:
		if r.Over <= 0 || t >= r.Over.D() {
			return r.To
		}
		f := float64(t) / float64(r.Over)
		return r.From + (r.To-r.From)*f
	case ShapeSteps:
		var end time.Duration
		for _, st := range r.Steps {
			end += st.Duration.D()
			if t < end {
				return st.PagesPerSecond
			}
		}
		if n := len(r.Steps); n > 0 {
			return r.Steps[n-1].PagesPerSecond
		}
	}
	return 0
}

// SessionsPerSecondAt returns the rate at which new sessions start t after
// the start, in the open arrival model: PagesPerSecondAt(t) / mean pages per
// session. In the population model sessions are not scheduled by rate and
// it returns the long-run average Population / mean session life.
func (s *Scenario) SessionsPerSecondAt(t time.Duration) float64 {
	if s.Users.Population > 0 {
		life := s.MeanSessionLife().Seconds()
		if life <= 0 {
			return 0
		}
		return float64(s.Users.Population) / life
	}
	return s.PagesPerSecondAt(t) / s.Users.MeanPages()
}

// PeakPagesPerSecond returns the highest page rate of the run.
func (s *Scenario) PeakPagesPerSecond() float64 {
	peak := s.PagesPerSecondAt(0)
	switch {
	case s.Users.Population > 0:
	case s.Rate.Shape == ShapeRamp:
		peak = max(s.Rate.From, s.Rate.To)
	case s.Rate.Shape == ShapeSteps:
		for _, st := range s.Rate.Steps {
			peak = max(peak, st.PagesPerSecond)
		}
	}
	return peak
}

// ExpectedPages returns the number of page views the rate shape asks for
// over the run (the integral of PagesPerSecondAt over Duration). Burst
// requests come on top (RequestsPerPage).
func (s *Scenario) ExpectedPages() float64 {
	d := s.Duration.D()
	if s.Users.Population > 0 || s.Rate.Shape == ShapeConstant {
		return s.PagesPerSecondAt(0) * d.Seconds()
	}
	r := &s.Rate
	total := 0.0
	switch r.Shape {
	case ShapeRamp:
		over := min(r.Over.D(), d)
		// Trapezoid over the ramp part, then the held rate.
		total = (r.From + s.PagesPerSecondAt(over)) / 2 * over.Seconds()
		total += r.To * (d - over).Seconds()
	case ShapeSteps:
		var at time.Duration
		for _, st := range r.Steps {
			if at >= d {
				break
			}
			step := min(st.Duration.D(), d-at)
			total += st.PagesPerSecond * step.Seconds()
			at += step
		}
		if at < d && len(r.Steps) > 0 {
			total += r.Steps[len(r.Steps)-1].PagesPerSecond * (d - at).Seconds()
		}
	}
	return total
}

// RequestsPerPage returns the mean number of page requests per scheduled
// page: 1 plus the burst probability times the mean burst size. (Each
// request then makes one or more state-server calls, PROTOCOL.md e.1.)
func (s *Scenario) RequestsPerPage() float64 {
	b := s.Pages.Burst
	if b.Probability <= 0 {
		return 1
	}
	return 1 + b.Probability*max(2, b.Size.AtLeast(2).Mean())
}

// MeanSessionLife estimates how long a session stays active (from its first
// page to the end of its last one): (mean pages - 1) * mean think time +
// mean exec time. It does not include the expiry timeout after the user
// leaves. A load generator can use it with Little's law to warm-start
// SessionsPerSecondAt * MeanSessionLife sessions so that short runs reach
// the intended page rate at once.
func (s *Scenario) MeanSessionLife() time.Duration {
	pages := s.Users.MeanPages()
	return seconds((pages-1)*s.Users.ThinkTime.Mean() + s.Pages.ExecTime.Mean())
}

// SortedFaults returns a copy of the fault timeline sorted by At (stable, so
// faults at the same offset keep their file order).
func (s *Scenario) SortedFaults() []Fault {
	out := slices.Clone(s.Faults)
	slices.SortStableFunc(out, func(a, b Fault) int { return cmp.Compare(a.At, b.At) })
	return out
}

// BurstMix returns the page-kind mix of burst requests: Burst.Mix, or Mix
// when that is nil.
func (p Pages) BurstMix() Mix {
	if p.Burst.Mix != nil {
		return p.Burst.Mix
	}
	return p.Mix
}

// Kinds returns the page kinds with a weight > 0, in documentation order
// (modify, read-unchanged, read-only, sessionless, abandon).
func (m Mix) Kinds() []PageKind {
	var out []PageKind
	for _, k := range pageKindNames() {
		if m[PageKind(k)] > 0 {
			out = append(out, PageKind(k))
		}
	}
	return out
}

// Fraction returns the share of kind k in the mix (0..1).
func (m Mix) Fraction(k PageKind) float64 {
	sum := 0.0
	for _, w := range m {
		if w > 0 {
			sum += w
		}
	}
	if sum <= 0 || m[k] <= 0 {
		return 0
	}
	return m[k] / sum
}

// Pick draws a page kind by weight. It returns "" for a mix whose weights
// sum to 0 (which Validate rejects).
func (m Mix) Pick(r *rand.Rand) PageKind {
	kinds := m.Kinds()
	sum := 0.0
	for _, k := range kinds {
		sum += m[k]
	}
	x := r.Float64() * sum
	for _, k := range kinds {
		x -= m[k]
		if x < 0 {
			return k
		}
	}
	if n := len(kinds); n > 0 {
		return kinds[n-1]
	}
	return ""
}

// PickApp draws an application by weight (the zero App if there is none).
func (f Farm) PickApp(r *rand.Rand) App {
	sum := 0.0
	for _, a := range f.Apps {
		if a.Weight > 0 {
			sum += a.Weight
		}
	}
	x := r.Float64() * sum
	last := App{}
	for _, a := range f.Apps {
		if a.Weight <= 0 {
			continue
		}
		last = a
		x -= a.Weight
		if x < 0 {
			return a
		}
	}
	return last
}

// Clone returns a deep copy of s, so a caller can change it (for example the
// CLI overriding Duration) without touching the original.
func (s *Scenario) Clone() *Scenario {
	c := *s
	c.Farm.Apps = slices.Clone(s.Farm.Apps)
	c.Pages.Mix = maps.Clone(s.Pages.Mix)
	c.Pages.Burst.Mix = maps.Clone(s.Pages.Burst.Mix)
	c.Rate.Steps = slices.Clone(s.Rate.Steps)
	c.Faults = slices.Clone(s.Faults)
	return &c
}
