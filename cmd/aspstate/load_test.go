package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/servers/target"
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
		{"unknown flag", []string{"--nope"}, "unknown flag --nope"},
		{"bad rate", []string{"--scenario", "small-intranet", "--rate", "x"}, `--rate: "x" is not a number`},
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
		// The header comes first, then the first progress line.
		sc := bufio.NewScanner(r)
		for n := 0; sc.Scan(); n++ {
			if n == 1 {
				cancel()
			}
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

// An existing result is never replaced silently: --out into a non-empty
// directory is refused unless --overwrite, which leaves no old file behind.
func TestLoadOutRefusesNonEmpty(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	stale := filepath.Join(out, "report", "report.html")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--scenario", "ajax-heavy", "--duration", "1s", "--minute", "600ms", "--out", out}
	code, _, errOut := runCmd(runLoad, args...)
	if code != 2 || !strings.Contains(errOut, "--out "+out+" is not empty") || !strings.Contains(errOut, "--overwrite") {
		t.Fatalf("exit %d, stderr %q; want 2 naming --out and --overwrite", code, errOut)
	}
	if code, _, errOut = runCmd(runLoad, append(args, "--overwrite")...); code != 2 || !strings.Contains(errOut, "not a result directory") {
		t.Fatalf("--overwrite of a directory without a result: exit %d, stderr %q", code, errOut)
	}
	if err := os.WriteFile(filepath.Join(out, results.ResultFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(runLoad, append(args, "--overwrite")...); code != 0 {
		t.Fatalf("--overwrite: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the old report survived --overwrite (%v)", err)
	}
	if _, err := results.Read(out); err != nil {
		t.Errorf("no new result: %v", err)
	}
}

// The default result directory is new for every run.
func TestResultDirIsNewPerRun(t *testing.T) {
	t.Chdir(t.TempDir())
	a, err := resultDir("", "farm", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(a, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := resultDir("", "farm", false)
	if err != nil || b == a {
		t.Fatalf("second directory %q (%v), first %q", b, err, a)
	}
}

// A server that is not there fails fast, naming --wait-target; with
// --wait-target the load waits for a server that starts late.
func TestLoadTargetRefusedFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	t0 := time.Now()
	code, _, errOut := runCmd(runLoad, "--scenario", "ajax-heavy", "--duration", "1s", "--target", "tcp://"+addr, "--out", filepath.Join(t.TempDir(), "x"))
	// The last dial's error is "refused", or an i/o timeout when the
	// machine is too busy to see the refusal within the dial's deadline.
	if code != 2 || !strings.Contains(errOut, "no answer at "+addr) || !strings.Contains(errOut, "--wait-target") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	// About a second of retries; far below the 30 s it took before, even on a busy machine.
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("took %s to report a refused connection", took)
	}
}

// Faults outside the run are usage errors naming the --duration in force.
func TestLoadFaultOutsideRun(t *testing.T) {
	code, _, errOut := runCmd(runLoad, "--scenario", "ajax-heavy", "--duration", "2s", "--fault", "restart@5s")
	if code != 2 || !strings.Contains(errOut, "--fault restart@5s") || !strings.Contains(errOut, "(--duration 2s)") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCmd(runLoad, "--scenario", "ajax-heavy", "--duration", "3s", "--fault", "pause@2s+5s")
	if code != 2 || !strings.Contains(errOut, "--fault pause@2s") || !strings.Contains(errOut, "after the run (--duration 3s)") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// A population scenario's intended rate is N / mean think time, in the
// header (printed before the run) and in the summary.
func TestLoadPopulationHeaderAndRate(t *testing.T) {
	var stdout bytes.Buffer
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		if sc.Scan() {
			first <- sc.Text()
		}
		io.Copy(io.Discard, r)
	}()
	out := filepath.Join(t.TempDir(), "pop")
	code := runLoad(context.Background(), []string{"--scenario", "small-intranet", "--duration", "2s", "--minute", "600ms", "--out", out}, &stdout, w)
	w.Close()
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stdout.String())
	}
	header := <-first
	if !strings.HasPrefix(header, "aspstate load: scenario small-intranet against inproc") || !strings.Contains(header, "users / mean think time") {
		t.Errorf("first line on stderr %q, want the header", header)
	}
	run, err := results.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if run.Rate.Intended <= 0 || !strings.Contains(stdout.String(), fmt.Sprintf("intended %.1f/s", run.Rate.Intended)) {
		t.Errorf("intended rate %v; summary:\n%s", run.Rate.Intended, stdout.String())
	}
}

// The CLI refuses a pause fault that hits a target that cannot pause, with
// exit 2, before the run: here a tcp:// partition beside an inproc one (on
// Windows the same holds for exec targets).
func TestLoadRefusesAFaultATargetCannotTake(t *testing.T) {
	ctx := context.Background()
	in, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var stdout, stderr strings.Builder
	code := runLoad(ctx, []string{"--scenario", "small-intranet", "--target", "inproc", "--target", "tcp://" + in.Addr(),
		"--fault", "pause@1s+1s", "--duration", "3s", "--out", t.TempDir()}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "hits target 2 (tcp://"+in.Addr()+"), which cannot be paused") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
}
