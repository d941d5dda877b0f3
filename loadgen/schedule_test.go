package loadgen

import (
	"math"
	"testing"
	"time"

	"github.com/aspstate/aspstate/scenarios"
)

func arrivals(t *testing.T, r scenarios.Rate, d time.Duration) []time.Duration {
	t.Helper()
	s, err := NewSchedule(r, d, 7)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Duration
	for {
		at, ok := s.Next()
		if !ok {
			return out
		}
		if len(out) > 0 && at < out[len(out)-1] {
			t.Fatalf("arrival %d at %s before the previous one %s", len(out), at, out[len(out)-1])
		}
		out = append(out, at)
	}
}

func TestScheduleConstant(t *testing.T) {
	t.Parallel()
	a := arrivals(t, scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: 100}, time.Second)
	if len(a) != 100 {
		t.Fatalf("%d arrivals, want 100", len(a))
	}
	for i, at := range a {
		if want := time.Duration(i) * 10 * time.Millisecond; (at - want).Abs() > time.Microsecond {
			t.Fatalf("arrival %d at %s, want %s", i, at, want)
		}
	}
}

func TestScheduleRamp(t *testing.T) {
	t.Parallel()
	a := arrivals(t, scenarios.Rate{Shape: scenarios.ShapeRamp, From: 0, To: 100, Over: scenarios.Duration(2 * time.Second)}, 2*time.Second)
	// ∫ r = 100 pages; the first second holds a quarter of them.
	if len(a) < 99 || len(a) > 100 {
		t.Fatalf("%d arrivals, want 100", len(a))
	}
	first := 0
	for _, at := range a {
		if at < time.Second {
			first++
		}
	}
	if first < 24 || first > 26 {
		t.Fatalf("%d arrivals in the first second, want 25", first)
	}
	if g1, g2 := a[11]-a[10], a[91]-a[90]; g2 >= g1 {
		t.Fatalf("gaps do not shrink as the rate grows: %s then %s", g1, g2)
	}
	// A ramp shorter than the run holds its final rate.
	b := arrivals(t, scenarios.Rate{Shape: scenarios.ShapeRamp, From: 10, To: 50, Over: scenarios.Duration(time.Second)}, 2*time.Second)
	if len(b) != 30+50 {
		t.Fatalf("%d arrivals, want 80", len(b))
	}
}

func TestScheduleSteps(t *testing.T) {
	t.Parallel()
	r := scenarios.Rate{Shape: scenarios.ShapeSteps, Steps: []scenarios.Step{
		{PagesPerSecond: 10, Duration: scenarios.Duration(time.Second)},
		{PagesPerSecond: 0, Duration: scenarios.Duration(time.Second)},
		{PagesPerSecond: 50, Duration: scenarios.Duration(time.Second)},
	}}
	a := arrivals(t, r, 4*time.Second) // the last step is held for the 4th second
	var per [4]int
	for _, at := range a {
		per[int(at/time.Second)]++
	}
	if per != [4]int{10, 0, 50, 50} {
		t.Fatalf("arrivals per second %v, want [10 0 50 50]", per)
	}
}

func TestSchedulePoisson(t *testing.T) {
	t.Parallel()
	a := arrivals(t, scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: 1000, Poisson: true}, 10*time.Second)
	if n := len(a); n < 9700 || n > 10300 {
		t.Fatalf("%d arrivals, want 10000 ± 3%%", n)
	}
	var sum, sq float64
	for i := 1; i < len(a); i++ {
		g := (a[i] - a[i-1]).Seconds()
		sum += g
		sq += g * g
	}
	n := float64(len(a) - 1)
	mean := sum / n
	cv := math.Sqrt(sq/n-mean*mean) / mean
	if cv < 0.9 || cv > 1.1 {
		t.Fatalf("gap coefficient of variation %.3f, want ≈ 1 (exponential)", cv)
	}
	// Same seed, same plan.
	b := arrivals(t, scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: 1000, Poisson: true}, 10*time.Second)
	if len(a) != len(b) || a[len(a)/2] != b[len(b)/2] {
		t.Fatal("a seeded Poisson schedule is not reproducible")
	}
}

func TestScheduleRejectsBadRates(t *testing.T) {
	t.Parallel()
	for _, r := range []scenarios.Rate{
		{Shape: scenarios.ShapeConstant},
		{Shape: scenarios.ShapeRamp},
		{Shape: scenarios.ShapeSteps},
		{Shape: "sine", PagesPerSecond: 3},
	} {
		if _, err := NewSchedule(r, time.Second, 1); err == nil {
			t.Errorf("rate %+v accepted", r)
		}
	}
}
