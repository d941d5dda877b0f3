package main

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/trace"
)

// replayRun runs aspstate load --trace against a fresh in-process server
// and returns its result.
func replayRun(t *testing.T, args ...string) *results.Run {
	t.Helper()
	out := filepath.Join(t.TempDir(), "run")
	args = append([]string{"--target", "inproc", "--out", out}, args...)
	code, stdout, stderr := runCmd(runLoad, args...)
	if code != 0 {
		t.Fatalf("load %v: exit %d\n%s%s", args, code, stdout, stderr)
	}
	run, err := results.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// checkReplay checks a replay's result against the capture: page count and
// each kind's count exactly (× copies), the pages completed in every
// interval within 5 % of the schedule's, no error, no violation.
func checkReplay(t *testing.T, r *trace.Replay, run *results.Run, speed float64, copies int) {
	t.Helper()
	var total int64
	for kind, n := range r.Kinds() {
		st := run.Pages[string(kind)]
		got := int64(0)
		if st != nil {
			got = st.Count
		}
		total += got
		if want := int64(n * copies); got != want {
			t.Errorf("%s pages: %d, want %d", kind, got, want)
		}
	}
	if want := int64(r.Pages * copies); total != want || run.Rate.Completed != want {
		t.Errorf("pages: %d by kind, %d completed; want %d", total, run.Rate.Completed, want)
	}
	var errs int64
	for _, n := range run.Errors {
		errs += n
	}
	if errs != 0 || run.Correctness.Total != 0 {
		t.Errorf("%d errors %v, %d violations", errs, run.Errors, run.Correctness.Total)
	}
	// The rate over time: each interval's completed pages against the
	// pages the schedule completes in it, within 5 % (or a page), once the
	// pages due within 50ms of its edges may have crossed them (a busy
	// machine under the race detector runs a page a few ms slower).
	var achieved []int64
	for _, iv := range run.Intervals {
		achieved = append(achieved, iv.Pages)
	}
	o := trace.ReplayOptions{Speed: speed, Copies: copies}
	rates := r.Rates(o, time.Second, 50*time.Millisecond, achieved) // aspstate load's interval
	t.Logf("pages per interval at speed %g × %d copies (scheduled/achieved): %v", speed, copies, rates)
	for _, iv := range rates {
		if !iv.Within(0.05) {
			t.Errorf("interval %s: pages achieved/scheduled off by more than 5 %%", iv)
		}
	}
	for k, v := range map[string]string{"trace_files": "farm-lo.pcap", "trace_sha256": r.Sums[0],
		"replay_speed": strconv.FormatFloat(speed, 'g', -1, 64), "replay_copies": strconv.Itoa(copies)} {
		if got := run.Config.Options[k]; got != v {
			t.Errorf("option %s = %q, want %q", k, got, v)
		}
	}
}

// Replaying a capture of the small-intranet builtin against aspstate serve
// reproduces its pages: at speed 1 the recorded count, kinds and rate; at
// --speed 2 --copies 3 six times the rate.
func TestLoadTraceReplaysTheCapture(t *testing.T) {
	farm := traceData("farm-lo.pcap")
	r, err := trace.LoadReplay(context.Background(), []string{farm}, trace.Options{Port: 42424})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("speed 1", func(t *testing.T) {
		checkReplay(t, r, replayRun(t, "--trace", farm), 1, 1)
	})
	t.Run("speed 2 copies 3", func(t *testing.T) {
		run := replayRun(t, "--trace", farm, "--speed", "2", "--copies", "3")
		checkReplay(t, r, run, 2, 3)
		if got := run.Config.Options["replay_timers"]; !strings.HasPrefix(got, "real: ") {
			t.Errorf("replay_timers %q: want real timers at the real protocol minute", got)
		}
	})
	// The target's minute scaled as the speed: the client's timers are
	// scaled with it (loadgen scales them by the run's minute), and the
	// result says so.
	t.Run("speed 2 minute 30s", func(t *testing.T) {
		run := replayRun(t, "--trace", farm, "--speed", "2", "--minute", "30s")
		checkReplay(t, r, run, 2, 1)
		if got := run.Config.Options["replay_timers"]; time.Duration(run.Config.Minute) != 30*time.Second || !strings.HasPrefix(got, "scaled: protocol minute 30s = 1m / speed 2") {
			t.Errorf("minute %s, replay_timers %q: want scaled timers", time.Duration(run.Config.Minute), got)
		}
	})
}

func TestLoadTraceBadInput(t *testing.T) {
	t.Parallel()
	farm := traceData("farm-lo.pcap")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"speed 0", []string{"--trace", farm, "--speed", "0"}, 2, "--speed 0"},
		{"copies 0", []string{"--trace", farm, "--copies", "0"}, 2, "--copies 0"},
		{"speed without trace", []string{"--scenario", "small-intranet", "--speed", "2"}, 2, "--speed"},
		{"trace and scenario", []string{"--trace", farm, "--scenario", "small-intranet"}, 2, "drop --scenario"},
		{"not a capture", []string{"--trace", "loadtrace_test.go"}, 2, "not a pcap or pcapng capture"},
		{"HTTP on the port", []string{"--trace", traceData("http-on-42424.pcapng")}, 1, "carries HTTP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(runLoad, tc.args...)
			if code != tc.code || !strings.Contains(strings.SplitN(errOut, "\n", 2)[0], tc.want) {
				t.Fatalf("exit %d (want %d), first line of stderr should name %q:\n%s%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
}
