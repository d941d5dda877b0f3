package main

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/servers/stateserver"
	"github.com/aspstate/aspstate/servers/target"
)

// pendingCommands are documented in the README before they exist on this
// branch: a block that uses one is skipped until the command is in the tree.
var pendingCommands = []string{"trace"}

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
	cfg := stateserver.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	srv, err := stateserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Chdir(t.TempDir())
	docker := target.DockerAvailable(context.Background()) == nil
	ran := 0
	for _, block := range blocks {
		if pending(t, block) {
			continue
		}
		for _, line := range block {
			args, err := target.SplitCommand(strings.ReplaceAll(line, "127.0.0.1:42424", srv.Addr()))
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			switch {
			case args[len(args)-1] == "&" && args[1] == "serve":
				continue // the server the test started
			case args[1] == "image" && !docker:
				t.Logf("skipped (no docker engine): %s", line)
				continue
			}
			runReadmeLine(t, line, args[1:])
			ran++
		}
	}
	if ran < 10 {
		t.Errorf("ran %d README examples; the README lost its examples?", ran)
	}
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

// runReadmeLine runs one example. On a busy machine compare may find a
// regression between two runs and plan no rate within its objectives (exit
// 1: a verdict); neither may fail to run (exit 2).
func runReadmeLine(t *testing.T, line string, args []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb strings.Builder
	code := dispatch(ctx, args, &out, &errb)
	if code == 0 || code == 1 && (args[0] == "compare" || args[0] == "plan") {
		return
	}
	t.Errorf("%s: exit %d\n%s%s", line, code, out.String(), errb.String())
}
