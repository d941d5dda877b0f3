package main

import (
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/loadgen"
)

func progressAt(s int) loadgen.Progress {
	return loadgen.Progress{Elapsed: time.Duration(s) * time.Second, Total: 10 * time.Second, Rate: 812,
		P99: 1234 * time.Microsecond, Pages: int64(812 * s), Errors: 3, LockWaits: 7}
}

// Not on a terminal (a pipe, a CI log): a plain line every five intervals.
func TestProgressPlainLines(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	p := &progress{w: &b}
	for s := 1; s <= 10; s++ {
		p.update(progressAt(s))
	}
	p.finish()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "1s/10s  rate 812/s  p99 1.23ms  pages 812  errors 3  lock waits 7") {
		t.Fatalf("plain progress:\n%s", b.String())
	}
	if strings.Contains(b.String(), "\r") || strings.Contains(b.String(), "\x1b") {
		t.Errorf("terminal control in plain output: %q", b.String())
	}
}

// On a terminal: one live line with the figures and the ETA, ended by finish.
func TestProgressLiveLine(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	p := &progress{w: &b, tty: true}
	p.update(progressAt(1))
	p.update(progressAt(5))
	p.finish()
	out := b.String()
	for _, want := range []string{"\r", "5s/10s ETA 5s  rate 812/s  p99 1.23ms", "errors 3", "50%"} {
		if !strings.Contains(out, want) {
			t.Errorf("live line lacks %q: %q", want, out)
		}
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("finish did not end the line: %q", out)
	}
	if newProgress(&b).tty {
		t.Error("a strings.Builder is not a terminal")
	}
}
