package report

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aspstate/aspstate/results"
)

// TestReportOfRealRunAnswersFirst renders the report of a real short run and
// checks its structure: the verdict block comes first, right under the
// title, and states objectives, correctness, linearizability, throughput and
// errors; every chart drawn has a curve; no chart of lock waits or errors
// is drawn for a run that had none. A copy of the run with a failed
// linearizability check shows FAIL and the smallest failing history.
func TestReportOfRealRunAnswersFirst(t *testing.T) {
	run := realRun(t)
	ins := []Input{{Label: "real", Run: run}}
	charts, err := buildCharts(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	var errs, waits int64
	for _, iv := range run.Intervals {
		errs += iv.Errors
		waits += iv.LockWaits
	}
	for _, c := range charts {
		if c.curves == 0 {
			t.Errorf("chart %s has no curve", c.name)
		}
		if (c.name == "errors" && errs == 0) || (c.name == "lock-waits-over-time" && waits == 0) {
			t.Errorf("chart %s drawn for a run without any", c.name)
		}
	}
	if len(charts) < 4 || charts[0].name != "latency-over-time" || charts[1].name != "throughput" || charts[2].name != "latency-page-state" {
		var names []string
		for _, c := range charts {
			names = append(names, c.name)
		}
		t.Errorf("charts %v: want latency over time, throughput, then page-state first", names)
	}

	page := renderHTML(t, ins)
	first := regexp.MustCompile(`(?s)<body>\s*<h1>[^<]*</h1>\s*<section class="verdict (pass|fail)"`)
	if !first.MatchString(page) {
		t.Fatalf("the verdict block is not the first thing under the title:\n%.600s", page[strings.Index(page, "<body>"):])
	}
	block := page[strings.Index(page, `<section class="verdict`):strings.Index(page, "</section>")]
	for _, want := range []string{"objectives", "correctness", "linearizability", "throughput", "errors", "page-state p99"} {
		if !strings.Contains(block, want) {
			t.Errorf("verdict block lacks %q", want)
		}
	}
	if strings.Index(page, "</section>") > strings.Index(page, "<svg") {
		t.Error("a chart comes before the end of the verdict block")
	}

	failed := *run
	failed.Linearizability = &results.Linearizability{Checker: "test", Sessions: 12, Operations: 80, Violations: 1,
		Failing: []string{"/app/s1"}, Examples: []string{"session /app/s1: 3 operations, not linearizable"},
		SmallestHistory: []string{"+0s client 0: acquire → 200 cookie 2", "+1ms client 1: acquire → 200 cookie 2"}}
	failed.Objectives = []results.Objective{{Text: "page-state p99 < 50ms", Pass: true, Value: "3.2ms"}}
	page = renderHTML(t, []Input{{Label: "broken", Run: &failed}})
	block = page[strings.Index(page, `<section class="verdict`):strings.Index(page, "</section>")]
	for _, want := range []string{`class="verdict fail"`, "FAIL (linearizability", "1 of 12 sessions are not linearizable",
		"Smallest failing linearizability history", "1ms client 1: acquire → 200 cookie 2", "page-state p99 &lt; 50ms"} {
		if !strings.Contains(block, want) {
			t.Errorf("verdict of a failed linearizability check lacks %q\n%s", want, block)
		}
	}
}

func renderHTML(t *testing.T, ins []Input) string {
	t.Helper()
	files, err := Write(context.Background(), t.TempDir(), ins, Format{HTML: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(files.HTML)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
