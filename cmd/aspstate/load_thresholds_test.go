package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/results"
)

// longScenario runs for a minute unless stopped: the tests below stop it.
const longScenario = `name: long
description: a long steady load that the threshold and interrupt tests stop early
duration: 60s
pages:
  mix: {modify: 2, read-unchanged: 1, read-only: 1, sessionless: 1}
  exec_time: 5ms
users:
  think_time: 50ms
  pages_per_session: 4
rate:
  shape: constant
  pages_per_second: 40
`

func writeScenario(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "scenario.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadThresholdsAtTheEnd(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := runLoad(ctx, []string{"--scenario", writeScenario(t, tinyScenario), "--minute", "600ms", "--out", out,
		"--threshold", "page-state p99 < 30s", "--threshold", "op:get p50 < 1ns"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("a broken threshold: exit %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	run, err := results.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Objectives) != 2 || !run.Objectives[0].Pass || run.Objectives[1].Pass || run.Objectives[1].Aborted {
		t.Fatalf("objectives %+v", run.Objectives)
	}
	for _, want := range []string{"threshold PASS  page-state p99 < 30s", "threshold FAIL  op:get p50 < 1ns"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "1 of 2 thresholds broken") {
		t.Errorf("stderr: %s", stderr.String())
	}
	// Usage: a relative limit, or --abort-on-fail without a threshold.
	for _, args := range [][]string{{"--threshold", "p99 < +10%"}, {"--abort-on-fail"}} {
		var e bytes.Buffer
		if code := runLoad(ctx, append([]string{"--scenario", "small-intranet"}, args...), &bytes.Buffer{}, &e); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, e.String())
		}
	}
}

// TestLoadAbortOnFail: a threshold every page breaks (max < 1µs) is lost at
// the first interval; the minute-long run stops there, keeps what it
// recorded and exits 1.
func TestLoadAbortOnFail(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := runLoad(ctx, []string{"--scenario", writeScenario(t, longScenario), "--out", out,
		"--threshold", "errors < 1%", "--threshold", "page-state max < 1us", "--abort-on-fail"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	run, err := results.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if !run.Interrupted || run.End.Sub(run.Start) > 30*time.Second || run.Rate.Completed == 0 {
		t.Fatalf("want a run stopped early with what it recorded: interrupted %v, %s long, %d pages",
			run.Interrupted, run.End.Sub(run.Start), run.Rate.Completed)
	}
	if len(run.Objectives) != 2 || !run.Objectives[1].Aborted || run.Objectives[1].Pass || run.Objectives[0].Aborted {
		t.Errorf("objectives %+v", run.Objectives)
	}
	if !strings.Contains(run.Failure, `aborted: threshold "page-state max < 1us" broken beyond recovery`) {
		t.Errorf("failure %q", run.Failure)
	}
	if n := run.Errors["canceled"]; n != 0 {
		t.Errorf("%d pages cut off by the abort counted as errors", n)
	}
}
