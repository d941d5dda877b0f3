// Package resultstest builds load results in memory for tests of the code
// that reads them (compare, report, plan): the statistics and the rendering
// are tested on runs whose every latency is known, not on real load, whose
// figures depend on how busy the machine is (as vegeta's metrics tests build
// their results by hand).
//
// Only tests import it.
package resultstest

import (
	"fmt"
	"math/rand/v2"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/aspstate/aspstate/results"
)

// Kind is one page type or protocol operation of a synthetic run.
type Kind struct {
	// Name is the page type ("modify") or operation ("get-exclusive").
	Name string
	// Latency is the centre of the latencies: each is drawn uniformly from
	// [Latency/2, 3·Latency/2).
	Latency time.Duration
	// PerInterval is how many complete in each interval.
	PerInterval int
	// Errors is how many of them fail in each interval (kind "timeout").
	Errors int
}

// Spec describes a synthetic open-model run.
type Spec struct {
	// Seed draws the latencies: two specs that differ only in Seed are the
	// same build measured twice.
	Seed uint64
	// Start is when the run began (default 2026-01-02 03:04:05.583 UTC,
	// with a fraction of a second as real runs have).
	Start time.Time
	// Intervals is the number of intervals (default 10) and Interval their
	// length (default 1s).
	Intervals int
	Interval  time.Duration
	// Pages and Ops are the page types and operations recorded.
	Pages, Ops []Kind
	// Shift is added to every latency: the run a build that adds Shift to
	// every request would have produced.
	Shift time.Duration
}

// DefaultSpec returns a run of 10 one-second intervals with two page types
// (modify around 2ms, read-only around 1ms) and their operations.
func DefaultSpec() Spec {
	return Spec{
		Pages: []Kind{{Name: "modify", Latency: 2 * time.Millisecond, PerInterval: 30},
			{Name: "read-only", Latency: time.Millisecond, PerInterval: 20}},
		Ops: []Kind{{Name: "get-exclusive", Latency: 800 * time.Microsecond, PerInterval: 30},
			{Name: "set", Latency: 900 * time.Microsecond, PerInterval: 30},
			{Name: "get", Latency: 700 * time.Microsecond, PerInterval: 20}},
	}
}

// Run builds the run s describes: totals per page type and operation,
// corrected and uncorrected interval logs (the same latencies: an open
// model that kept its schedule), the interval time series and the rate.
// It panics on an impossible spec (a latency outside the histogram).
func Run(s Spec) *results.Run {
	if s.Start.IsZero() {
		s.Start = time.Date(2026, 1, 2, 3, 4, 5, 583_000_000, time.UTC)
	}
	if s.Intervals == 0 {
		s.Intervals = 10
	}
	if s.Interval == 0 {
		s.Interval = time.Second
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0x5eed))
	d := time.Duration(s.Intervals) * s.Interval
	r := &results.Run{
		Schema: results.Schema, Start: s.Start, End: s.Start.Add(d),
		Config: results.Config{Mode: results.ModeOpen, Shape: "constant", Duration: results.Duration(d),
			Minute: results.Duration(time.Minute), ScenarioName: "synthetic", Options: map[string]string{}},
		Pages: map[string]*results.Stats{}, Ops: map[string]*results.Stats{}, Errors: map[string]int64{},
		Correctness: results.Correctness{Violations: map[string]int64{}},
	}
	var pagesPer, opsPer, errsPer int64
	for _, k := range s.Pages {
		pagesPer += int64(k.PerInterval)
		errsPer += int64(k.Errors)
	}
	for _, k := range s.Ops {
		opsPer += int64(k.PerInterval)
		errsPer += int64(k.Errors)
	}
	ivPages := make([]*hdrhistogram.Histogram, s.Intervals)
	for i := range ivPages {
		ivPages[i] = results.NewHistogram()
	}
	record := func(prefix string, kinds []Kind, into map[string]*results.Stats) {
		for _, k := range kinds {
			total := results.NewHistogram()
			for i := range s.Intervals {
				h := results.NewHistogram()
				for range k.PerInterval {
					v := int64(float64(k.Latency)*(0.5+rng.Float64())) + int64(s.Shift)
					if err := h.RecordValue(v); err != nil {
						panic(fmt.Sprintf("resultstest: %s latency %d: %v", k.Name, v, err))
					}
				}
				total.Merge(h)
				if prefix == "page" {
					ivPages[i].Merge(h)
				}
				from := s.Start.Add(time.Duration(i) * s.Interval)
				e := must(results.NewLogEntry(true, prefix+"."+k.Name, from, from.Add(s.Interval), h))
				u := e // the same latencies, encoded once
				u.Corrected = false
				r.Logs = append(r.Logs, e, u)
			}
			l := must(results.NewLatency(total))
			n := int64(k.PerInterval * s.Intervals)
			st := &results.Stats{Count: n, Corrected: l, Uncorrected: l, Errors: map[string]int64{},
				Statuses: map[string]int64{"200": n}}
			if k.Errors > 0 {
				e := int64(k.Errors * s.Intervals)
				st.Errors["timeout"] = e
				st.Statuses["200"] = n - e
				if prefix == "op" {
					r.Errors["timeout"] += e
				}
			}
			into[k.Name] = st
		}
	}
	record("page", s.Pages, r.Pages)
	record("op", s.Ops, r.Ops)
	perSec := float64(pagesPer) / s.Interval.Seconds()
	for i, h := range ivPages {
		r.Intervals = append(r.Intervals, results.Interval{Elapsed: results.Duration(time.Duration(i+1) * s.Interval),
			Pages: pagesPer, Ops: opsPer, Errors: errsPer, P99: h.ValueAtQuantile(99), P99Uncorrected: h.ValueAtQuantile(99),
			Throughput: perSec})
	}
	completed := pagesPer * int64(s.Intervals)
	r.Config.Rate = perSec
	r.Rate = results.Rate{Intended: perSec, Achieved: perSec, Scheduled: completed, Started: completed,
		Completed: completed, Window: results.Duration(d)}
	return r
}

func must[T any](v T, err error) T {
	if err != nil {
		panic("resultstest: " + err.Error())
	}
	return v
}
