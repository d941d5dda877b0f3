package trace

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/aspstate/aspstate/scenarios"
)

// sessObs is what a capture shows of one session that began in it: the
// pages (main pages, a burst as one) it viewed there, the time from its
// last page's start to the capture's end, and whether it is known to have
// ended (its last page abandoned it).
type sessObs struct {
	pages  int
	remain float64
	ended  bool
}

// countFamily is one family of session lengths: N = max(1, round(X)) for
// X of the continuous distribution with parameters p (as the generator
// draws Users.SamplePages).
type countFamily struct {
	name  string
	start []float64
	// cdf returns the continuous CDF for parameters p (nil: p is outside
	// the family's domain).
	cdf func(p []float64) func(x float64) float64
	// dist turns p into the scenario distribution, hi its upper clamp.
	dist func(p []float64, hi float64) scenarios.Dist
}

// pmfOf returns P(N = k) and P(N > k) for a continuous CDF F.
func pmfOf(F func(float64) float64) (pmf, tail func(int) float64) {
	pmf = func(k int) float64 {
		if k <= 1 {
			return F(1.5)
		}
		return F(float64(k)+0.5) - F(float64(k)-0.5)
	}
	tail = func(k int) float64 { return 1 - F(float64(k)+0.5) }
	return pmf, tail
}

// countLogLik is the log-likelihood of the observations for a CDF: a
// session known to have ended after c pages contributes P(N = c); a silent
// one at the capture's end either ended (P(N = c)) or goes on with its next
// page more than remain away (P(N > c) · S(remain), S the survival of the
// gaps between a session's pages): right censoring at the capture's end.
func countLogLik(obs []sessObs, surv []float64, F func(float64) float64) float64 {
	pmf, tail := pmfOf(F)
	ll := 0.0
	for i, o := range obs {
		l := pmf(o.pages)
		if !o.ended {
			l += tail(o.pages) * surv[i]
		}
		if !(l > 0) {
			return math.Inf(-1)
		}
		ll += math.Log(l)
	}
	return ll
}

func phi(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// lognormalCDF is the distribution function of a lognormal whose logarithm
// has mean mu and standard deviation s.
func lognormalCDF(mu, s float64) func(float64) float64 {
	return func(x float64) float64 {
		if x <= 0 {
			return 0
		}
		return phi((math.Log(x) - mu) / s)
	}
}

// lognormalDist is the scenario distribution of that lognormal (its mean and
// standard deviation, to four significant digits), clamped to [lo, hi].
func lognormalDist(mu, s, lo, hi float64) scenarios.Dist {
	avg := math.Exp(mu + s*s/2)
	return scenarios.Dist{Kind: scenarios.DistLognormal, Avg: sig(avg), StdDev: sig(avg * math.Sqrt(math.Expm1(s*s))), Min: lo, Max: hi}
}

// countFamilies are the scenario language's families for a count: lognormal
// (log-mean, log-sd), exponential (mean), uniform (min, max).
func countFamilies(obs []sessObs) []countFamily {
	var sum, n float64
	lo, hi := math.Inf(1), 1.0
	for _, o := range obs {
		sum += float64(o.pages)
		n++
		hi = max(hi, float64(o.pages))
		if o.ended {
			lo = min(lo, float64(o.pages))
		}
	}
	m := math.Max(sum/math.Max(n, 1), 1.5)
	if math.IsInf(lo, 1) {
		lo = 1
	}
	return []countFamily{{
		name:  "lognormal",
		start: []float64{math.Log(2 * m), 0},
		cdf: func(p []float64) func(float64) float64 {
			mu, s := p[0], math.Exp(p[1])
			if s < 1e-3 || s > 10 || math.Abs(mu) > 20 {
				return nil
			}
			return lognormalCDF(mu, s)
		},
		dist: func(p []float64, hi float64) scenarios.Dist {
			return lognormalDist(p[0], math.Exp(p[1]), 1, hi)
		},
	}, {
		name:  "exponential",
		start: []float64{math.Log(2 * m)},
		cdf: func(p []float64) func(float64) float64 {
			a := math.Exp(p[0])
			if a < 1e-3 || a > 1e6 {
				return nil
			}
			return func(x float64) float64 { return -math.Expm1(-math.Max(x, 0) / a) }
		},
		dist: func(p []float64, hi float64) scenarios.Dist {
			return scenarios.Dist{Kind: scenarios.DistExponential, Avg: sig(math.Exp(p[0])), Min: 1, Max: hi}
		},
	}, {
		name:  "uniform",
		start: []float64{math.Max(1, lo-0.5), 2*hi + 1},
		cdf: func(p []float64) func(float64) float64 {
			a, b := p[0], p[1]
			if a < 1 || b <= a+1e-6 || b > 1e6 {
				return nil
			}
			return func(x float64) float64 { return math.Max(0, math.Min(1, (x-a)/(b-a))) }
		},
		dist: func(p []float64, _ float64) scenarios.Dist {
			return scenarios.Dist{Kind: scenarios.DistUniform, Min: sig(p[0]), Max: sig(p[1])}
		},
	}}
}

// nelderMead minimises f from x0 (the downhill simplex; f may be +Inf
// outside its domain).
func nelderMead(f func([]float64) float64, x0 []float64, step float64, iters int) ([]float64, float64) {
	n := len(x0)
	pts := make([][]float64, n+1)
	val := make([]float64, n+1)
	for i := range pts {
		pts[i] = append([]float64(nil), x0...)
		if i > 0 {
			pts[i][i-1] += step
		}
		val[i] = f(pts[i])
	}
	at := func(c, d []float64, t float64) []float64 { // c + t (d - c)
		x := make([]float64, n)
		for i := range x {
			x[i] = c[i] + t*(d[i]-c[i])
		}
		return x
	}
	for range iters {
		idx := make([]int, n+1)
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return val[idx[a]] < val[idx[b]] })
		p2, v2 := make([][]float64, n+1), make([]float64, n+1)
		for i, j := range idx {
			p2[i], v2[i] = pts[j], val[j]
		}
		pts, val = p2, v2
		if math.Abs(val[n]-val[0]) < 1e-9*(1+math.Abs(val[0])) && !math.IsInf(val[n], 1) {
			break
		}
		c := make([]float64, n)
		for _, p := range pts[:n] {
			for i := range c {
				c[i] += p[i] / float64(n)
			}
		}
		r := at(c, pts[n], -1)
		fr := f(r)
		switch {
		case fr < val[0]:
			if e := at(c, pts[n], -2); f(e) < fr {
				pts[n], val[n] = e, f(e)
			} else {
				pts[n], val[n] = r, fr
			}
		case fr < val[n-1]:
			pts[n], val[n] = r, fr
		default:
			k := at(c, pts[n], 0.5)
			if fk := f(k); fk < val[n] {
				pts[n], val[n] = k, fk
				continue
			}
			for i := 1; i <= n; i++ {
				pts[i] = at(pts[0], pts[i], 0.5)
				val[i] = f(pts[i])
			}
		}
	}
	best := 0
	for i := range val {
		if val[i] < val[best] {
			best = i
		}
	}
	return pts[best], val[best]
}

// countFit is the fitted distribution of pages per session.
type countFit struct {
	dist scenarios.Dist
	stat string
	// ended is the probability, given what the capture showed, that each
	// observed session had ended by the capture's end; nEnded their sum.
	ended  []float64
	nEnded float64
	// thinkW weighs each think time by its Kaplan-Meier mass.
	thinkW []float64
}

// kaplanMeier estimates the survival function of think times from the
// gaps seen whole (events) and the gaps cut by the capture's end (cens,
// each counted with weight censW): S(x) = prod over events t <= x of
// (1 - d(t)/Y(t)), Y the weight still at risk at t. It returns S and the
// mass S puts on each event (its jump shared among the events at t).
func kaplanMeier(events, cens, censW []float64) (func(float64) float64, []float64) {
	type pt struct {
		x, w  float64
		event bool
		i     int
	}
	var all []pt
	for i, x := range events {
		all = append(all, pt{x, 1, true, i})
	}
	for i, x := range cens {
		if censW[i] > 0 {
			all = append(all, pt{x, censW[i], false, -1})
		}
	}
	// At a tie, events come first (a censored gap of that length was at
	// risk of ending there).
	sort.Slice(all, func(i, j int) bool {
		return all[i].x < all[j].x || all[i].x == all[j].x && all[i].event && !all[j].event
	})
	risk := 0.0
	for _, p := range all {
		risk += p.w
	}
	mass := make([]float64, len(events))
	var xs, ss []float64 // S just after each event time
	surv := 1.0
	for i := 0; i < len(all); {
		j, d, c := i, 0.0, 0.0
		for j < len(all) && all[j].x == all[i].x {
			if all[j].event {
				d += all[j].w
			} else {
				c += all[j].w
			}
			j++
		}
		if d > 0 && risk > 0 {
			jump := surv * d / risk
			for _, p := range all[i:j] {
				if p.event {
					mass[p.i] = jump / d
				}
			}
			surv -= jump
			xs, ss = append(xs, all[i].x), append(ss, math.Max(surv, 0))
		}
		risk -= d + c
		i = j
	}
	return func(x float64) float64 {
		k := sort.SearchFloat64s(xs, x) // first event time >= x
		if k < len(xs) && xs[k] == x {
			return ss[k]
		}
		if k == 0 {
			return 1
		}
		return ss[k-1]
	}, mass
}

// fitCounts fits pages per session to the sessions that began in the
// capture by maximum likelihood with right censoring (countLogLik): each
// family of the scenario language is fitted (downhill simplex) and the one
// with the lowest AIC kept. The survival S of think times that the
// likelihood needs comes from the same data: a Kaplan–Meier over the gaps
// seen whole, with the silent gap of each session at the capture's end
// censored by the probability that the session goes on (openGaps: those of
// sessions first seen mid-life, counted with the mean of these). The two
// are fitted in turn (expectation–maximisation) until they hold still,
// starting from the Kaplan–Meier of the whole gaps alone (no silent
// session goes on), whose tail is too light: the iterations raise it to
// the fixed point (started higher, they can settle on a heavier tail and
// longer sessions than the data hold).
func fitCounts(obs []sessObs, gaps, openGaps []float64) countFit {
	cont := make([]float64, len(obs)) // P(the session goes on)
	for i, o := range obs {
		if !o.ended {
			cont[i] = 0
		}
	}
	var out countFit
	prevMean := 0.0
	for it := 0; it < 8; it++ {
		var cens, censW []float64
		meanCont := 1.0
		if len(obs) > 0 {
			meanCont = 0
		}
		for i, o := range obs {
			cens, censW = append(cens, o.remain), append(censW, cont[i])
			meanCont += cont[i] / float64(len(obs))
		}
		for _, g := range openGaps {
			cens, censW = append(cens, g), append(censW, meanCont)
		}
		surv, mass := kaplanMeier(gaps, cens, censW)
		out = fitCountsGiven(obs, surv)
		out.thinkW = mass
		if len(obs) == 0 {
			break
		}
		for i := range obs {
			cont[i] = 1 - out.ended[i]
		}
		m := out.dist.AtLeast(1).Mean()
		if it > 0 && math.Abs(m-prevMean) <= 1e-3*m {
			break
		}
		prevMean = m
	}
	return out
}

// fitCountsGiven is fitCounts for a known survival function of think
// times.
func fitCountsGiven(obs []sessObs, surv func(float64) float64) countFit {
	if len(obs) == 0 {
		return countFit{}
	}
	sv := make([]float64, len(obs))
	longest, ends := 1, 0
	for i, o := range obs {
		sv[i] = surv(o.remain)
		longest = max(longest, o.pages)
		if o.ended {
			ends++
		}
	}
	type res struct {
		fam countFamily
		p   []float64
		aic float64
	}
	var all []res
	for _, fam := range countFamilies(obs) {
		nll := func(p []float64) float64 {
			F := fam.cdf(p)
			if F == nil {
				return math.Inf(1)
			}
			return -countLogLik(obs, sv, F)
		}
		p, v := fam.start, math.Inf(1)
		for range 3 { // restarts: the simplex can stall on a flat likelihood
			p, v = nelderMead(nll, p, 0.5, 400)
		}
		if math.IsInf(v, 1) || math.IsNaN(v) {
			continue
		}
		all = append(all, res{fam, p, 2*float64(len(p)) + 2*v})
	}
	if len(all) == 0 || longest <= 1 && ends == len(obs) {
		return countFit{dist: scenarios.Dist{Kind: scenarios.DistConstant, Value: 1}, stat: fmt.Sprintf("all %d sessions viewed one page", len(obs)),
			ended: ones(len(obs)), nEnded: float64(len(obs))}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].aic < all[j].aic })
	b := all[0]
	F := b.fam.cdf(b.p)
	// The upper clamp: the longest session seen, or the 99.9th percentile
	// of the fitted distribution, whichever is larger.
	hi := float64(longest)
	for k := longest; k < 100000; k++ {
		if F(float64(k)+0.5) >= 0.999 {
			hi = math.Max(hi, float64(k))
			break
		}
	}
	d := b.fam.dist(b.p, hi)
	pmf, tail := pmfOf(F)
	out := countFit{dist: d, ended: make([]float64, len(obs))}
	nEnded := 0.0
	for i, o := range obs {
		out.ended[i] = 1
		if !o.ended {
			if l := pmf(o.pages) + tail(o.pages)*sv[i]; l > 0 {
				out.ended[i] = pmf(o.pages) / l
			}
		}
		nEnded += out.ended[i]
	}
	out.nEnded = nEnded
	var others []string
	for _, r := range all[1:] {
		others = append(others, fmt.Sprintf("%s %+.1f", r.fam.name, r.aic-b.aic))
	}
	alt := ""
	if len(others) > 0 {
		alt = fmt.Sprintf(" (AIC of the others: %s)", strings.Join(others, ", "))
	}
	out.stat = fmt.Sprintf("%s by maximum likelihood with the capture's end as right censoring, mean %.2f, over %d sessions (%.0f ended, by expectation)%s",
		b.fam.name, d.AtLeast(1).Mean(), len(obs), nEnded, alt)
	return out
}

func ones(n int) []float64 {
	o := make([]float64, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

// fitPopulation replaces a constant rate by a population of users when the
// number of sessions in progress holds still: a population model keeps
// exactly its users' sessions going (each user starts the next session one
// think time after the last page of the previous one), while independent
// arrivals (an open model) make it vary like a Poisson count, whose variance
// equals its mean. The count is sampled every 250 ms between two mean think
// times after the capture's start and before its end (a session is in
// progress from its first page's start to its last's); a dispersion index
// (variance / mean) below 0.35 picks the population model. Its size is
// Little's law: main pages per second times the mean think time (with the
// users' first pages counted when the population starts with the capture),
// so the pages stay the capture's.
func (f *Fitter) fitPopulation(sc *scenarios.Scenario, out *Fit, groups []sessGroups) {
	think := sc.Users.ThinkTime.Mean()
	if sc.Rate.Shape != scenarios.ShapeConstant || think <= 0 || len(groups) == 0 {
		return
	}
	var live []float64
	from, to := f.first.Add(seconds(2*think)), f.last.Add(-seconds(2*think))
	for t := from; !t.After(to); t = t.Add(250 * time.Millisecond) {
		n := 0
		for _, sg := range groups {
			if !sg.groups[0].start.After(t) && !sg.groups[len(sg.groups)-1].start.Before(t) {
				n++
			}
		}
		live = append(live, float64(n))
	}
	if len(live) < 20 {
		out.Notes = append(out.Notes, fmt.Sprintf("open or population model: the capture is too short against the think time (%.3gs) to tell", think))
		return
	}
	m, sd := meanSD(live)
	if m <= 0 {
		return
	}
	disp := sd * sd / m
	stat := fmt.Sprintf("sessions in progress: mean %.1f, variance / mean %.2f over %d samples every 250ms", m, disp, len(live))
	if disp >= 0.35 {
		out.Notes = append(out.Notes, "open model (rate): "+stat+" (>= 0.35: independent arrivals)")
		return
	}
	// Little's law: users = main pages per second x mean think time. A
	// population that starts with the capture (no session existed before
	// it) views its first pages within one think time (aspstate load spreads
	// its users' starts uniformly over one mean think time), about half a
	// page more per user than the steady rate over a capture of span W:
	// pages = users x (1 + (W - think/2) / think).
	mains, existing := 0, 0
	for _, sg := range groups {
		mains += len(sg.groups)
		if sg.s.existing() {
			existing++
		}
	}
	span := f.last.Sub(f.first).Seconds()
	perUser := math.Max(span, 1e-3) / think
	how := fmt.Sprintf("%d main pages / %.3gs x mean think time %.3gs (Little's law)", mains, span, think)
	if existing == 0 {
		perUser = 1 + math.Max(span-think/2, 0)/think
		how = fmt.Sprintf("%d main pages / (1 + (%.3gs - think/2) / mean think time %.3gs) (Little's law, with the first page of every user within one think time: no session existed before the capture)",
			mains, span, think)
	}
	p := int(math.Round(float64(mains) / perUser))
	if p < 1 {
		return
	}
	sc.Users.Population = p
	sc.Rate = scenarios.Rate{}
	delete(out.Comments, "rate")
	delete(out.Comments, "rate.poisson")
	out.Comments["users.population"] = fmt.Sprintf("population model, %s (< 0.35: the number of sessions holds still); users = %s", stat, how)
}
