package stateserver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/testwait"
	"github.com/aspstate/aspstate/protocol"
)

// startPersistent starts a server on dir; the returned stop closes it (and
// runs again harmlessly at cleanup).
func startPersistent(t *testing.T, dir string, cfg Config) (*Server, func()) {
	t.Helper()
	cfg.DataDir = dir
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(); err != nil {
		s.Close()
		t.Fatalf("Start: %v", err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { s.Close() }) }
	t.Cleanup(stop)
	return s, stop
}

// wallExpiry returns the absolute expiry of the item at target (Unix ns), or
// -1 if absent. It reads the store directly.
func wallExpiry(s *Server, target string) int64 {
	key := protocol.AppendKey(nil, target)
	sh := s.store.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.items[string(key)]
	if e == nil {
		return -1
	}
	return s.base.UnixNano() + e.expires
}

// TestPersistRestartKeepsEverything restarts a persistent server (clean
// Close, every fsync policy) and checks each part of an item's state:
// body, timeout, absolute expiry, lock (cookie, date), cookie counter after
// a timeout change, the uninitialized bit, deletions.
func TestPersistRestartKeepsEverything(t *testing.T) {
	for _, policy := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Fsync: policy, Minute: time.Second}
			s1, stop1 := startPersistent(t, dir, cfg)
			x := newClient(t, s1)
			plain, locked, uninit, seen, deleted, changed, minus := newTarget(), newTarget(), newTarget(), newTarget(), newTarget(), newTarget(), newTarget()
			x.expect(x.put(plain, "plain\x00\r\nbody", "Timeout:7"), 200)
			x.expect(x.put(locked, "locked"), 200)
			x.cookie(x.acquire(locked), 2)
			lockedReply := x.get(locked)
			x.expect(lockedReply, 423)
			x.expect(x.put(uninit, "", "ExtraFlags:1"), 200)
			x.expect(x.put(seen, "", "ExtraFlags:1"), 200)
			x.expect(x.get(seen), 200, hdrGetAF...)
			x.expect(x.put(deleted, "gone"), 200)
			x.expect(x.do("DELETE", deleted, nil), 200)
			x.expect(x.put(changed, "c1"), 200)
			x.cookie(x.acquire(changed), 2)
			x.expect(x.put(changed, "c2", "Timeout:10", "LockCookie:2"), 200) // row 8: counter = 2
			x.expect(x.put(minus, "m1"), 200)
			x.expect(x.put(minus, "m2", "Timeout:9"), 200) // row 8 without a cookie: counter -1
			plainExp := wallExpiry(s1, plain)
			stop1()

			s2, _ := startPersistent(t, dir, cfg)
			if rec := s2.Recovery(); rec.Sessions != 6 {
				t.Fatalf("recovered %+v, want 6 sessions", rec)
			}
			if got := wallExpiry(s2, plain); got != plainExp {
				t.Fatalf("absolute expiry %d after restart, was %d", got, plainExp)
			}
			y := newClient(t, s2)
			r := y.get(plain)
			y.expect(r, 200, hdrGet...)
			y.body(r, "plain\x00\r\nbody")
			if r.Timeout != 7 {
				t.Fatalf("Timeout %d, want 7", r.Timeout)
			}
			r = y.get(locked)
			y.expect(r, 423, hdrLocked...)
			if r.LockCookie != 2 || r.LockDate != lockedReply.LockDate {
				t.Fatalf("lock after restart: cookie %d date %d, want 2 and %d", r.LockCookie, r.LockDate, lockedReply.LockDate)
			}
			y.expect(y.release(locked, "2"), 200)
			y.cookie(y.acquire(locked), 3)
			y.expect(y.get(uninit), 200, hdrGetAF...)
			y.expect(y.get(uninit), 200, hdrGet...)
			y.expect(y.get(seen), 200, hdrGet...)
			y.expect(y.get(deleted), 404)
			r = y.acquire(changed)
			y.cookie(r, 3)
			y.body(r, "c2")
			if r.Timeout != 10 {
				t.Fatalf("Timeout %d, want 10", r.Timeout)
			}
			y.cookie(y.acquire(minus), 0)
		})
	}
}

// TestPersistExpiryAcrossRestart: an item whose window passes while the
// server is down is gone after the restart; one that slid (touch records)
// keeps its slid expiry to within one bucket.
func TestPersistExpiryAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	const minute = 300 * time.Millisecond // bucket 100 ms
	cfg := Config{Fsync: FsyncAlways, Minute: minute}
	s1, stop1 := startPersistent(t, dir, cfg)
	x := newClient(t, s1)
	short, slid, forever := newTarget(), newTarget(), newTarget()
	x.expect(x.put(short, "s", "Timeout:1"), 200)
	x.expect(x.put(slid, "s", "Timeout:3"), 200)
	x.expect(x.put(forever, "f", "Timeout:0"), 200)
	// Slide slid across several buckets by reading it.
	until := time.Now().Add(minute)
	for time.Now().Before(until) {
		x.expect(x.get(slid), 200)
	}
	slidExp := wallExpiry(s1, slid)
	shortExp := wallExpiry(s1, short)
	stop1()
	// Down for longer than short's window.
	<-time.After(time.Until(time.Unix(0, shortExp)) + 50*time.Millisecond)

	s2, _ := startPersistent(t, dir, cfg)
	if rec := s2.Recovery(); rec.Sessions != 2 || rec.Expired != 1 {
		t.Fatalf("recovery %+v, want 2 sessions and 1 expired", rec)
	}
	got := wallExpiry(s2, slid)
	if d := slidExp - got; d < 0 || d > int64(minute/bucketsPerMinute) {
		t.Fatalf("slid expiry after restart is %v before the real one; want within one bucket (%v)", time.Duration(d), minute/bucketsPerMinute)
	}
	y := newClient(t, s2)
	y.expect(y.get(short), 404)
	y.expect(y.get(forever), 200)
}

// lastSegment returns the path of the newest log segment in dir.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("no log segments in %s (%v)", dir, err)
	}
	return filepath.Join(dir, segName(segs[len(segs)-1]))
}

// fillAndClose writes n items (bodies "value-i") to a fresh persistent
// server on dir and closes it; it returns the targets.
func fillAndClose(t *testing.T, dir string, n int) []string {
	t.Helper()
	s, stop := startPersistent(t, dir, Config{Fsync: FsyncAlways})
	x := newClient(t, s)
	targets := make([]string, n)
	for i := range targets {
		targets[i] = newTarget()
		x.expect(x.put(targets[i], fmt.Sprintf("value-%d", i)), 200)
	}
	stop()
	return targets
}

// checkItems requires items [0, upTo) present with their bodies and the
// rest absent.
func checkItems(t *testing.T, s *Server, targets []string, upTo int) {
	t.Helper()
	x := newClient(t, s)
	for i, u := range targets {
		r := x.get(u)
		if i < upTo {
			x.expect(r, 200)
			x.body(r, fmt.Sprintf("value-%d", i))
		} else {
			x.expect(r, 404)
		}
	}
}

// TestPersistTornTail cuts and corrupts the end of the log as a crash
// would and checks that recovery keeps every whole record before the
// damage, truncates the file there, and starts cleanly again afterwards.
func TestPersistTornTail(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string, size int64) // size: file size before damage
		keep   int                                         // of 5 items
	}{
		{"garbage appended", func(t *testing.T, path string, size int64) {
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte{100, 0, 0, 0, 1, 2, 3, 4, 1, 'x', 'y'}) // a frame header promising 100 bytes, then 3
			f.Close()
		}, 5},
		{"last record cut short", func(t *testing.T, path string, size int64) {
			os.Truncate(path, size-3)
		}, 4},
		{"last record bit flip", func(t *testing.T, path string, size int64) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			b := []byte{0}
			f.ReadAt(b, size-2)
			b[0] ^= 0x40
			f.WriteAt(b, size-2)
			f.Close()
		}, 4},
		{"zero length header", func(t *testing.T, path string, size int64) {
			os.Truncate(path, 0)
		}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			targets := fillAndClose(t, dir, 5)
			path := lastSegment(t, dir)
			fi, _ := os.Stat(path)
			tc.damage(t, path, fi.Size())
			s, stop := startPersistent(t, dir, Config{Fsync: FsyncAlways})
			rec := s.Recovery()
			if rec.TornBytes == 0 && tc.keep > 0 || rec.Sessions != int64(tc.keep) {
				t.Fatalf("recovery %+v, want torn bytes and %d sessions", rec, tc.keep)
			}
			if tc.keep > 0 {
				after, _ := os.Stat(path)
				want := fi.Size()
				if tc.keep < 5 {
					want = fi.Size() - (fi.Size()-int64(fileHeader))/5 // the records are the same size
				}
				if after.Size() != want {
					t.Fatalf("segment is %d bytes after recovery, want %d (cut at the last good record)", after.Size(), want)
				}
			}
			checkItems(t, s, targets, tc.keep)
			// The server goes on logging into a new segment; a second restart
			// sees no damage and the same items plus a new one.
			x := newClient(t, s)
			extra := newTarget()
			x.expect(x.put(extra, "extra"), 200)
			stop()
			s2, _ := startPersistent(t, dir, Config{Fsync: FsyncAlways})
			if rec := s2.Recovery(); rec.TornBytes != 0 || rec.Sessions != int64(tc.keep)+1 {
				t.Fatalf("second recovery %+v", rec)
			}
			checkItems(t, s2, targets, tc.keep)
		})
	}
}

// TestPersistCorruptionRefusesToStart: damage that a crash cannot cause (a
// bad snapshot, a bad record in a finished segment) stops New with an error
// naming the file; a data directory in use is refused too.
func TestPersistCorruptionRefusesToStart(t *testing.T) {
	t.Run("finished segment", func(t *testing.T) {
		dir := t.TempDir()
		fillAndClose(t, dir, 3)
		first := lastSegment(t, dir)
		fillAndClose(t, dir, 1) // a second segment follows
		f, _ := os.OpenFile(first, os.O_RDWR, 0)
		f.WriteAt([]byte{0xff}, fileHeader+12)
		f.Close()
		_, err := New(Config{DataDir: dir})
		if err == nil || !strings.Contains(err.Error(), filepath.Base(first)) || !strings.Contains(err.Error(), "not the last segment") {
			t.Fatalf("New: %v", err)
		}
	})
	t.Run("snapshot", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, snapName), []byte(snapMagic+"\x01\x00\x00\x00\x00\x00\x00\x00\x05"), 0o644)
		_, err := New(Config{DataDir: dir})
		if err == nil || !strings.Contains(err.Error(), "snapshot") || !strings.Contains(err.Error(), "move it away") {
			t.Fatalf("New: %v", err)
		}
	})
	t.Run("missing segment", func(t *testing.T) {
		dir := t.TempDir()
		fillAndClose(t, dir, 1)
		fillAndClose(t, dir, 1)
		fillAndClose(t, dir, 1)
		segs, _ := listSegments(dir)
		os.Remove(filepath.Join(dir, segName(segs[1])))
		_, err := New(Config{DataDir: dir})
		if err == nil || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("New: %v", err)
		}
	})
	t.Run("in use", func(t *testing.T) {
		dir := t.TempDir()
		startPersistent(t, dir, Config{})
		_, err := New(Config{DataDir: dir})
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("second New on one directory: %v", err)
		}
	})
}

// TestPersistSnapshotRotatesLog: with a small SnapshotLogBytes the server
// snapshots while writers run, removes the segments the snapshot covers,
// and a restart recovers from snapshot plus log.
func TestPersistSnapshotRotatesLog(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Fsync: FsyncInterval, FsyncInterval: 10 * time.Millisecond, SnapshotLogBytes: MinSnapshotLogBytes}
	s1, stop1 := startPersistent(t, dir, cfg)
	const writers, keys, rounds = 4, 25, 8
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			ctx := tctx(t)
			c, err := protocol.Dial(ctx, s1.Addr(), protocol.ConnOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for r := 0; r < rounds; r++ {
				for k := 0; k < keys; k++ {
					u := protocol.Target("/LM/W3SVC/1/ROOT", fmt.Sprintf("snap-%d-%d", w, k))
					body := bytes.Repeat([]byte{byte('a' + r)}, 100+k)
					if rep, err := c.Set(ctx, u, body, protocol.SetParams{Timeout: 20}); err != nil || rep.Status != 200 {
						t.Errorf("PUT: %v", err)
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	testwait.For(t, "a snapshot", func() bool { return s1.Stats().Persist.Snapshots >= 1 })
	p := s1.Stats().Persist
	if p.SnapshotAge < 0 || p.SnapshotBytes == 0 || p.LogBytes == 0 || p.Fsyncs == 0 {
		t.Fatalf("persist stats %+v", p)
	}
	// Locked items and a deletion after the snapshots.
	x := newClient(t, s1)
	lockedU := protocol.Target("/LM/W3SVC/1/ROOT", "snap-0-0")
	x.cookie(x.acquire(lockedU), 2)
	x.expect(x.do("DELETE", protocol.Target("/LM/W3SVC/1/ROOT", "snap-1-1"), nil), 200)
	stop1()
	segs, _ := listSegments(dir)
	if len(segs) > 3 {
		t.Fatalf("%d log segments left after snapshots (%v): old segments are not removed", len(segs), segs)
	}
	if _, err := os.Stat(filepath.Join(dir, snapTmpName)); err == nil {
		t.Fatal("a temporary snapshot was left behind")
	}

	s2, _ := startPersistent(t, dir, cfg)
	if rec := s2.Recovery(); !rec.SnapshotLoaded || rec.Sessions != writers*keys-1 {
		t.Fatalf("recovery %+v, want a snapshot and %d sessions", rec, writers*keys-1)
	}
	y := newClient(t, s2)
	for w := 0; w < writers; w++ {
		for k := 0; k < keys; k++ {
			u := protocol.Target("/LM/W3SVC/1/ROOT", fmt.Sprintf("snap-%d-%d", w, k))
			r := y.get(u)
			switch {
			case w == 0 && k == 0:
				y.expect(r, 423)
				if r.LockCookie != 2 {
					t.Fatalf("cookie %d", r.LockCookie)
				}
			case w == 1 && k == 1:
				y.expect(r, 404)
			default:
				y.expect(r, 200)
				y.body(r, string(bytes.Repeat([]byte{byte('a' + rounds - 1)}, 100+k)))
			}
		}
	}
}

// TestPersistGroupCommit: under FsyncAlways, concurrent writers share
// fsyncs, and every PUT is on disk when its reply arrives.
func TestPersistGroupCommit(t *testing.T) {
	dir := t.TempDir()
	s, _ := startPersistent(t, dir, Config{Fsync: FsyncAlways})
	const writers, puts = 16, 30
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			ctx := tctx(t)
			c, err := protocol.Dial(ctx, s.Addr(), protocol.ConnOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := 0; i < puts; i++ {
				u := protocol.Target("/LM/W3SVC/1/ROOT", fmt.Sprintf("gc-%d-%d", w, i))
				if r, err := c.Set(ctx, u, []byte("x"), protocol.SetParams{Timeout: 20}); err != nil || r.Status != 200 {
					t.Errorf("PUT: %v", err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	p := s.Stats().Persist
	t.Logf("%d PUTs by %d writers, %d fsyncs", writers*puts, writers, p.Fsyncs)
	if p.Fsyncs >= writers*puts {
		t.Fatalf("%d fsyncs for %d PUTs: no group commit", p.Fsyncs, writers*puts)
	}
	if p.LogPending != 0 {
		t.Fatalf("%d bytes still pending", p.LogPending)
	}
}

// TestPersistConfig checks the validation messages of the persistence
// fields.
func TestPersistConfig(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{DataDir: "x", Fsync: "sometimes"}, "always, interval or never"},
		{Config{DataDir: "x", FsyncInterval: -time.Second}, "FsyncInterval"},
		{Config{DataDir: "x", SnapshotLogBytes: 10}, "SnapshotLogBytes"},
		{Config{Fsync: FsyncAlways}, "needs DataDir"},
		{Config{RequestTimeout: -1}, "RequestTimeout"},
		{Config{WriteTimeout: -1}, "WriteTimeout"},
	}
	for _, tc := range cases {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	s, err := New(Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c := s.Config(); c.Fsync != FsyncInterval || c.FsyncInterval != DefaultFsyncInterval || c.SnapshotLogBytes != DefaultSnapshotLogBytes {
		t.Fatalf("defaults %+v", c)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestPersistLogFailure makes the log's writes fail under a running server: with
// FsyncAlways a PUT is then never acknowledged (its connection is closed
// without a reply); with FsyncInterval the server goes on from memory.
// Either way the error is reported.
func TestPersistLogFailure(t *testing.T) {
	for _, policy := range []FsyncPolicy{FsyncAlways, FsyncInterval} {
		t.Run(string(policy), func(t *testing.T) {
			fs := newFaultFS(nil)
			s, _ := startPersistent(t, t.TempDir(), Config{Fsync: policy, fs: fs})
			x := newClient(t, s)
			u := newTarget()
			x.expect(x.put(u, "before"), 200)
			fs.arm(func(op, name string, n int) bool { return op == "write" && isSegment(name) }) // the flusher's next write fails
			ctx := tctx(t)
			c, err := protocol.Dial(ctx, s.Addr(), protocol.ConnOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r, err := c.Set(ctx, u, []byte("after"), protocol.SetParams{Timeout: 20})
			if policy == FsyncAlways {
				if err == nil {
					t.Fatalf("PUT acknowledged (%d) although its record cannot reach the disk", r.Status)
				}
			} else if err != nil || r.Status != 200 {
				t.Fatalf("PUT: %v %+v (want 200 from memory)", err, r)
			}
			testwait.For(t, "the failure to be reported", func() bool { return s.PersistErr() != nil })
			if p := s.Stats().Persist; !strings.Contains(p.Error, "writing log") {
				t.Fatalf("Stats.Persist.Error %q", p.Error)
			}
			if m := string(s.Stats().AppendPrometheus(nil)); !strings.Contains(m, "aspstate_persist_failed 1") {
				t.Fatalf("metrics do not show the failure:\n%s", m)
			}
		})
	}
}
