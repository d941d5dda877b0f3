//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRenderBenchmarks(t *testing.T) {
	t.Parallel()
	rep := &Report{Date: "2026-11-21T13:00:00Z", Machine: Machine{CPUs: 2, Model: "AMD EPYC", GoVersion: "go1.26.8", Kernel: "6.1"},
		Duration: "15s", Conns: 50, BodyBytes: 1024,
		Redis:      &RedisFigures{GetPerS: 62978, SetPerS: 64103, MeanPerS: 63540.5, Version: "7.0.15", ClientCPUPerReq: 15.2, ServerCPUPerReq: 11.7},
		Aspstate:   AspstateFigures{PagesPerS: 36776, RequestsPerS: 55514, LoadgenCPUPerReq: 17.1, LoadgenProcessCPUPerReq: 17.6, ServerCPUPerReq: 14.8, ServerRSSBytes: 36 << 20},
		Limit:      LimitFigures{RequestsPerS: 79225, InProcessPerS: 100288, ClientCPUPerReq: 11.3, ServerCPUPerReq: 11.1},
		Half:       HalfFigures{IntendedPerS: 18388.2, AchievedPerS: 18386.9, RateErrorPct: -0.01, RequestP99Ms: 4.391, Late: 18970},
		RatioRedis: 0.874, RatioLimit: 0.7007, Pinned: true,
		Yardstick: &YardstickFigures{ClosedPerS: 66945, ClosedClientCPUPerReq: 10.5, ClosedServerCPUPerReq: 14.0, PacedIntendedPerS: 33472.5,
			PacedAchievedPerS: 33470, PacedClientCPUPerReq: 33.0, PacedServerCPUPerReq: 15.0, RatioClient: 3.142, RatioServer: 1.071,
			Scheduled: 334725, Late: 40, LatePct: 0.0119},
		Commands: []string{"taskset -c 0 redis-server --save '' --appendonly no", "cc -O2 -Wall -o paced bench/yardstick/paced.c", "taskset -c 1 paced 127.0.0.1 6390 0 50 15 1024 (rate 0: closed loop)"}}
	rep.Command = "go run ./bench -bin bin/aspstate"
	got := renderBenchmarks(rep, "results/baselines/bench.json")
	for _, want := range []string{"# Benchmarks\n", "Command: `go run ./bench -bin bin/aspstate`", "Last `make bench` run: 2026-11-21T13:00:00Z, 2 × AMD EPYC",
		"| 63,540 (GET 62,978, SET 64,103) |", "55,514 (36,776 pages/s; 0 errors, 0 violations)", "server RSS 36.0 MiB", "over the run: load generator 17.1 µs (whole process 17.6 µs), server 14.8 µs",
		"| 79,225 (in one process: 100,288) |", "request p99 4.391 ms", "**aspstate/redis = 0.87, aspstate/limit = 0.70**", "pinned to CPU 0 and every client to CPU 1",
		"[bench.json](../results/baselines/bench.json)",
		"| (d) event-loop yardstick: C client (epoll + timerfd) GET from (a)'s redis-server, closed loop | 66,945 | client 10.5 µs, server 14.0 µs |",
		"Event-loop yardstick (d) paced at half of its closed loop: 33,472 requests/s intended, 33,470 achieved; CPU per request: client 33.0 µs, server 15.0 µs, 3.14 and 1.07 × its closed loop's; 0.01 % of 334,725 slots",
		"The run's commands:\n\n- `taskset -c 0 redis-server --save '' --appendonly no`\n- `cc -O2 -Wall -o paced bench/yardstick/paced.c`\n- `taskset -c 1 paced 127.0.0.1 6390 0 50 15 1024 (rate 0: closed loop)`\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the page lacks %q:\n%s", want, got)
		}
	}
	for x, want := range map[float64]string{0: "0", 999.6: "1,000", 1234567: "1,234,567", -4321: "-4,321"} {
		if got := thousands(x); got != want {
			t.Errorf("thousands(%v) = %q, want %q", x, got, want)
		}
	}
}

func TestAppendHistory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bench.json")
	// The format before the history: one run.
	if err := os.WriteFile(path, []byte(`{"date": "old"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "b"} {
		if err := appendHistory(path, &Report{Date: d}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var runs []Report
	if err := json.Unmarshal(b, &runs); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || runs[0].Date != "old" || runs[2].Date != "b" {
		t.Fatalf("history %+v", runs)
	}
	if err := os.WriteFile(path, []byte("nonsense"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := appendHistory(path, &Report{}); err == nil {
		t.Fatal("a broken history was overwritten")
	}
}

// TestRenderOpen: the page has the half-saturation run's CPU per request,
// late slots and the open/closed line; the CPU sampler reads the CPU used
// between two instants from the samples at or before them.
func TestRenderOpen(t *testing.T) {
	t.Parallel()
	h := HalfFigures{IntendedPerS: 37779.7, AchievedPerS: 37778.7, RateErrorPct: -0.003, RequestP99Ms: 3.5, RequestP99UncorrectedMs: 1.5,
		Scheduled: 566000, Late: 2830, LatePct: 0.5, NoWorker: 12, LoadgenCPUPerReq: 9.7, ServerCPUPerReq: 8.1, RatioGenerator: 1.10, RatioServer: 1.08}
	got := renderBlock(&Report{Date: "2026-12-05T10:30:00Z", Half: h})
	for _, want := range []string{"37,780 pages/s intended, 37,779 achieved", "Request p99 uncorrected (from the actual send) 1.500 ms",
		"0.50 % of 566,000 slots started more than 1 ms late, 12 found no free worker", "load generator 9.7 µs, server 8.1 µs, 1.10 and 1.08 × (b)'s",
		"**open/closed CPU per request = 1.10 (generator), 1.08 (server); late slots = 0.50 % at half saturation**"} {
		if !strings.Contains(got, want) {
			t.Errorf("the block lacks %q:\n%s", want, got)
		}
	}
	if want := "bench: open/closed CPU per request = 1.10 (generator), 1.08 (server); late slots = 0.50 % at half saturation"; openLine(h, nil) != want {
		t.Errorf("openLine = %q, want %q", openLine(h, nil), want)
	}
	// With the yardstick, the bold line ends as bench's own line does.
	withY := renderBlock(&Report{Half: h, Yardstick: &YardstickFigures{RatioClient: 3.14, RatioServer: 1.07}})
	if want := "at half saturation; yardstick event loop = 3.14 (client), 1.07 (server)** (targets: at most 1.15, 1.15 and 1 %)"; !strings.Contains(withY, want) {
		t.Errorf("the block lacks %q:\n%s", want, withY)
	}
	// A report from before: no CPU figures, no open/closed line.
	if old := renderBlock(&Report{Half: HalfFigures{IntendedPerS: 100}}); strings.Contains(old, "open/closed") || strings.Contains(old, "CPU per request over the schedule") {
		t.Errorf("an old report got figures it does not have:\n%s", old)
	}

	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	s := &cpuSampler{}
	for i := range 5 { // 0, 10, 20, 30, 40 ms of CPU at 0, 1, 2, 3, 4 s
		s.at = append(s.at, t0.Add(time.Duration(i)*time.Second))
		s.cpu = append(s.cpu, time.Duration(i)*10*time.Millisecond)
	}
	for _, c := range []struct {
		a, b time.Duration
		want time.Duration
	}{{time.Second, 3 * time.Second, 20 * time.Millisecond}, {1500 * time.Millisecond, 3900 * time.Millisecond, 20 * time.Millisecond},
		{-time.Second, time.Hour, 40 * time.Millisecond}} {
		if got := s.between(t0.Add(c.a), t0.Add(c.b)); got != c.want {
			t.Errorf("between(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
