package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/conformance"
	"github.com/aspstate/aspstate/internal/testwait"
)

// conformHelperEnv marks this test binary re-executed as "aspstate" for the
// matrix test: TestConformHelperProcess then runs the command line after "--".
const conformHelperEnv = "ASPSTATE_CONFORM_HELPER"

// conformHelper is conformSelf for tests: this test binary, running
// TestConformHelperProcess with the command line after "--".
func conformHelper() (string, []string, error) {
	exe, err := os.Executable()
	return exe, []string{"-test.run=^TestConformHelperProcess$", "-test.count=1", "--"}, err
}

// conformChild returns `aspstate args…` as a child process of this test
// binary: the conformance suite runs once per process, so every test that
// runs it beside others runs it in a child.
func conformChild(t *testing.T, ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	exe, prefix, err := conformHelper()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, exe, slices.Concat(prefix, args)...)
	cmd.Env = append(os.Environ(), conformHelperEnv+"=1")
	return cmd
}

// TestConformHelperProcess is not a test: it is the child process of a matrix
// run (conformSelf points here while TestConformMatrix runs).
func TestConformHelperProcess(t *testing.T) {
	if os.Getenv(conformHelperEnv) != "1" {
		t.Skip("helper process for TestConformMatrix")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	// Children of this child (a matrix, the timing rules) are helpers too.
	conformSelf = conformHelper
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(dispatch(ctx, args, os.Stdout, os.Stderr))
}

// TestConformInterrupt: Ctrl-C during a rule marks it interrupted (not
// failed), prints the partial summary as interrupted and exits 130.
func TestConformInterrupt(t *testing.T) {
	t.Parallel()
	srv := startServer(t, conformance.InProcServerConfig(5*time.Second))
	cmd := conformChild(t, t.Context(), "conform", "--target", "tcp://"+srv.Addr(), "--minute", "5s", "--rules", "3.1.5.3-expiry")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The expiry rule holds two items while it waits on the protocol clock
	// (the minute probe before it holds one, and removes it).
	testwait.For(t, "the expiry rule to hold its two items", func() bool { return srv.Stats().SessionsActive >= 2 })
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Fatalf("exit %v, want status 130\n%s", err, out.String())
	}
	for _, want := range []string{"INTR 3.1.5.3-expiry", "interrupted: partial results", "must 0 passed, 1 interrupted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func runConformArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runConform(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestConformList(t *testing.T) {
	code, out, _ := runConformArgs(t, "--list")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, r := range conformance.Catalogue() {
		if !strings.Contains(out, r.ID) || !strings.Contains(out, r.Description) {
			t.Errorf("--list lacks %s (%s)", r.ID, r.Description)
		}
	}
	if want := fmt.Sprintf("%d rules (", len(conformance.Catalogue())); !strings.Contains(out, want) || !strings.Contains(out, " must, ") {
		t.Errorf("--list has no rule count by level (want %q…):\n%s", want, out)
	}
	if !strings.Contains(out, "(evidence: SPEC 3.1.5.4, REF c.1 row 5)") {
		t.Errorf("--list does not show the rules' evidence:\n%s", out)
	}
}

func TestConformUsageErrors(t *testing.T) {
	dir := t.TempDir()
	unknownRule := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknownRule, []byte("9.9.9-nothing: because\n"), 0o644)
	notYAML := filepath.Join(dir, "bad.yaml")
	os.WriteFile(notYAML, []byte("- a\n- b\n"), 0o644)
	noReason := filepath.Join(dir, "noreason.yaml")
	os.WriteFile(noReason, []byte("3.1.5.4-release-wrong: \"\"\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "unknown flag --"},
		{[]string{"stray"}, "unexpected argument"},
		{[]string{"--levels", "must,bogus"}, `unknown level "bogus"`},
		{[]string{"--rules", "no-such-rule*"}, `rule pattern "no-such-rule*" matches no rule`},
		{[]string{"--label-filter", "level:must &&"}, "label filter"},
		{[]string{"--minute", "-1s"}, "--minute -1s must be positive"},
		{[]string{"--ready-timeout", "0s"}, "--ready-timeout"},
		{[]string{"--target", "ftp://example"}, "unknown kind"},
		{[]string{"--deviations", filepath.Join(dir, "missing.yaml")}, "no such file"},
		{[]string{"--deviations", unknownRule}, `deviation for unknown rule "9.9.9-nothing"`},
		{[]string{"--deviations", notYAML}, "want a YAML map"},
		{[]string{"--deviations", noReason}, "has no reason"},
	} {
		code, _, errOut := runConformArgs(t, tc.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %s)", tc.args, code, errOut)
		}
		if !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: stderr %q does not mention %q", tc.args, errOut, tc.want)
		}
	}
}

func TestConformTargetError(t *testing.T) {
	// A closed loopback port: the target never answers.
	code, out, errOut := runConformArgs(t, "--target", "tcp://127.0.0.1:1", "--ready-timeout", "500ms")
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errOut, "target error") || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Errorf("stderr %q does not name the target error", errOut)
	}
	if !strings.Contains(out, "conformance: 0 passed, 0 failed, 0 skipped") {
		t.Errorf("stdout lacks the closing line:\n%s", out)
	}
}

// TestConformInProc is the one in-process run of the suite in this test
// binary (Ginkgo runs once per process): a filtered run against inproc.
func TestConformInProc(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	code, out, errOut := runConformArgs(t, "--rules", "2.2.3.9/*,3.1.5.4-release-*,robustness-pipelined", "--levels", "must,ref,advice",
		"--out", dir, "--html", filepath.Join(dir, "extra.html"))
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("filtered run took %v", time.Since(start))
	live := regexp.MustCompile(`(?m)^PASS (\S+)\s+(must|ref|advice)\s`).FindAllStringSubmatch(out, -1)
	if len(live) != 8 {
		t.Errorf("want 8 live PASS lines (2.2.3.9-* ×2, release-* must/ref ×5, robustness-pipelined), got %d:\n%s", len(live), out)
	}
	if strings.Contains(out, "3.1.5.4-force-release") {
		t.Errorf("a client-level rule ran despite --levels must,ref,advice:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; last != "conformance: 8 passed, 0 failed, 0 skipped" {
		t.Errorf("closing line %q", last)
	}
	if !strings.Contains(out, "RULE ") || !strings.Contains(out, "robustness-pipelined") {
		t.Errorf("no final table:\n%s", out)
	}

	m, err := conformance.ReadMatrix(filepath.Join(dir, "conformance.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Reports) != 1 || m.Reports[0].Passed != 8 || m.Reports[0].Target.Kind != "inproc" {
		t.Errorf("JSON report: %+v", m.Reports)
	}
	b, err := os.ReadFile(filepath.Join(dir, "conformance.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var junit struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(b, &junit); err != nil || junit.Tests != 8 || junit.Failures != 0 {
		t.Errorf("JUnit: %+v, %v", junit, err)
	}
	for _, name := range []string{"conformance.html", "extra.html"} {
		h, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(h, []byte("<table>")) || bytes.Contains(h, []byte("<script")) || bytes.Contains(h, []byte("http://")) || bytes.Contains(h, []byte("https://")) {
			t.Errorf("%s is not a self-contained report", name)
		}
	}
}

// TestConformMatrix runs a matrix of two targets through child processes:
// the in-process reference server, and a reference server that omits the
// version header (KB 2836759). The second fails the version rules; listed
// as deviations they do not fail the run.
func TestConformMatrix(t *testing.T) {
	saved := conformSelf
	conformSelf = conformHelper
	t.Cleanup(func() { conformSelf = saved })
	t.Setenv(conformHelperEnv, "1")

	cfg := conformance.InProcServerConfig(conformance.DefaultInProcMinute)
	cfg.OmitVersion = true
	srv := startServer(t, cfg)
	noVersion := "tcp://" + srv.Addr()

	args := []string{"--target", "inproc", "--target", noVersion, "--minute", "600ms", "--rules", "2.2.3.4-*,2.2.3.9-first-cookie"}
	code, out, errOut := runConformArgs(t, args...)
	if code != 1 {
		t.Fatalf("without deviations: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"T1 PASS 2.2.3.4-version-header", "T2 FAIL 2.2.3.4-version-header", "T2 FAIL 2.2.3.4-first-request",
		"T2 PASS 2.2.3.9-first-cookie", "conformance: 4 passed, 2 failed, 0 skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("matrix output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "requires session state server version 2.0 or above") {
		t.Errorf("the first-request failure does not explain the consequence:\n%s", out)
	}

	dev := filepath.Join(t.TempDir(), "deviations.yaml")
	os.WriteFile(dev, []byte("2.2.3.4/version-header: \"this server omits X-AspNet-Version on purpose\"\n"+
		"rule:2.2.3.4-first-request: \"same cause\"\n"), 0o644)
	jsonOut := filepath.Join(t.TempDir(), "m.json")
	code, out, errOut = runConformArgs(t, append(args, "--deviations", dev, "--json", jsonOut)...)
	if code != 0 {
		t.Fatalf("with deviations: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"T2 DEVN 2.2.3.4-version-header", "deviations: 2", "conformance: 4 passed, 0 failed, 0 skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	m, err := conformance.ReadMatrix(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Reports) != 2 || m.Reports[1].Deviations != 2 || !strings.HasPrefix(m.Reports[1].Target.Spec, "tcp://") {
		t.Errorf("merged report: %d targets, %+v", len(m.Reports), m.Reports)
	}
}
