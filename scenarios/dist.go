package scenarios

import (
	"math"
	"math/rand/v2"
	"time"
)

// Sample draws one value from d using r. The zero Dist yields 0.
// Exponential and lognormal samples are clamped to [Min, Max] (Max 0 = no
// upper clamp). Sample does not validate d; call Scenario.Validate first.
func (d Dist) Sample(r *rand.Rand) float64 {
	switch d.Kind {
	case DistConstant:
		return d.Value
	case DistUniform:
		return d.Min + r.Float64()*(d.Max-d.Min)
	case DistExponential:
		return d.clamp(r.ExpFloat64() * d.Avg)
	case DistLognormal:
		mu, sigma := d.logParams()
		return d.clamp(math.Exp(mu + sigma*r.NormFloat64()))
	}
	return 0
}

// SampleDuration draws one value from a distribution of seconds and returns
// it as a time.Duration.
func (d Dist) SampleDuration(r *rand.Rand) time.Duration {
	return seconds(d.Sample(r))
}

// SampleInt draws one value and rounds it to the nearest integer (counts,
// bytes).
func (d Dist) SampleInt(r *rand.Rand) int {
	return int(math.Round(d.Sample(r)))
}

// Mean returns the expected value of Sample, including the effect of the
// Min/Max clamps of exponential and lognormal distributions (exact, not
// estimated). The zero Dist has mean 0.
func (d Dist) Mean() float64 {
	switch d.Kind {
	case DistConstant:
		return d.Value
	case DistUniform:
		return (d.Min + d.Max) / 2
	case DistExponential:
		if d.Avg <= 0 {
			return d.clamp(0)
		}
		// E[clamp(X,a,b)] = a + integral from a to b of P(X > x) dx
		//                 = a + m (exp(-a/m) - exp(-b/m)).
		a, m := d.Min, d.Avg
		tail := 0.0
		if d.Max > 0 {
			tail = math.Exp(-d.Max / m)
		}
		return a + m*(math.Exp(-a/m)-tail)
	case DistLognormal:
		if d.Avg <= 0 || d.StdDev <= 0 {
			return d.clamp(d.Avg)
		}
		mu, s := d.logParams()
		phi := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
		// E[clamp(X,a,b)] = a F(a) + b (1 - F(b)) + E[X; a < X < b], where
		// E[X; a < X < b] = exp(mu + s^2/2) (Phi((ln b - mu - s^2)/s) - Phi((ln a - mu - s^2)/s)).
		lower, fa := 0.0, 0.0
		if d.Min > 0 {
			fa = phi((math.Log(d.Min) - mu) / s)
			lower = phi((math.Log(d.Min) - mu - s*s) / s)
		}
		upper, tailB := 1.0, 0.0
		if d.Max > 0 {
			tailB = 1 - phi((math.Log(d.Max)-mu)/s)
			upper = phi((math.Log(d.Max) - mu - s*s) / s)
		}
		return d.Min*fa + d.Max*tailB + math.Exp(mu+s*s/2)*(upper-lower)
	}
	return 0
}

// MeanDuration returns Mean of a distribution of seconds as a time.Duration.
func (d Dist) MeanDuration() time.Duration { return seconds(d.Mean()) }

// AtLeast returns a copy of d whose samples are never below lo: the lower
// clamp (or the uniform lower bound, or the constant) is raised to lo.
func (d Dist) AtLeast(lo float64) Dist {
	switch d.Kind {
	case DistConstant:
		d.Value = math.Max(d.Value, lo)
	case DistUniform:
		d.Min = math.Max(d.Min, lo)
		d.Max = math.Max(d.Max, d.Min)
	default:
		d.Min = math.Max(d.Min, lo)
	}
	return d
}

// IsZero reports whether d is the zero Dist, which means "use the default".
func (d Dist) IsZero() bool { return d == Dist{} }

// clamp limits x to [Min, Max] (Max 0 = no upper limit).
func (d Dist) clamp(x float64) float64 {
	if x < d.Min {
		x = d.Min
	}
	if d.Max > 0 && x > d.Max {
		x = d.Max
	}
	return x
}

// logParams converts the lognormal's mean and standard deviation into the
// mean mu and standard deviation sigma of its logarithm.
func (d Dist) logParams() (mu, sigma float64) {
	m, s := d.Avg, d.StdDev
	v := math.Log1p((s * s) / (m * m))
	return math.Log(m) - v/2, math.Sqrt(v)
}

// seconds converts a float number of seconds to a Duration, saturating.
func seconds(x float64) time.Duration {
	ns := x * float64(time.Second)
	if ns >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	if ns <= 0 {
		return 0
	}
	return time.Duration(ns)
}

// SamplePages draws the number of pages of one session: PagesPerSession
// rounded to the nearest integer, at least 1.
func (u Users) SamplePages(r *rand.Rand) int {
	return max(1, u.PagesPerSession.AtLeast(1).SampleInt(r))
}

// MeanPages is the mean number of pages per session used to derive the
// session arrival rate from the page rate (Mean of PagesPerSession clamped
// below at 1; rounding is ignored).
func (u Users) MeanPages() float64 {
	return max(1, u.PagesPerSession.AtLeast(1).Mean())
}

// SampleSize draws the number of parallel requests of one burst: Size
// rounded to the nearest integer, at least 2.
func (b Burst) SampleSize(r *rand.Rand) int {
	return max(2, b.Size.AtLeast(2).SampleInt(r))
}
