package compare

import (
	"errors"
	"math"
	"slices"
)

// exactLimit is the largest n1+n2 for which MannWhitneyU computes the exact
// distribution of U (when there are no ties); above it, or with ties, it
// uses the normal approximation with tie and continuity corrections, as R's
// wilcox.test and benchstat do.
const exactLimit = 50

// MannWhitneyU runs the two-sided Mann–Whitney U test (Wilcoxon rank-sum) of
// x against y. It returns U for x (the number of pairs in which the x value
// is larger, ties counting one half) and the p-value of the hypothesis that
// both samples come from the same distribution. All-equal samples give p = 1.
func MannWhitneyU(x, y []float64) (u, p float64, err error) {
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return 0, math.NaN(), errors.New("mann-whitney: both samples need at least one value")
	}
	for _, v := range append(slices.Clone(x), y...) {
		if math.IsNaN(v) {
			return 0, math.NaN(), errors.New("mann-whitney: sample holds NaN")
		}
	}
	type obs struct {
		v    float64
		inX  bool
		rank float64
	}
	all := make([]obs, 0, n1+n2)
	for _, v := range x {
		all = append(all, obs{v: v, inX: true})
	}
	for _, v := range y {
		all = append(all, obs{v: v})
	}
	slices.SortStableFunc(all, func(a, b obs) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	// Average ranks over runs of ties; collect sum(t^3 - t) for the variance.
	ties := 0.0
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		r := float64(i+j+1) / 2 // mean of ranks i+1 … j
		for k := i; k < j; k++ {
			all[k].rank = r
		}
		if t := float64(j - i); t > 1 {
			ties += t*t*t - t
		}
		i = j
	}
	r1 := 0.0
	for _, o := range all {
		if o.inX {
			r1 += o.rank
		}
	}
	f1, f2 := float64(n1), float64(n2)
	u = r1 - f1*(f1+1)/2
	if ties == 0 && n1+n2 <= exactLimit {
		return u, exactP(n1, n2, u), nil
	}
	n := f1 + f2
	mu := f1 * f2 / 2
	variance := f1 * f2 / 12 * ((n + 1) - ties/(n*(n-1)))
	if variance <= 0 {
		return u, 1, nil
	}
	d := math.Abs(u-mu) - 0.5 // continuity correction
	if d < 0 {
		d = 0
	}
	z := d / math.Sqrt(variance)
	return u, math.Min(1, math.Erfc(z/math.Sqrt2)), nil
}

// exactP is the two-sided p-value of U = u for samples of n1 and n2 values
// without ties: twice the smaller tail of the exact null distribution.
func exactP(n1, n2 int, u float64) float64 {
	dist := uDistribution(n1, n2)
	total := 0.0
	for _, c := range dist {
		total += c
	}
	k := int(math.Round(u))
	lower, upper := 0.0, 0.0
	for i, c := range dist {
		if i <= k {
			lower += c
		}
		if i >= k {
			upper += c
		}
	}
	return math.Min(1, 2*math.Min(lower, upper)/total)
}

// uDistribution returns, for each u in 0…n1·n2, how many of the C(n1+n2, n1)
// orderings give U = u, by the recurrence N(m, n, u) = N(m-1, n, u-n) +
// N(m, n-1, u) (the largest value is from x, or from y).
func uDistribution(n1, n2 int) []float64 {
	// prev[n][u] holds N(m-1, n, u); cur[n][u] holds N(m, n, u).
	size := n1*n2 + 1
	prev := make([][]float64, n2+1)
	for n := range prev {
		prev[n] = make([]float64, size)
		prev[n][0] = 1 // N(0, n, 0) = 1
	}
	for m := 1; m <= n1; m++ {
		cur := make([][]float64, n2+1)
		for n := 0; n <= n2; n++ {
			cur[n] = make([]float64, size)
			for u := 0; u < size; u++ {
				v := 0.0
				if u-n >= 0 {
					v += prev[n][u-n]
				}
				if n > 0 {
					v += cur[n-1][u]
				}
				cur[n][u] = v
			}
		}
		prev = cur
	}
	return prev[n2]
}

// twoProportionZ tests whether the failure rates e1/n1 and e2/n2 differ
// (pooled two-sided z-test) and returns the p-value; 1 when both are 0% or
// both 100%, NaN when a side has no trials.
func twoProportionZ(e1, n1, e2, n2 int64) float64 {
	if n1 <= 0 || n2 <= 0 {
		return math.NaN()
	}
	p1, p2 := float64(e1)/float64(n1), float64(e2)/float64(n2)
	pool := float64(e1+e2) / float64(n1+n2)
	se := math.Sqrt(pool * (1 - pool) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 1
	}
	return math.Erfc(math.Abs(p2-p1) / se / math.Sqrt2)
}

// median returns the median of v (NaN when empty).
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
