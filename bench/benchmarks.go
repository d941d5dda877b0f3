//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeBenchmarks writes the page of the last run's figures (docs/benchmarks.md):
// what ran, on which machine, when, with which command. The history of runs
// is in bench.json (appendHistory), not in prose.
func writeBenchmarks(path, history string, rep *Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(renderBenchmarks(rep, history)), 0o644)
}

// renderBenchmarks is the whole page.
func renderBenchmarks(rep *Report, history string) string {
	b := &strings.Builder{}
	b.WriteString("# Benchmarks\n\n<!-- written by make bench (go run ./bench); edits are overwritten -->\n\n")
	b.WriteString("`make bench` measures three systems in one run on one machine and reports ratios, since a shared\n" +
		"machine's absolute speed drifts: (a) Redis with redis-benchmark, (b) aspstate's load generator in a closed\n" +
		"loop against `aspstate serve`, (c) a bare echo between two processes (the most any client and server\n" +
		"pair can do here). Then an open-model run at half of (b)'s saturation measures rate accuracy and latency,\n" +
		"and (d), an event-loop yardstick, what the same schedule costs elsewhere: a minimal C client (one thread,\n" +
		"epoll, a timerfd per slot, the design of wrk2 that issue 21 anchors on) against (a)'s redis-server, in a\n" +
		"closed loop and paced at half of its rate. The open-model engines tried, with their figures:\n" +
		"[load.md](load.md#the-open-models-engine).\n\n")
	fmt.Fprintf(b, "Command: `%s`\n\n", rep.Command)
	b.WriteString(renderBlock(rep))
	if len(rep.Commands) > 0 {
		b.WriteString("\nThe run's commands:\n\n")
		for _, c := range rep.Commands {
			fmt.Fprintf(b, "- `%s`\n", c)
		}
	}
	fmt.Fprintf(b, "\nEvery run's figures, this one last: [%s](../%s).\n", filepath.Base(history), history)
	return b.String()
}

// appendHistory adds rep to the JSON array of runs at path. A file holding
// one run (the format before the history) becomes the first entry.
func appendHistory(path string, rep *Report) error {
	var runs []json.RawMessage
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &runs); err != nil {
			var one json.RawMessage
			if err := json.Unmarshal(b, &one); err != nil {
				return fmt.Errorf("%s: neither a run nor a list of runs: %v", path, err)
			}
			runs = []json.RawMessage{one}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	runs = append(runs, b)
	out, err := json.MarshalIndent(runs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

// renderBlock formats one run's figures as Markdown.
func renderBlock(r *Report) string {
	b := &strings.Builder{}
	m := r.Machine
	fmt.Fprintf(b, "Last `make bench` run: %s, %d × %s, Linux %s, %s; %s per system, %d connections, %d-byte bodies.\n\n",
		r.Date, m.CPUs, m.Model, m.Kernel, m.GoVersion, r.Duration, r.Conns, r.BodyBytes)
	if r.Pinned {
		b.WriteString("Every server ran pinned to CPU 0 and every client to CPU 1 (`taskset`), the same for all three systems.\n\n")
	} else {
		b.WriteString("Unpinned (the default; `-pin` pins servers and clients to CPUs of their own): the kernel shared the CPUs between clients and servers.\n\n")
	}
	b.WriteString("| system | requests/s | CPU per request |\n| --- | --- | --- |\n")
	if rr := r.Redis; rr != nil {
		fmt.Fprintf(b, "| (a) Redis %s, redis-benchmark GET + SET, no pipelining | %s (GET %s, SET %s) | redis-benchmark %.1f µs, redis-server %.1f µs |\n",
			rr.Version, thousands(rr.MeanPerS), thousands(rr.GetPerS), thousands(rr.SetPerS), rr.ClientCPUPerReq, rr.ServerCPUPerReq)
	} else {
		b.WriteString("| (a) Redis | not measured (redis-server missing) | |\n")
	}
	a := r.Aspstate
	process := ""
	if a.LoadgenProcessCPUPerReq > 0 {
		process = fmt.Sprintf(" (whole process %.1f µs)", a.LoadgenProcessCPUPerReq)
	}
	fmt.Fprintf(b, "| (b) aspstate, closed loop against `aspstate serve` | %s (%s pages/s; %d errors, %d violations) | over the run: load generator %.1f µs%s, server %.1f µs; server RSS %.1f MiB |\n",
		thousands(a.RequestsPerS), thousands(a.PagesPerS), a.Errors, a.Violations, a.LoadgenCPUPerReq, process, a.ServerCPUPerReq, float64(a.ServerRSSBytes)/(1<<20))
	l := r.Limit
	fmt.Fprintf(b, "| (c) bare echo, client and server processes | %s (in one process: %s) | client %.1f µs, server %.1f µs |\n",
		thousands(l.RequestsPerS), thousands(l.InProcessPerS), l.ClientCPUPerReq, l.ServerCPUPerReq)
	if y := r.Yardstick; y != nil {
		fmt.Fprintf(b, "| (d) event-loop yardstick: C client (epoll + timerfd) GET from (a)'s redis-server, closed loop | %s | client %.1f µs, server %.1f µs |\n",
			thousands(y.ClosedPerS), y.ClosedClientCPUPerReq, y.ClosedServerCPUPerReq)
	}
	b.WriteString("\n")
	b.WriteString(renderOpen(r))
	if y := r.Yardstick; y != nil {
		fmt.Fprintf(b, "Event-loop yardstick (d) paced at half of its closed loop: %s requests/s intended, %s achieved; CPU per request: client %.1f µs, server %.1f µs, "+
			"%.2f and %.2f × its closed loop's; %.2f %% of %s slots started more than 1 ms late.\n\n",
			thousands(y.PacedIntendedPerS), thousands(y.PacedAchievedPerS), y.PacedClientCPUPerReq, y.PacedServerCPUPerReq,
			y.RatioClient, y.RatioServer, y.LatePct, thousands(float64(y.Scheduled)))
	}
	redis := "n/a"
	if r.Redis != nil {
		redis = fmt.Sprintf("%.2f", r.RatioRedis)
	}
	fmt.Fprintf(b, "**aspstate/redis = %s, aspstate/limit = %.2f** (targets: at least 1.0 and 0.7).\n", redis, r.RatioLimit)
	if h := r.Half; h.RatioGenerator > 0 {
		fmt.Fprintf(b, "**%s** (targets: at most 1.15, 1.15 and 1 %%).\n", strings.TrimPrefix(openLine(h, r.Yardstick), "bench: "))
	}
	return b.String()
}

// renderOpen formats the half-saturation run: rate, latency and late slots,
// and CPU per request against the closed loop's (absent from reports made
// before bench measured it).
func renderOpen(r *Report) string {
	b := &strings.Builder{}
	h := r.Half
	fmt.Fprintf(b, "Open model at half of (b)'s saturation (steady start): %s pages/s intended, %s achieved (%+.2f %%), request p99 %.3f ms, p99.9 %.3f ms, %d slots late, %d dropped.",
		thousands(h.IntendedPerS), thousands(h.AchievedPerS), h.RateErrorPct, h.RequestP99Ms, h.RequestP999Ms, h.Late, h.Dropped)
	if h.LoadgenCPUPerReq > 0 {
		fmt.Fprintf(b, " Request p99 uncorrected (from the actual send) %.3f ms; %.2f %% of %s slots started more than 1 ms late, %s found no free worker. "+
			"CPU per request over the schedule: load generator %.1f µs, server %.1f µs, %.2f and %.2f × (b)'s.",
			h.RequestP99UncorrectedMs, h.LatePct, thousands(float64(h.Scheduled)), thousands(float64(h.NoWorker)),
			h.LoadgenCPUPerReq, h.ServerCPUPerReq, h.RatioGenerator, h.RatioServer)
	}
	b.WriteString("\n\n")
	return b.String()
}

// thousands formats x rounded, with thousands separators.
func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
