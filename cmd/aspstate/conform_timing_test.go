package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/conformance"
	"github.com/aspstate/aspstate/servers/target"
)

func TestTimingRulesSelection(t *testing.T) {
	t.Parallel()
	ids := func(rs []conformance.RuleInfo) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	if got := timingRules(conformOptions{}, conformance.DefaultInProcMinute); len(got) != 0 {
		t.Errorf("a fast minute runs timing rules in process, got %v", ids(got))
	}
	if got := timingRules(conformOptions{child: true}, time.Minute); len(got) != 0 {
		t.Errorf("a child never splits, got %v", ids(got))
	}
	all := ids(timingRules(conformOptions{}, time.Minute))
	if !slices.Contains(all, "3.1.5.3-expiry") || slices.Contains(all, "2.1-keepalive") {
		t.Errorf("timing rules at 1m: %v", all)
	}
	if got := ids(timingRules(conformOptions{rules: []string{"3.1.5.3-*"}, levels: []string{"must"}}, time.Minute)); !slices.Equal(got, []string{"3.1.5.3-expiry"}) {
		t.Errorf("--rules 3.1.5.3-* --levels must: %v, want only 3.1.5.3-expiry", got)
	}
	if got := withoutTiming(""); got != "!timing" {
		t.Errorf("withoutTiming(\"\") = %q", got)
	}
	if got := withoutTiming("level:must || slow"); got != "(level:must || slow) && !timing" {
		t.Errorf("withoutTiming = %q", got)
	}
}

func TestMinuteForOwnServers(t *testing.T) {
	t.Parallel()
	o := conformOptions{minute: time.Minute}
	for _, tc := range []struct {
		raw  string
		want time.Duration
	}{
		{"inproc", conformance.DefaultInProcMinute},
		{"docker:reference", conformance.DefaultInProcMinute},
		{"exec:aspstate serve --listen {addr}", conformance.DefaultInProcMinute},
		{"exec:./other-server --port {port}", time.Minute},
		{"docker:someone/else", time.Minute},
		{"tcp://127.0.0.1:42424", time.Minute},
	} {
		spec, err := target.Parse(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := minuteFor(o, spec); got != tc.want {
			t.Errorf("minuteFor(%s) = %v, want %v", tc.raw, got, tc.want)
		}
	}
	set := conformOptions{minute: time.Minute, minuteSet: true}
	if got := minuteFor(set, target.Spec{Kind: target.KindInProc}); got != time.Minute {
		t.Errorf("--minute wins: %v", got)
	}
	spec, _ := target.Parse("exec:aspstate serve --listen {addr}")
	if got := withMinute(spec, 600*time.Millisecond).Command; !slices.Equal(got[len(got)-2:], []string{"--minute", "600ms"}) {
		t.Errorf("exec of aspstate serve gets --minute: %v", got)
	}
	spec, _ = target.Parse("exec:aspstate serve --minute 2s --listen {addr}")
	if got := withMinute(spec, 600*time.Millisecond).Command; slices.Contains(got, "600ms") {
		t.Errorf("an explicit --minute is kept: %v", got)
	}
}

// TestConformTimingRulesApart: with a slow minute the timing rules run in
// child processes beside the others and their results are merged.
func TestConformTimingRulesApart(t *testing.T) {
	t.Parallel()
	srv := startServer(t, conformance.InProcServerConfig(10*time.Second))
	dir := t.TempDir()
	cmd := conformChild(t, t.Context(), "conform", "--target", "tcp://"+srv.Addr(), "--minute", "10s", "--rules", "2.2.3.10-lockage-grows,2.2.3.9-first-cookie", "--out", dir)
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"1 timing rules run at once", "PASS 2.2.3.10-lockage-grows", "PASS 2.2.3.9-first-cookie", "conformance: 2 passed, 0 failed, 0 skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	m, err := conformance.ReadMatrix(dir + "/conformance.json")
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Reports[0]; len(r.Rules) != 2 || len(r.NotRun) != 0 || r.Rules[0].ID != "2.2.3.9-first-cookie" {
		t.Errorf("merged report: rules %v, not run %v", r.Rules, r.NotRun)
	}
}

// TestConformNamesAnotherMinute: a target whose protocol minute is not
// --minute is named before the rules run, and in the report.
func TestConformNamesAnotherMinute(t *testing.T) {
	t.Parallel()
	srv := startServer(t, conformance.InProcServerConfig(6*time.Second))
	dir := t.TempDir()
	cmd := conformChild(t, t.Context(), "conform", "--target", "tcp://"+srv.Addr(), "--minute", "1m", "--rules", "2.2.3.9-first-cookie", "--json", dir+"/r.json")
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "protocol minute: a lock held") || !strings.Contains(out, "not 1m0s (--minute)") {
		t.Errorf("the other minute is not named:\n%s", out)
	}
	m, err := conformance.ReadMatrix(dir + "/r.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Reports[0].MinuteProbe, "protocol minute is about") {
		t.Errorf("report's minute probe: %q", m.Reports[0].MinuteProbe)
	}
}
