package capacity

import (
	"fmt"
	"math"
	"time"
)

// Knee is where p99 latency starts to climb steeply with the offered rate.
type Knee struct {
	// Found reports that the curve has a knee; Note says why not otherwise.
	Found bool   `json:"found"`
	Note  string `json:"note,omitempty"`
	// Rate is the offered rate at the knee and P99 its p99.
	Rate float64       `json:"rate"`
	P99  time.Duration `json:"p99_ns"`
	// Method names how the knee was found.
	Method string `json:"method"`
}

// KneeMethod describes FindKnee for reports.
const KneeMethod = "Kneedle (Satopää et al. 2011) on offered rate vs log p99 (made non-decreasing: each rate's p99 at least " +
	"that of every lower rate), both normalised to [0,1]: the step furthest below the straight line from the lowest to the highest rate"

// FindKnee finds the knee of the latency–throughput curve of steps (see
// Curve): with x the offered rate and y log p99, both scaled to [0,1], it is
// the point with the largest x - y, the step furthest below the chord of a
// curve that is flat and then turns up. It needs three rates and a p99 that
// at least doubles over them; otherwise Found is false and Note says why.
// Measured p99 is noisy and need not rise with the rate, so y is first made
// non-decreasing (the running maximum): a lucky step past the knee must not
// look like one.
func FindKnee(steps []StepResult) Knee {
	k := Knee{Method: KneeMethod}
	var xs, ys []float64
	var p99s []time.Duration
	for _, st := range Curve(steps) {
		if st.P99 <= 0 {
			continue
		}
		y := math.Log(float64(st.P99))
		if n := len(ys); n > 0 {
			y = math.Max(y, ys[n-1])
		}
		xs = append(xs, st.Rate)
		ys = append(ys, y)
		p99s = append(p99s, st.P99)
	}
	if len(xs) < 3 {
		k.Note = fmt.Sprintf("not enough rates measured (%d; a knee needs 3)", len(xs))
		return k
	}
	ymin, ymax := ys[0], ys[0]
	for _, y := range ys {
		ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
	}
	x0, x1 := xs[0], xs[len(xs)-1]
	if ymax-ymin < math.Ln2 {
		k.Note = fmt.Sprintf("p99 stays within a factor of 2 from %.0f to %.0f pages/s", x0, x1)
		return k
	}
	best, bestD := -1, 0.0
	for i := range xs {
		d := (xs[i]-x0)/(x1-x0) - (ys[i]-ymin)/(ymax-ymin)
		if d > bestD {
			best, bestD = i, d
		}
	}
	if best < 0 {
		k.Note = "p99 climbs from the lowest rate measured on: no flat part before it"
		return k
	}
	k.Found, k.Rate, k.P99 = true, xs[best], p99s[best]
	return k
}
