//go:build linux

package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aspstate/aspstate/results"
)

// benchHalf runs the open model at half of the closed loop's saturation sat
// against srv and returns its figures and command line.
func benchHalf(bin, scenario, work string, srv *server, sat *AspstateFigures, conns int, dur time.Duration) (HalfFigures, string, error) {
	var h HalfFigures
	dir := filepath.Join(work, "half")
	// At most conns pages in progress, so at most conns connections, as in
	// (b): with the default 1024 workers the run held hundreds of connections
	// whose pages slowed each other (request p99 127-144 ms against 24-52 ms).
	// A steady start, as (b)'s users run long sessions: from an empty store
	// every page of the first think time would create its session (twice
	// the requests), a surge the rest of the run pays for in its p99.
	args := []string{"load", "--scenario", scenario, "--rate", fmt.Sprintf("%.1f", sat.PagesPerS/2), "--workers", strconv.Itoa(conns),
		"--steady-start", "--duration", dur.String(), "--target", "tcp://" + srv.addr, "--out", dir}
	line := pinned(clientCPU, "aspstate "+strings.Join(args, " "))
	cpu := sampleCPU(srv.cmd.Process.Pid)
	_, err := runLoad(bin, args)
	cpu.close()
	if err != nil {
		return h, line, err
	}
	hr, err := results.Read(dir)
	if err != nil {
		return h, line, err
	}
	h.IntendedPerS, h.AchievedPerS = hr.Rate.Intended, hr.Rate.Achieved
	h.RateErrorPct = (hr.Rate.Achieved - hr.Rate.Intended) / hr.Rate.Intended * 100
	h.Late, h.Dropped, h.NoWorker, h.Scheduled = hr.Rate.Late, hr.Rate.Dropped, hr.Rate.NoWorker, hr.Rate.Scheduled
	if h.Scheduled > 0 {
		h.LatePct = float64(h.Late) / float64(h.Scheduled) * 100
	}
	var corr, uncorr, pages []results.Latency
	for _, s := range hr.Ops {
		corr, uncorr = append(corr, s.Corrected), append(uncorr, s.Uncorrected)
	}
	for _, s := range hr.Pages {
		pages = append(pages, s.Corrected)
	}
	if all, err := results.MergeLatency(corr...); err == nil {
		h.RequestP99Ms, h.RequestP999Ms = float64(all.P99)/1e6, float64(all.P999)/1e6
	}
	if all, err := results.MergeLatency(uncorr...); err == nil {
		h.RequestP99UncorrectedMs = float64(all.P99) / 1e6
	}
	if all, err := results.MergeLatency(pages...); err == nil {
		h.PageP99Ms = float64(all.P99) / 1e6
	}
	// CPU per request over the schedule, both sides: the generator's own
	// figure (after the steady start's seeding), the server's over the
	// same stretch of time.
	if reqs := totalRequests(hr); reqs > 0 {
		if g := hr.Generator; g != nil {
			h.LoadgenCPUPerReq = time.Duration(g.CPUUser+g.CPUSystem).Seconds() / float64(reqs) * 1e6
		}
		h.ServerCPUPerReq = cpu.between(hr.Start, hr.End).Seconds() / float64(reqs) * 1e6
	}
	if sat.LoadgenCPUPerReq > 0 && sat.ServerCPUPerReq > 0 {
		h.RatioGenerator = h.LoadgenCPUPerReq / sat.LoadgenCPUPerReq
		h.RatioServer = h.ServerCPUPerReq / sat.ServerCPUPerReq
	}
	return h, line, nil
}

// String is the run's line of bench's output.
func (h HalfFigures) String() string {
	return fmt.Sprintf("half saturation: intended %.1f pages/s, achieved %.1f (%+.2f%%), request p99 %.3f ms (uncorrected %.3f), p99.9 %.3f ms, page p99 %.3f ms; "+
		"%d of %d slots late (%.2f %%), %d found no worker, %d dropped; CPU per request: load generator %.1f µs (open/closed %.2f), server %.1f µs (%.2f)",
		h.IntendedPerS, h.AchievedPerS, h.RateErrorPct, h.RequestP99Ms, h.RequestP99UncorrectedMs, h.RequestP999Ms, h.PageP99Ms,
		h.Late, h.Scheduled, h.LatePct, h.NoWorker, h.Dropped, h.LoadgenCPUPerReq, h.RatioGenerator, h.ServerCPUPerReq, h.RatioServer)
}

// openLine is the line bench prints before its closing line; with y, it
// ends with what the same schedule costs the event-loop yardstick.
func openLine(h HalfFigures, y *YardstickFigures) string {
	line := fmt.Sprintf("bench: open/closed CPU per request = %.2f (generator), %.2f (server); late slots = %.2f %% at half saturation",
		h.RatioGenerator, h.RatioServer, h.LatePct)
	if y != nil {
		line += fmt.Sprintf("; yardstick event loop = %.2f (client), %.2f (server)", y.RatioClient, y.RatioServer)
	}
	return line
}

// cpuSampler reads a process's CPU time every cpuSampleEvery, so that the
// CPU it used over a stretch of time known only afterwards (a run's
// schedule, from its result) can be read back.
type cpuSampler struct {
	pid  int
	mu   sync.Mutex
	at   []time.Time
	cpu  []time.Duration
	stop chan struct{}
	done chan struct{}
}

// cpuSampleEvery is cpuSampler's period; /proc counts CPU time in 10 ms ticks.
const cpuSampleEvery = 10 * time.Millisecond

func sampleCPU(pid int) *cpuSampler {
	s := &cpuSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(cpuSampleEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.sample()
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

func (s *cpuSampler) sample() {
	c := procCPU(s.pid)
	s.mu.Lock()
	s.at, s.cpu = append(s.at, time.Now()), append(s.cpu, c)
	s.mu.Unlock()
}

// close takes a last sample and stops sampling.
func (s *cpuSampler) close() {
	close(s.stop)
	<-s.done
	s.sample()
}

// between returns the CPU time used from a to b: the last samples taken at
// or before each.
func (s *cpuSampler) between(a, b time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cpuAt(b) - s.cpuAt(a)
}

func (s *cpuSampler) cpuAt(t time.Time) time.Duration {
	c := s.cpu[0]
	for i, at := range s.at {
		if at.After(t) {
			break
		}
		c = s.cpu[i]
	}
	return c
}
