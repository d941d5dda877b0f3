package stateserver

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aspstate/aspstate/protocol"
)

// errInjected is the failure a faultFS injects.
var errInjected = errors.New("injected I/O error")

// faultRule says whether an operation fails: op is "write", "sync",
// "syncdir" or "rename"; name is the base name of the file (the source of
// a rename, the directory of a syncdir); n counts op on that file from 1,
// so a segment's header write and fsync are its n == 1.
type faultRule func(op, name string, n int) bool

// faultFS is the OS file system with failures injected by a rule that a
// test may arm (or change) while the server runs.
type faultFS struct {
	osFS
	rule atomic.Pointer[faultRule]
}

func newFaultFS(r faultRule) *faultFS {
	fs := &faultFS{}
	fs.arm(r)
	return fs
}

// arm makes r the rule from now on; nil injects nothing.
func (fs *faultFS) arm(r faultRule) { fs.rule.Store(&r) }

func (fs *faultFS) check(op, name string, n int) error {
	if r := fs.rule.Load(); r != nil && *r != nil && (*r)(op, name, n) {
		return fmt.Errorf("%s %s: %w", op, name, errInjected)
	}
	return nil
}

func (fs *faultFS) Create(path string, flag int) (walFile, error) {
	f, err := fs.osFS.Create(path, flag)
	if err != nil {
		return nil, err
	}
	return &faultFile{walFile: f, fs: fs, base: filepath.Base(path)}, nil
}

func (fs *faultFS) Rename(from, to string) error {
	if err := fs.check("rename", filepath.Base(from), 1); err != nil {
		return err
	}
	return fs.osFS.Rename(from, to)
}

func (fs *faultFS) SyncDir(dir string) error {
	if err := fs.check("syncdir", filepath.Base(dir), 1); err != nil {
		return err
	}
	return fs.osFS.SyncDir(dir)
}

// faultFile counts its writes and fsyncs and fails those the rule picks
// (a failed write writes nothing). One goroutine at a time uses a file.
type faultFile struct {
	walFile
	fs            *faultFS
	base          string
	writes, syncs int
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.writes++
	if err := f.fs.check("write", f.base, f.writes); err != nil {
		return 0, err
	}
	return f.walFile.Write(p)
}

func (f *faultFile) Sync() error {
	f.syncs++
	if err := f.fs.check("sync", f.base, f.syncs); err != nil {
		return err
	}
	return f.walFile.Sync()
}

// isSegment reports whether name is a log segment.
func isSegment(name string) bool { return strings.HasPrefix(name, logPrefix) }

// putUntilRefused PUTs up to max 1 KiB items over one connection until the
// server does not acknowledge one (under FsyncAlways it closes the
// connection instead of replying). It returns the targets acknowledged.
func putUntilRefused(t *testing.T, s *Server, max int) (acked []string, refused bool) {
	t.Helper()
	ctx := tctx(t)
	c, err := protocol.Dial(ctx, s.Addr(), protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < max; i++ {
		u := newTarget()
		r, err := c.Set(ctx, u, walBody(u), protocol.SetParams{Timeout: 20})
		if err != nil {
			return acked, true
		}
		if r.Status != 200 {
			t.Fatalf("PUT %s: status %d", u, r.Status)
		}
		acked = append(acked, u)
	}
	return acked, false
}

// walBody is the 1 KiB body PUT at target u.
func walBody(u string) []byte { return bytes.Repeat([]byte(u), 1024/len(u)+1)[:1024] }

// checkSurvived restarts on dir with the OS file system and checks that
// every acknowledged item is there with its body.
func checkSurvived(t *testing.T, dir string, acked []string) {
	t.Helper()
	s, _ := startPersistent(t, dir, Config{Fsync: FsyncAlways})
	y := newClient(t, s)
	for _, u := range acked {
		r := y.get(u)
		if r.Status != 200 {
			t.Fatalf("acknowledged PUT %s lost across the restart (status %d; recovery %+v)", u, r.Status, s.Recovery())
		}
		y.body(r, string(walBody(u)))
	}
}

// TestWALFailingSegmentCreation: when the first segment's header cannot be
// written or fsynced, or its name made durable, New fails instead of
// starting a server whose log recovery would throw away.
func TestWALFailingSegmentCreation(t *testing.T) {
	t.Parallel()
	cases := map[string]faultRule{
		"header write": func(op, name string, n int) bool { return op == "write" && isSegment(name) },
		"header fsync": func(op, name string, n int) bool { return op == "sync" && isSegment(name) },
		"dir fsync":    func(op, name string, n int) bool { return op == "syncdir" },
	}
	for name, rule := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := New(Config{DataDir: t.TempDir(), Fsync: FsyncAlways, fs: newFaultFS(rule)})
			if err == nil {
				s.Close()
				t.Fatal("New started a server on a log segment that is not durable")
			}
			if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "creating log") {
				t.Fatalf("New: %v, want the injected error while creating the log", err)
			}
		})
	}
}

// TestWALFailingWriteStopsAcks breaks one write or fsync of a running
// FsyncAlways server (a new segment's header at rotation, an append, the
// snapshot) and checks that the server then stops acknowledging PUTs, says
// why, and that every PUT it did acknowledge survives a restart.
func TestWALFailingWriteStopsAcks(t *testing.T) {
	cases := []struct {
		name string
		rule faultRule
		want string // in PersistErr
	}{
		// A rotation (a snapshot begins once the log passes SnapshotLogBytes)
		// creates a segment whose header write or fsync fails once; later
		// writes would succeed, into a file recovery drops as headerless.
		{"rotation header write", func(op, name string, n int) bool {
			return op == "write" && isSegment(name) && name != segName(1) && n == 1
		}, "creating log"},
		{"rotation header fsync", func(op, name string, n int) bool {
			return op == "sync" && isSegment(name) && name != segName(1) && n == 1
		}, "creating log"},
		{"append write", func(op, name string, n int) bool { return op == "write" && isSegment(name) && n > 1 }, "writing log"},
		{"append fsync", func(op, name string, n int) bool { return op == "sync" && isSegment(name) && n > 1 }, "fsync of log"},
		{"snapshot fsync", func(op, name string, n int) bool { return op == "sync" && name == snapTmpName }, "writing snapshot"},
		{"snapshot rename", func(op, name string, n int) bool { return op == "rename" }, "writing snapshot"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fs := newFaultFS(nil)
			s, stop := startPersistent(t, dir, Config{Fsync: FsyncAlways, SnapshotLogBytes: MinSnapshotLogBytes, fs: fs})
			before, refused := putUntilRefused(t, s, 1)
			if refused {
				t.Fatal("PUT refused before any failure was injected")
			}
			fs.arm(tc.rule)
			after, refused := putUntilRefused(t, s, 400) // 400 KiB: far past SnapshotLogBytes
			if !refused {
				t.Fatalf("%d PUTs acknowledged although the log failed (PersistErr %v)", len(after), s.PersistErr())
			}
			err := s.PersistErr()
			if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("PersistErr %v, want the injected error and %q", err, tc.want)
			}
			if _, refused := putUntilRefused(t, s, 1); !refused {
				t.Fatal("a PUT on a new connection was acknowledged after the log failed")
			}
			stop()
			checkSurvived(t, dir, append(before, after...))
		})
	}
}

// TestWALFailingRotationIsReported: under FsyncInterval the server keeps
// serving from memory after the log fails (by design), but a failed
// rotation must be reported, not leave the log writing into a headerless
// segment.
func TestWALFailingRotationIsReported(t *testing.T) {
	fs := newFaultFS(func(op, name string, n int) bool {
		return op == "write" && isSegment(name) && name != segName(1) && n == 1
	})
	s, _ := startPersistent(t, t.TempDir(), Config{Fsync: FsyncInterval, SnapshotLogBytes: MinSnapshotLogBytes, fs: fs})
	x := newClient(t, s)
	for i := 0; s.PersistErr() == nil; i++ {
		if i == 2000 { // 2 MiB: hundreds of times SnapshotLogBytes
			t.Fatalf("no failure reported after %d PUTs; snapshots %d", i, s.Stats().Persist.Snapshots)
		}
		u := newTarget()
		x.expect(x.put(u, string(walBody(u))), 200)
	}
	if err := s.PersistErr(); !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "creating log") {
		t.Fatalf("PersistErr %v", err)
	}
}
