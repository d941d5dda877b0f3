// Package target obtains a running state server the harness can reach: the
// in-process reference server, a local process, a container, or an address.
//
// A --target value is parsed by Parse and started by Start:
//
//	inproc                 the reference server in this process (the default)
//	tcp://HOST:PORT        a server that is already running
//	exec:COMMAND ARGS…     a local process; {port} and {addr} in ARGS become a free
//	                       loopback port and address, otherwise the address is read
//	                       from a "listening on ADDR" line it prints, else 127.0.0.1:42424
//	docker:IMAGE[:TAG]     a container started with testcontainers-go; the image
//	                       must be present locally (nothing is pulled); the server
//	                       listens on port 42424 inside unless Options.ContainerPort;
//	                       docker:reference builds the reference server image
//	                       FROM scratch from a static aspstate binary and reuses it
//
// Every Target answers Addr, Info and Close. Optional capabilities are found
// by type assertion: Restarter, Killer, Pauser, InProcess.
package target

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/servers/stateserver"
)

// Target kinds.
const (
	KindInProc = "inproc"
	KindTCP    = "tcp"
	KindExec   = "exec"
	KindDocker = "docker"
)

// Spec is a parsed --target value.
type Spec struct {
	Raw     string   // the value as given
	Kind    string   // KindInProc, KindTCP, KindExec or KindDocker
	Addr    string   // tcp: host:port
	Command []string // exec: argv
	Image   string   // docker: image reference
}

// String returns the canonical form of the spec.
func (s Spec) String() string {
	switch s.Kind {
	case KindTCP:
		return "tcp://" + s.Addr
	case KindExec:
		return "exec:" + strings.Join(s.Command, " ")
	case KindDocker:
		return "docker:" + s.Image
	}
	return KindInProc
}

// Syntax is the one-line help for --target values.
const Syntax = "inproc | tcp://HOST:PORT | exec:COMMAND ARGS… | docker:IMAGE[:TAG]"

// Parse parses a --target value. The empty string means inproc.
func Parse(s string) (Spec, error) {
	raw := s
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == KindInProc:
		return Spec{Raw: raw, Kind: KindInProc}, nil
	case strings.HasPrefix(s, "tcp://"):
		addr := strings.TrimPrefix(s, "tcp://")
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			return Spec{}, fmt.Errorf("target %q: want tcp://HOST:PORT, e.g. tcp://127.0.0.1:42424", raw)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return Spec{}, fmt.Errorf("target %q: port %q is not a number from 1 to 65535", raw, port)
		}
		return Spec{Raw: raw, Kind: KindTCP, Addr: net.JoinHostPort(host, port)}, nil
	case strings.HasPrefix(s, "exec:"):
		argv, err := splitCommand(strings.TrimPrefix(s, "exec:"))
		if err != nil {
			return Spec{}, fmt.Errorf("target %q: %v", raw, err)
		}
		if len(argv) == 0 {
			return Spec{}, fmt.Errorf("target %q: exec: needs a command, e.g. exec:./my-server --port {port}", raw)
		}
		return Spec{Raw: raw, Kind: KindExec, Command: argv}, nil
	case strings.HasPrefix(s, "docker:"):
		img := strings.TrimPrefix(s, "docker:")
		if img == "" || strings.ContainsAny(img, " \t") {
			return Spec{}, fmt.Errorf("target %q: want docker:IMAGE[:TAG], e.g. docker:reference", raw)
		}
		return Spec{Raw: raw, Kind: KindDocker, Image: img}, nil
	}
	return Spec{}, fmt.Errorf("target %q: unknown kind; want %s", raw, Syntax)
}

// SplitCommand splits a command line on blanks, honouring single and double
// quotes (no escapes inside single quotes, backslash escapes elsewhere), as
// exec: targets and the --target-cmd flag do.
func SplitCommand(s string) ([]string, error) { return splitCommand(s) }

func splitCommand(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inArg := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped = true
			inArg = true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote = r
			inArg = true
		case r == ' ' || r == '\t':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in command", quote)
	}
	if escaped {
		return nil, errors.New("command ends with a backslash")
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}

// Options configure Start.
type Options struct {
	Minute       time.Duration       // inproc: the protocol minute (time scale); 0 = 1m
	Server       *stateserver.Config // inproc: full config (nil = DefaultConfig with Listen "127.0.0.1:0")
	ReadyTimeout time.Duration       // tcp/exec/docker: how long to wait until it answers; 0 = 30s
	Log          io.Writer           // exec/docker: process output (nil = discard)

	// Container options (docker targets).
	ContainerPort int               // the server's port inside the container; 0 = 42424
	Env           map[string]string // environment of the container
	Cmd           []string          // command (arguments to the image's entrypoint); nil = the image's
	WaitLog       string            // a log line that shows readiness, besides the port
	Binary        string            // docker:reference: static aspstate binary to package; "" = this executable
}

func (o Options) readyTimeout() time.Duration {
	if o.ReadyTimeout <= 0 {
		return 30 * time.Second
	}
	return o.ReadyTimeout
}

// Info describes a running target; it is written into every result file.
type Info struct {
	Spec        string `json:"spec"`
	Kind        string `json:"kind"`
	Addr        string `json:"addr"`
	Description string `json:"description"`
}

// Target is a running state server the harness can reach.
type Target interface {
	Addr() string // host:port to dial
	Info() Info
	Close() error
}

// Restarter is a target that can be restarted. All sessions are lost, as on
// Microsoft's service; Addr may change.
type Restarter interface {
	Restart(ctx context.Context) error
}

// Killer is a target that can be killed hard (SIGKILL, docker kill: no
// graceful shutdown, connections reset) and started again. Restart, by
// contrast, stops it gracefully. Sessions are lost either way unless the
// server persists them; Addr may change.
type Killer interface {
	Kill(ctx context.Context) error
}

// Pauser is a target that can stop answering without closing connections.
type Pauser interface {
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
}

// InProcess is implemented by the in-process reference server target.
type InProcess interface {
	Server() *stateserver.Server
}

// Start obtains a running target for spec. It returns once the target
// answers a protocol request, or an error naming the target and what failed.
func Start(ctx context.Context, spec Spec, opts Options) (Target, error) {
	switch spec.Kind {
	case KindInProc, "":
		return startInProc(ctx, spec, opts)
	case KindTCP:
		if err := WaitReady(ctx, spec.Addr, opts.readyTimeout()); err != nil {
			return nil, fmt.Errorf("target %s: %w", spec, err)
		}
		return &remote{spec: spec}, nil
	case KindExec:
		return startExec(ctx, spec, opts)
	case KindDocker:
		return startDocker(ctx, spec, opts)
	}
	return nil, fmt.Errorf("target %q: unknown kind %q", spec.Raw, spec.Kind)
}

// Address returns the target of a server already listening at addr
// (host:port), as tcp://addr gives, without waiting for it to answer: for
// a caller that starts the server, or a proxy in front of one, itself.
func Address(addr string) Target {
	return &remote{spec: Spec{Raw: "tcp://" + addr, Kind: KindTCP, Addr: addr}}
}

// remote is a server that was already running.
type remote struct{ spec Spec }

func (r *remote) Addr() string { return r.spec.Addr }
func (r *remote) Info() Info {
	return Info{Spec: r.spec.String(), Kind: KindTCP, Addr: r.spec.Addr, Description: "state server at " + r.spec.Addr}
}
func (r *remote) Close() error { return nil }

// Ping sends one ResetTimeout (HEAD) for a random key and requires a
// well-formed reply of any status: the cheapest proof that a state server
// answers. It does not create or change any session.
func Ping(ctx context.Context, addr string) error {
	c, err := protocol.Dial(ctx, addr, protocol.ConnOptions{})
	if err != nil {
		return err
	}
	defer c.Close()
	id, err := protocol.NewSessionID(rand.Reader)
	if err != nil {
		return err
	}
	_, err = c.ResetTimeout(ctx, protocol.Target("/aspstate/ping", id))
	return err
}

// WaitReady pings addr until it answers or timeout passes.
func WaitReady(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return waitReady(ctx, addr, nil)
}

// waitReady pings until success, ctx ends, or exited (if not nil) is closed.
func waitReady(ctx context.Context, addr string, exited <-chan struct{}) error {
	delay := 10 * time.Millisecond
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := Ping(pctx, addr)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("no answer at %s: %v", addr, last)
		case <-exited:
			t.Stop()
			return fmt.Errorf("the process exited before answering at %s", addr)
		case <-t.C:
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}
