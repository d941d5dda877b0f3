package target

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aspstate/aspstate/servers/stateserver"
)

// execTarget is a state server started as a local process.
type execTarget struct {
	spec Spec
	opts Options

	mu     sync.Mutex
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	tail   *tailBuffer
}

// listeningRE finds the address a server announces ("listening on 127.0.0.1:42424").
var listeningRE = regexp.MustCompile(`listening on (\S+:\d+)`)

func startExec(ctx context.Context, spec Spec, opts Options) (*execTarget, error) {
	t := &execTarget{spec: spec, opts: opts}
	if err := t.start(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (t *execTarget) start(ctx context.Context) error {
	argv := append([]string(nil), t.spec.Command...)
	addr := ""
	if strings.Contains(strings.Join(argv, " "), "{port}") || strings.Contains(strings.Join(argv, " "), "{addr}") {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("target %s: %w", t.spec, err)
		}
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		for i := range argv {
			argv[i] = strings.ReplaceAll(argv[i], "{addr}", addr)
			argv[i] = strings.ReplaceAll(argv[i], "{port}", strconv.Itoa(port))
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		pw.Close()
		return fmt.Errorf("target %s: cannot start %q: %w", t.spec, argv[0], err)
	}
	tail := &tailBuffer{max: 4096}
	announced := make(chan string, 1)
	log := t.opts.Log
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			tail.WriteLine(line)
			if log != nil {
				fmt.Fprintln(log, line)
			}
			if !sent {
				if m := listeningRE.FindStringSubmatch(line); m != nil {
					announced <- m[1]
					sent = true
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(exited)
	}()

	deadline := time.Now().Add(t.opts.readyTimeout())
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if addr == "" {
		// Give the process a moment to announce its address, else use the default port.
		select {
		case a := <-announced:
			addr = normalizeAddr(a)
		case <-time.After(minDuration(2*time.Second, time.Until(deadline))):
			addr = stateserver.DefaultListen
		case <-exited:
		case <-wctx.Done():
		}
	}
	if addr == "" {
		t.kill(cmd, exited)
		return fmt.Errorf("target %s: the process exited before announcing an address; its last output:\n%s", t.spec, tail)
	}
	if err := waitReady(wctx, addr, exited); err != nil {
		t.kill(cmd, exited)
		return fmt.Errorf("target %s: %v; its last output:\n%s", t.spec, err, tail)
	}
	t.mu.Lock()
	t.cmd, t.addr, t.exited, t.tail = cmd, addr, exited, tail
	t.mu.Unlock()
	return nil
}

func minDuration(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

// normalizeAddr maps a wildcard listen address to loopback.
func normalizeAddr(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a
	}
	if host == "" || host == "0.0.0.0" || host == "::" || host == "[::]" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func (t *execTarget) kill(cmd *exec.Cmd, exited chan struct{}) {
	if cmd.Process == nil {
		return
	}
	// The process runs in its own group: signal the group so children go too.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

func (t *execTarget) Addr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addr
}

func (t *execTarget) Info() Info {
	return Info{Spec: t.spec.String(), Kind: KindExec, Addr: t.Addr(),
		Description: "local process: " + strings.Join(t.spec.Command, " ")}
}

// Close stops the process: SIGTERM, then SIGKILL after 5 s.
func (t *execTarget) Close() error {
	t.mu.Lock()
	cmd, exited := t.cmd, t.exited
	t.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.kill(cmd, exited)
	}
	return nil
}

// Restart stops the process (SIGTERM, SIGKILL after 5 s) and starts it
// again: sessions are lost unless the server persists them.
func (t *execTarget) Restart(ctx context.Context) error {
	if err := t.Close(); err != nil {
		return err
	}
	return t.start(ctx)
}

// Kill kills the process hard (SIGKILL to its group) and starts it again.
func (t *execTarget) Kill(ctx context.Context) error {
	t.mu.Lock()
	cmd, exited := t.cmd, t.exited
	t.mu.Unlock()
	t.kill(cmd, exited)
	return t.start(ctx)
}

// Pause stops the process (SIGSTOP): connections stay open, nothing is
// answered. Signal delivery is asynchronous, so it returns once the kernel
// reports the process stopped (Linux /proc), or after a second elsewhere.
func (t *execTarget) Pause(ctx context.Context) error {
	if err := t.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	t.mu.Lock()
	pid := t.cmd.Process.Pid
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

// Resume continues a paused process (SIGCONT).
func (t *execTarget) Resume(ctx context.Context) error {
	return t.signal(syscall.SIGCONT)
}

func (t *execTarget) signal(sig syscall.Signal) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cmd == nil || t.cmd.Process == nil {
		return fmt.Errorf("target %s: not running", t.spec)
	}
	return syscall.Kill(-t.cmd.Process.Pid, sig)
}

// tailBuffer keeps the last max bytes of a process's output, in whole lines.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) WriteLine(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
	b.buf.WriteByte('\n')
	if over := b.buf.Len() - b.max; over > 0 {
		rest := b.buf.Bytes()[over:]
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[i+1:]
		}
		b.buf = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() == 0 {
		return "  (no output)"
	}
	return "  " + strings.ReplaceAll(strings.TrimRight(b.buf.String(), "\n"), "\n", "\n  ")
}
