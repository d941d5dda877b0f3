package main

import (
	"bufio"
	"context"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/trace"
)

// TestRecordProxy runs aspstate load through aspstate record to a reference
// server: the load sees a correct server (every byte forwarded unchanged)
// and the pcapng written holds what the load generator recorded, with the
// client's real address.
func TestRecordProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tg := startInProc(t, ctx)
	file := filepath.Join(t.TempDir(), "farm.pcapng")
	recCtx, stopRec := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var errOut strings.Builder
	go func() {
		done <- runRecord(recCtx, []string{"--listen", "127.0.0.1:0", "--upstream", tg.Addr(), "--out", file}, pw, &errOut)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "listening on ") {
		t.Fatalf("record did not start: %q %s", sc.Text(), errOut.String())
	}
	addr := strings.Fields(strings.TrimPrefix(sc.Text(), "listening on "))[0]
	addr = strings.TrimSuffix(addr, ",")
	go io.Copy(io.Discard, pr)

	run := loadOnce(t, ctx, addr)
	stopRec()
	if code := <-done; code != 0 {
		t.Fatalf("record: exit %d: %s", code, errOut.String())
	}
	upstream := netip.MustParseAddrPort(tg.Addr())
	st := checkCaptureMatchesRun(t, file, int(upstream.Port()), run)
	if st.Exchanges < 20 || st.Connections < 1 {
		t.Fatalf("%d exchanges on %d connections", st.Exchanges, st.Connections)
	}
	_, err := trace.Read(ctx, []string{file}, trace.Options{Port: upstream.Port()}, func(e *trace.Exchange) error {
		if e.Conn.Server != upstream || !e.Conn.Client.Addr().IsLoopback() || e.Conn.Client.Port() == 0 {
			t.Fatalf("connection %v: want the client's real address and the upstream %v", e.Conn, upstream)
		}
		if e.Latency() <= 0 {
			t.Fatalf("latency %v", e.Latency())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRecordUsageErrors(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "x.pcapng")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", out}, "--upstream HOST:PORT is required"},
		{[]string{"--upstream", "127.0.0.1:42424"}, "--out FILE.pcapng is required"},
		{[]string{"--upstream", "nohost", "--out", out}, "want HOST:PORT"},
		{[]string{"--upstream", "127.0.0.1:42424", "--out", out, "--listen", "0.0.0.0:42424"}, "--allow-remote"},
		{[]string{"--upstream", "127.0.0.1:42424", "--out", filepath.Join(out, "no", "dir.pcapng"), "--listen", "127.0.0.1:0"}, "no such file"},
	} {
		code, _, errOut := runCmd(runRecord, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
