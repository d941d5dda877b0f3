package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// run runs a whole command line through the command tree.
func runArgs(args ...string) (int, string, string) {
	var out, errb strings.Builder
	code := dispatch(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpNeverRecurses(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help", "help"}, {"-h", "-h"}, {"help"}, {"--help"}, {"help", "load"}, {"load", "-h", "-h"}} {
		t0 := time.Now()
		code, out, errOut := runArgs(args...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		if took := time.Since(t0); took > 5*time.Second {
			t.Errorf("%v took %s", args, took)
		}
	}
}

func TestUsageErrorsAreOneLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"load", "--duration", "banana"}, `aspstate load: --duration: "banana" is not a duration (e.g. 30s, 2m)`},
		{[]string{"load", "--scenaro", "x"}, "aspstate load: unknown flag --scenaro; did you mean --scenario?"},
		{[]string{"lod"}, `aspstate: unknown command "lod"; did you mean "load"?`},
		{[]string{"load", "--workers", "many"}, `aspstate load: --workers: "many" is not a whole number (e.g. 16)`},
		{[]string{"load", "--duration"}, "aspstate load: --duration needs a value (a duration (e.g. 30s, 2m))"},
		{[]string{"serve", "--max-item-size", "lots"}, `aspstate serve: --max-item-size: "lots" is not a size in bytes`},
		{[]string{"conform", "--child=maybe"}, `aspstate conform: --child: "maybe" is not true or false`},
	} {
		code, out, errOut := runArgs(tc.args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[0], tc.want) || !strings.HasPrefix(lines[1], "see 'aspstate") || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant exit 2, %q and a pointer to the help", tc.args, code, out, errOut, tc.want)
		}
	}
}

func TestInternalFlagsHidden(t *testing.T) {
	t.Parallel()
	_, out, _ := runArgs("conform", "--help")
	if strings.Contains(out, "--child") || !strings.Contains(out, "--label-filter") {
		t.Errorf("conform --help shows --child or lacks --label-filter:\n%s", out)
	}
}

func TestEveryCommandHasExamples(t *testing.T) {
	t.Parallel()
	for _, c := range newRoot().Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if !strings.Contains(c.Example, "aspstate "+c.Name()) {
			t.Errorf("%s: no example of itself:\n%s", c.Name(), c.Example)
		}
		if _, out, _ := runArgs(c.Name(), "--help"); !strings.Contains(out, "Examples:") {
			t.Errorf("%s --help has no Examples block", c.Name())
		}
	}
}

func TestVersionAndCompletion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if code, out, _ := runArgs(args...); code != 0 || !strings.HasPrefix(out, "aspstate ") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := runArgs("completion", shell)
		if code != 0 || !strings.Contains(out, "aspstate") {
			t.Errorf("completion %s: exit %d, %d bytes, %s", shell, code, len(out), errOut)
		}
	}
}

// Flags and arguments in any order (merge DIR --out X used to read "--out"
// as a directory).
func TestFlagsAfterArguments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, _, errOut := runArgs("merge", dir+"/nope", "--out", dir+"/m")
	if code != 2 || !strings.Contains(errOut, "nope") || strings.Contains(errOut, "--out/") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestLevenshtein(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"scenaro", "scenario", 1}, {"lod", "load", 1}, {"abc", "xyz", 3}, {"", "ab", 2}} {
		if d := levenshtein(tc.a, tc.b); d != tc.d {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}

// docs/cli.md is generated from the command tree; regenerate it with
// make docs (go generate ./cmd/aspstate).
func TestCLIDocsUpToDate(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	writeCLIDocs(&b, newRoot())
	have, err := os.ReadFile("../../docs/cli.md")
	if err != nil || string(have) != b.String() {
		t.Fatalf("docs/cli.md is stale (%v): run make docs", err)
	}
}

// A command still written with the standard flag package plugs in with
// legacy(): its own flags, its own -h, errors in the tree's format.
func TestLegacyCommand(t *testing.T) {
	t.Parallel()
	fake := func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		fs := newFlagSet("fake", "[flags] FILE", "A command not yet ported.", stderr)
		n := fs.Int("n", 1, "how many")
		pos, done, code := parseInterspersed(fs, args)
		if done {
			return code
		}
		if len(pos) != 1 {
			return usageError(stderr, "fake", "want one FILE, got %d", len(pos))
		}
		fmt.Fprintf(stdout, "%s x%d\n", pos[0], *n)
		return 0
	}
	root := newRoot()
	root.AddCommand(legacy("fake", "a command not yet ported", fake))
	run := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		root.SetArgs(args)
		root.SetOut(&out)
		root.SetErr(&errb)
		c, err := root.ExecuteC()
		return exitStatus(c, err, &errb), out.String(), errb.String()
	}
	if code, out, _ := run("fake", "a.pcap", "-n", "3"); code != 0 || out != "a.pcap x3\n" {
		t.Errorf("flags after the argument: exit %d, %q", code, out)
	}
	if code, _, errOut := run("fake", "-bogus"); code != 2 || !strings.Contains(errOut, "-bogus") || !strings.Contains(errOut, "see 'aspstate fake --help'") || strings.Contains(errOut, "how many") {
		t.Errorf("bad flag: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run("fake"); code != 2 || !strings.HasPrefix(errOut, "aspstate fake: want one FILE") {
		t.Errorf("usage error: exit %d, stderr %q", code, errOut)
	}
	for _, args := range [][]string{{"fake", "-h"}, {"help", "fake"}} {
		code, out, errOut := run(args...)
		if code != 0 || !strings.Contains(out+errOut, "how many") {
			t.Errorf("%v: exit %d, %q %q", args, code, out, errOut)
		}
	}
}
