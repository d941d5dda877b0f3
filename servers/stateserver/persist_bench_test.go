package stateserver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

// BenchmarkPersistPut measures PUTs of 1 KiB bodies over loopback from 16
// concurrent connections, without persistence and with each fsync policy
// (the data directory is under $TMPDIR). It reports PUT/s and, with a data
// directory, fsyncs per PUT (below 1 = group commit at work):
//
//	go test -run '^$' -bench BenchmarkPersistPut -benchtime 3s ./servers/stateserver/
func BenchmarkPersistPut(b *testing.B) {
	for _, policy := range []FsyncPolicy{"", FsyncNever, FsyncInterval, FsyncAlways} {
		name := string(policy)
		if name == "" {
			name = "off"
		}
		b.Run(name, func(b *testing.B) {
			cfg := Config{Listen: "127.0.0.1:0", Fsync: policy}
			if policy != "" {
				cfg.DataDir = b.TempDir()
			}
			s, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Start(); err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			body := bytes.Repeat([]byte{'x'}, 1024)
			var conns atomic.Int64
			b.SetParallelism(8) // 16 connections on 2 cores
			b.ReportAllocs()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				id := conns.Add(1)
				c, err := protocol.Dial(ctx, s.Addr(), protocol.ConnOptions{})
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				for i := 0; pb.Next(); i++ {
					u := protocol.Target("/LM/W3SVC/1/ROOT", fmt.Sprintf("bench%04d%014d", id, i%1000))
					if r, err := c.Set(ctx, u, body, protocol.SetParams{Timeout: 20}); err != nil || r.Status != 200 {
						b.Errorf("PUT: %v", err)
						return
					}
				}
			})
			el := time.Since(start)
			b.ReportMetric(float64(b.N)/el.Seconds(), "PUT/s")
			if p := s.Stats().Persist; p != nil {
				b.ReportMetric(float64(p.Fsyncs)/float64(b.N), "fsyncs/PUT")
			}
		})
	}
}

// BenchmarkRecovery measures New on a data directory holding N sessions of
// 1 KiB (ASPSTATE_RECOVERY_N, default 100000), from the log alone and from
// a snapshot:
//
//	go test -run '^$' -bench BenchmarkRecovery -benchtime 3x ./servers/stateserver/
func BenchmarkRecovery(b *testing.B) {
	n := 100_000
	if v := os.Getenv("ASPSTATE_RECOVERY_N"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	for _, snap := range []bool{false, true} {
		name := "log"
		if snap {
			name = "snapshot"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			cfg := Config{DataDir: dir, Fsync: FsyncNever, SnapshotLogBytes: 1 << 40}
			s, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			body := bytes.Repeat([]byte{'x'}, 1024)
			for _, k := range benchKeys(n) {
				s.store.put(k, body, 20, 0, noCookie, s.now())
			}
			if snap {
				if err := s.wal.snapshot(); err != nil {
					b.Fatal(err)
				}
			}
			s.Close()
			b.ResetTimer()
			for b.Loop() {
				s, err := New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				if rec := s.Recovery(); rec.Sessions != int64(n) || rec.SnapshotLoaded != snap {
					b.Fatalf("recovered %+v", rec)
				}
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(n), "sessions")
		})
	}
}
