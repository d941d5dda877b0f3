package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/testbin"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/servers/target"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// clusterScenario is the farm of the sharded run: three web servers, so
// each of three shards runs one, at 240 pages/s in all.
const clusterScenario = `name: three-web
description: three web servers, one per load shard
duration: 6s
farm: {web_servers: 3, load_balancing: sticky}
users: {pages_per_session: {dist: constant, value: 10}}
pages:
  mix: {modify: 3, read-unchanged: 2, read-only: 2, sessionless: 1}
  exec_time: {dist: constant, value: 2ms}
rate: {shape: constant, pages_per_second: 240}
`

// TestShardedRunAcrossContainers is load beyond one machine, on one: a
// private Docker network holds the reference server (alias "state") and
// three load-generator containers, each `aspstate load --shard I/3
// --start-at T` from the same FROM-scratch image. Their results are copied
// out and merged with `aspstate merge`; the merge must agree with one load
// generator at the same total rate against the same server.
func TestShardedRunAcrossContainers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := target.DockerAvailable(ctx); err != nil {
		t.Skipf("skipping container test: %v (start a Docker engine to run it)", err)
	}
	began := time.Now()
	image, err := target.BuildReferenceImage(ctx, testbin.Static(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	nw, err := network.New(ctx, network.WithLabels(map[string]string{"org.aspstate.test": t.Name()}))
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-in first-out: the containers go before the network.
	t.Cleanup(func() { _ = nw.Remove(context.Background()) })
	server, err := testcontainers.Run(ctx, image,
		network.WithNetwork([]string{"state"}, nw),
		testcontainers.WithCmd("serve", "--listen", "0.0.0.0:42424", "--allow-remote"),
		testcontainers.WithWaitStrategyAndDeadline(30*time.Second, wait.ForLog("listening on")),
		testcontainers.WithLabels(map[string]string{"org.aspstate.test": t.Name()}))
	if server != nil {
		t.Cleanup(func() { _ = testcontainers.TerminateContainer(server) })
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	at := time.Now().Add(12 * time.Second).UTC().Format(time.RFC3339Nano) // room for three containers to start on a loaded machine
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = loadInContainer(ctx, t, image, nw, filepath.Join(dir, fmt.Sprintf("shard-%d", i+1)),
				"--shard", fmt.Sprintf("%d/3", i+1), "--start-at", at)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	sharded := time.Now()
	if err := loadInContainer(ctx, t, image, nw, filepath.Join(dir, "single")); err != nil {
		t.Fatal(err)
	}

	var so, se bytes.Buffer
	merged := filepath.Join(dir, "merged")
	code := runMerge(ctx, []string{"--out", merged, filepath.Join(dir, "shard-1"), filepath.Join(dir, "shard-2"), filepath.Join(dir, "shard-3")}, &so, &se)
	if code != 0 {
		t.Fatalf("merge exit %d\n%s\n%s", code, so.String(), se.String())
	}
	single, err := results.Read(filepath.Join(dir, "single"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := results.Read(merged)
	if err != nil {
		t.Fatal(err)
	}
	var shards []*results.Run
	for i := range 3 {
		s, err := results.Read(filepath.Join(dir, fmt.Sprintf("shard-%d", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		shards = append(shards, s)
	}
	var ss bytes.Buffer
	results.Summary(&ss, single)
	t.Logf("merged (sharded part took %s, whole test %s so far):\n%s\nsingle process:\n%s",
		sharded.Sub(began).Round(time.Second), time.Since(began).Round(time.Second), so.String(), ss.String())

	// Agreement, with the tolerances stated: the schedule is the same
	// 240 pages/s, so completed pages within 3% and the achieved rate within
	// 5% (a page that ends late stretches one run's window); latency on a shared 2-core
	// machine within a loose band (p50 within 3x + 2ms).
	if m.Merged == nil || strings.Join(m.Merged.Shards, ",") != "1/3,2/3,3/3" {
		t.Errorf("merged %+v", m.Merged)
	}
	// Every shard honoured --start-at (without it they would start as their
	// containers came up, hundreds of milliseconds apart).
	if skew := time.Duration(m.Merged.StartSkew); skew > 50*time.Millisecond {
		t.Errorf("the shards started %s apart, want together", skew)
	}
	within := func(what string, a, b, tol float64) {
		if d := (a - b) / b; d < -tol || d > tol {
			t.Errorf("%s: merged %.1f, single %.1f (%.1f%% apart, tolerance %.0f%%)", what, a, b, 100*d, 100*tol)
		}
	}
	within("completed pages", float64(m.Rate.Completed), float64(single.Rate.Completed), 0.03)
	within("achieved rate", m.Rate.Achieved, single.Rate.Achieved, 0.05)
	within("intended rate", m.Config.Rate, single.Config.Rate, 0.01)
	for _, page := range []string{"modify", "read-only"} {
		a, b := m.Pages[page], single.Pages[page]
		if a == nil || b == nil {
			t.Errorf("page %s missing: merged %v single %v", page, a != nil, b != nil)
			continue
		}
		band := func(q string, x, y int64, factor float64, slack time.Duration) {
			if float64(x) > factor*float64(y)+float64(slack) || float64(y) > factor*float64(x)+float64(slack) {
				t.Errorf("page %s %s: merged %s, single %s: outside %.0fx + %s", page, q, time.Duration(x), time.Duration(y), factor, slack)
			}
		}
		band("p50", a.Uncorrected.P50, b.Uncorrected.P50, 3, 2*time.Millisecond)
		// The tail is not compared with the single process's: three
		// generators at once on 2 cores have a tail of their own (a timed
		// assertion; make bench measures tails). What the merge must get
		// right is checked instead: its pages are the shards' pages, and a
		// quantile of a mixture lies between its parts' quantiles (within
		// the histograms' 3 significant digits).
		var count int64
		lo, hi := int64(math.MaxInt64), int64(0)
		for _, s := range shards {
			p := s.Pages[page]
			if p == nil {
				t.Errorf("page %s missing from a shard", page)
				continue
			}
			count += p.Count
			lo, hi = min(lo, p.Uncorrected.P99), max(hi, p.Uncorrected.P99)
		}
		if a.Count != count {
			t.Errorf("page %s: merged %d pages, the shards %d", page, a.Count, count)
		}
		if p99 := a.Uncorrected.P99; float64(p99) < 0.99*float64(lo) || float64(p99) > 1.01*float64(hi) {
			t.Errorf("page %s: merged p99 %s outside the shards' %s..%s", page, time.Duration(p99), time.Duration(lo), time.Duration(hi))
		}
	}
	if m.Correctness.Total != 0 || single.Correctness.Total != 0 {
		t.Errorf("violations: merged %v, single %v", m.Correctness.Violations, single.Correctness.Violations)
	}
}

// loadInContainer runs `aspstate load` in a container of image on nw
// against the server aliased "state", waits for it to exit, and copies its
// result directory to dst. The container is removed.
func loadInContainer(ctx context.Context, t *testing.T, image string, nw *testcontainers.DockerNetwork, dst string, extra ...string) error {
	args := append([]string{"load", "--scenario", "/farm.yaml", "--target", "tcp://state:42424", "--out", "/out"}, extra...)
	ctr, err := testcontainers.Run(ctx, image,
		network.WithNetwork(nil, nw),
		testcontainers.WithCmd(args...),
		testcontainers.WithFiles(testcontainers.ContainerFile{Reader: strings.NewReader(clusterScenario), ContainerFilePath: "/farm.yaml", FileMode: 0o644}),
		// The scratch image has no writable directory for user 65534.
		testcontainers.WithConfigModifier(func(c *container.Config) { c.User = "0:0" }),
		testcontainers.WithWaitStrategyAndDeadline(2*time.Minute, wait.ForExit()),
		testcontainers.WithLabels(map[string]string{"org.aspstate.test": t.Name()}))
	if ctr != nil {
		defer func() { _ = testcontainers.TerminateContainer(ctr) }()
	}
	if err != nil {
		return fmt.Errorf("load %v: %w", extra, err)
	}
	st, err := ctr.State(ctx)
	if err != nil {
		return err
	}
	if st.ExitCode != 0 {
		logs := ""
		if rc, err := ctr.Logs(ctx); err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			logs = string(b)
		}
		return fmt.Errorf("load %v exited %d:\n%s", extra, st.ExitCode, logs)
	}
	return copyOut(ctx, ctr.GetContainerID(), "/out", dst)
}

// copyOut copies directory src of a (stopped) container into dst.
func copyOut(ctx context.Context, id, src, dst string) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	res, err := cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: src})
	if err != nil {
		return fmt.Errorf("copy %s out of the container: %w", src, err)
	}
	defer res.Content.Close()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(res.Content)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(h.Name)), b, 0o644); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no files in %s of the container", src)
	}
	return nil
}
