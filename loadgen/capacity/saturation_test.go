package capacity

import (
	"strings"
	"testing"
	"time"
)

func TestFindSaturation(t *testing.T) {
	// The search of a 2-core plan: the ramp overshoots, bisection comes back.
	steps := []StepResult{
		{Rate: 16000, Achieved: 15997, P99: 2 * time.Millisecond, Pass: true},
		{Rate: 32000, Achieved: 31994, P99: 4 * time.Millisecond, Pass: true},
		{Rate: 64000, Achieved: 59485, P99: 929 * time.Millisecond},
		{Rate: 48000, Achieved: 47995, P99: 10 * time.Millisecond, Pass: true},
		{Rate: 56000, Achieved: 50583, P99: 1069 * time.Millisecond},
	}
	s := FindSaturation(steps, DefaultMinAchieved)
	if !s.Reached || s.Achieved != 59485 || s.Offered != 64000 || s.P99 != 929*time.Millisecond || s.GeneratorLimited {
		t.Fatalf("saturation %+v, want 59485 pages/s reached at 64000 offered", s)
	}
	d := s.Describe(48000)
	for _, want := range []string{"59485 pages/s", "at 64000 offered", "p99 929.000 ms", "the answer is 81% of it"} {
		if !strings.Contains(d, want) {
			t.Errorf("description %q lacks %q", d, want)
		}
	}
	if d := s.Describe(0); strings.Contains(d, "answer") {
		t.Errorf("with no answer: %q names one", d)
	}

	// Every step kept up with its offered rate: the most completed is only a
	// lower bound of the ceiling.
	s = FindSaturation(steps[:2], DefaultMinAchieved)
	if s.Reached || s.Achieved != 31994 {
		t.Fatalf("saturation of passing steps %+v, want not reached, 31994", s)
	}
	if d := s.Describe(32000); !strings.HasPrefix(d, "not reached") || !strings.Contains(d, "31994 pages/s at 32000 offered") {
		t.Errorf("description %q", d)
	}

	// The step of the ceiling was the generator's failure: say so.
	gen := append([]StepResult{}, steps...)
	gen[2].GeneratorLimited = true
	if d := FindSaturation(gen, DefaultMinAchieved).Describe(48000); !strings.Contains(d, "load generator could not keep") {
		t.Errorf("generator-limited ceiling: %q", d)
	}
	if d := FindSaturation(nil, DefaultMinAchieved).Describe(0); d != "no step completed a page" {
		t.Errorf("no steps: %q", d)
	}
}
