package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testReportOne draws one real run into DIR/report/ (the default), beside
// the result and not over it.
func testReportOne(t *testing.T, run string) {
	code, out, errOut := runCmd(runReport, run)
	dir := filepath.Join(run, "report")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; last != filepath.Join(dir, "report.html") {
		t.Errorf("last line %q, want the path of report.html", last)
	}
	for _, f := range []string{"report.html", "report.md", "latency-page-state.png", "latency-op.png", "latency-page.png",
		"latency-over-time.png", "throughput.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty (%v)", f, err)
		}
	}
}

// testReportTwo overlays two runs in a separate directory, HTML only.
func testReportTwo(t *testing.T, a, b string) {
	out := filepath.Join(t.TempDir(), "both")
	code, stdout, errOut := runCmd(runReport, a, b, "--out", out, "--format", "html")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, errOut)
	}
	page, err := os.ReadFile(filepath.Join(out, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{filepath.Base(a), filepath.Base(b), "<svg"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(out, "*.png")); len(m) != 0 {
		t.Errorf("--format html wrote PNGs: %v", m)
	}
}

func TestReportUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "result.json"), []byte(`{"schema":"other"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "at least one result directory"},
		{[]string{"--format", "pdf", dir}, `unknown report format "pdf"`},
		{[]string{filepath.Join(dir, "missing")}, "missing: stat"},
		{[]string{dir}, "result.json: no such file"},
		{[]string{bad}, `result schema is "other"`},
		{[]string{"--nope", dir}, "unknown flag --"},
	} {
		code, _, errOut := runCmd(runReport, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	if code, _, _ := runCmd(runReport, "-h"); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
}
