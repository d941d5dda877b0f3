package compare

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
)

// workloadRun is a run of a scenario at rate pages/s for d.
func workloadRun(rate float64, d time.Duration, execMS float64) *results.Run {
	return &results.Run{
		Schema: results.Schema,
		Config: results.Config{Mode: results.ModeOpen, Shape: "constant", Rate: rate, Duration: results.Duration(d),
			ScenarioName: "s", Options: map[string]string{"seed": "1"},
			Scenario: &scenarios.Scenario{Name: "s", Rate: scenarios.Rate{PagesPerSecond: rate},
				Pages: scenarios.Pages{ExecTime: scenarios.Dist{Kind: "constant", Value: execMS / 1000}}}},
		Rate: results.Rate{Intended: rate, Achieved: rate, Window: results.Duration(d)},
	}
}

func TestWorkloadDifferences(t *testing.T) {
	t.Parallel()
	base := workloadRun(200, 20*time.Second, 5)
	same := workloadRun(200.4, 20*time.Second, 5) // within the rate tolerance
	same.Config.Options["seed"] = "2"             // not part of the workload
	if d := WorkloadOf(base).Differences(WorkloadOf(same)); len(d) != 0 {
		t.Fatalf("same workload: %v", d)
	}
	if WorkloadOf(base).ScenarioHash != WorkloadOf(same).ScenarioHash {
		t.Error("the scenario hash depends on the rate, which is its own field")
	}
	other := workloadRun(457, 30*time.Second, 15)
	d := WorkloadOf(base).Differences(WorkloadOf(other))
	var fields []string
	for _, x := range d {
		fields = append(fields, x.Field)
	}
	if got := strings.Join(fields, ","); got != "scenario,rate,duration" {
		t.Fatalf("differing fields %q, want scenario,rate,duration: %v", got, d)
	}
	if !strings.Contains(d[0].Base, "pages.exec_time.value=0.005") || !strings.Contains(d[0].New, "0.015") {
		t.Errorf("scenario difference does not name the setting: %+v", d[0])
	}
	closed := workloadRun(0, 20*time.Second, 5)
	closed.Config.Mode, closed.Config.Options["connections"] = results.ModeClosedLoop, "16"
	d = WorkloadOf(base).Differences(WorkloadOf(closed))
	if len(d) != 2 || d[0].Field != FieldModel || d[1].Field != FieldPopulation {
		t.Errorf("open vs closed loop: %v", d)
	}
	// A setting one side's harness did not record is not a difference.
	newer := workloadRun(200, 20*time.Second, 5)
	newer.Config.Scenario.Client.RequestQueueLimitPerSession = 50 // omitted when zero, as by an older harness
	if d := WorkloadOf(base).Differences(WorkloadOf(newer)); len(d) != 0 {
		t.Errorf("a setting only one side records: %v", d)
	}
}

func TestCompareRefusesDifferentWorkloads(t *testing.T) {
	t.Parallel()
	base, other := workloadRun(200, 20*time.Second, 5), workloadRun(457, 20*time.Second, 5)
	_, err := Compare(side("base", base), side("new", other), DefaultOptions(), nil)
	var me *MismatchError
	if !errors.As(err, &me) || len(me.Differences) != 1 || me.Differences[0].Field != FieldRate {
		t.Fatalf("want a rate mismatch, got %v", err)
	}
	for _, want := range []string{"rate: base 200.0/s constant, new 457.0/s constant", "--allow-different rate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	o := DefaultOptions()
	o.AllowDifferent = []string{FieldRate}
	if _, err := Compare(side("base", base), side("new", other), o, nil); err != nil {
		t.Errorf("--allow-different rate: %v", err)
	}
	if _, err := ParseAllowDifferent("rate,colour"); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown field: %v", err)
	}
}

// TestOpenModelThroughputAgainstOfferedRate: a run that achieved its offered
// rate did not regress because BASE offered more; one that fell short of
// its own offered rate did.
func TestOpenModelThroughputAgainstOfferedRate(t *testing.T) {
	t.Parallel()
	e := DefaultEffects[Throughput]
	mk := func(offered, achieved float64) *sideData {
		return &sideData{count: map[Scope]int64{{Kind: ScopeAll}: int64(achieved * 10)}, window: 10, offered: offered * 10, open: true}
	}
	all := Scope{Kind: ScopeAll}
	for _, tc := range []struct {
		name          string
		base, new     *sideData
		want          Verdict
		wantNoteParts string
	}{
		{"both achieved, base offered more", mk(457, 457), mk(200, 200), NoChange, "achieved 100% of offered"},
		{"new fell short", mk(200, 200), mk(200, 120), Regression, "achieved 60%"},
		{"new caught up", mk(200, 120), mk(200, 199), Improvement, ""},
		{"both short alike", mk(200, 150), mk(200, 148), NoChange, ""},
	} {
		row := Row{Scope: all, Metric: Throughput, Verdict: NoChange}
		offeredRow(&row, tc.base, tc.new, e)
		if row.Verdict != tc.want || !strings.Contains(row.Note, tc.wantNoteParts) {
			t.Errorf("%s: %s (%s), want %s", tc.name, row.Verdict, row.Note, tc.want)
		}
	}
}
