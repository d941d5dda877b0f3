//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRenderBenchmarks(t *testing.T) {
	t.Parallel()
	rep := &Report{Date: "2026-11-21T13:00:00Z", Machine: Machine{CPUs: 2, Model: "AMD EPYC", GoVersion: "go1.26.8", Kernel: "6.1"},
		Duration: "15s", Conns: 50, BodyBytes: 1024,
		Redis:      &RedisFigures{GetPerS: 62978, SetPerS: 64103, MeanPerS: 63540.5, Version: "7.0.15", ClientCPUPerReq: 15.2, ServerCPUPerReq: 11.7},
		Aspstate:   AspstateFigures{PagesPerS: 36776, RequestsPerS: 55514, LoadgenCPUPerReq: 17.1, LoadgenProcessCPUPerReq: 17.6, ServerCPUPerReq: 14.8, ServerRSSBytes: 36 << 20},
		Limit:      LimitFigures{RequestsPerS: 79225, InProcessPerS: 100288, ClientCPUPerReq: 11.3, ServerCPUPerReq: 11.1},
		Half:       HalfFigures{IntendedPerS: 18388.2, AchievedPerS: 18386.9, RateErrorPct: -0.01, RequestP99Ms: 4.391, Late: 18970},
		RatioRedis: 0.874, RatioLimit: 0.7007, Pinned: true}
	rep.Command = "go run ./bench -bin bin/aspstate"
	got := renderBenchmarks(rep, "results/baselines/bench.json")
	for _, want := range []string{"# Benchmarks\n", "Command: `go run ./bench -bin bin/aspstate`", "Last `make bench` run: 2026-11-21T13:00:00Z, 2 × AMD EPYC",
		"| 63,540 (GET 62,978, SET 64,103) |", "55,514 (36,776 pages/s; 0 errors, 0 violations)", "server RSS 36.0 MiB", "over the run: load generator 17.1 µs (whole process 17.6 µs), server 14.8 µs",
		"| 79,225 (in one process: 100,288) |", "request p99 4.391 ms", "**aspstate/redis = 0.87, aspstate/limit = 0.70**", "pinned to CPU 0 and every client to CPU 1",
		"[bench.json](../results/baselines/bench.json)"} {
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
