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

// TestLoadCheckLinearizability runs the ajax-heavy builtin, shortened and on
// a 600ms protocol minute, with --check-linearizability against the
// in-process reference server: the verdict is OK, printed and in the result.
func TestLoadCheckLinearizability(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := runLoad(ctx, []string{"--scenario", "ajax-heavy", "--check-linearizability", "--duration", "1500ms",
		"--minute", "600ms", "--out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	run, err := results.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	lin := run.Linearizability
	if lin == nil || lin.Violations != 0 || lin.Operations < 200 || lin.Sessions == 0 || lin.Checker == "" {
		t.Fatalf("linearizability block %+v", lin)
	}
	if !strings.Contains(stdout.String(), "linearizability: OK (") {
		t.Fatalf("stdout lacks the verdict:\n%s", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(out, "linearizability.html")); !os.IsNotExist(err) {
		t.Fatalf("a visualisation was written for a linearizable run (%v)", err)
	}
	t.Logf("%d operations in %d sessions checked in %s", lin.Operations, lin.Sessions, time.Duration(lin.CheckTime))
}
