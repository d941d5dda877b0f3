package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeExchangeAndGracefulStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runServe(ctx, []string{"--listen", "127.0.0.1:0", "--minute", "60ms", "--metrics", "127.0.0.1:0"}, pw, &stderr)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	addr := ""
	for addr == "" && lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "listening on "); ok {
			addr = a
		}
	}
	if addr == "" {
		t.Fatalf("no \"listening on\" line; stderr: %s", stderr.String())
	}
	go io.Copy(io.Discard, pr) // drain further output

	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	c, err := protocol.Dial(dctx, addr, protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	target := protocol.Target("/LM/W3SVC/1/ROOT", "serveservetestsessionid1")
	if r, err := c.Set(dctx, target, []byte("hello"), protocol.SetParams{Timeout: 20}); err != nil || r.Status != 200 {
		t.Fatalf("PUT: %v %+v", err, r)
	}
	r, err := c.GetExclusive(dctx, target)
	if err != nil || r.Status != 200 || string(r.Body) != "hello" || r.LockCookie != 2 || r.Version != protocol.DefaultVersion {
		t.Fatalf("GET acquire: %v %+v", err, r)
	}

	cancel()
	select {
	case got := <-code:
		if got != 0 {
			t.Fatalf("exit code %d after cancel, want 0; stderr: %s", got, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runServe did not return after ctx was cancelled")
	}
	if _, err := c.Get(dctx, target); err == nil {
		t.Fatal("connection still answered after the server stopped")
	}
	if s := stderr.String(); s != "" {
		t.Errorf("unexpected stderr for a loopback server: %s", s)
	}
}

func TestServeBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown flag", []string{"--bogus"}, "bogus"},
		{"stray argument", []string{"extra"}, "unexpected argument"},
		{"bad listen", []string{"--listen", "nope"}, "--listen"},
		{"bad minute", []string{"--minute", "-1s"}, "--minute"},
		{"tiny minute", []string{"--minute", "1us"}, "--minute"},
		{"cidr without remote", []string{"--allow-cidr", "10.0.0.0/8"}, "--allow-remote"},
		{"bad cidr", []string{"--allow-remote", "--allow-cidr", "10.0.0.0/99"}, "allow-cidr"},
		{"bad size", []string{"--max-item-size", "lots"}, "max-item-size"},
		{"huge size", []string{"--max-item-size", "3GiB"}, "--max-item-size"},
		{"port out of range", []string{"--listen", "127.0.0.1:99999"}, `--listen "127.0.0.1:99999" has port "99999", not a number from 0 to 65535`},
		{"bad duration", []string{"--idle-timeout", "banana"}, `--idle-timeout: "banana" is not a duration (e.g. 30s, 2m)`},
		{"negative conns", []string{"--max-conns", "-1"}, "--max-conns"},
		{"negative idle", []string{"--idle-timeout", "-5s"}, "--idle-timeout"},
		{"bad metrics", []string{"--metrics", "9090"}, "--metrics"},
		{"empty version", []string{"--version-header", ""}, "--no-version-header"},
		{"fsync-interval without data dir", []string{"--fsync-interval", "1s"}, "--fsync-interval needs --data-dir"},
		{"negative request timeout", []string{"--request-timeout", "-1s"}, "--request-timeout"},
		{"negative write timeout", []string{"--write-timeout", "-1s"}, "--write-timeout"},
		{"fsync without data dir", []string{"--fsync", "always"}, "--fsync needs --data-dir"},
		{"snapshot-after without data dir", []string{"--snapshot-after", "1MiB"}, "--snapshot-after needs --data-dir"},
		{"bad fsync", []string{"--data-dir", "unused", "--fsync", "sometimes"}, "always, interval or never"},
		{"negative fsync interval", []string{"--data-dir", "unused", "--fsync-interval", "-1s"}, "--fsync-interval"},
		{"tiny snapshot-after", []string{"--data-dir", "unused", "--snapshot-after", "100"}, "--snapshot-after"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runServe(context.Background(), tc.args, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr does not name %q:\n%s", tc.want, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Fatalf("stdout: %s", stdout.String())
			}
		})
	}
}

func TestServeWarnsOnExposedListen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stop right after binding
	var stdout, stderr bytes.Buffer
	// 0.0.0.0:0 binds every interface; the test never sends off-host traffic.
	code := runServe(ctx, []string{"--listen", "0.0.0.0:0", "--allow-remote"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "WARNING") || !strings.Contains(stderr.String(), "--allow-cidr") {
		t.Fatalf("no loud warning for an exposed server:\n%s", stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "listening on ") {
		t.Fatalf("stdout %q", stdout.String())
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "64KiB": 64 << 10, "20MiB": 20 << 20, "2m": 2 << 20, "1GiB": 1 << 30, "10 B": 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1.5MiB", "99999999999GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

// startServe runs runServe with args until the returned stop is called; it
// returns the address from the "listening on" line and every stdout line
// before it.
func startServe(t *testing.T, args ...string) (addr string, before []string, stop func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runServe(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), pw, &stderr)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	for addr == "" && lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "listening on "); ok {
			addr = a
		} else {
			before = append(before, lines.Text())
		}
	}
	if addr == "" {
		cancel()
		t.Fatalf("no \"listening on\" line; stderr: %s", stderr.String())
	}
	go io.Copy(io.Discard, pr)
	stopped := false
	stop = func() (int, string) {
		cancel()
		select {
		case c := <-code:
			stopped = true
			return c, stderr.String()
		case <-time.After(10 * time.Second):
			t.Fatal("runServe did not return after ctx was cancelled")
			return 0, ""
		}
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return addr, before, stop
}

func TestServeDataDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	target := protocol.Target("/LM/W3SVC/1/ROOT", "servepersistsessionid001")
	addr, before, stop := startServe(t, "--data-dir", dir, "--fsync", "always")
	if len(before) != 1 || !strings.HasPrefix(before[0], "recovered 0 sessions from "+dir) {
		t.Fatalf("output before listening: %q", before)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := protocol.Dial(ctx, addr, protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.Set(ctx, target, []byte("kept"), protocol.SetParams{Timeout: 30}); err != nil || r.Status != 200 {
		t.Fatalf("PUT: %v %+v", err, r)
	}
	if r, err := c.GetExclusive(ctx, target); err != nil || r.LockCookie != 2 {
		t.Fatalf("acquire: %v %+v", err, r)
	}
	c.Close()
	if code, stderr := stop(); code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}

	addr, before, stop = startServe(t, "--data-dir", dir)
	if len(before) != 1 || !strings.HasPrefix(before[0], "recovered 1 sessions from "+dir) {
		t.Fatalf("output before listening: %q", before)
	}
	c, err = protocol.Dial(ctx, addr, protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Get(ctx, target)
	if err != nil || r.Status != 423 || r.LockCookie != 2 {
		t.Fatalf("GET after restart: %v %+v (want 423 with cookie 2)", err, r)
	}
	if r, err = c.ReleaseExclusive(ctx, target, 2); err != nil || r.Status != 200 {
		t.Fatalf("release: %v %+v", err, r)
	}
	if r, err = c.Get(ctx, target); err != nil || string(r.Body) != "kept" || r.Timeout != 30 {
		t.Fatalf("GET: %v %+v", err, r)
	}
	if code, _ := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestServeCorruptDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "snapshot"), []byte("not a snapshot"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runServe(context.Background(), []string{"--listen", "127.0.0.1:0", "--data-dir", dir}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "snapshot") || !strings.Contains(stderr.String(), "move it away") {
		t.Fatalf("stderr does not explain the corrupt snapshot:\n%s", stderr.String())
	}
}
