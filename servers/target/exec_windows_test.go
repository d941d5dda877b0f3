//go:build windows

package target

import "testing"

// On Windows an exec target is not a Pauser: there is no SIGSTOP, and the
// CLI refuses a pause fault for it instead of failing mid-run.
func TestExecTargetIsNoPauserOnWindows(t *testing.T) {
	t.Parallel()
	var tg Target = &execTarget{}
	if _, ok := tg.(Pauser); ok {
		t.Error("exec targets on Windows cannot pause")
	}
}
