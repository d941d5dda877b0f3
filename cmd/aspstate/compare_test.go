package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspstate/aspstate/servers/target"
)

// steadyCLIScenario is 40 pages/s for 6s: six one-second intervals per run,
// enough for the Mann–Whitney test to tell a 2ms-per-request slowdown apart.
const steadyCLIScenario = `name: steady
description: steady open-model load for the report and compare command tests
duration: 6s
pages:
  mix: {modify: 2, read-unchanged: 2, read-only: 1, sessionless: 1}
  exec_time: 1ms
users:
  think_time: 100ms
  pages_per_session: 5
rate:
  shape: constant
  pages_per_second: 40
`

// delayProxy forwards TCP connections to addr, holding every chunk the
// client sends for delay first: a state server that answers each request
// delay later, as a slower build would.
type delayProxy struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startDelayProxy(t *testing.T, addr string, delay time.Duration) *delayProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{ln: ln}
	t.Cleanup(p.Close)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() {
				defer p.wg.Done()
				defer s.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						time.Sleep(delay) // the injected latency itself
						if _, werr := s.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer p.wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, s)
			}()
		}
	}()
	return p
}

func (p *delayProxy) Addr() string { return p.ln.Addr().String() }

func (p *delayProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// cliRunDirs writes three result directories with `aspstate load`, one
// after the other, against one in-process reference server: base, same (the
// same build again, another seed) and slow (through a proxy adding 2ms to
// every request). It returns their parent directory too.
func cliRunDirs(t *testing.T) (dir, base, same, slow string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs real load for about 20 seconds")
	}
	dir = t.TempDir()
	scen := filepath.Join(dir, "steady.yaml")
	if err := os.WriteFile(scen, []byte(steadyCLIScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tg, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	proxy := startDelayProxy(t, tg.Addr(), 2*time.Millisecond)
	base, same, slow = filepath.Join(dir, "base-1"), filepath.Join(dir, "base-2"), filepath.Join(dir, "slow-1")
	for i, run := range []struct{ out, addr string }{{base, tg.Addr()}, {same, tg.Addr()}, {slow, proxy.Addr()}} {
		var stdout, stderr bytes.Buffer
		code := runLoad(ctx, []string{"--scenario", scen, "--target", "tcp://" + run.addr, "--seed", fmt.Sprint(i + 1),
			"--out", run.out}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("aspstate load %s: exit %d\n%s\n%s", run.out, code, stdout.String(), stderr.String())
		}
	}
	return dir, base, same, slow
}

// TestReportAndCompareOnRealRuns runs the report and compare commands on
// real results of the load command; the subtests share the three runs.
// The runs are recorded one after the other; the subtests only read them
// (report one writes beside base, in base/report/, which compare does not
// read), so they run in parallel: reports and verdicts are CPU work on
// recorded results, whatever else the machine is doing.
func TestReportAndCompareOnRealRuns(t *testing.T) {
	dir, base, same, slow := cliRunDirs(t)
	again := filepath.Join(dir, "again-1")
	copyDir(t, base, again)
	for _, sub := range []struct {
		name string
		test func(t *testing.T)
	}{
		{"report one", func(t *testing.T) { testReportOne(t, base) }},
		{"report two", func(t *testing.T) { testReportTwo(t, base, slow) }},
		// Two real runs of one build, one after the other: no change both ways.
		{"compare same build made apart", func(t *testing.T) { testCompareSameBuildPasses(t, base, same) }},
		{"compare same build made apart, reversed", func(t *testing.T) { testCompareSameBuildPasses(t, same, base) }},
		{"compare another workload", func(t *testing.T) { testCompareOtherWorkload(t, dir, base) }},
		{"compare same result", func(t *testing.T) { testCompareSameBuildPasses(t, base, again) }},
		{"compare slowed build", func(t *testing.T) { testCompareSlowedBuildFails(t, dir, base, slow) }},
		{"compare thresholds", func(t *testing.T) { testCompareThresholds(t, base, again) }},
	} {
		t.Run(sub.name, func(t *testing.T) {
			t.Parallel()
			sub.test(t)
		})
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

func runCmd(run func(context.Context, []string, io.Writer, io.Writer) int, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func testCompareSameBuildPasses(t *testing.T, base, same string) {
	code, out, errOut := runCmd(runCompare, base, same)
	t.Log("\n" + out)
	if code != 0 {
		t.Fatalf("same build: exit %d, want 0\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "PASS: 0 regressions") || !regexp.MustCompile(`(?m)^all +p50 `).MatchString(out) {
		t.Errorf("output lacks the outcome or the table:\n%s", out)
	}
}

func testCompareSlowedBuildFails(t *testing.T, dir, base, slow string) {
	// 2ms more per request: a relative limit on an operation's median
	// catches it whatever the machine's load (the statistical verdict, with
	// six intervals a side, may not on a busy machine; the compare package
	// tests it on longer series).
	limit := "op:set p50 <= +50%"
	junit := filepath.Join(t.TempDir(), "compare.xml")
	code, out, errOut := runCmd(runCompare, base, slow, "--junit", junit, "--threshold", limit)
	t.Log("\n" + out)
	if code != 1 {
		t.Fatalf("slowed build: exit %d, want 1\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "FAIL: ") || !strings.Contains(out, "FAIL  "+limit) {
		t.Errorf("output lacks the failure:\n%s", out)
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Suites []struct {
			Failures int `xml:"failures,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &suites); err != nil || len(suites.Suites) != 2 || suites.Suites[1].Failures != 1 {
		t.Errorf("junit: %v %+v\n%s", err, suites, b)
	}
	// The same with both sides as globs through --base/--new: base-* pools
	// two runs of the same build.
	code, out, _ = runCmd(runCompare, "--base", filepath.Join(dir, "base-*"), "--new", filepath.Join(dir, "slow-*"), "--format", "markdown",
		"--threshold", limit)
	if code != 1 || !strings.Contains(out, "### ❌ aspstate compare") || !strings.Contains(out, "2 run(s)") {
		t.Errorf("globs, markdown: exit %d\n%s", code, out)
	}
}

// testCompareOtherWorkload: a run at another rate and duration is refused
// with exit 2 naming both fields, unless they are allowed to differ.
func testCompareOtherWorkload(t *testing.T, dir, base string) {
	other := filepath.Join(dir, "other-rate")
	code, out, errOut := runCmd(runLoad, "--scenario", filepath.Join(dir, "steady.yaml"), "--rate", "60", "--duration", "2s", "--out", other)
	if code != 0 {
		t.Fatalf("aspstate load at another rate: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(runCompare, base, other)
	if code != 2 || !strings.Contains(errOut, "rate: base 40.0/s constant, new 60.0/s constant") ||
		!strings.Contains(errOut, "duration: base 6s, new 2s") || !strings.Contains(errOut, "--allow-different rate,duration") {
		t.Errorf("another rate and duration: exit %d, want 2 naming both\n%s%s", code, out, errOut)
	}
	if code, out, errOut = runCmd(runCompare, base, other, "--allow-different", "rate,duration"); code == 2 {
		t.Errorf("--allow-different rate,duration: exit 2\n%s%s", out, errOut)
	}
}

func testCompareThresholds(t *testing.T, base, same string) {
	code, out, errOut := runCmd(runCompare, base, same, "--threshold", "p99 < 10s", "--threshold", "errors < 0.1%",
		"--threshold", "page:modify p50 <= +400%")
	if code != 0 || strings.Count(out, "  PASS  ") != 3 {
		t.Errorf("thresholds that hold: exit %d\n%s%s", code, out, errOut)
	}
	// remove is a protocol operation this scenario never sends: no samples, fails.
	code, out, _ = runCmd(runCompare, base, same, "--threshold", "op:get p50 < 1ns", "--threshold", "op:remove p99 < 5ms")
	if code != 1 || !strings.Contains(out, "FAIL  op:get p50 < 1ns") || !strings.Contains(out, "FAIL  op:remove p99 < 5ms  (no samples") {
		t.Errorf("broken threshold and threshold without samples: exit %d, want 1\n%s", code, out)
	}
}

func TestCompareUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{dir}, "want BASE and NEW"},
		{[]string{dir, dir, dir}, "got 3 arguments"},
		{[]string{"--base", dir}, "--base and --new are both needed"},
		{[]string{"--base", dir, "--new", dir, dir}, "not both"},
		{[]string{"--format", "xml", dir, dir}, `--format "xml"`},
		{[]string{"--threshold", "page:checkout p99 < 5ms", dir, dir}, `unknown page type "checkout"`},
		{[]string{"--threshold", "p98 < 5ms", dir, dir}, `unknown metric "p98"`},
		{[]string{"--min-effect", "lots", dir, dir}, "--min-effect"},
		{[]string{"--alpha", "3", dir, dir}, "--alpha 3"},
		{[]string{"--correction", "holm", dir, dir}, `correction "holm"`},
		{[]string{filepath.Join(dir, "missing"), dir}, "missing: stat"},
		{[]string{filepath.Join(dir, "nothing-*"), dir}, "matches no result directory"},
		{[]string{dir, dir}, "result.json"},
	} {
		code, _, errOut := runCmd(runCompare, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := newFlagSet("x", "", "", io.Discard)
	out := fs.String("out", "", "")
	pos, done, _ := parseInterspersed(fs, []string{"a", "--out", "o", "b", "--", "--c"})
	if done || *out != "o" || strings.Join(pos, " ") != "a b --c" {
		t.Errorf("positional %q, out %q, done %v", pos, *out, done)
	}
	fs = newFlagSet("x", "", "", io.Discard)
	if _, done, code := parseInterspersed(fs, []string{"a", "--nope"}); !done || code != 2 {
		t.Errorf("unknown flag: done %v code %d", done, code)
	}
	fs = newFlagSet("x", "", "", io.Discard)
	if _, done, code := parseInterspersed(fs, []string{"-h"}); !done || code != 0 {
		t.Errorf("-h: done %v code %d", done, code)
	}
}
