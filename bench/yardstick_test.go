//go:build linux

package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestParsePaced: the yardstick client's line gives its counts, its CPU
// and its window; a line out of step with the client is an error naming
// what is wrong.
func TestParsePaced(t *testing.T) {
	t.Parallel()
	r, err := parsePaced("requests=334720 slots=334725 late=40 cpu_ns=11045760000 start_ns=1796477842544471877 end_ns=1796477852544885387")
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 334720 || r.Slots != 334725 || r.Late != 40 || r.ClientCPU != 11045760*time.Microsecond {
		t.Errorf("parsed %+v", r)
	}
	if got := r.End.Sub(r.Start); got != 10000413510 {
		t.Errorf("window %v", got)
	}
	if got := perSecond(r); got < 33470 || got > 33472 {
		t.Errorf("perSecond = %v", got)
	}
	if got := usPerRequest(r.ClientCPU, r); math.Abs(got-33) > 1e-9 {
		t.Errorf("usPerRequest = %v", got)
	}
	for line, want := range map[string]string{
		"": "no requests=",
		"requests=1 slots=0 late=0 cpu_ns=5 start_ns=10":                   "no end_ns=",
		"requests=x slots=0 late=0 cpu_ns=5 start_ns=10 end_ns=20":         `"requests=x" is not name=count`,
		"requests=1 slots=0 late=0 cpu_ns=5 start_ns=10 end_ns=20 extra=1": "want exactly requests, slots",
		"requests=0 slots=0 late=0 cpu_ns=5 start_ns=10 end_ns=20":         "no request answered",
		"paced: connect 127.0.0.1:1: Connection refused":                   "is not name=count",
		"requests=1 slots=-1 late=0 cpu_ns=5 start_ns=10 end_ns=20":        `"slots=-1" is not name=count`,
	} {
		if _, err := parsePaced(line); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parsePaced(%q) = %v, want an error with %q", line, err, want)
		}
	}
}

// TestYardstickLine: (d)'s line of bench's output, and the end it adds to
// the open/closed line.
func TestYardstickLine(t *testing.T) {
	t.Parallel()
	y := &YardstickFigures{ClosedPerS: 66945, ClosedClientCPUPerReq: 10.5, ClosedServerCPUPerReq: 14.0, PacedIntendedPerS: 33472.5,
		PacedAchievedPerS: 33470, PacedClientCPUPerReq: 33.0, PacedServerCPUPerReq: 15.0, RatioClient: 3.142, RatioServer: 1.071,
		Scheduled: 334725, Late: 40, LatePct: 0.0119}
	if want := "(d) event-loop yardstick: C epoll+timerfd client → redis-server: closed 66945 req/s (client 10.5 µs, server 14.0 µs per request); " +
		"paced at half, 33472 req/s: client 33.0 µs (open/closed 3.14), server 15.0 µs (1.07), late slots 0.01 %"; y.String() != want {
		t.Errorf("got  %q\nwant %q", y.String(), want)
	}
	h := HalfFigures{RatioGenerator: 1.5, RatioServer: 1.57, LatePct: 9.7}
	if want := "bench: open/closed CPU per request = 1.50 (generator), 1.57 (server); late slots = 9.70 % at half saturation; " +
		"yardstick event loop = 3.14 (client), 1.07 (server)"; openLine(h, y) != want {
		t.Errorf("openLine = %q, want %q", openLine(h, y), want)
	}
}

// TestYardstickNeedsCC: without a C compiler, (d) is skipped with a reason
// that says how to get one, before it touches the server.
func TestYardstickNeedsCC(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	y, _, err := benchYardstick(t.TempDir(), nil, time.Second, 50, 1024)
	if y != nil || err == nil || !strings.Contains(err.Error(), "no C compiler (cc) on PATH: apt-get install gcc") {
		t.Fatalf("benchYardstick without cc = %v, %v", y, err)
	}
}
