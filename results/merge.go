package results

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/aspstate/aspstate/scenarios"
)

// Merge combines results of load generators that ran at the same time
// against the same targets, typically the N shards of one run
// (`aspstate load --shard I/N`), into one result. Nothing is approximated:
// counters add up and every histogram (totals, lock waits and each interval
// of the .hlog logs) is an HdrHistogram merge, so percentiles are those of
// all the samples together.
//
// The runs must share the schema, mode, scenario and interval length. Runs
// that carry a shard must form a complete set 1..N of one N. Intervals are
// aligned by their position from each run's start (shards start together).
func Merge(runs []*Run) (*Run, error) {
	if len(runs) == 0 {
		return nil, errors.New("merge: no results given")
	}
	if err := checkMergeable(runs); err != nil {
		return nil, err
	}
	first := runs[0]
	out := &Run{
		Schema:  first.Schema,
		Harness: first.Harness,
		Start:   first.Start,
		End:     first.End,
		Errors:  map[string]int64{},
		Ops:     map[string]*Stats{},
		Pages:   map[string]*Stats{},
	}
	var failures []string
	var gen Generator
	genKnown := true // for every shard
	for _, r := range runs {
		if r.Start.Before(out.Start) {
			out.Start = r.Start
		}
		if r.End.After(out.End) {
			out.End = r.End
		}
		out.Interrupted = out.Interrupted || r.Interrupted
		if r.Failure != "" {
			failures = append(failures, r.Failure)
		}
		addCounts(out.Errors, r.Errors)
		if g := r.Generator; g != nil {
			// The shards' generators, together (each over its own run).
			gen.CPUUser += g.CPUUser
			gen.CPUSystem += g.CPUSystem
			gen.Wall = max(gen.Wall, g.Wall)
		} else {
			genKnown = false
		}
	}
	out.Failure = strings.Join(failures, "; ")
	if genKnown {
		out.Generator = &gen
	}
	out.Config = mergeConfig(runs)
	out.Merged = merged(runs, out.Start)
	out.Seeding = mergeSeeding(runs)
	var err error
	if out.Ops, err = mergeStats(runs, func(r *Run) map[string]*Stats { return r.Ops }); err != nil {
		return nil, err
	}
	if out.Pages, err = mergeStats(runs, func(r *Run) map[string]*Stats { return r.Pages }); err != nil {
		return nil, err
	}
	if out.PageState, err = mergeStats(runs, func(r *Run) map[string]*Stats { return r.PageState }); err != nil {
		return nil, err
	}
	if len(out.PageState) == 0 {
		out.PageState = nil
	}
	var lags []Latency
	for _, r := range runs {
		if r.Machine != nil {
			lags = append(lags, r.Machine.TimerLag)
		}
	}
	if len(lags) > 0 {
		lag, err := MergeLatency(lags...)
		if err != nil {
			return nil, fmt.Errorf("machine timer lag: %w", err)
		}
		out.Machine = &Machine{TimerLag: lag}
	}
	if out.Locks, err = mergeLocks(runs); err != nil {
		return nil, err
	}
	out.Correctness = mergeCorrectness(runs)
	out.Rate = mergeRate(runs, first.Config.Mode)
	var iv time.Duration // absent: intervalIndex's default
	if v, ok := first.Config.Options["interval"]; ok {
		if iv, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("result 1: interval option %q: %w", v, err)
		}
	}
	var p99 map[int][2]int64
	if out.Logs, p99, err = mergeLogs(runs, iv); err != nil {
		return nil, err
	}
	out.Intervals = mergeIntervals(runs, p99)
	out.Faults = mergeFaults(runs)
	return out, out.Validate()
}

// checkMergeable reports why runs cannot be merged into one.
func checkMergeable(runs []*Run) error {
	var errs []error
	first := runs[0]
	shards := map[int]bool{}
	shardN := 0
	withShard := 0
	for i, r := range runs {
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("result %d: %w", i+1, err))
			continue
		}
		switch {
		case r.Config.Mode != first.Config.Mode:
			errs = append(errs, fmt.Errorf("result %d is a %s run, result 1 a %s run: merge runs of one mode", i+1, r.Config.Mode, first.Config.Mode))
		case r.Config.ScenarioName != first.Config.ScenarioName:
			errs = append(errs, fmt.Errorf("result %d ran scenario %q, result 1 %q: merge runs of one scenario", i+1, r.Config.ScenarioName, first.Config.ScenarioName))
		case r.Config.Options["interval"] != first.Config.Options["interval"]:
			errs = append(errs, fmt.Errorf("result %d has intervals of %q, result 1 of %q: run every shard with the same interval", i+1, r.Config.Options["interval"], first.Config.Options["interval"]))
		}
		s := r.Config.Shard
		if s == "" {
			continue
		}
		withShard++
		idx, n, err := ParseShard(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("result %d: %w", i+1, err))
			continue
		}
		if shardN == 0 {
			shardN = n
		}
		switch {
		case n != shardN:
			errs = append(errs, fmt.Errorf("result %d is shard %s, but another result is one of %d shards: merge the shards of one run", i+1, s, shardN))
		case shards[idx]:
			errs = append(errs, fmt.Errorf("result %d is shard %s a second time: give each shard's directory once", i+1, s))
		}
		shards[idx] = true
	}
	if withShard > 0 && withShard < len(runs) {
		errs = append(errs, fmt.Errorf("%d of %d results are shards: merge either the shards of one run or unsharded runs", withShard, len(runs)))
	}
	if shardN > 0 && len(errs) == 0 {
		var missing []string
		for i := 1; i <= shardN; i++ {
			if !shards[i] {
				missing = append(missing, fmt.Sprintf("%d/%d", i, shardN))
			}
		}
		if len(missing) > 0 {
			errs = append(errs, fmt.Errorf("shard %s missing: a merge of part of the shards is not the run; give every shard's result directory", strings.Join(missing, ", ")))
		}
	}
	return errors.Join(errs...)
}

// ParseShard parses "I/N" (1 <= I <= N).
func ParseShard(s string) (index, count int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return 0, 0, fmt.Errorf("shard %q: want I/N with 1 <= I <= N, e.g. 2/3", s)
	}
	return i, n, nil
}

// mergeConfig keeps the first run's configuration with the rates, web
// servers and population of every run added up, the targets of all, and
// options that differ listed.
func mergeConfig(runs []*Run) Config {
	first := runs[0].Config
	c := first
	c.Rate = 0
	c.Shard = ""
	c.Options = map[string]string{}
	seenTarget := map[Target]bool{}
	c.Targets = nil
	for _, r := range runs {
		c.Rate += r.Config.Rate
		if r.Config.Duration > c.Duration {
			c.Duration = r.Config.Duration
		}
		for _, t := range r.Config.Targets {
			if !seenTarget[t] {
				seenTarget[t] = true
				c.Targets = append(c.Targets, t)
			}
		}
	}
	keys := map[string]bool{}
	for _, r := range runs {
		for k := range r.Config.Options {
			keys[k] = true
		}
	}
	for _, k := range sortedKeys(keys) {
		if k == "start_at" {
			continue
		}
		var vals []string
		for _, r := range runs {
			if v, ok := r.Config.Options[k]; ok && !contains(vals, v) {
				vals = append(vals, v)
			}
		}
		c.Options[k] = strings.Join(vals, ",")
	}
	if len(runs) > 1 && first.Scenario != nil {
		c.Scenario = mergeScenario(runs)
	}
	return c
}

// merged describes the merge of runs whose earliest start is start.
func merged(runs []*Run, start time.Time) *Merged {
	m := &Merged{Results: len(runs)}
	var latest time.Time
	for _, r := range runs {
		if r.Start.After(latest) {
			latest = r.Start
		}
		if r.Config.Shard != "" {
			m.Shards = append(m.Shards, r.Config.Shard)
		}
	}
	sort.Strings(m.Shards)
	m.StartSkew = Duration(latest.Sub(start))
	return m
}

// mergeSeeding adds up the steady starts' sessions; nil when no run had one.
func mergeSeeding(runs []*Run) *Seeding {
	var out *Seeding
	var details []string
	for _, r := range runs {
		if r.Seeding == nil {
			continue
		}
		if out == nil {
			out = &Seeding{}
		}
		out.Sessions += r.Seeding.Sessions
		details = append(details, r.Seeding.Detail)
	}
	if out != nil {
		out.Detail = strings.Join(details, "; ")
	}
	return out
}

// mergeScenario returns the first run's scenario with the farm's web
// servers, the user population and every page rate summed over the runs, so
// the merged result describes the whole farm. A run without a scenario, or
// with other rate steps, leaves the sums as the first run's.
func mergeScenario(runs []*Run) *scenarios.Scenario {
	sc := runs[0].Config.Scenario.Clone()
	var sum scenarios.Scenario
	sum.Rate.Steps = make([]scenarios.Step, len(sc.Rate.Steps))
	for _, r := range runs {
		x := r.Config.Scenario
		if x == nil || len(x.Rate.Steps) != len(sc.Rate.Steps) {
			return sc
		}
		sum.Farm.WebServers += x.Farm.WebServers
		sum.Users.Population += x.Users.Population
		sum.Rate.PagesPerSecond += x.Rate.PagesPerSecond
		sum.Rate.From += x.Rate.From
		sum.Rate.To += x.Rate.To
		for i, st := range x.Rate.Steps {
			sum.Rate.Steps[i].PagesPerSecond += st.PagesPerSecond
		}
	}
	sc.Farm.WebServers, sc.Users.Population = sum.Farm.WebServers, sum.Users.Population
	sc.Rate.PagesPerSecond, sc.Rate.From, sc.Rate.To = sum.Rate.PagesPerSecond, sum.Rate.From, sum.Rate.To
	for i := range sc.Rate.Steps {
		sc.Rate.Steps[i].PagesPerSecond = sum.Rate.Steps[i].PagesPerSecond
	}
	return sc
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func addCounts(dst, src map[string]int64) {
	for k, v := range src {
		dst[k] += v
	}
}

// mergeStats merges the per-operation or per-page statistics.
func mergeStats(runs []*Run, get func(*Run) map[string]*Stats) (map[string]*Stats, error) {
	out := map[string]*Stats{}
	keys := map[string]bool{}
	for _, r := range runs {
		for k := range get(r) {
			keys[k] = true
		}
	}
	for _, k := range sortedKeys(keys) {
		m := &Stats{Errors: map[string]int64{}, Statuses: map[string]int64{}}
		var corr, uncorr []Latency
		for _, r := range runs {
			s := get(r)[k]
			if s == nil {
				continue
			}
			m.Count += s.Count
			addCounts(m.Errors, s.Errors)
			addCounts(m.Statuses, s.Statuses)
			corr = append(corr, s.Corrected)
			uncorr = append(uncorr, s.Uncorrected)
		}
		var err error
		if m.Corrected, err = MergeLatency(corr...); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if m.Uncorrected, err = MergeLatency(uncorr...); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = m
	}
	return out, nil
}

func mergeLocks(runs []*Run) (Locks, error) {
	var l Locks
	var waits []Latency
	for _, r := range runs {
		x := r.Locks
		l.Acquires += x.Acquires
		l.ForcedBreaks += x.ForcedBreaks
		l.Locked += x.Locked
		l.Polls += x.Polls
		l.Waited += x.Waited
		l.WaitTimeouts += x.WaitTimeouts
		l.LostWritesAfterLockBreak += x.LostWritesAfterLockBreak
		l.MaxPollsPerAcquire = max(l.MaxPollsPerAcquire, x.MaxPollsPerAcquire)
		waits = append(waits, x.Wait)
	}
	if l.Acquires > 0 {
		l.PollsPerAcquire = float64(l.Polls) / float64(l.Acquires)
	}
	var err error
	l.Wait, err = MergeLatency(waits...)
	return l, err
}

func mergeCorrectness(runs []*Run) Correctness {
	c := Correctness{Violations: map[string]int64{}}
	for _, r := range runs {
		c.Checks += r.Correctness.Checks
		c.Total += r.Correctness.Total
		c.SkippedChecks += r.Correctness.SkippedChecks
		addCounts(c.Violations, r.Correctness.Violations)
		c.Examples = append(c.Examples, r.Correctness.Examples...)
	}
	sort.Strings(c.Examples)
	if len(c.Examples) > 10 {
		c.Examples = c.Examples[:10]
	}
	return c
}

// mergeRate adds the counters up. The merged window is the longest; the
// achieved rate of an open run is every completed page over it (as one
// process would have counted), a saturation figure is the sum of the runs'.
func mergeRate(runs []*Run, mode string) Rate {
	var m Rate
	m.LateThreshold = runs[0].Rate.LateThreshold
	for _, r := range runs {
		x := r.Rate
		m.Scheduled += x.Scheduled
		m.Started += x.Started
		m.CutOff += x.CutOff
		m.Completed += x.Completed
		m.Dropped += x.Dropped
		m.NoWorker += x.NoWorker
		m.Late += x.Late
		m.Intended += x.Intended
		m.MaxLateness = max(m.MaxLateness, x.MaxLateness)
		m.Window = max(m.Window, x.Window)
		if mode == ModeClosedLoop {
			m.Achieved += x.Achieved
		}
	}
	if mode != ModeClosedLoop && m.Window > 0 {
		m.Achieved = float64(m.Completed) / time.Duration(m.Window).Seconds()
	}
	return m
}

// logKey identifies one interval histogram across runs.
type logKey struct {
	corrected bool
	tag       string
	index     int
}

// intervalIndex returns the position of an interval starting at t in a run
// that started at start.
func intervalIndex(t, start time.Time, iv time.Duration) int {
	if iv <= 0 {
		iv = time.Second
	}
	return int(math.Round(float64(t.Sub(start)) / float64(iv)))
}

// mergeLogs merges the interval histograms of the same tag and position,
// and returns the corrected and uncorrected p99 of all pages per position.
func mergeLogs(runs []*Run, iv time.Duration) ([]LogEntry, map[int][2]int64, error) {
	type acc struct {
		h          *hdrhistogram.Histogram
		start, end time.Time
	}
	groups := map[logKey]*acc{}
	var order []logKey
	for _, r := range runs {
		for _, e := range r.Logs {
			k := logKey{e.Corrected, e.Tag, intervalIndex(e.Start, r.Start, iv)}
			h, err := e.Decode()
			if err != nil {
				return nil, nil, fmt.Errorf("log %s: %w", e.Tag, err)
			}
			a := groups[k]
			if a == nil {
				a = &acc{h: NewHistogram(), start: e.Start, end: e.End}
				groups[k] = a
				order = append(order, k)
			}
			if dropped := a.h.Merge(h); dropped > 0 {
				return nil, nil, fmt.Errorf("log %s: %d values out of range", e.Tag, dropped)
			}
			if e.Start.Before(a.start) {
				a.start = e.Start
			}
			if e.End.After(a.end) {
				a.end = e.End
			}
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.index != b.index {
			return a.index < b.index
		}
		if a.tag != b.tag {
			return a.tag < b.tag
		}
		return a.corrected && !b.corrected
	})
	out := make([]LogEntry, 0, len(order))
	for _, k := range order {
		a := groups[k]
		e, err := NewLogEntry(k.corrected, k.tag, a.start, a.end, a.h)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, e)
	}
	// Every page of an interval, as the collector's interval p99 counts them.
	pages := map[int][2]*hdrhistogram.Histogram{}
	for _, k := range order {
		if !strings.HasPrefix(k.tag, "page.") {
			continue
		}
		p, ok := pages[k.index]
		if !ok {
			p = [2]*hdrhistogram.Histogram{NewHistogram(), NewHistogram()}
			pages[k.index] = p
		}
		if k.corrected {
			p[0].Merge(groups[k].h)
		} else {
			p[1].Merge(groups[k].h)
		}
	}
	p99 := map[int][2]int64{}
	for i, p := range pages {
		p99[i] = [2]int64{p[0].ValueAtQuantile(99), p[1].ValueAtQuantile(99)}
	}
	return out, p99, nil
}

// mergeIntervals adds the time series up position by position. The p99s
// come from the merged page histograms of each interval when the logs are
// there (else the worst run's p99, a bound rather than the value).
func mergeIntervals(runs []*Run, p99 map[int][2]int64) []Interval {
	n := 0
	for _, r := range runs {
		n = max(n, len(r.Intervals))
	}
	out := make([]Interval, n)
	for _, r := range runs {
		for i, x := range r.Intervals {
			o := &out[i]
			o.Elapsed = max(o.Elapsed, x.Elapsed)
			o.Errors += x.Errors
			o.LockWaits += x.LockWaits
			o.Late += x.Late
			o.Ops += x.Ops
			o.Pages += x.Pages
			o.Throughput += x.Throughput
			o.P99 = max(o.P99, x.P99)
			o.P99Uncorrected = max(o.P99Uncorrected, x.P99Uncorrected)
		}
	}
	for i := range out {
		if p, ok := p99[i]; ok {
			out[i].P99, out[i].P99Uncorrected = p[0], p[1]
		}
	}
	return out
}

// mergeFaults lists every run's fault events in time order.
func mergeFaults(runs []*Run) *Faults {
	var f *Faults
	for _, r := range runs {
		if r.Faults == nil {
			continue
		}
		if f == nil {
			f = &Faults{}
		}
		f.Events = append(f.Events, r.Faults.Events...)
		f.SessionsLost += r.Faults.SessionsLost
		if f.Proxy == "" {
			f.Proxy = r.Faults.Proxy
		}
	}
	if f != nil {
		sort.SliceStable(f.Events, func(i, j int) bool { return f.Events[i].Start.Before(f.Events[j].Start) })
	}
	return f
}
