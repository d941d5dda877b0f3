package capacity

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/aspstate/aspstate/scenarios"
)

// PlanReserve is kept out of a plan's time budget for starting the target
// and writing the plan.
const PlanReserve = 5 * time.Second

// Validate reports every problem of the settings of a plan at once
// (errors.Join); each line starts with the field's name. A zero Start means
// the scenario's rate; a zero Minute, real time.
func (s Settings) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Step < time.Second {
		bad("Step %s: want at least 1s (a step must be long enough to mean something; 10s is the default)", s.Step)
	}
	if s.Warmup < 0 {
		bad("Warmup %s: want zero or more", s.Warmup)
	}
	if s.MaxTime <= PlanReserve {
		bad("MaxTime %s: want more than %s", s.MaxTime, PlanReserve)
	}
	if s.Start < 0 || math.IsNaN(s.Start) {
		bad("Start %v: want a positive rate in pages/s, or 0 for the scenario's", s.Start)
	}
	if s.MaxRate <= 0 || s.MaxRate > scenarios.MaxPagesPerSecond {
		bad("MaxRate %v: want a rate in (0, %d]", s.MaxRate, scenarios.MaxPagesPerSecond)
	} else if s.Start > s.MaxRate {
		bad("Start %.0f is above MaxRate %.0f", s.Start, s.MaxRate)
	}
	if s.MaxLate <= 0 || s.MaxLate >= 1 {
		bad("MaxLate %v: want a fraction such as 0.02", s.MaxLate)
	}
	if s.LateThreshold <= 0 {
		bad("LateThreshold %s: want a positive duration such as 5ms", s.LateThreshold)
	}
	if s.Minute != 0 && s.Minute < 60*time.Millisecond {
		bad("Minute %s: want at least 60ms", s.Minute)
	}
	if s.OverheadBytes < 0 {
		bad("OverheadBytes %v: want bytes >= 0", s.OverheadBytes)
	}
	if s.Factor <= 1 || math.IsInf(s.Factor, 0) {
		bad("Factor %v: want a ramp factor above 1, such as 2", s.Factor)
	}
	if s.Tolerance <= 0 || s.Tolerance >= 1 {
		bad("Tolerance %v: want a fraction such as 0.05", s.Tolerance)
	}
	if s.MaxSteps < 1 {
		bad("MaxSteps %d: want at least 1", s.MaxSteps)
	}
	if s.Workers < 0 {
		bad("Workers %d: want a positive number of pages in progress", s.Workers)
	}
	return errors.Join(errs...)
}
