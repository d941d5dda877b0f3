//go:build unix

package target

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// On Unix an exec target can be paused.
var _ Pauser = (*execTarget)(nil)

// procTree is an exec target's process and its descendants: on Unix, the
// process group the process leads (Setpgid), which its children join unless
// they leave it on purpose.
type procTree struct{ pgid int }

// startTree starts cmd as the leader of a new process group.
func startTree(cmd *exec.Cmd) (*procTree, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &procTree{pgid: cmd.Process.Pid}, nil
}

// kill sends SIGKILL to the whole group.
func (p *procTree) kill() { _ = p.signal(syscall.SIGKILL) }

// stop asks the whole group to end: SIGCONT (a paused group cannot act on
// anything else), then SIGTERM.
func (p *procTree) stop() {
	_ = p.signal(syscall.SIGCONT)
	_ = p.signal(syscall.SIGTERM)
}

// release frees what the tree holds once its leader has exited: nothing on Unix.
func (p *procTree) release() {}

func (p *procTree) signal(sig syscall.Signal) error {
	return syscall.Kill(-p.pgid, sig)
}

// Pause stops the process group (SIGSTOP): connections stay open, nothing
// is answered. Signal delivery is asynchronous, so it returns once the kernel
// reports the process stopped (Linux /proc), or at once where there is no
// /proc (macOS). Only Unix exec targets are Pausers: Windows has no SIGSTOP.
func (t *execTarget) Pause(ctx context.Context) error {
	if err := t.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	t.mu.Lock()
	pid := t.tree.pgid
	t.mu.Unlock()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil // no /proc: best effort
		}
		// The state follows the parenthesised command name: "pid (comm) T ...".
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return ctx.Err()
}

// Resume continues a paused process group (SIGCONT).
func (t *execTarget) Resume(ctx context.Context) error {
	return t.signal(syscall.SIGCONT)
}

func (t *execTarget) signal(sig syscall.Signal) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tree == nil {
		return fmt.Errorf("target %s: not running", t.spec)
	}
	return t.tree.signal(sig)
}
