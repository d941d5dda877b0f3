package stateserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/testwait"
	"github.com/aspstate/aspstate/protocol"
)

// crashChildEnv, when set to a directory, makes this test binary run a
// persistent server (--fsync always) on it instead of the tests.
const crashChildEnv = "ASPSTATE_CRASH_CHILD_DIR"

// crashChild runs the server of TestCrashKill9 until stdin closes (or the
// parent kills it).
func crashChild(dir string) {
	s, err := New(Config{Listen: "127.0.0.1:0", DataDir: dir, Fsync: FsyncAlways, SnapshotLogBytes: 64 << 10})
	if err == nil {
		err = s.Start()
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	rec := s.Recovery()
	fmt.Printf("recovered %d sessions, %d log records, torn %d bytes, snapshot %v, in %v\n",
		rec.Sessions, rec.LogRecords, rec.TornBytes, rec.SnapshotLoaded, rec.Duration)
	fmt.Printf("listening on %s\n", s.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.Close()
	os.Exit(0)
}

// crashServer is a child process running crashChild.
type crashServer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	info  string // the "recovered" line
}

func startCrashServer(t *testing.T, dir string) *crashServer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill9$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cs := &crashServer{cmd: cmd, stdin: stdin}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	timeout := time.After(20 * time.Second)
	for cs.addr == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("server process exited before listening")
			}
			if a, ok := strings.CutPrefix(line, "listening on "); ok {
				cs.addr = a
			} else if strings.HasPrefix(line, "recovered ") {
				cs.info = line
			} else if strings.HasPrefix(line, "error:") {
				t.Fatalf("server process: %s", line)
			}
		case <-timeout:
			t.Fatal("no \"listening on\" line from the server process within 20s")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return cs
}

// kstate is one key as the clients know it: what an acknowledged sequence
// of operations left (or, with an operation in flight, may have left).
type kstate struct {
	exists  bool
	ver     int
	locked  bool
	cookie  int32 // when locked
	counter int32 // the item's cookie counter
}

type crashOp int

const (
	opPut crashOp = iota + 1 // PUT the next version (with the cookie when locked: a releasing PUT)
	opAcquire
	opRelease
)

func (k kstate) apply(op crashOp, ver int) kstate {
	switch op {
	case opPut:
		if !k.exists {
			k.counter = 1
		}
		k.exists, k.ver, k.locked = true, ver, false
	case opAcquire:
		k.counter++
		k.locked, k.cookie = true, k.counter
	case opRelease:
		k.locked = false
	}
	return k
}

// crashKey is one key of one writer.
type crashKey struct {
	target   string
	acked    kstate
	inflight crashOp // 0 = none
	inVer    int
}

func crashBody(target string, ver int) []byte {
	return []byte(fmt.Sprintf("%s|v%08d|%s", target, ver, strings.Repeat("p", 200)))
}

func crashVersion(target string, body []byte) (int, bool) {
	rest, ok := strings.CutPrefix(string(body), target+"|v")
	if !ok || len(rest) < 9 || rest[8] != '|' {
		return 0, false
	}
	v, err := strconv.Atoi(rest[:8])
	return v, err == nil
}

// TestCrashKill9 runs the server as a child process with --fsync always,
// has writers PUT, acquire, PUT-release and release versioned sessions
// while recording every acknowledged operation, kills the server with
// SIGKILL in the middle, restarts it on the same directory and checks that
// every key is exactly as the acknowledged operations left it, or as the
// one operation in flight at the kill would leave it: no acknowledged write
// lost, no lock lost or invented. Snapshots (64 KiB of log) run during the
// load, so the kill can land in any phase.
func TestCrashKill9(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL")
	}
	dir := t.TempDir()
	srv := startCrashServer(t, dir)

	const writers, keysPer = 4, 8
	const killAfter = 1500 // acknowledged operations
	var acks atomic.Int64
	all := make([][]*crashKey, writers)
	var wg sync.WaitGroup
	for w := range writers {
		keys := make([]*crashKey, keysPer)
		for i := range keys {
			keys[i] = &crashKey{target: protocol.Target("/LM/W3SVC/1/ROOT", fmt.Sprintf("crash%03d%03d", w, i))}
		}
		all[w] = keys
		wg.Add(1)
		go func() {
			defer wg.Done()
			crashWriter(t, srv.addr, keys, uint64(w), &acks)
		}()
	}
	// Kill once enough operations are acknowledged, or once every writer
	// has given up (the checks below then say why).
	writing, stop := context.WithCancel(t.Context())
	go func() { wg.Wait(); stop() }()
	_ = testwait.Until(writing, func() bool { return acks.Load() >= killAfter })
	stop()
	if err := srv.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = srv.cmd.Wait()
	wg.Wait()
	if n := acks.Load(); n < 100 {
		t.Fatalf("only %d acknowledged operations before the kill", n)
	}
	inflight := 0
	for _, keys := range all {
		for _, k := range keys {
			if k.inflight != 0 {
				inflight++
			}
		}
	}
	t.Logf("killed after %d acknowledged operations, %d in flight", acks.Load(), inflight)

	srv2 := startCrashServer(t, dir)
	t.Logf("restart: %s", srv2.info)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := protocol.Dial(ctx, srv2.addr, protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sessions := 0
	for _, keys := range all {
		for _, k := range keys {
			got := observe(t, ctx, c, k.target)
			if got.exists {
				sessions++
			}
			ok := got == k.acked.comparable()
			if k.inflight != 0 {
				ok = ok || got == k.acked.apply(k.inflight, k.inVer).comparable()
			}
			if !ok {
				t.Errorf("%s after the crash: %+v; acknowledged %+v, in flight op %d (version %d)",
					k.target, got, k.acked, k.inflight, k.inVer)
			}
		}
	}
	if !strings.Contains(srv2.info, fmt.Sprintf("recovered %d sessions", sessions)) {
		t.Errorf("recovery line %q, want %d sessions", srv2.info, sessions)
	}
	// The recovered server takes writes, and stops cleanly.
	if r, err := c.Set(ctx, all[0][0].target, []byte("after"), protocol.SetParams{Timeout: 20}); err != nil || r.Status != 200 && r.Status != 423 {
		t.Fatalf("PUT after recovery: %v %+v", err, r)
	}
	srv2.stdin.Close()
	if err := srv2.cmd.Wait(); err != nil {
		t.Fatalf("clean stop after recovery: %v", err)
	}
}

// comparable drops what observe cannot see (the counter of an unlocked
// item) and the cookie of an unlocked item.
func (k kstate) comparable() kstate {
	k.counter = 0
	if !k.locked {
		k.cookie = 0
	}
	if !k.exists {
		return kstate{}
	}
	return k
}

// observe reads a key's state: 404, 200 (unlocked, version from the body)
// or 423 (locked, cookie; the body is read after releasing the lock, the
// only way to see it).
func observe(t *testing.T, ctx context.Context, c *protocol.Conn, target string) kstate {
	t.Helper()
	r, err := c.Get(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	var k kstate
	switch r.Status {
	case 404:
		return k
	case 423:
		k.locked, k.cookie = true, r.LockCookie
		if rr, err := c.ReleaseExclusive(ctx, target, r.LockCookie); err != nil || rr.Status != 200 {
			t.Fatalf("release of %s with the cookie of its 423: %v %+v", target, err, rr)
		}
		if r, err = c.Get(ctx, target); err != nil || r.Status != 200 {
			t.Fatalf("GET %s after release: %v %+v", target, err, r)
		}
	case 200:
	default:
		t.Fatalf("GET %s: status %d", target, r.Status)
	}
	k.exists = true
	v, ok := crashVersion(target, r.Body)
	if !ok {
		t.Fatalf("%s: body %q is not a version of this key", target, r.Body)
	}
	k.ver = v
	return k
}

// crashWriter runs operations on its keys until the connection fails (the
// kill), recording each acknowledged one and the one in flight.
func crashWriter(t *testing.T, addr string, keys []*crashKey, seed uint64, acks *atomic.Int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := protocol.Dial(ctx, addr, protocol.ConnOptions{})
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	rnd := rand.New(rand.NewPCG(seed, 42))
	nextVer := 1
	for i := 0; i < 200000; i++ {
		k := keys[i%len(keys)]
		var op crashOp
		switch {
		case !k.acked.exists:
			op = opPut
		case k.acked.locked && rnd.IntN(10) < 7:
			op = opPut // the releasing PUT of SetAndReleaseItemExclusive
		case k.acked.locked:
			op = opRelease
		case rnd.IntN(2) == 0:
			op = opAcquire
		default:
			op = opPut
		}
		k.inflight, k.inVer = op, nextVer
		var r *protocol.Reply
		switch op {
		case opPut:
			p := protocol.SetParams{Timeout: 20}
			if k.acked.locked {
				p.LockCookie = k.acked.cookie
			}
			r, err = c.Set(ctx, k.target, crashBody(k.target, nextVer), p)
			nextVer++
		case opAcquire:
			r, err = c.GetExclusive(ctx, k.target)
		case opRelease:
			r, err = c.ReleaseExclusive(ctx, k.target, k.acked.cookie)
		}
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				return // the server was killed: this operation stays in flight
			}
			t.Errorf("writer stalled: %v", err)
			return
		}
		if r.Status != 200 {
			t.Errorf("%s op %d: status %d", k.target, op, r.Status)
			return
		}
		next := k.acked.apply(op, k.inVer)
		if op == opAcquire && r.LockCookie != next.cookie {
			t.Errorf("%s: acquire gave cookie %d, model says %d", k.target, r.LockCookie, next.cookie)
			return
		}
		k.acked, k.inflight = next, 0
		acks.Add(1)
	}
}
