package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aspstate/aspstate/trace"
)

// A capture of aspstate load against aspstate serve, replayed against a
// fresh in-process server through the CLI: exit 0, and --out writes the
// JSON, JUnit and HTML reports.
func TestTraceDiffServeCapture(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "diff")
	code, stdout, stderr := runCmd(runTrace, "diff", "--target", "inproc", "--out", out, traceData("farm-lo.pcap"))
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, w := range []string{"replayed 219 exchanges on 6 connections", "compared 219 replies: 219 same, 0 unexplained", "OK: no unexplained difference"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "diff.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep trace.DiffReport
	if err := json.Unmarshal(b, &rep); err != nil || rep.Format != trace.DiffFormat || rep.Compared != 219 {
		t.Errorf("diff.json: %v, format %q, compared %d", err, rep.Format, rep.Compared)
	}
	b, err = os.ReadFile(filepath.Join(out, "diff.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil || doc.Tests != 1 || doc.Failures != 0 {
		t.Errorf("diff.xml: %v, %d tests, %d failures; want 1 passing case", err, doc.Tests, doc.Failures)
	}
	if b, err := os.ReadFile(filepath.Join(out, "diff.html")); err != nil || !strings.Contains(string(b), "no unexplained difference") {
		t.Errorf("diff.html: %v", err)
	}
}

// The real service's bytes against aspstate serve: the session that existed
// before the capture is seeded, and nothing differs.
func TestTraceDiffRealServiceCapture(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCmd(runTrace, "diff", "--target", "inproc", traceData("real-service.pcapng"))
	if code != 0 || !strings.Contains(stdout, "1 seeded") || !strings.Contains(stdout, "compared 3 replies: 3 same") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestTraceDiffBadInput(t *testing.T) {
	t.Parallel()
	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("not a capture\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	farm := traceData("farm-lo.pcap")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no file", []string{"diff", "--target", "inproc"}, 2, "give the capture files"},
		{"no target", []string{"diff", farm}, 2, "--target"},
		{"speed 0", []string{"diff", "--target", "inproc", "--speed", "0", farm}, 2, "--speed 0"},
		{"bad target", []string{"diff", "--target", "udp://x", farm}, 2, "--target"},
		{"missing file", []string{"diff", "--target", "inproc", "nope.pcap"}, 2, "nope.pcap"},
		{"not a capture", []string{"diff", "--target", "inproc", text}, 2, "not a pcap or pcapng capture"},
		{"HTTP on the port", []string{"diff", "--target", "inproc", traceData("http-on-42424.pcapng")}, 1, "carries HTTP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(runTrace, tc.args...)
			if code != tc.code || !strings.Contains(strings.SplitN(errOut, "\n", 2)[0], tc.want) {
				t.Fatalf("exit %d (want %d), first line of stderr should name %q:\n%s%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
}
