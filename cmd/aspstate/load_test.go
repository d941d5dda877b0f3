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

const tinyScenario = `name: tiny
description: a tiny scenario for the load command test
duration: 1s
pages:
  mix: {modify: 2, read-unchanged: 1, read-only: 1, sessionless: 1}
  exec_time: 1ms
users:
  think_time: 50ms
  pages_per_session: 4
rate:
  shape: constant
  pages_per_second: 40
`

func TestLoadWritesResults(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tiny.yaml")
	if err := os.WriteFile(file, []byte(tinyScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := runLoad(ctx, []string{"--scenario", file, "--minute", "600ms", "--out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	for _, f := range []string{results.ResultFile, results.SummaryFile, results.CorrectedLog, results.UncorrectedLog} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s missing or empty (%v)", f, err)
		}
	}
	run, err := results.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if run.Config.ScenarioName != "tiny" || run.Rate.Completed < 30 || run.Correctness.Total != 0 {
		t.Fatalf("unexpected result: scenario %q, %d completed, %d violations", run.Config.ScenarioName, run.Rate.Completed, run.Correctness.Total)
	}
	if len(run.Logs) == 0 {
		t.Fatal("no interval histograms read back from the .hlog files")
	}
	if !strings.Contains(stdout.String(), "results: "+out) || !strings.Contains(stdout.String(), "correctness: OK") {
		t.Fatalf("stdout lacks the summary or the path:\n%s", stdout.String())
	}
}

func TestLoadUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: Bad Name\nbogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no scenario", nil, "--scenario is required"},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
		{"bad rate", []string{"--scenario", "small-intranet", "--rate", "x"}, "invalid value"},
		{"bad target", []string{"--scenario", "ajax-heavy", "--target", "ftp://x"}, "target"},
		{"unknown scenario", []string{"--scenario", "no-such-scenario"}, "builtin scenarios are"},
		{"bad scenario file", []string{"--scenario", bad}, "bogus"},
		{"rate with population", []string{"--scenario", "small-intranet", "--rate", "10", "--minute", "600ms"}, "population"},
		{"minute too small", []string{"--scenario", "ajax-heavy", "--minute", "1ms"}, "--minute"},
		{"stray argument", []string{"--scenario", "ajax-heavy", "extra"}, "unexpected argument"},
		{"steady closed loop", []string{"--scenario", "ajax-heavy", "--closed-loop", "--steady-start"}, "--steady-start applies to the open model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runLoad(context.Background(), tc.args, &stdout, &stderr)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
		})
	}
}

func TestLoadList(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runLoad(context.Background(), []string{"--list"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) < 6 || !strings.HasPrefix(lines[0], "ajax-heavy") {
		t.Fatalf("--list output:\n%s", stdout.String())
	}
}

func TestLoadInterruptedStillWritesResults(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel as soon as the first progress interval shows the run is going.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		buf := make([]byte, 1)
		if _, err := r.Read(buf); err == nil {
			cancel()
		}
	}()
	var stdout bytes.Buffer
	code := runLoad(ctx, []string{"--scenario", "large-sessions", "--rate", "20", "--duration", "30s", "--minute", "600ms", "--out", out}, &stdout, w)
	w.Close()
	cancel()
	if code != 130 {
		t.Fatalf("exit %d, want 130 (interrupted)\n%s", code, stdout.String())
	}
	run, err := results.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	var pageErrs int64
	for _, s := range run.Pages {
		for _, n := range s.Errors {
			pageErrs += n
		}
	}
	if run.Errors["canceled"] != 0 || pageErrs != 0 {
		t.Errorf("pages in flight at the interrupt counted as errors: %v, %d page errors", run.Errors, pageErrs)
	}
	if !run.Interrupted || !strings.Contains(stdout.String(), "INTERRUPTED") {
		t.Fatalf("run not marked interrupted (interrupted=%v)", run.Interrupted)
	}
	if time.Time(run.End).Sub(run.Start) > 10*time.Second {
		t.Fatalf("the interrupted run lasted %s", run.End.Sub(run.Start))
	}
}
