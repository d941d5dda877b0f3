package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/servers/target"
)

// TestConformDockerReference runs the whole conformance suite against the
// reference server in a container, through the real binary, as a user
// would: `aspstate conform --target docker:reference`. The image is built
// FROM scratch from the static binary (nothing is pulled) and removed with
// its container afterwards.
func TestConformDockerReference(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image and runs the suite in a container")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := target.DockerAvailable(ctx); err != nil {
		t.Skipf("skipping container test: %v (start a Docker engine to run it)", err)
	}
	bin := staticAspstate(t)
	out := filepath.Join(t.TempDir(), "report")
	cmd := exec.CommandContext(ctx, bin, "conform", "--target", "docker:reference", "--minute", "600ms", "--out", out)
	b, err := cmd.CombinedOutput()
	text := string(b)
	if err != nil {
		t.Fatalf("aspstate conform --target docker:reference: %v\n%s", err, text)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	last := lines[len(lines)-1]
	// Every rule passes but ops-loopback-default, which only an in-process
	// server can show (the suite skips it for other targets).
	if last != "conformance: 108 passed, 0 failed, 1 skipped" {
		t.Errorf("closing line %q, want 108 passed, 0 failed, 1 skipped\n%s", last, text)
	}
	for _, f := range []string{"conformance.json", "conformance.xml", "conformance.html"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("report %s not written: %v", f, err)
		}
	}
}
