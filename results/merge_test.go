package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/aspstate/aspstate/scenarios"
)

// shardRun builds shard i/n of a run: random page latencies recorded per
// interval (as the collector does) and in total, so a merge can be checked
// against the histogram of all samples.
func shardRun(t *testing.T, i, n int, start time.Time, rng *rand.Rand, all, perIv []*hdrhistogram.Histogram) *Run {
	t.Helper()
	scen := &scenarios.Scenario{Name: "farm", Farm: scenarios.Farm{WebServers: 2},
		Rate: scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: 50}}
	total := NewHistogram()
	var logs []LogEntry
	var ivs []Interval
	completed := int64(0)
	for k := range perIv {
		ivh := NewHistogram()
		m := 40 + rng.IntN(20)
		for j := 0; j < m; j++ {
			v := int64(time.Duration(rng.ExpFloat64()*float64(5*time.Millisecond)) + time.Duration(i)*time.Millisecond)
			v = max(v, HistLowest)
			_ = ivh.RecordValue(v)
			_ = all[0].RecordValue(v)
			_ = perIv[k].RecordValue(v)
		}
		completed += int64(m)
		total.Merge(ivh)
		s, e := start.Add(time.Duration(k)*time.Second), start.Add(time.Duration(k+1)*time.Second)
		for _, corr := range []bool{true, false} {
			le, err := NewLogEntry(corr, "page.modify", s, e, ivh)
			if err != nil {
				t.Fatal(err)
			}
			logs = append(logs, le)
		}
		ivs = append(ivs, Interval{Elapsed: Duration(time.Duration(k+1) * time.Second), Pages: int64(m), Ops: 2 * int64(m),
			Throughput: float64(m), P99: ivh.ValueAtQuantile(99), P99Uncorrected: ivh.ValueAtQuantile(99)})
	}
	lat, err := NewLatency(total)
	if err != nil {
		t.Fatal(err)
	}
	d := time.Duration(len(perIv)) * time.Second
	return &Run{
		Schema: Schema, Harness: Harness{Version: "dev"}, Start: start, End: start.Add(d),
		Config: Config{Mode: ModeOpen, Shape: "constant", Rate: 50, Duration: Duration(d), Minute: Duration(time.Minute),
			ScenarioName: "farm", Scenario: scen, Shard: shardName(i, n),
			Options: map[string]string{"interval": "1s", "seed": "1"},
			Targets: []Target{{Spec: "tcp://server:42424", Kind: "tcp", Addr: "server:42424"}}},
		Ops:         map[string]*Stats{},
		Pages:       map[string]*Stats{"modify": {Count: completed, Errors: map[string]int64{"timeout": 1}, Statuses: map[string]int64{}, Corrected: lat, Uncorrected: lat}},
		Errors:      map[string]int64{"timeout": 1, "reset": int64(i)},
		Locks:       Locks{Acquires: completed, Polls: int64(i), MaxPollsPerAcquire: int64(i), LostWritesAfterLockBreak: 1},
		Correctness: Correctness{SkippedChecks: 3},
		Seeding:     &Seeding{Sessions: int64(100 * i), Detail: "seeded"},
		Rate:        Rate{Intended: 50, Scheduled: completed, Started: completed, Completed: completed, Window: Duration(d), Achieved: float64(completed) / d.Seconds()},
		Intervals:   ivs,
		Logs:        logs,
		Faults: &Faults{SessionsLost: int64(i), Events: []FaultEvent{{Kind: "latency", At: Duration(time.Second), Shard: shardName(i, n),
			Start: start.Add(time.Second + time.Duration(i)*time.Millisecond), End: start.Add(2 * time.Second), Status: FaultApplied,
			Targets: []int{0}, Errors: map[string]int64{"timeout": 1}}}},
	}
}

func shardName(i, n int) string { return fmt.Sprintf("%d/%d", i, n) }

func TestMergeShardsIsLossless(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	all := []*hdrhistogram.Histogram{NewHistogram()}
	perIv := []*hdrhistogram.Histogram{NewHistogram(), NewHistogram(), NewHistogram()}
	var runs []*Run
	var completed int64
	for i := 1; i <= 3; i++ {
		// Shards start a few milliseconds apart, as real ones do.
		r := shardRun(t, i, 3, start.Add(time.Duration(i)*3*time.Millisecond), rng, all, perIv)
		r.Generator = &Generator{CPUUser: Duration(i) * Duration(time.Second), CPUSystem: Duration(time.Second), Wall: Duration(10+i) * Duration(time.Second)}
		completed += r.Rate.Completed
		// Through the files, as `aspstate merge` reads them.
		dir := filepath.Join(t.TempDir(), "shard")
		if err := Write(dir, r); err != nil {
			t.Fatal(err)
		}
		back, err := Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, back)
	}
	m, err := Merge(runs)
	if err != nil {
		t.Fatal(err)
	}
	if g := m.Generator; g == nil || g.CPUUser != Duration(6*time.Second) || g.CPUSystem != Duration(3*time.Second) || g.Wall != Duration(13*time.Second) {
		t.Errorf("merged generator CPU %+v, want the shards' sums over the longest wall time", g)
	}
	p := m.Pages["modify"]
	if p.Count != completed || m.Rate.Completed != completed || m.Rate.Scheduled != completed {
		t.Errorf("counts: page %d, completed %d, scheduled %d; want %d", p.Count, m.Rate.Completed, m.Rate.Scheduled, completed)
	}
	want := all[0]
	got, err := p.Corrected.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if got.TotalCount() != want.TotalCount() || !got.Equals(want) {
		t.Errorf("merged histogram differs from the histogram of every sample: %d vs %d values", got.TotalCount(), want.TotalCount())
	}
	for _, q := range []float64{50, 90, 99, 99.9} {
		if g, w := got.ValueAtQuantile(q), want.ValueAtQuantile(q); g != w {
			t.Errorf("p%v = %d, want %d", q, g, w)
		}
	}
	if p.Corrected.P99 != want.ValueAtQuantile(99) {
		t.Errorf("summary p99 %d, want %d", p.Corrected.P99, want.ValueAtQuantile(99))
	}
	if len(m.Intervals) != 3 {
		t.Fatalf("%d intervals, want 3", len(m.Intervals))
	}
	for k, iv := range m.Intervals {
		if iv.P99 != perIv[k].ValueAtQuantile(99) || iv.Pages != perIv[k].TotalCount() {
			t.Errorf("interval %d: p99 %d pages %d; want %d and %d", k, iv.P99, iv.Pages, perIv[k].ValueAtQuantile(99), perIv[k].TotalCount())
		}
	}
	if m.Config.Rate != 150 || m.Rate.Intended != 150 {
		t.Errorf("rate %v intended %v, want 150", m.Config.Rate, m.Rate.Intended)
	}
	if ws := m.Config.Scenario.Farm.WebServers; ws != 6 {
		t.Errorf("web_servers %v, want 6", ws)
	}
	if pps := m.Config.Scenario.Rate.PagesPerSecond; pps != 150 {
		t.Errorf("pages_per_second %v, want 150", pps)
	}
	if runs[0].Config.Scenario.Farm.WebServers != 2 {
		t.Error("the merge changed a shard's scenario")
	}
	if m.Errors["timeout"] != 3 || m.Errors["reset"] != 6 {
		t.Errorf("errors %v", m.Errors)
	}
	if m.Locks.MaxPollsPerAcquire != 3 || m.Locks.Polls != 6 {
		t.Errorf("locks %+v", m.Locks)
	}
	if m.Correctness.SkippedChecks != 9 || m.Locks.LostWritesAfterLockBreak != 3 || m.Seeding == nil || m.Seeding.Sessions != 600 {
		t.Errorf("summed outcomes: skipped checks %d, lost writes %d, seeding %+v", m.Correctness.SkippedChecks, m.Locks.LostWritesAfterLockBreak, m.Seeding)
	}
	if g := m.Merged; g == nil || g.Results != 3 || strings.Join(g.Shards, ",") != "1/3,2/3,3/3" || g.StartSkew != Duration(6*time.Millisecond) {
		t.Errorf("merged %+v", g)
	}
	if o := m.Config.Options; o["seed"] != "1" || m.Config.Shard != "" {
		t.Errorf("options %v, shard %q", o, m.Config.Shard)
	}
	if m.Faults == nil || len(m.Faults.Events) != 3 || m.Faults.SessionsLost != 6 || m.Faults.Events[0].Shard != "1/3" {
		t.Errorf("faults %+v", m.Faults)
	}
	if len(m.Config.Targets) != 1 {
		t.Errorf("targets %v, want the one shared target once", m.Config.Targets)
	}
	// The merged result is a result like any other.
	dir := filepath.Join(t.TempDir(), "merged")
	if err := Write(dir, m); err != nil {
		t.Fatal(err)
	}
	back, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(); err != nil {
		t.Fatal(err)
	}
	sum, _ := os.ReadFile(filepath.Join(dir, SummaryFile))
	if !strings.Contains(string(sum), "faults: 3, 6 sessions lost") || !strings.Contains(string(sum), "latency@1s applied (shard 2/3)") {
		t.Errorf("summary lacks the faults:\n%s", sum)
	}
	checkAgainstSchema(t, m)
}

func checkAgainstSchema(t *testing.T, r *Run) {
	t.Helper()
	b, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	js, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(js, []byte(`"faults"`)) {
		t.Fatal("no faults block in the JSON")
	}
	var doc any
	_ = json.Unmarshal(js, &doc)
	if errs := validate(schema, schema, doc, "$"); len(errs) > 0 {
		t.Fatalf("a run with faults breaks the schema:\n%s", strings.Join(errs, "\n"))
	}
}

func TestMergeRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	mk := func(i, n int) *Run {
		return shardRun(t, i, n, start, rng, []*hdrhistogram.Histogram{NewHistogram()}, []*hdrhistogram.Histogram{NewHistogram()})
	}
	other := mk(2, 3)
	other.Config.ScenarioName = "other"
	closed := mk(2, 3)
	closed.Config.Mode = ModeClosedLoop
	plain := mk(2, 3)
	plain.Config.Shard = ""
	for name, tc := range map[string]struct {
		runs []*Run
		want string
	}{
		"none":      {nil, "no results"},
		"missing":   {[]*Run{mk(1, 3), mk(3, 3)}, "shard 2/3 missing"},
		"twice":     {[]*Run{mk(1, 2), mk(1, 2)}, "shard 1/2 a second time"},
		"counts":    {[]*Run{mk(1, 2), mk(2, 3)}, "one of 2 shards"},
		"scenario":  {[]*Run{mk(1, 3), other, mk(3, 3)}, `scenario "other"`},
		"mode":      {[]*Run{mk(1, 3), closed, mk(3, 3)}, "closed-loop-saturation run"},
		"mixed":     {[]*Run{mk(1, 2), plain}, "1 of 2 results are shards"},
		"bad shard": {[]*Run{func() *Run { r := mk(1, 2); r.Config.Shard = "3/2"; return r }()}, `shard "3/2"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Merge(tc.runs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseShard(t *testing.T) {
	for _, ok := range []string{"1/1", "2/3", " 3/3 "} {
		if _, _, err := ParseShard(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "0/3", "4/3", "1/0", "a/b", "1", "1/2/3", "-1/2"} {
		if _, _, err := ParseShard(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
