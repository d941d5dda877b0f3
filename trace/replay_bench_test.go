package trace

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/servers/stateserver"
	"github.com/aspstate/aspstate/servers/target"
)

// serveEnv, set, makes the test binary a state server for the benchmarks:
// it prints the server's address and serves until its stdin closes, so the
// benchmark's process measures the load generator's CPU alone.
const serveEnv = "ASPSTATE_TRACE_BENCH_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) != "" {
		os.Exit(serveForBench())
	}
	os.Exit(m.Run())
}

func serveForBench() int {
	cfg := stateserver.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	srv, err := stateserver.New(cfg)
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(srv.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Close()
	return 0
}

// benchServer starts the test binary as a state server in its own process
// and returns its address.
func benchServer(b *testing.B) string {
	b.Helper()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), serveEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("bench server: %v", err)
	}
	return strings.TrimSpace(line)
}

// benchRun runs cfg against addr and returns the generator's CPU per
// completed page.
func benchRun(b *testing.B, cfg loadgen.Config, addr string) time.Duration {
	b.Helper()
	cfg.Targets, cfg.Drain, cfg.Seed = []target.Target{target.Address(addr)}, 10*time.Second, 1
	run, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if run.Generator == nil {
		b.Skip("the platform does not tell the process's CPU time")
	}
	var failed int64
	for _, n := range run.Errors {
		failed += n
	}
	if run.Rate.Completed == 0 || failed > 0 || run.Correctness.Total > 0 {
		b.Fatalf("%d pages completed, errors %v, %d violations", run.Rate.Completed, run.Errors, run.Correctness.Total)
	}
	return time.Duration(run.Generator.CPUUser+run.Generator.CPUSystem) / time.Duration(run.Rate.Completed)
}

// BenchmarkReplayCPU: a replay costs no more generator CPU per page than a
// synthetic run of the same mix. Each iteration replays farm-lo.pcap
// (--speed 4 --copies 8, copies 50ms apart) and runs the scenario fitted to
// it at the same page rate for the same time, both against one reference
// server in a child process; replay/synthetic is the ratio of their
// generator CPU per page (want at most 1):
//
//	go test -run '^$' -bench BenchmarkReplayCPU -benchtime 3x ./trace
func BenchmarkReplayCPU(b *testing.B) {
	r, err := LoadReplay(context.Background(), []string{filepath.Join("testdata", "farm-lo.pcap")}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	addr := benchServer(b)
	o := ReplayOptions{Speed: 4, Copies: 8, Spread: 50 * time.Millisecond}
	var replay, synthetic time.Duration
	for b.Loop() {
		sc, err := r.Scenario(o)
		if err != nil {
			b.Fatal(err)
		}
		src, seeds, err := r.Source(o)
		if err != nil {
			b.Fatal(err)
		}
		replay += benchRun(b, loadgen.Config{Scenario: sc, Pages: src, Seeds: seeds, SourceOptions: r.Options(o, 0)}, addr)
		synthetic += benchRun(b, loadgen.Config{Scenario: sc}, addr)
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64(replay/n)/1e3, "replay-cpu-µs/page")
	b.ReportMetric(float64(synthetic/n)/1e3, "synthetic-cpu-µs/page")
	b.ReportMetric(float64(replay)/float64(synthetic), "replay/synthetic")
}

// BenchmarkLoadReplayMemory reads a generated 100 MB capture (farm-lo.pcap
// replicated, as BenchmarkRead) into a replay and reports the heap the
// replay keeps live, the peak heap while building it, and the most pages
// the streamed schedule held in its reorder window while giving them all:
//
//	go test -run '^$' -bench BenchmarkLoadReplayMemory -benchtime 1x ./trace
func BenchmarkLoadReplayMemory(b *testing.B) {
	path := bigCapture(b, b.TempDir(), 100<<20)
	var live, peak uint64
	var pages, window int
	for b.Loop() {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		stop, peakOf := sampleHeap()
		r, err := LoadReplay(context.Background(), []string{path}, Options{})
		stop()
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		live, peak, pages = after.HeapAlloc-min(after.HeapAlloc, base.HeapAlloc), peakOf()-min(peakOf(), base.HeapAlloc), r.Pages
		// The schedule streamed back: the pages the reorder heap held at most.
		src, _, err := r.Source(ReplayOptions{Speed: 1, Copies: 1})
		if err != nil {
			b.Fatal(err)
		}
		rs, n := src.(*replaySource), 0
		for _, ok := src.Next(); ok; _, ok = src.Next() {
			if o := rs.streams[0].pages; o != nil {
				window = max(window, len(o.h))
			}
			n++
		}
		if n != r.Pages {
			b.Fatalf("the source gave %d of %d pages", n, r.Pages)
		}
		r.Close()
	}
	b.ReportMetric(float64(window), "window-pages")
	b.ReportMetric(float64(pages), "pages")
	b.ReportMetric(float64(live)/(1<<20), "live-heap-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// sampleHeap samples HeapAlloc every 10ms until stop; peak returns the most
// seen.
func sampleHeap() (stop func(), peak func() uint64) {
	done := make(chan struct{})
	var most uint64
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			most = max(most, ms.HeapAlloc)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }, func() uint64 { return most }
}
