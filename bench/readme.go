//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// The README block make bench rewrites with each run's figures.
const (
	readmeBegin = "<!-- bench:begin: written by make bench (go run ./bench); edits inside are overwritten -->"
	readmeEnd   = "<!-- bench:end -->"
)

// updateReadme replaces the bench block of the README at path with rep's
// figures. A README without the block is an error, not a silent skip.
func updateReadme(path string, rep *Report) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text, err := replaceBlock(string(b), renderBlock(rep))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// replaceBlock puts block between the markers of text.
func replaceBlock(text, block string) (string, error) {
	i := strings.Index(text, readmeBegin)
	j := strings.Index(text, readmeEnd)
	if i < 0 || j < i {
		return "", errors.New("no bench block: add the lines " + readmeBegin + " and " + readmeEnd + " where the figures go")
	}
	return text[:i+len(readmeBegin)] + "\n" + block + text[j:], nil
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
	fmt.Fprintf(b, "| (c) bare echo, client and server processes | %s (in one process: %s) | client %.1f µs, server %.1f µs |\n\n",
		thousands(l.RequestsPerS), thousands(l.InProcessPerS), l.ClientCPUPerReq, l.ServerCPUPerReq)
	h := r.Half
	fmt.Fprintf(b, "Open model at half of (b)'s saturation (steady start): %s pages/s intended, %s achieved (%+.2f %%), request p99 %.3f ms, p99.9 %.3f ms, %d slots late, %d dropped.\n\n",
		thousands(h.IntendedPerS), thousands(h.AchievedPerS), h.RateErrorPct, h.RequestP99Ms, h.RequestP999Ms, h.Late, h.Dropped)
	redis := "n/a"
	if r.Redis != nil {
		redis = fmt.Sprintf("%.2f", r.RatioRedis)
	}
	fmt.Fprintf(b, "**aspstate/redis = %s, aspstate/limit = %.2f** (targets: at least 1.0 and 0.7).\n", redis, r.RatioLimit)
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
