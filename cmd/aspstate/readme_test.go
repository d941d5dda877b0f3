package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/servers/stateserver"
	"github.com/aspstate/aspstate/servers/target"
)

// pendingCommands are documented in the README before they exist in the
// tree: a block that uses one is skipped until the command is there.
var pendingCommands []string

// readmeBlocks returns the aspstate command lines of each sh block of the
// README, without trailing comments.
func readmeBlocks(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	comment := regexp.MustCompile(`\s{2,}#.*$`)
	var blocks [][]string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		var lines []string
		for _, l := range strings.Split(m[1], "\n") {
			if l = strings.TrimSpace(comment.ReplaceAllString(l, "")); strings.HasPrefix(l, "aspstate ") {
				lines = append(lines, l)
			}
		}
		blocks = append(blocks, lines)
	}
	return blocks
}

// TestReadmeExamples runs every aspstate command of the README as written,
// in order, in a scratch directory; a server on 127.0.0.1:42424 is one the
// test starts on a free port, and `aspstate serve … &` is that server.
func TestReadmeExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load")
	}
	blocks := readmeBlocks(t)
	srv := startTestServer(t)
	chdirWithFarm(t)
	ran := 0
	for _, block := range blocks {
		if !pending(t, block) {
			ran += runExamples(t, block, srv.Addr())
		}
	}
	if ran < 10 {
		t.Errorf("ran %d README examples; the README lost its examples?", ran)
	}
}

// TestCommandExamples runs the Examples block of every command, in the
// order help lists them (load writes the results report and compare read).
func TestCommandExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load")
	}
	srv := startTestServer(t)
	chdirWithFarm(t)
	root := newRoot()
	lines := exampleLines(root.Example)
	for _, c := range root.Commands() {
		lines = append(lines, exampleLines(c.Example)...)
	}
	if n := runExamples(t, lines, srv.Addr()); n < 15 {
		t.Errorf("ran %d examples", n)
	}
}

// chdirWithFarm moves the test into a scratch directory holding the
// examples' farm.pcap: a real capture, tcpdump of aspstate load against
// aspstate serve on port 42424 (trace/testdata), and bench/page-cycle.yaml.
func chdirWithFarm(t *testing.T) {
	t.Helper()
	farm, err := os.ReadFile(traceData("farm-lo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	cycle, err := os.ReadFile("../../bench/page-cycle.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if err := os.WriteFile("farm.pcap", farm, 0o644); err != nil {
		t.Fatal(err)
	}
	// The examples run from the checkout's root: bench/page-cycle.yaml is
	// make bench's workload.
	if err := os.Mkdir("bench", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("bench/page-cycle.yaml", cycle, 0o644); err != nil {
		t.Fatal(err)
	}
}

// exampleLines returns the aspstate command lines of an Examples text.
func exampleLines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "aspstate ") {
			out = append(out, l)
		}
	}
	return out
}

// startTestServer starts a reference server on a free loopback port: the
// server the examples call 127.0.0.1:42424.
func startTestServer(t *testing.T) *stateserver.Server {
	t.Helper()
	cfg := stateserver.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	return startServer(t, cfg)
}

// startServer starts a reference server with cfg, closed when t ends.
func startServer(t *testing.T, cfg stateserver.Config) *stateserver.Server {
	t.Helper()
	srv, err := stateserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// runExamples runs example command lines in order and returns how many ran.
// 127.0.0.1:42424 is the test's server, except for serve itself, which gets
// a free port and runs until it has answered (a second) ; `serve … &` is the
// test's server; image needs a Docker engine.
func runExamples(t *testing.T, lines []string, addr string) int {
	t.Helper()
	ran := 0
	for _, line := range lines {
		to := addr
		if strings.HasPrefix(line, "aspstate serve ") {
			to = "127.0.0.1:0"
		}
		args, err := target.SplitCommand(strings.ReplaceAll(line, "127.0.0.1:42424", to))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		switch {
		case args[len(args)-1] == "&" && args[1] == "serve":
			continue // the server the test started
		case args[1] == "record":
			// A proxy that runs until interrupted; TestRecordProxy runs it.
			t.Logf("skipped (runs until Ctrl-C): %s", line)
			continue
		case args[1] == "image":
			// The test binary is not static; TestComposeDeployment and
			// TestShardedRunAcrossContainers build the image.
			t.Logf("skipped (needs a static binary): %s", line)
			continue
		}
		runExampleLine(t, line, args[1:])
		ran++
	}
	return ran
}

// pending tells whether a block uses a command not yet on this branch.
func pending(t *testing.T, block []string) bool {
	for _, line := range block {
		cmd := strings.Fields(line)[1]
		if slices.Contains(pendingCommands, cmd) && !hasCommand(cmd) {
			t.Logf("skipped until 'aspstate %s' exists: %q", cmd, block)
			return true
		}
	}
	return false
}

func hasCommand(name string) bool {
	for _, c := range newRoot().Commands() {
		if c.Name() == name {
			return true
		}
	}
	return false
}

// runExampleLine runs one example. On a busy machine compare may find a
// regression between two runs and plan no rate within its objectives (exit
// 1: a verdict); neither may fail to run (exit 2). serve runs for a second.
func runExampleLine(t *testing.T, line string, args []string) {
	limit := 3 * time.Minute
	if args[0] == "serve" {
		limit = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var out, errb strings.Builder
	t0 := time.Now()
	code := runExample(t, ctx, args, &out, &errb)
	t.Logf("%s: exit %d in %v", line, code, time.Since(t0).Round(time.Millisecond))
	if args[0] == "serve" && !strings.Contains(out.String(), "listening on") {
		t.Errorf("%s: never listened\n%s%s", line, out.String(), errb.String())
	}
	if code == 0 || code == 1 && (args[0] == "compare" || args[0] == "plan") {
		return
	}
	t.Errorf("%s: exit %d\n%s%s", line, code, out.String(), errb.String())
}

// runExample runs one command line: in this process, except a conformance
// run, which needs a process of its own (Ginkgo runs a suite once per process).
func runExample(t *testing.T, ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if args[0] != "conform" || slices.Contains(args, "--list") {
		return dispatch(ctx, args, stdout, stderr)
	}
	cmd := conformChild(t, ctx, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return -1
	}
	return 0
}
