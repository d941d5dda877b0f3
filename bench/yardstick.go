//go:build linux

package main

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pacedSource is the yardstick's client; bench compiles it with cc into
// its work directory, so that it runs whatever the working directory.
//
//go:embed yardstick/paced.c
var pacedSource []byte

// pacedBuild is how bench compiles the client (the report's command line
// names the source in the repository).
var pacedBuild = []string{"-O2", "-Wall", "-o"}

// pacedRun is what one run of the yardstick client printed.
type pacedRun struct {
	Requests, Slots, Late int64
	// ClientCPU is the client's own CPU time over its window, Start to End.
	ClientCPU  time.Duration
	Start, End time.Time
}

// parsePaced reads the client's line: `requests=N slots=S late=L cpu_ns=C
// start_ns=A end_ns=B`, every field once.
func parsePaced(line string) (pacedRun, error) {
	var r pacedRun
	want := []string{"requests", "slots", "late", "cpu_ns", "start_ns", "end_ns"}
	got := map[string]int64{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || n < 0 {
			return r, fmt.Errorf("yardstick client printed %q: %q is not name=count", line, f)
		}
		got[k] = n
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			return r, fmt.Errorf("yardstick client printed %q: no %s= (is bench/yardstick/paced.c out of step with bench?)", line, k)
		}
	}
	if len(got) != len(want) {
		return r, fmt.Errorf("yardstick client printed %q: want exactly %s", line, strings.Join(want, ", "))
	}
	r = pacedRun{Requests: got["requests"], Slots: got["slots"], Late: got["late"], ClientCPU: time.Duration(got["cpu_ns"]),
		Start: time.Unix(0, got["start_ns"]), End: time.Unix(0, got["end_ns"])}
	if !r.End.After(r.Start) || r.Requests == 0 {
		return r, fmt.Errorf("yardstick client printed %q: no request answered in its window", line)
	}
	return r, nil
}

// benchYardstick is (d): it compiles the event-loop client and runs it
// against redis, the redis-server of (a), in a closed loop and then paced
// at half of the closed loop's rate, dur each; it returns the figures and
// the command lines.
func benchYardstick(work string, redis *server, dur time.Duration, conns, body int) (*YardstickFigures, []string, error) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		return nil, nil, errors.New("no C compiler (cc) on PATH: apt-get install gcc")
	}
	src, exe := filepath.Join(work, "paced.c"), filepath.Join(work, "paced")
	if err := os.WriteFile(src, pacedSource, 0o644); err != nil {
		return nil, nil, err
	}
	ccArgs := slices.Concat(pacedBuild, []string{exe, src})
	if out, err := exec.Command(cc, ccArgs...).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("compiling the yardstick client (cc %s): %v\n%s", strings.Join(ccArgs, " "), err, out)
	}
	lines := []string{"cc " + strings.Join(slices.Concat(pacedBuild, []string{"paced", "bench/yardstick/paced.c"}), " ")}
	host, port, _ := net.SplitHostPort(redis.addr)
	run := func(rate float64, what string) (pacedRun, time.Duration, error) {
		args := []string{host, port, strconv.FormatFloat(rate, 'f', -1, 64), strconv.Itoa(conns),
			strconv.FormatFloat(dur.Seconds(), 'f', -1, 64), strconv.Itoa(body)}
		lines = append(lines, pinned(clientCPU, "paced "+strings.Join(args, " ")+" ("+what+")"))
		cpu := sampleCPU(redis.cmd.Process.Pid)
		cmd := command(clientCPU, exe, args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		cpu.close()
		if err != nil {
			return pacedRun{}, 0, fmt.Errorf("paced %s: %v", strings.Join(args, " "), err)
		}
		r, err := parsePaced(strings.TrimSpace(string(out)))
		return r, cpu.between(r.Start, r.End), err
	}
	closed, closedSrv, err := run(0, "host port rate conns seconds body; rate 0: closed loop")
	if err != nil {
		return nil, lines, err
	}
	y := &YardstickFigures{ClosedPerS: perSecond(closed)}
	y.PacedIntendedPerS = math.Round(y.ClosedPerS/2*10) / 10 // to a tenth, as printed on the command line
	paced, pacedSrv, err := run(y.PacedIntendedPerS, "half of the closed loop's rate")
	if err != nil {
		return nil, lines, err
	}
	y.PacedAchievedPerS = perSecond(paced)
	y.ClosedClientCPUPerReq, y.ClosedServerCPUPerReq = usPerRequest(closed.ClientCPU, closed), usPerRequest(closedSrv, closed)
	y.PacedClientCPUPerReq, y.PacedServerCPUPerReq = usPerRequest(paced.ClientCPU, paced), usPerRequest(pacedSrv, paced)
	if y.ClosedClientCPUPerReq > 0 {
		y.RatioClient = y.PacedClientCPUPerReq / y.ClosedClientCPUPerReq
	}
	if y.ClosedServerCPUPerReq > 0 {
		y.RatioServer = y.PacedServerCPUPerReq / y.ClosedServerCPUPerReq
	}
	y.Scheduled, y.Late = paced.Slots, paced.Late
	if paced.Slots > 0 {
		y.LatePct = float64(paced.Late) / float64(paced.Slots) * 100
	}
	return y, lines, nil
}

// perSecond is a run's rate of answered requests over its window.
func perSecond(r pacedRun) float64 { return float64(r.Requests) / r.End.Sub(r.Start).Seconds() }

// usPerRequest is cpu per answered request of r, in µs.
func usPerRequest(cpu time.Duration, r pacedRun) float64 {
	return cpu.Seconds() / float64(r.Requests) * 1e6
}

// String is (d)'s line of bench's output.
func (y YardstickFigures) String() string {
	return fmt.Sprintf("(d) event-loop yardstick: C epoll+timerfd client → redis-server: closed %.0f req/s (client %.1f µs, server %.1f µs per request); "+
		"paced at half, %.0f req/s: client %.1f µs (open/closed %.2f), server %.1f µs (%.2f), late slots %.2f %%",
		y.ClosedPerS, y.ClosedClientCPUPerReq, y.ClosedServerCPUPerReq, y.PacedIntendedPerS,
		y.PacedClientCPUPerReq, y.RatioClient, y.PacedServerCPUPerReq, y.RatioServer, y.LatePct)
}
