package compare

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/junit"
	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// steadyScenario is a small open-model load: 40 pages/s of every kind for
// 6s (twelve 500ms intervals per run) with a constant 1ms page execution
// time, so that a 2ms delay per request is a large relative change. Under
// the race detector two of them side by side are slow enough to stretch
// intervals; twelve leave room above the eight samples the tests demand.
const steadyScenario = `
name: compare-steady
description: steady open-model load for the compare tests
duration: 6s
farm: {web_servers: 2}
users:
  pages_per_session: {dist: constant, value: 5}
  think_time: {dist: constant, value: 100ms}
pages:
  mix: {modify: 2, read-unchanged: 2, read-only: 1, sessionless: 1}
  exec_time: {dist: constant, value: 1ms}
rate: {shape: constant, pages_per_second: 40}
`

// slowConn delays every write (every request the client sends) by delay:
// the "slowed build" of the tests, 2ms added to each request.
type slowConn struct {
	net.Conn
	delay time.Duration
}

func (c slowConn) Write(b []byte) (int, error) {
	time.Sleep(c.delay) // the injected latency itself, not a wait for an event
	return c.Conn.Write(b)
}

// realRuns holds two runs made side by side against one in-process
// reference server: base, and slow (every request delayed by 2ms). They run
// at the same time, interleaved as an A/B benchmark runs its pairs, so that
// whatever else loads the machine (other tenants of a shared VM, the race
// detector's own work) slows both alike and the only difference left between
// them is the injected delay.
var realRuns struct {
	once       sync.Once
	base, slow *results.Run
	err        error
}

func realPair(t *testing.T) (base, slow *results.Run) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs real load for a few seconds")
	}
	realRuns.once.Do(func() {
		realRuns.base, realRuns.slow, realRuns.err = makeRealPair()
	})
	if realRuns.err != nil {
		t.Fatal(realRuns.err)
	}
	return realRuns.base, realRuns.slow
}

func makeRealPair() (base, slow *results.Run, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tg, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{})
	if err != nil {
		return nil, nil, err
	}
	defer tg.Close()
	runs := make([]*results.Run, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range runs {
		cfg, err := steadyConfig(tg.Addr(), uint64(7+i))
		if err != nil {
			return nil, nil, err
		}
		if i == 1 {
			cfg.Dial = func(ctx context.Context, addr string) (*protocol.Conn, error) {
				var d net.Dialer
				nc, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					return nil, err
				}
				return protocol.NewConn(slowConn{nc, 2 * time.Millisecond}, protocol.ConnOptions{}), nil
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := loadgen.Run(ctx, cfg)
			switch {
			case err != nil:
				errs[i] = err
			case r.Interrupted || r.Rate.Completed == 0 || r.Correctness.Total != 0:
				errs[i] = fmt.Errorf("run %d did not complete cleanly: %+v %+v", i, r.Rate, r.Correctness)
			}
			runs[i] = r
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return runs[0], runs[1], nil
}

// steadyConfig is a run of steadyScenario against addr.
func steadyConfig(addr string, seed uint64) (loadgen.Config, error) {
	sc, err := scenarios.Parse([]byte(steadyScenario), "steady.yaml")
	if err != nil {
		return loadgen.Config{}, err
	}
	return loadgen.Config{Scenario: sc, Targets: []string{addr}, Interval: 500 * time.Millisecond,
		Drain: 5 * time.Second, Seed: seed}, nil
}

// TestSameBuildMadeApartIsNoChange compares two real runs of one build made
// one after the other, each on a fresh server, as two CI jobs would: no
// change either way, whatever else loads the machine in between.
func TestSameBuildMadeApartIsNoChange(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load for a few seconds")
	}
	var runs [2]*results.Run
	for i := range runs {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		tg, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		cfg, err := steadyConfig(tg.Addr(), 7)
		if err == nil {
			runs[i], err = loadgen.Run(ctx, cfg)
		}
		tg.Close()
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if m := runs[i].Machine; m != nil {
			t.Logf("run %d: timer lag p50 %s p90 %s p99 %s; %d lock waits; load average %s", i+1, time.Duration(m.TimerLag.P50),
				time.Duration(m.TimerLag.P90), time.Duration(m.TimerLag.P99), runs[i].Locks.Waited, loadAvg())
		}
	}
	for _, dir := range []struct {
		name      string
		base, new *results.Run
	}{{"earlier → later", runs[0], runs[1]}, {"later → earlier", runs[1], runs[0]}} {
		res, err := Compare(side("base", dir.base), side("new", dir.new), DefaultOptions(), nil)
		if err != nil {
			t.Fatalf("%s: %v", dir.name, err)
		}
		var text bytes.Buffer
		_ = res.Text(&text)
		if res.Count(Regression) != 0 || res.Count(Improvement) != 0 || !res.Pass() {
			t.Errorf("%s: want no change, got %d regressions, %d improvements\n%s", dir.name,
				res.Count(Regression), res.Count(Improvement), text.String())
		}
	}
}

func side(name string, runs ...*results.Run) Side {
	s := Side{Runs: runs}
	for range runs {
		s.Names = append(s.Names, name)
	}
	return s
}

func TestSameBuildIsNoChange(t *testing.T) {
	base, _ := realPair(t)
	same := jittered(t, base, 1)
	res, err := Compare(side("base", base), side("same", same), DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := res.Text(&text); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + text.String())
	if !res.Pass() {
		t.Fatalf("same build: want no regression, got %d", res.Count(Regression))
	}
	// Either run may be the base: no change both ways.
	rev, err := Compare(side("same", same), side("base", base), DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rev.Pass() {
		var b bytes.Buffer
		_ = rev.Text(&b)
		t.Fatalf("same build, reversed: want no regression, got %d\n%s", rev.Count(Regression), b.String())
	}
	row, ok := res.Row(Scope{Kind: ScopeAll}, P50)
	if !ok || row.NBase < 8 || row.NNew < 8 {
		t.Fatalf("all p50: want a row with >= 8 interval samples per side, got %+v", row)
	}
	if row.Verdict != NoChange || math.IsNaN(row.P) {
		t.Fatalf("all p50: want a tested no change, got %+v", row)
	}
}

// transformed returns a copy of r in which every recorded latency (totals,
// interval logs and the interval p99s) is mapped through f.
func transformed(t *testing.T, r *results.Run, f func(int64) int64) *results.Run {
	t.Helper()
	remap := func(l results.Latency) results.Latency {
		h, err := l.Decode()
		if err != nil {
			t.Fatal(err)
		}
		out := results.NewHistogram()
		for _, b := range h.Distribution() {
			for i := int64(0); i < b.Count; i++ {
				if err := out.RecordValue(f(b.To)); err != nil {
					t.Fatal(err)
				}
			}
		}
		nl, err := results.NewLatency(out)
		if err != nil {
			t.Fatal(err)
		}
		return nl
	}
	c := *r
	for _, m := range []*map[string]*results.Stats{&c.Pages, &c.Ops} {
		nm := map[string]*results.Stats{}
		for k, st := range *m {
			ns := *st
			ns.Corrected, ns.Uncorrected = remap(st.Corrected), remap(st.Uncorrected)
			nm[k] = &ns
		}
		*m = nm
	}
	c.Logs = nil
	for _, e := range r.Logs {
		l := remap(results.Latency{Histogram: e.Histogram})
		h, err := l.Decode()
		if err != nil {
			t.Fatal(err)
		}
		ne, err := results.NewLogEntry(e.Corrected, e.Tag, e.Start, e.End, h)
		if err != nil {
			t.Fatal(err)
		}
		c.Logs = append(c.Logs, ne)
	}
	c.Intervals = nil
	for _, iv := range r.Intervals {
		iv.P99 = f(iv.P99)
		iv.P99Uncorrected = f(iv.P99Uncorrected)
		c.Intervals = append(c.Intervals, iv)
	}
	return &c
}

// shifted returns r with every latency d longer: the run a build that adds d
// to every request would have produced under the same noise.
func shifted(t *testing.T, r *results.Run, d time.Duration) *results.Run {
	return transformed(t, r, func(v int64) int64 { return v + d.Nanoseconds() })
}

// jittered returns r with every latency multiplied by an independent factor
// in [0.97, 1.03] from a fixed seed: the same build measured again with a
// little measurement noise. Two separate real runs would be the literal
// "same build twice", but on a shared CI machine other work makes two
// sequential runs genuinely differ, so a no-change verdict on them cannot be a
// test that always passes; `make regress` and the README show that case on
// real runs.
func jittered(t *testing.T, r *results.Run, seed uint64) *results.Run {
	rng := rand.New(rand.NewPCG(seed, seed))
	return transformed(t, r, func(v int64) int64 { return int64(float64(v) * (0.97 + 0.06*rng.Float64())) })
}

// shiftedScopes are the scopes whose p50 TestShiftedBuildIsRegression checks.
var shiftedScopes = []Scope{{Kind: ScopeAll}, {Kind: ScopePage, Name: "modify"}, {Kind: ScopeOp, Name: "get-exclusive"}}

// clearShift returns a delay that moves every checked per-interval p50 of
// base above all of base's own: 2ms on a quiet machine, more where other work
// spread the intervals wider (a shift inside the noise is not a change any
// test can be sure to see, however right the comparison).
func clearShift(t *testing.T, base *results.Run) time.Duration {
	t.Helper()
	d, err := collect([]*results.Run{base})
	if err != nil {
		t.Fatal(err)
	}
	var spread float64
	for _, s := range shiftedScopes {
		v := d.samples(s, P50)
		if len(v) == 0 {
			t.Fatalf("%s: no interval p50s in the base run", s)
		}
		spread = max(spread, slices.Max(v)-slices.Min(v))
	}
	return 2*time.Millisecond + time.Duration(1.1*spread)
}

func TestShiftedBuildIsRegression(t *testing.T) {
	base, _ := realPair(t)
	shift := clearShift(t, base)
	slow := shifted(t, base, shift)
	if err := slow.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := Compare(side("base", base), side("base+"+shift.String(), slow), DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := res.Text(&text); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + text.String())
	if res.Pass() {
		t.Fatalf("every latency %s longer: want a regression", shift)
	}
	for _, s := range shiftedScopes {
		row, ok := res.Row(s, P50)
		if !ok || row.Verdict != Regression || row.New-row.Base < 0.75*float64(shift) {
			t.Errorf("%s p50: want a regression of about +%s, got %+v", s, shift, row)
		}
	}
	// Latency only: throughput and errors are unchanged.
	for _, m := range []Metric{Throughput, Errors} {
		if row, _ := res.Row(Scope{Kind: ScopeAll}, m); row.Verdict != NoChange {
			t.Errorf("%s: want no change, got %+v", m, row)
		}
	}
	// The reverse comparison is an improvement, and passes.
	rev, err := Compare(side("base+"+shift.String(), slow), side("base", base), DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if row, _ := rev.Row(Scope{Kind: ScopeAll}, P50); row.Verdict != Improvement {
		t.Errorf("reverse: want an improvement, got %+v", row)
	}
	if !rev.Pass() {
		t.Errorf("reverse: an improvement passes; got %d regressions", rev.Count(Regression))
	}
}

// TestSlowedBuildEndToEnd compares against a run whose every request was
// really delayed by 2ms on the way to the server. On a quiet machine this is
// a regression in many metrics; on a machine loaded by other work the
// per-interval noise can hide it, so the test demands what holds either way:
// the totals show the delay, and nothing reads as an improvement.
func TestSlowedBuildEndToEnd(t *testing.T) {
	base, slow := realPair(t)
	res, err := Compare(side("base", base), side("slow", slow), DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := res.Text(&text); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + text.String())
	for _, s := range []Scope{{Kind: ScopeOp, Name: "get-exclusive"}, {Kind: ScopeOp, Name: "set"}, {Kind: ScopeAll}} {
		row, _ := res.Row(s, P50)
		if row.New-row.Base < 1e6 {
			t.Errorf("%s p50: want at least +1ms with 2ms added per request, got %s → %s", s,
				FormatValue(P50, row.Base), FormatValue(P50, row.New))
		}
		if row.Verdict == Improvement {
			t.Errorf("%s p50: a slowed build cannot be an improvement: %+v", s, row)
		}
	}
	t.Logf("verdict on the really slowed run: %s", res.summary())
}

func TestThresholdsOnRealRuns(t *testing.T) {
	base, slow := realPair(t)
	parse := func(ss ...string) []Threshold {
		var out []Threshold
		for _, s := range ss {
			th, err := ParseThreshold(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, th)
		}
		return out
	}
	ths := parse("op:get p50 < 1s", "page:modify p99 <= +10000%", "errors < 0.1%", "throughput >= 30/s",
		"op:remove p99 < 1s", "page:modify p50 <= +5%", "p50 < 1ns")
	res, err := Compare(side("base", base), side("slow", slow), DefaultOptions(), ths)
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, true, true, true, false, false, false}
	for i, tr := range res.Thresholds {
		if tr.Pass != want[i] {
			t.Errorf("%q: pass = %v, want %v (%s)", tr.Text, tr.Pass, want[i], tr.Reason)
		}
	}
	if r := res.Thresholds[4]; !strings.Contains(r.Reason, "no samples") {
		t.Errorf("op:remove (never sent): want a no-samples failure, got %q", r.Reason)
	}
	// Against the same build, the relative limit holds.
	res, err = Compare(side("base", base), side("same", jittered(t, base, 2)), DefaultOptions(), parse("page:modify p50 <= +20%"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Thresholds[0].Pass {
		t.Errorf("same build: %s", res.Thresholds[0].Reason)
	}
}

// TestOutputs checks the Markdown and JUnit forms of a comparison that has
// a regression for certain: base against itself shifted clear of its noise
// (two real runs may differ by less than a loaded machine's noise).
func TestOutputs(t *testing.T) {
	base, _ := realPair(t)
	slow := shifted(t, base, clearShift(t, base))
	th, err := ParseThreshold("p99 < 1ns")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Compare(side("base", base), side("slow", slow), DefaultOptions(), []Threshold{th})
	if err != nil {
		t.Fatal(err)
	}
	var md, ju bytes.Buffer
	if err := res.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"❌", "**regression**", "| `p99 < 1ns` | **FAIL** |", "<details>"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if err := res.JUnit(&ju); err != nil {
		t.Fatal(err)
	}
	var suites junit.Suites
	if err := xml.Unmarshal(ju.Bytes(), &suites); err != nil {
		t.Fatalf("junit is not XML: %v\n%s", err, ju.String())
	}
	if len(suites.Suites) != 2 || suites.Suites[0].Failures != res.Count(Regression) || suites.Suites[1].Failures != 1 ||
		suites.Suites[0].Tests != len(res.Rows) {
		t.Errorf("junit suites: %+v", suites.Suites)
	}
}

func TestCompareRejectsBadInput(t *testing.T) {
	if _, err := Compare(Side{}, Side{}, DefaultOptions(), nil); err == nil {
		t.Error("empty sides: want an error")
	}
	bad := DefaultOptions()
	bad.Alpha = 2
	bad.MinSamples = 1
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "Alpha") || !strings.Contains(err.Error(), "MinSamples") {
		t.Errorf("bad options: want both problems reported, got %v", err)
	}
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}
