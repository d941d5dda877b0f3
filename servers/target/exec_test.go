package target

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// selfCommand is an exec target command that runs this test binary in one of
// the modes of TestMain.
func selfCommand(t *testing.T, args ...string) []string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{self}, args...)
}

// within runs f and fails the test if it has not returned after d: a process
// tree that was not ended keeps the exec target waiting for its output.
func within(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s has not returned after %s: the process tree was not ended", what, d)
	}
}

func TestExecTarget(t *testing.T) {
	ctx := context.Background()
	// {addr} substitution: the process is told where to listen.
	spec := Spec{Kind: KindExec, Command: selfCommand(t, "-aspstate-serve", "{addr}")}
	tg, err := Start(ctx, spec, Options{ReadyTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if err := Ping(ctx, tg.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, ok := tg.(Pauser); ok {
		// Unix: SIGSTOP; nothing answers; SIGCONT: it answers again.
		checkPauseResume(ctx, t, tg, 150*time.Millisecond)
	}
	if err := tg.(Restarter).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Ping(ctx, tg.Addr()); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if err := tg.(Killer).Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Ping(ctx, tg.Addr()); err != nil {
		t.Fatalf("after kill: %v", err)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestExecTargetEndsTheTree: the server is a grandchild of the exec target
// (a wrapper script's pattern); Kill and Close must end it too, not only the
// process they started.
func TestExecTargetEndsTheTree(t *testing.T) {
	ctx := context.Background()
	spec := Spec{Kind: KindExec, Command: selfCommand(t, "-aspstate-parent", "{addr}")}
	tg, err := Start(ctx, spec, Options{ReadyTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	first := tg.Addr()
	within(t, 30*time.Second, "Kill", func() error { return tg.(Killer).Kill(ctx) })
	if second := tg.Addr(); second != first { // the same free port may come back
		if err := Ping(ctx, first); err == nil {
			t.Errorf("the grandchild killed with its tree still answers at %s", first)
		}
	}
	if err := Ping(ctx, tg.Addr()); err != nil {
		t.Fatalf("after kill: %v", err)
	}
	last := tg.Addr()
	within(t, 30*time.Second, "Close", tg.Close)
	if err := Ping(ctx, last); err == nil {
		t.Errorf("the grandchild stopped with its tree still answers at %s", last)
	}
}

func TestExecTargetFailsClearly(t *testing.T) {
	ctx := context.Background()
	_, err := Start(ctx, Spec{Kind: KindExec, Command: selfCommand(t, "-aspstate-fail")}, Options{ReadyTimeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "boom-from-child") {
		t.Errorf("err = %v, want the process output in the error", err)
	}
	_, err = Start(ctx, Spec{Kind: KindExec, Command: []string{"/nonexistent/server"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "cannot start") {
		t.Errorf("err = %v", err)
	}
}
