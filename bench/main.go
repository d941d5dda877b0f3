//go:build linux

// Command bench is `make bench`: it measures, in one run on this machine, the
// aspstate load generator against the reference server (in a separate
// process) and the yardsticks beside it, and reports ratios rather than bare
// figures, because the machine is shared and absolute numbers drift.
//
//	(a) Redis: redis-server + redis-benchmark, 50 connections, 1 KiB values, GET and SET, no pipelining
//	(b) aspstate: `aspstate load --closed-loop` with 50 connections against `aspstate serve`,
//	    1 KiB sessions, pages of GetExclusive + Set-with-release and plain Get (bench/page-cycle.yaml)
//	(c) the limit: a bare request/response echo over loopback, 50 connections, the same sizes,
//	    client and server in separate processes as (a) and (b) are (this program and a copy of
//	    itself); the same echo inside one process is printed beside it, for reference only
//	(d) an event-loop yardstick: a minimal C client (one thread, epoll, a timerfd per slot;
//	    bench/yardstick/paced.c, compiled with cc) GETting 1 KiB from (a)'s redis-server,
//	    in a closed loop and then paced at half of its rate: what keeping a schedule costs
//	    the design issue 21 takes as its anchor (wrk2's), here and now
//
// Then an open-model run at 50% of (b)'s saturation, with as many workers as
// (b) has connections, shows rate accuracy, p99, late slots and CPU per
// request against (b)'s; the line before the last reads `bench: open/closed
// CPU per request = G (generator), S (server); late slots = P % at half
// saturation; yardstick event loop = C (client), R (server)`, C and R
// being (d)'s paced over closed CPU per request.
//
// By default the kernel shares the CPUs between clients and servers, as it
// does for `aspstate plan` and `aspstate load` (whose rates issue 6 compares
// with this saturation). -pin runs every server on CPU 0 and every client
// on CPU 1 (taskset), the same for all three systems: each program on a core
// of its own, and each Go program then on one thread (GOMAXPROCS follows
// the CPUs it may use), as Redis's are anyway.
// Figures are appended to the history in results/baselines/bench.json, and
// docs/benchmarks.md is rewritten with the last run's table, machine, date
// and command; the last line reads `bench: aspstate/redis = R, aspstate/limit = L`.
//
// Linux only: it reads /proc and installs Redis from Debian.
//
// Usage: go run ./bench [-bin bin/aspstate] [-duration 15s] [-conns 50] [-pin] [-out results/baselines/bench.json] [-doc docs/benchmarks.md]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aspstate/aspstate/results"
)

// Report is what bench.json holds.
type Report struct {
	Date      string  `json:"date"`
	Machine   Machine `json:"machine"`
	Duration  string  `json:"duration"`
	Conns     int     `json:"connections"`
	BodyBytes int     `json:"body_bytes"`
	// Pinned tells whether servers ran on CPU 0 and clients on CPU 1.
	Pinned bool `json:"pinned"`

	Redis    *RedisFigures   `json:"redis,omitempty"`
	Aspstate AspstateFigures `json:"aspstate"`
	Limit    LimitFigures    `json:"limit"`
	Half     HalfFigures     `json:"half_saturation"`
	// Yardstick is (d), absent when it could not run (no C compiler, no
	// redis-server).
	Yardstick *YardstickFigures `json:"yardstick,omitempty"`
	// Half's open/closed CPU per request ratios and its share of slots
	// started more than 1 ms late, in percent.
	OpenClosedGenerator float64 `json:"open_closed_generator_cpu"`
	OpenClosedServer    float64 `json:"open_closed_server_cpu"`
	LatePct             float64 `json:"late_slots_percent"`

	RatioRedis float64  `json:"ratio_aspstate_redis"`
	RatioLimit float64  `json:"ratio_aspstate_limit"`
	Commands   []string `json:"commands"`
	// Command is the command line of the run (go run ./bench …).
	Command string `json:"command,omitempty"`
}

// Machine describes where the figures were measured.
type Machine struct {
	CPUs      int    `json:"cpus"`
	Model     string `json:"cpu_model"`
	GoVersion string `json:"go"`
	Kernel    string `json:"kernel"`
}

// RedisFigures are redis-benchmark's requests per second.
type RedisFigures struct {
	GetPerS  float64 `json:"get_per_s"`
	SetPerS  float64 `json:"set_per_s"`
	MeanPerS float64 `json:"mean_per_s"`
	Version  string  `json:"version"`
	// CPU per request of redis-benchmark and of redis-server, over both tests.
	ClientCPUPerReq float64 `json:"client_cpu_us_per_request"`
	ServerCPUPerReq float64 `json:"server_cpu_us_per_request"`
}

// AspstateFigures are the closed-loop saturation figures.
type AspstateFigures struct {
	PagesPerS        float64 `json:"pages_per_s"`
	RequestsPerS     float64 `json:"requests_per_s"`
	LoadgenCPUPerReq float64 `json:"loadgen_cpu_us_per_request"`
	// LoadgenProcessCPUPerReq is the generator's whole process (start-up and
	// writing results too), where the run's own figure is known.
	LoadgenProcessCPUPerReq float64 `json:"loadgen_process_cpu_us_per_request,omitempty"`
	ServerCPUPerReq         float64 `json:"server_cpu_us_per_request"`
	ServerRSSBytes          int64   `json:"server_rss_bytes"`
	Violations              int64   `json:"correctness_violations"`
	Errors                  int64   `json:"errors"`
}

// LimitFigures are the bare echo figures: RequestsPerS is the two-process
// echo the ratio uses; InProcessPerS the same echo inside one process.
type LimitFigures struct {
	RequestsPerS    float64 `json:"requests_per_s"`
	ClientCPUPerReq float64 `json:"client_cpu_us_per_request"`
	ServerCPUPerReq float64 `json:"server_cpu_us_per_request"`
	InProcessPerS   float64 `json:"in_process_requests_per_s"`
}

// HalfFigures are an open-model run at half of saturation (steady start).
type HalfFigures struct {
	IntendedPerS float64 `json:"intended_pages_per_s"`
	AchievedPerS float64 `json:"achieved_pages_per_s"`
	RateErrorPct float64 `json:"rate_error_percent"`
	// Request latencies are corrected (from the intended start) unless
	// named uncorrected.
	RequestP99Ms            float64 `json:"request_p99_ms"`
	RequestP99UncorrectedMs float64 `json:"request_p99_uncorrected_ms"`
	RequestP999Ms           float64 `json:"request_p99_9_ms"`
	PageP99Ms               float64 `json:"page_p99_ms"`
	Scheduled               int64   `json:"scheduled_slots"`
	Late                    int64   `json:"late_slots"`
	// LatePct is Late in percent of Scheduled.
	LatePct  float64 `json:"late_slots_percent"`
	NoWorker int64   `json:"no_worker_slots"`
	Dropped  int64   `json:"dropped_slots"`
	// CPU per request over the schedule, and over the closed loop's (b).
	LoadgenCPUPerReq float64 `json:"loadgen_cpu_us_per_request"`
	ServerCPUPerReq  float64 `json:"server_cpu_us_per_request"`
	RatioGenerator   float64 `json:"open_closed_generator_cpu"`
	RatioServer      float64 `json:"open_closed_server_cpu"`
}

// YardstickFigures are (d): a minimal event-loop client (C, one thread,
// epoll, a timerfd per slot; bench/yardstick/paced.c) GETting a body-sized
// value from the redis-server of (a), in a closed loop and then paced at
// half of that loop's rate, each for the run's duration: what keeping a
// schedule costs the design issue 21 takes as its anchor, on this machine
// in this run.
type YardstickFigures struct {
	ClosedPerS            float64 `json:"closed_requests_per_s"`
	ClosedClientCPUPerReq float64 `json:"closed_client_cpu_us_per_request"`
	ClosedServerCPUPerReq float64 `json:"closed_server_cpu_us_per_request"`
	PacedIntendedPerS     float64 `json:"paced_intended_requests_per_s"`
	PacedAchievedPerS     float64 `json:"paced_achieved_requests_per_s"`
	PacedClientCPUPerReq  float64 `json:"paced_client_cpu_us_per_request"`
	PacedServerCPUPerReq  float64 `json:"paced_server_cpu_us_per_request"`
	// The paced run's CPU per request over the closed loop's.
	RatioClient float64 `json:"open_closed_client_cpu"`
	RatioServer float64 `json:"open_closed_server_cpu"`
	// Slots of the paced run, and those started (or still waiting at its
	// end) more than 1 ms after their time; LatePct is Late in percent of
	// Scheduled.
	Scheduled int64   `json:"scheduled_slots"`
	Late      int64   `json:"late_slots"`
	LatePct   float64 `json:"late_slots_percent"`
}

func main() {
	bin := flag.String("bin", "bin/aspstate", "aspstate binary (make build)")
	dur := flag.Duration("duration", 15*time.Second, "length of each measured run")
	conns := flag.Int("conns", 50, "connections")
	body := flag.Int("body", 1024, "value/body size in bytes")
	out := flag.String("out", "results/baselines/bench.json", "history of runs the figures are appended to")
	doc := flag.String("doc", "docs/benchmarks.md", "page rewritten with the last run's figures (\"\" = none)")
	scenario := flag.String("scenario", "bench/page-cycle.yaml", "aspstate workload")
	pin := flag.Bool("pin", false, "run servers on CPU 0 and clients on CPU 1 (taskset; needs 2 CPUs)")
	echoServer := flag.Int("echo-server", 0, "internal: run the echo server for (c) with this body size")
	echoClientAddr := flag.String("echo-client", "", "internal: run the echo client for (c) against this address")
	flag.Parse()
	if *echoServer > 0 {
		runEchoServer(*echoServer)
		return
	}
	if *echoClientAddr != "" {
		runEchoClient(*echoClientAddr, *dur, *conns, *body)
		return
	}
	pinning = *pin && runtime.NumCPU() >= 2
	if _, err := exec.LookPath("taskset"); pinning && err != nil {
		fmt.Println("bench: taskset not found (util-linux): running unpinned")
		pinning = false
	}
	if err := run(*bin, *scenario, *dur, *conns, *body, *out, *doc); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(bin, scenario string, dur time.Duration, conns, body int, out, doc string) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s not found: run `make build` first", bin)
	}
	rep := Report{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Duration: dur.String(), Conns: conns, BodyBytes: body, Pinned: pinning}
	if pinning {
		fmt.Println("pinned: servers on CPU 0, clients on CPU 1 (taskset)")
	}
	work, err := os.MkdirTemp("", "aspstate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// (a) Redis; its server stays up for (d).
	rs, err := startRedis()
	if err == nil {
		defer rs.stop()
		rep.Redis, err = benchRedis(rs, dur, conns, body)
	}
	if err != nil {
		fmt.Printf("(a) redis: skipped: %v\n", err)
	} else {
		r := rep.Redis
		fmt.Printf("(a) redis %s: GET %.0f/s, SET %.0f/s, mean %.0f requests/s; CPU per request: redis-benchmark %.1f µs, redis-server %.1f µs\n",
			r.Version, r.GetPerS, r.SetPerS, r.MeanPerS, r.ClientCPUPerReq, r.ServerCPUPerReq)
		rep.Commands = append(rep.Commands, pinned(serverCPU, "redis-server --save '' --appendonly no"),
			pinned(clientCPU, fmt.Sprintf("redis-benchmark -c %d -d %d -t get,set -P 1 (duration-sized -n)", conns, body)))
	}

	// (b) aspstate closed-loop saturation against a separate server process.
	srv, err := startServer(bin)
	if err != nil {
		return err
	}
	defer srv.stop()
	satDir := filepath.Join(work, "saturation")
	args := []string{"load", "--scenario", scenario, "--closed-loop", "--connections", strconv.Itoa(conns),
		"--duration", dur.String(), "--target", "tcp://" + srv.addr, "--out", satDir}
	rep.Commands = append(rep.Commands, pinned(serverCPU, "aspstate serve --listen 127.0.0.1:0"), pinned(clientCPU, "aspstate "+strings.Join(args, " ")))
	srvSamples := sampleCPU(srv.cmd.Process.Pid)
	lgCPU, err := runLoad(bin, args)
	srvSamples.close()
	if err != nil {
		return err
	}
	sat, err := results.Read(satDir)
	if err != nil {
		return err
	}
	// The server's CPU over the run, as the generator's is measured.
	srvCPU := srvSamples.between(sat.Start, sat.End)
	reqs := totalRequests(sat)
	window := time.Duration(sat.Rate.Window).Seconds()
	a := &rep.Aspstate
	a.PagesPerS = sat.Rate.Achieved
	a.RequestsPerS = float64(reqs) / window
	// The generator's CPU over its run, as the server's is measured over
	// it: without its start-up and without writing its results (histogram
	// logs), which a whole-process figure would add to a 15 s run.
	if g := sat.Generator; g != nil {
		a.LoadgenProcessCPUPerReq = lgCPU.Seconds() / float64(reqs) * 1e6
		lgCPU = time.Duration(g.CPUUser + g.CPUSystem)
	}
	a.LoadgenCPUPerReq = lgCPU.Seconds() / float64(reqs) * 1e6
	a.ServerCPUPerReq = srvCPU.Seconds() / float64(reqs) * 1e6
	a.ServerRSSBytes = srv.rss()
	a.Violations = sat.Correctness.Total
	for _, n := range sat.Errors {
		a.Errors += n
	}
	fmt.Printf("(b) aspstate: %.0f pages/s, %.0f requests/s (closed loop, %d connections); CPU per request over the run: load generator %.1f µs (whole process %.1f), server %.1f µs; server RSS %.1f MiB; %d violations, %d errors\n",
		a.PagesPerS, a.RequestsPerS, conns, a.LoadgenCPUPerReq, a.LoadgenProcessCPUPerReq, a.ServerCPUPerReq, float64(a.ServerRSSBytes)/(1<<20), a.Violations, a.Errors)

	// (c) the limit: bare echo, in two processes (the ratio's) and in one.
	lim, err := benchEcho(dur, conns, body)
	if err != nil {
		return err
	}
	inproc, err := benchEchoInProcess(dur, conns, body)
	if err != nil {
		return err
	}
	lim.InProcessPerS = inproc
	rep.Limit = *lim
	fmt.Printf("(c) limit: bare echo over loopback, client and server processes: %.0f requests/s (%d connections, %d-byte messages); CPU per request: client %.1f µs, server %.1f µs; in one process: %.0f requests/s\n",
		lim.RequestsPerS, conns, body, lim.ClientCPUPerReq, lim.ServerCPUPerReq, inproc)

	// (d) the event-loop yardstick, against (a)'s redis-server.
	if rs == nil {
		fmt.Println("(d) event-loop yardstick: skipped: no redis-server (apt-get install redis-server)")
	} else if y, lines, err := benchYardstick(work, rs, dur, conns, body); err != nil {
		fmt.Printf("(d) event-loop yardstick: skipped: %v\n", err)
	} else {
		rep.Yardstick = y
		rep.Commands = append(rep.Commands, lines...)
		fmt.Println(y)
	}

	// Open model at half of saturation.
	h, line, err := benchHalf(bin, scenario, work, srv, a, conns, dur)
	if err != nil {
		return err
	}
	rep.Commands = append(rep.Commands, line)
	rep.Half = h
	fmt.Println(h)
	rep.OpenClosedGenerator, rep.OpenClosedServer, rep.LatePct = rep.Half.RatioGenerator, rep.Half.RatioServer, rep.Half.LatePct

	if rep.Redis != nil && rep.Redis.MeanPerS > 0 {
		rep.RatioRedis = a.RequestsPerS / rep.Redis.MeanPerS
	}
	if lim.RequestsPerS > 0 {
		rep.RatioLimit = a.RequestsPerS / lim.RequestsPerS
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	rep.Command = "go run ./bench " + strings.Join(os.Args[1:], " ")
	if err := appendHistory(out, &rep); err != nil {
		return err
	}
	fmt.Printf("figures: %s (history)\n", out)
	if doc != "" {
		if err := writeBenchmarks(doc, out, &rep); err != nil {
			return err
		}
		fmt.Printf("figures: %s\n", doc)
	}
	redis := "n/a"
	if rep.Redis != nil {
		redis = fmt.Sprintf("%.2f", rep.RatioRedis)
	}
	fmt.Println(openLine(rep.Half, rep.Yardstick))
	fmt.Printf("bench: aspstate/redis = %s, aspstate/limit = %.2f\n", redis, rep.RatioLimit)
	return nil
}

func totalRequests(r *results.Run) int64 {
	var n int64
	for _, s := range r.Ops {
		n += s.Count
	}
	return n
}

// runLoad runs the load generator and returns the CPU time it used.
func runLoad(bin string, args []string) (time.Duration, error) {
	cmd := command(clientCPU, bin, args...)
	var stderr strings.Builder
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("aspstate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return cpuOf(cmd.ProcessState), nil
}

type server struct {
	cmd  *exec.Cmd
	addr string
}

func startServer(bin string) (*server, error) {
	cmd := command(serverCPU, bin, "serve", "--listen", "127.0.0.1:0")
	stdout, err := startPiped(cmd)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`listening on (\S+)`)
	lines := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				lines <- m[1]
			}
		}
	}()
	select {
	case addr := <-lines:
		return &server{cmd: cmd, addr: addr}, nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		return nil, errors.New("aspstate serve did not print `listening on` within 10s")
	}
}

// startPiped starts cmd with its stdout piped to the caller and its stderr
// on ours.
func startPiped(cmd *exec.Cmd) (io.Reader, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	return stdout, cmd.Start()
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
	}
}

// cpuOf is the user+system CPU time of an exited process.
func cpuOf(ps *os.ProcessState) time.Duration { return ps.UserTime() + ps.SystemTime() }

// procCPU returns a running process's user+system CPU time from /proc.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	// After the command name: state is field 0, utime 11, stime 12 (clock ticks, 100/s).
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func (s *server) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// startRedis starts the redis-server of (a) and (d) (installed from Debian
// by `make bench` when missing) on a free loopback port, without
// persistence, and waits until it accepts connections.
func startRedis() (*server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errors.New("redis-server not installed (apt-get install redis-server redis-tools)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr, port := ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := command(serverCPU, "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	srv := &server{cmd: cmd, addr: addr}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return srv, nil
		}
		if time.Now().After(deadline) {
			srv.stop()
			return nil, errors.New("redis-server did not start within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// benchRedis runs redis-benchmark (installed from Debian by `make bench`
// when missing) against the redis-server srv.
func benchRedis(srv *server, dur time.Duration, conns, body int) (*RedisFigures, error) {
	if _, err := exec.LookPath("redis-benchmark"); err != nil {
		return nil, errors.New("redis-benchmark not installed (apt-get install redis-tools)")
	}
	host, port, _ := net.SplitHostPort(srv.addr)
	ver, _ := exec.Command("redis-server", "--version").Output()
	fig := &RedisFigures{Version: strings.TrimSpace(string(ver))}
	if m := regexp.MustCompile(`v=(\S+)`).FindSubmatch(ver); m != nil {
		fig.Version = string(m[1])
	}
	// Size the request count so each test runs about dur/2 at a generous
	// 100k/s guess; the figure is a rate, so the count only sets the run length.
	n := int(dur.Seconds() / 2 * 100000)
	srvCPU0 := procCPU(srv.cmd.Process.Pid)
	rb := command(clientCPU, "redis-benchmark", "-h", host, "-p", port, "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(body), "-n", strconv.Itoa(n), "-t", "set,get", "-P", "1", "--csv")
	out, err := rb.Output()
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark: %v", err)
	}
	srvCPU := procCPU(srv.cmd.Process.Pid) - srvCPU0
	fig.ClientCPUPerReq = cpuOf(rb.ProcessState).Seconds() / float64(2*n) * 1e6
	fig.ServerCPUPerReq = srvCPU.Seconds() / float64(2*n) * 1e6
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 2 {
			continue
		}
		name := strings.Trim(f[0], `"`)
		v, err := strconv.ParseFloat(strings.Trim(f[1], `"`), 64)
		if err != nil {
			continue
		}
		switch name {
		case "GET":
			fig.GetPerS = v
		case "SET":
			fig.SetPerS = v
		}
	}
	if fig.GetPerS == 0 || fig.SetPerS == 0 {
		return nil, fmt.Errorf("could not read redis-benchmark output:\n%s", out)
	}
	fig.MeanPerS = (fig.GetPerS + fig.SetPerS) / 2
	return fig, nil
}

// runEchoServer is the echo server of (c) in its own process: it prints its
// address, then answers each body-sized read with one write.
func runEchoServer(body int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench echo server:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	serveEcho(ln, body)
}

func serveEcho(ln net.Listener, body int) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, body)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}(c)
	}
}

// benchEcho measures the bare limit as (a) and (b) run, client and server
// in separate processes: conns connections each sending a body-sized
// request and reading a body-sized reply, back to back, against the echo
// server in a copy of this program.
func benchEcho(dur time.Duration, conns, body int) (*LimitFigures, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := command(serverCPU, self, "-echo-server", strconv.Itoa(body))
	stdout, err := startPiped(cmd)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("echo server: %v", err)
	}
	// The client is a process of its own too, so that it can be pinned.
	srv0 := procCPU(cmd.Process.Pid)
	cl := command(clientCPU, self, "-echo-client", strings.TrimSpace(addr), "-duration", dur.String(),
		"-conns", strconv.Itoa(conns), "-body", strconv.Itoa(body))
	cl.Stderr = os.Stderr
	out, err := cl.Output()
	if err != nil {
		return nil, fmt.Errorf("echo client: %v", err)
	}
	srv := procCPU(cmd.Process.Pid) - srv0
	var n int64
	var ns int64
	if _, err := fmt.Sscan(string(out), &n, &ns); err != nil || n == 0 {
		return nil, fmt.Errorf("echo client printed %q", out)
	}
	elapsed := time.Duration(ns)
	cli := cpuOf(cl.ProcessState)
	return &LimitFigures{RequestsPerS: float64(n) / elapsed.Seconds(),
		ClientCPUPerReq: cli.Seconds() / float64(n) * 1e6, ServerCPUPerReq: srv.Seconds() / float64(n) * 1e6}, nil
}

// runEchoClient is the echo client of (c) in its own process: it prints
// how many exchanges it made and in how many nanoseconds.
func runEchoClient(addr string, dur time.Duration, conns, body int) {
	n, elapsed, err := echoClient(addr, dur, conns, body)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench echo client:", err)
		os.Exit(1)
	}
	fmt.Println(n, elapsed.Nanoseconds())
}

// The CPUs servers and clients run on when pinning.
const (
	serverCPU = 0
	clientCPU = 1
)

// pinning is on when servers and clients run on CPUs of their own (-pin).
var pinning bool

// command returns the command to run name with args, on cpu when pinning.
func command(cpu int, name string, args ...string) *exec.Cmd {
	if !pinning {
		return exec.Command(name, args...)
	}
	return exec.Command("taskset", append([]string{"-c", strconv.Itoa(cpu), name}, args...)...)
}

// pinned is how a command line reads in the report.
func pinned(cpu int, line string) string {
	if !pinning {
		return line
	}
	return fmt.Sprintf("taskset -c %d %s", cpu, line)
}

// benchEchoInProcess is the same echo with client and server in this
// process: no wakeup ever crosses a process, so it is faster than any pair
// of processes can be; printed for reference, not used in the ratio.
func benchEchoInProcess(dur time.Duration, conns, body int) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go serveEcho(ln, body)
	n, elapsed, err := echoClient(ln.Addr().String(), dur, conns, body)
	if err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}

// echoClient runs conns echo connections back to back for dur.
func echoClient(addr string, dur time.Duration, conns, body int) (int64, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			msg := make([]byte, body)
			buf := make([]byte, body)
			for ctx.Err() == nil {
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					errs <- err
					return
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return 0, 0, err
	default:
	}
	return total.Load(), elapsed, nil
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				m.Model = strings.TrimSpace(line[strings.IndexByte(line, ':')+1:])
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
