package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
)

const farmScenario = `name: two-web
description: two web servers for the shard test
duration: 1s
farm: {web_servers: 2}
pages:
  mix: {modify: 2, read-unchanged: 1, read-only: 1}
  exec_time: 1ms
users: {pages_per_session: 4}
rate: {shape: constant, pages_per_second: 60}
`

// TestLoadShardsAndMerge runs two shards with the CLI, starting together,
// then merges their directories.
func TestLoadShardsAndMerge(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "two-web.yaml")
	if err := os.WriteFile(file, []byte(farmScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	at := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
	type res struct {
		code           int
		stdout, stderr string
	}
	done := make(chan res, 2)
	for i := 1; i <= 2; i++ {
		go func() {
			var so, se bytes.Buffer
			code := runLoad(ctx, []string{"--scenario", file, "--minute", "600ms", "--shard", []string{"", "1/2", "2/2"}[i],
				"--start-at", at, "--fault", "latency@300ms+200ms,delay=5ms", "--out", filepath.Join(dir, []string{"", "s1", "s2"}[i])}, &so, &se)
			done <- res{code, so.String(), se.String()}
		}()
	}
	for range 2 {
		r := <-done
		if r.code != 0 {
			t.Fatalf("shard exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	}
	var so, se bytes.Buffer
	out := filepath.Join(dir, "merged")
	if code := runMerge(ctx, []string{"--out", out, filepath.Join(dir, "s1"), filepath.Join(dir, "s2")}, &so, &se); code != 0 {
		t.Fatalf("merge exit %d\n%s\n%s", code, so.String(), se.String())
	}
	m, err := results.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Rate < 59 || m.Config.Rate > 61 || m.Rate.Completed < 50 || m.Merged == nil || strings.Join(m.Merged.Shards, ",") != "1/2,2/2" {
		t.Errorf("merged: rate %v, %d completed, options %v", m.Config.Rate, m.Rate.Completed, m.Config.Options)
	}
	if m.Faults == nil || len(m.Faults.Events) != 2 || m.Faults.Events[0].Status != results.FaultApplied {
		t.Errorf("faults %+v", m.Faults)
	}
	if !strings.Contains(so.String(), "merged 2 results") || !strings.Contains(so.String(), "latency@300ms applied (shard") {
		t.Errorf("merge output:\n%s", so.String())
	}

	// An incomplete set is refused with the missing shard named.
	so.Reset()
	se.Reset()
	if code := runMerge(ctx, []string{"--out", filepath.Join(dir, "x"), filepath.Join(dir, "s2")}, &so, &se); code != 2 || !strings.Contains(se.String(), "shard 1/2 missing") {
		t.Errorf("merge of one shard: exit %d, %s", code, se.String())
	}
	se.Reset()
	if code := runMerge(ctx, nil, &so, &se); code != 2 {
		t.Errorf("merge without directories: exit %d", code)
	}
	se.Reset()
	if code := runMerge(ctx, []string{filepath.Join(dir, "nope")}, &so, &se); code != 2 || !strings.Contains(se.String(), "nope") {
		t.Errorf("merge of a missing directory: exit %d, %s", code, se.String())
	}
}

func TestLoadFlagErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "ecommerce-peak", "--shard", "4/3"}, `shard "4/3"`},
		{[]string{"--scenario", "ecommerce-peak", "--start-at", "tomorrow"}, "--start-at"},
		{[]string{"--scenario", "ecommerce-peak", "--fault", "restart"}, "KIND@AT"},
		{[]string{"--scenario", "ecommerce-peak", "--fault", "latency@1s+1s,delay=x"}, `delay="x"`},
		{[]string{"--scenario", "ecommerce-peak", "--fault", "latency@1s+1s"}, "required for latency"},
		{[]string{"--scenario", "ecommerce-peak", "--shard", "1/5"}, "4 web servers"},
		{[]string{"--scenario", "ecommerce-peak", "--start-at", "2020-01-01T00:00:00Z", "--duration", "1s"}, "passed"},
	} {
		var so, se bytes.Buffer
		code := runLoad(ctx, append(tc.args, "--minute", "600ms"), &so, &se)
		if code == 0 || !strings.Contains(se.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, se.String(), tc.want)
		}
	}
}

func TestParseFaultFlag(t *testing.T) {
	f, err := parseFault("latency@5s+3s,delay=50ms,jitter=10ms,partition=2")
	if err != nil {
		t.Fatal(err)
	}
	want := scenarios.Fault{At: scenarios.Duration(5 * time.Second), Kind: scenarios.FaultLatency, Duration: scenarios.Duration(3 * time.Second),
		Params: scenarios.FaultParams{Delay: scenarios.Duration(50 * time.Millisecond), Jitter: scenarios.Duration(10 * time.Millisecond), Partition: 2}}
	if f != want {
		t.Errorf("got %+v, want %+v", f, want)
	}
	if f, err := parseFault("recycle@7s,web_server=2"); err != nil || f.Params.WebServer != 2 || f.Kind != scenarios.FaultRecycle {
		t.Errorf("recycle: %+v %v", f, err)
	}
	for _, bad := range []string{"@1s", "restart@", "restart@soon", "pause@1s+long", "latency@1s+1s,nope=1", "latency@1s+1s,delay"} {
		if _, err := parseFault(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseStartAtAndShard(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"+30s":                      now.Add(30 * time.Second),
		"2026-11-21T10:01:00Z":      now.Add(time.Minute),
		"2026-11-21T10:01:00.5Z":    now.Add(time.Minute + 500*time.Millisecond),
		"1795255260":                time.Unix(1795255260, 0),
		"2026-11-21T11:01:00+01:00": now.Add(time.Minute),
	} {
		got, err := parseStartAt(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	t.Setenv("JOB_COMPLETION_INDEX", "2")
	if s, err := parseShardFlag("auto/3"); err != nil || s.Index != 3 || s.Count != 3 {
		t.Errorf("auto/3 with index 2: %+v %v", s, err)
	}
	t.Setenv("JOB_COMPLETION_INDEX", "")
	if _, err := parseShardFlag("auto/3"); err == nil || !strings.Contains(err.Error(), "JOB_COMPLETION_INDEX") {
		t.Errorf("auto/3 without an index: %v", err)
	}
}
