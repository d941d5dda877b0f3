package target

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/servers/stateserver"
)

// The test binary doubles as the processes of the exec target tests
// (exec_test.go), chosen by its first argument:
//
//	-aspstate-serve ADDR    runs the reference server on ADDR and announces it
//	-aspstate-parent ADDR   runs a child that serves on ADDR, and waits for it:
//	                        a process tree whose server is a grandchild
//	-aspstate-fail          prints a line and exits 3
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-aspstate-serve":
			serve(os.Args[2])
		case "-aspstate-parent":
			child := exec.Command(os.Args[0], "-aspstate-serve", os.Args[2])
			child.Stdout, child.Stderr = os.Stdout, os.Stderr
			_ = child.Run()
			os.Exit(4)
		case "-aspstate-fail":
			os.Stdout.WriteString("boom-from-child\n")
			os.Exit(3)
		}
	}
	os.Exit(m.Run())
}

// serve runs the reference server on addr until the process is ended.
func serve(addr string) {
	cfg := stateserver.DefaultConfig()
	cfg.Listen = addr
	srv, err := stateserver.New(cfg)
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		os.Stderr.WriteString("serve: " + err.Error() + "\n")
		os.Exit(3)
	}
	os.Stdout.WriteString("listening on " + srv.Addr() + "\n")
	select {}
}

func TestParse(t *testing.T) {
	good := map[string]Spec{
		"":                         {Kind: KindInProc},
		"inproc":                   {Kind: KindInProc},
		"tcp://127.0.0.1:42424":    {Kind: KindTCP, Addr: "127.0.0.1:42424"},
		"tcp://[::1]:9":            {Kind: KindTCP, Addr: "[::1]:9"},
		"tcp://localhost:1":        {Kind: KindTCP, Addr: "localhost:1"},
		"exec:./srv --port {port}": {Kind: KindExec, Command: []string{"./srv", "--port", "{port}"}},
		`exec:sh -c 'echo "a b"'`:  {Kind: KindExec, Command: []string{"sh", "-c", `echo "a b"`}},
		"docker:reference":         {Kind: KindDocker, Image: "reference"},
		"docker:my/img:1.2":        {Kind: KindDocker, Image: "my/img:1.2"},
	}
	for in, want := range good {
		got, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if got.Kind != want.Kind || got.Addr != want.Addr || got.Image != want.Image ||
			strings.Join(got.Command, "|") != strings.Join(want.Command, "|") {
			t.Errorf("Parse(%q) = %+v, want %+v", in, got, want)
		}
		if again, err := Parse(got.String()); err != nil || again.Kind != got.Kind {
			t.Errorf("Parse(String()) of %q: %+v %v", in, again, err)
		}
	}
	bad := map[string]string{
		"tcp://127.0.0.1":       "tcp://HOST:PORT",
		"tcp://:42424":          "tcp://HOST:PORT",
		"tcp://127.0.0.1:99999": "1 to 65535",
		"tcp://h:x":             "not a number",
		"exec:":                 "needs a command",
		"exec:sh -c 'x":         "unterminated",
		"docker:":               "docker:IMAGE",
		"http://x:1":            "unknown kind",
		"42424":                 "unknown kind",
	}
	for in, want := range bad {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error mentioning %q", in, err, want)
		}
	}
}

func TestInProcTargetAnswersAndRestarts(t *testing.T) {
	ctx := context.Background()
	tg, err := Start(ctx, Spec{Kind: KindInProc}, Options{Minute: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if !strings.HasPrefix(tg.Addr(), "127.0.0.1:") {
		t.Errorf("Addr = %q, want loopback", tg.Addr())
	}
	if info := tg.Info(); info.Kind != KindInProc || !strings.Contains(info.Description, "1s") {
		t.Errorf("Info = %+v", info)
	}
	if _, ok := tg.(InProcess); !ok {
		t.Error("inproc target does not expose its server")
	}
	c, err := protocol.Dial(ctx, tg.Addr(), protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.Set(ctx, "k", []byte("v"), protocol.SetParams{Timeout: 20}); err != nil || r.Status != 200 {
		t.Fatalf("set: %+v %v", r, err)
	}
	c.Close()
	if err := tg.(Restarter).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	c, err = protocol.Dial(ctx, tg.Addr(), protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r, err := c.Get(ctx, "k"); err != nil || r.Status != 404 {
		t.Fatalf("after restart the session must be gone (ops-restart-loses-state): %+v %v", r, err)
	}
	if r, err := c.Set(ctx, "k2", []byte("v"), protocol.SetParams{Timeout: 20}); err != nil || r.Status != 200 {
		t.Fatalf("set: %+v %v", r, err)
	}
	// A kill drops open connections at once; the server comes back empty.
	if err := tg.(Killer).Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "k2"); err == nil {
		t.Error("a connection survived a kill")
	}
	c2, err := protocol.Dial(ctx, tg.Addr(), protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if r, err := c2.Get(ctx, "k2"); err != nil || r.Status != 404 {
		t.Fatalf("after a kill the session must be gone: %+v %v", r, err)
	}
}

func TestInProcPauseHoldsRequests(t *testing.T) {
	ctx := context.Background()
	tg, err := Start(ctx, Spec{Kind: KindInProc}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	p := tg.(Pauser)
	if err := p.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = Ping(short, tg.Addr())
	cancel()
	if err == nil {
		t.Fatal("a paused server answered")
	}
	if err := p.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := WaitReady(ctx, tg.Addr(), 5*time.Second); err != nil {
		t.Fatalf("after resume: %v", err)
	}
}

// checkPauseResume pauses tg, requires that a ping within wait gets no
// answer, resumes it and requires that it answers again.
func checkPauseResume(ctx context.Context, t *testing.T, tg Target, wait time.Duration) {
	t.Helper()
	p := tg.(Pauser)
	if err := p.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, wait)
	if Ping(short, tg.Addr()) == nil {
		t.Errorf("a paused %s target answered", tg.Info().Kind)
	}
	cancel()
	if err := p.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := WaitReady(ctx, tg.Addr(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestTCPTarget(t *testing.T) {
	ctx := context.Background()
	in, err := Start(ctx, Spec{Kind: KindInProc}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	spec, _ := Parse("tcp://" + in.Addr())
	tg, err := Start(ctx, spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tg.Addr() != in.Addr() || tg.Info().Kind != KindTCP {
		t.Errorf("tcp target %+v", tg.Info())
	}
	_ = tg.Close()
	port, _ := freePort()
	spec, _ = Parse(fmt.Sprintf("tcp://127.0.0.1:%d", port))
	if _, err := Start(ctx, spec, Options{ReadyTimeout: 200 * time.Millisecond}); err == nil ||
		!strings.Contains(err.Error(), "no answer") {
		t.Errorf("unanswered tcp target: %v", err)
	}
}
