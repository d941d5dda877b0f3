package capacity

import (
	"fmt"
	"time"
)

// Saturation is the most pages per second any step of a search completed,
// whatever its latency: the throughput ceiling of the target (with the load
// generator on its machine) under the open model. The answer within the
// objectives is a share of it, and the gap is the headroom the objectives
// leave; it is also the figure to set beside a closed-loop saturation run
// (aspstate load --closed-loop, make bench).
type Saturation struct {
	// Achieved is the highest achieved page rate of any step, measured in
	// the step whose offered rate was Offered and whose p99 was P99.
	Achieved float64       `json:"achieved"`
	Offered  float64       `json:"offered"`
	P99      time.Duration `json:"p99_ns"`
	// Reached reports that some step completed less than MinAchieved of the
	// rate it offered: the system, not the schedule, set the ceiling. When
	// false, Achieved is only a lower bound.
	Reached bool `json:"reached"`
	// GeneratorLimited: the step of Achieved was one the load generator
	// could not keep to its schedule, so the ceiling may be the generator's.
	GeneratorLimited bool `json:"generator_limited,omitempty"`
}

// FindSaturation returns the saturation of a search's steps; minAchieved is
// the share of the offered rate below which a step fell short (the judge's
// Criteria.MinAchieved).
func FindSaturation(steps []StepResult, minAchieved float64) Saturation {
	var s Saturation
	for _, st := range steps {
		if st.Achieved > s.Achieved {
			s.Achieved, s.Offered, s.P99, s.GeneratorLimited = st.Achieved, st.Rate, st.P99, st.GeneratorLimited
		}
		if st.Rate > 0 && st.Achieved < minAchieved*st.Rate {
			s.Reached = true
		}
	}
	return s
}

// Describe says the saturation for people, with answer (the maximum
// sustainable rate, 0 for none) as a share of it.
func (s Saturation) Describe(answer float64) string {
	if s.Achieved <= 0 {
		return "no step completed a page"
	}
	if !s.Reached {
		return fmt.Sprintf("not reached (no step fell short of its offered rate; the most completed was %.0f pages/s at %.0f offered)",
			s.Achieved, s.Offered)
	}
	line := fmt.Sprintf("%.0f pages/s, the most any step completed (at %.0f offered, p99 %s ms)", s.Achieved, s.Offered, ms(s.P99))
	if s.GeneratorLimited {
		line += ", in a step the load generator could not keep to its schedule"
	}
	if answer > 0 {
		line += fmt.Sprintf("; the answer is %.0f%% of it", 100*answer/s.Achieved)
	}
	return line
}
