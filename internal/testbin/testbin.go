// Package testbin builds the aspstate binary for tests that need it outside
// their own process: the static binary the reference container image is made
// of (FROM scratch, so no dynamic linker), as `make build` builds it.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Static builds a static aspstate binary into a temporary directory of t and
// returns its path; a build failure fails t. It runs the go command found on
// PATH, which `go test` puts first on the PATH of the tests it runs.
func Static(t testing.TB) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "aspstate")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "github.com/aspstate/aspstate/cmd/aspstate")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of a static aspstate: %v\n%s", err, b)
	}
	return out
}
