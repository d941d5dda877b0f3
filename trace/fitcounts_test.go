package trace

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aspstate/aspstate/scenarios"
)

// censoredSessions draws n sessions of sc's length and think time that
// begin uniformly in a capture of span seconds (each is seen up to the
// capture's end) and returns what the capture shows of them and the gaps
// between their pages that it holds.
func censoredSessions(r *rand.Rand, pages, think scenarios.Dist, n int, span float64) ([]sessObs, []float64) {
	var obs []sessObs
	var gaps []float64
	u := scenarios.Users{PagesPerSession: pages}
	for range n {
		t := r.Float64() * span
		np := u.SamplePages(r)
		o := sessObs{pages: 1}
		for k := 1; k < np; k++ {
			g := think.Sample(r)
			if t+g > span {
				break
			}
			t += g
			gaps = append(gaps, g)
			o.pages++
		}
		o.remain = span - t
		obs = append(obs, o)
	}
	return obs, gaps
}

// Sessions much longer than the capture: most are cut by its end, yet the
// maximum-likelihood fit recovers the mean length for each family.
func TestFitCountsCensored(t *testing.T) {
	t.Parallel()
	think := scenarios.Dist{Kind: scenarios.DistExponential, Avg: 2, Min: 0.2, Max: 15}
	for i, pages := range []scenarios.Dist{
		{Kind: scenarios.DistUniform, Min: 5, Max: 15},
		{Kind: scenarios.DistLognormal, Avg: 10, StdDev: 8, Min: 1, Max: 60},
		{Kind: scenarios.DistExponential, Avg: 15, Min: 1, Max: 100},
	} {
		r := rand.New(rand.NewPCG(uint64(i), 9))
		obs, gaps := censoredSessions(r, pages, think, 3000, 20)
		cf := fitCounts(obs, gaps, nil)
		want := scenarios.Users{PagesPerSession: pages}.MeanPages()
		within(t, string(pages.Kind)+" pages per session", scenarios.Users{PagesPerSession: cf.dist}.MeanPages(), want, 0.1)
		t.Logf("%s fitted as %+v (%s)", pages.Kind, cf.dist, cf.stat)
		// The think times, weighted by their Kaplan-Meier mass, have the
		// right mean although the capture cuts the long ones more often.
		var sw, swx float64
		for j, g := range gaps {
			sw += cf.thinkW[j]
			swx += cf.thinkW[j] * g
		}
		within(t, string(pages.Kind)+" think time", swx/sw, think.Mean(), 0.05)
	}
	// Every session of one page, all ended: constant 1.
	cf := fitCounts([]sessObs{{pages: 1, ended: true}, {pages: 1, ended: true}}, nil, nil)
	if cf.dist.Kind != scenarios.DistConstant || cf.dist.Value != 1 {
		t.Errorf("one-page sessions: %+v", cf.dist)
	}
}

// A population of users (each starts a new session one think time after
// the last page of the previous one) keeps the number of sessions in
// progress still: the fit is a population model of about as many users;
// sessions arriving independently (the simulator's open model) are not.
func TestFitPopulation(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	t0 := time.Unix(1700000000, 0)
	think := scenarios.Dist{Kind: scenarios.DistExponential, Avg: 3, Min: 0.5, Max: 15}
	u := scenarios.Users{PagesPerSession: scenarios.Dist{Kind: scenarios.DistUniform, Min: 5, Max: 15}}
	span := 60.0
	var groups []sessGroups
	pages := 0
	for range 50 {
		at := r.Float64() * 3
		for at < span {
			sg := sessGroups{s: &sessFit{}}
			for k := u.SamplePages(r); k > 0 && at < span; k-- {
				sg.groups = append(sg.groups, group{start: t0.Add(seconds(at)), main: scenarios.PageReadOnly})
				at += think.Sample(r)
				pages++
			}
			groups = append(groups, sg)
		}
	}
	f := NewFitter(FitOptions{})
	f.first, f.last = t0, t0.Add(seconds(span))
	sc := &scenarios.Scenario{Users: scenarios.Users{ThinkTime: think}, Rate: scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: float64(pages) / span}}
	out := &Fit{Comments: map[string]string{}}
	f.fitPopulation(sc, out, groups)
	if sc.Users.Population < 45 || sc.Users.Population > 55 || sc.Rate.Shape != "" {
		t.Fatalf("population %d, rate %+v: %v %v", sc.Users.Population, sc.Rate, out.Comments, out.Notes)
	}

	open := fitOf(t, simulate(truth(), time.Minute, 2*time.Minute, 8))
	if open.Scenario.Users.Population != 0 {
		t.Errorf("open arrivals fitted as a population of %d: %s", open.Scenario.Users.Population, open.Comments["users.population"])
	}
}
