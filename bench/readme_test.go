//go:build linux

package main

import (
	"strings"
	"testing"
)

func TestReadmeBlock(t *testing.T) {
	rep := &Report{Date: "2026-11-21T13:00:00Z", Machine: Machine{CPUs: 2, Model: "AMD EPYC", GoVersion: "go1.26.8", Kernel: "6.1"},
		Duration: "15s", Conns: 50, BodyBytes: 1024,
		Redis:      &RedisFigures{GetPerS: 62978, SetPerS: 64103, MeanPerS: 63540.5, Version: "7.0.15", ClientCPUPerReq: 15.2, ServerCPUPerReq: 11.7},
		Aspstate:   AspstateFigures{PagesPerS: 36776, RequestsPerS: 55514, LoadgenCPUPerReq: 17.1, LoadgenProcessCPUPerReq: 17.6, ServerCPUPerReq: 14.8, ServerRSSBytes: 36 << 20},
		Limit:      LimitFigures{RequestsPerS: 79225, InProcessPerS: 100288, ClientCPUPerReq: 11.3, ServerCPUPerReq: 11.1},
		Half:       HalfFigures{IntendedPerS: 18388.2, AchievedPerS: 18386.9, RateErrorPct: -0.01, RequestP99Ms: 4.391, Late: 18970},
		RatioRedis: 0.874, RatioLimit: 0.7007, Pinned: true}
	readme := "# x\n\nbefore\n" + readmeBegin + "\nold figures\n" + readmeEnd + "\nafter\n"
	got, err := replaceBlock(readme, renderBlock(rep))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"before\n" + readmeBegin + "\nLast `make bench` run: 2026-11-21T13:00:00Z, 2 × AMD EPYC",
		"| 63,540 (GET 62,978, SET 64,103) |", "55,514 (36,776 pages/s; 0 errors, 0 violations)", "server RSS 36.0 MiB", "over the run: load generator 17.1 µs (whole process 17.6 µs), server 14.8 µs",
		"| 79,225 (in one process: 100,288) |", "request p99 4.391 ms", "**aspstate/redis = 0.87, aspstate/limit = 0.70**", "pinned to CPU 0 and every client to CPU 1",
		readmeEnd + "\nafter\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("README lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "old figures") {
		t.Errorf("the old block survived:\n%s", got)
	}
	// Running twice gives the same text.
	again, err := replaceBlock(got, renderBlock(rep))
	if err != nil || again != got {
		t.Errorf("second replacement differs (%v):\n%s", err, again)
	}
	if _, err := replaceBlock("# no block\n", "x"); err == nil || !strings.Contains(err.Error(), "add the lines") {
		t.Errorf("README without the block: %v", err)
	}
	for x, want := range map[float64]string{0: "0", 999.6: "1,000", 1234567: "1,234,567", -4321: "-4,321"} {
		if got := thousands(x); got != want {
			t.Errorf("thousands(%v) = %q, want %q", x, got, want)
		}
	}
}
