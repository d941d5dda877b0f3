package target

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aspstate/aspstate/servers/stateserver"
)

// execTarget is a state server started as a local process.
type execTarget struct {
	spec Spec
	opts Options

	mu     sync.Mutex
	tree   *procTree // the process and its descendants (exec_unix.go, exec_windows.go)
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
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	tree, err := startTree(cmd)
	if err != nil {
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
		tree.release()
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
		t.kill(tree, exited)
		return fmt.Errorf("target %s: the process exited before announcing an address; its last output:\n%s", t.spec, tail)
	}
	if err := waitReady(wctx, addr, exited); err != nil {
		t.kill(tree, exited)
		return fmt.Errorf("target %s: %v; its last output:\n%s", t.spec, err, tail)
	}
	t.mu.Lock()
	t.tree, t.addr, t.exited, t.tail = tree, addr, exited, tail
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

// kill ends the process and all its descendants at once (a process group
// on Unix, a Job Object on Windows) and waits until the process has exited.
func (t *execTarget) kill(tree *procTree, exited chan struct{}) {
	if tree == nil {
		return
	}
	tree.kill()
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

// Close stops the process tree gracefully (SIGTERM to the group on Unix,
// CTRL_BREAK on Windows), then kills it after 5 s.
func (t *execTarget) Close() error {
	t.mu.Lock()
	tree, exited := t.tree, t.exited
	t.mu.Unlock()
	if tree == nil {
		return nil
	}
	tree.stop()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.kill(tree, exited)
	}
	return nil
}

// Restart stops the process (gracefully, killed after 5 s) and starts it
// again: sessions are lost unless the server persists them.
func (t *execTarget) Restart(ctx context.Context) error {
	if err := t.Close(); err != nil {
		return err
	}
	return t.start(ctx)
}

// Kill kills the process tree hard (SIGKILL to its group on Unix, the Job
// Object terminated on Windows) and starts it again.
func (t *execTarget) Kill(ctx context.Context) error {
	t.mu.Lock()
	tree, exited := t.tree, t.exited
	t.mu.Unlock()
	t.kill(tree, exited)
	return t.start(ctx)
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
