package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/servers/target"
	"github.com/aspstate/aspstate/trace"
)

// traceData is the trace package's testdata.
func traceData(name string) string { return filepath.Join("..", "..", "trace", "testdata", name) }

// The real service's bytes, as ../shared/captures hold them.
const (
	realKey       = "/LM/W3SVC/2/ROOT(oXvpnxcuEWqKAgOETha32JavYZ6eCqrpTN5/HxWS854=)/bpr4mimb2vjnvtn2jc4yp3uo"
	realGetSizes  = "155B/141B"
	realPutSizes  = "224B/82B"
	realLostReply = "1 reply to requests sent before the capture began"
)

func TestTraceInspectRealServiceCapture(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCmd(runTrace, "inspect", "--exchanges", "--show-keys", traceData("real-service.pcapng"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"10.1.0.11:49811->10.1.0.5:42424 #0 get-exclusive " + realKey + " 200 " + realGetSizes + " 400µs",
		"10.1.0.11:49811->10.1.0.5:42424 #1 set " + realKey + " 200 " + realPutSizes + " 500µs",
		"10.1.0.12:50112->10.1.0.5:42424 #0 get-exclusive " + realKey + " 200 " + realGetSizes + " 200µs",
		"web servers (clients): 2", "partitions (servers): 1  10.1.0.5:42424 ×3", `apps: 1  "/LM/W3SVC/2/ROOT" ×3`,
		"sessions: 1", realLostReply, "Timeout (minutes): requests 20 ×1; replies 20 ×2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Without --show-keys the key is a pseudonym.
	code, out, _ = runCmd(runTrace, "inspect", "--exchanges", traceData("real-service.pcapng"))
	if code != 0 || strings.Contains(out, "bpr4mimb2vjnvtn2jc4yp3uo") || !strings.Contains(out, "get-exclusive s1 200") {
		t.Errorf("exit %d, key shown or no pseudonym:\n%s", code, out)
	}
}

// Inspect rebuilds the pages of a capture (3 s of small-intranet) as trace
// fit does and shows them per second beside the exchanges.
func TestTraceInspectPages(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCmd(runTrace, "inspect", traceData("farm-lo.pcap"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"pages: 78 (25.9/s): modify 15, read-unchanged 40, read-only 15, sessionless 8",
		"pages/s over time (1s intervals, by page start): ▁▆█▄  min 6.0, max 29.0", "exchanges/s over time (1s intervals): ▁▆█▄"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestTraceInspectJSON(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCmd(runTrace, "inspect", "--json", traceData("real-service.pcapng"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d JSON lines, want 3:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if r["key"] != "s1" || r["status"] != 200.0 || r["conn"] == "" || r["latency_ns"] == 0.0 {
			t.Errorf("record %v", r)
		}
		if strings.Contains(l, "value") { // the session state body holds "key" = "value"
			t.Errorf("a body leaked into %q", l)
		}
	}
}

// TestTraceInspectOutIsAResult: --out writes a result directory that
// aspstate report draws and aspstate compare reads.
func TestTraceInspectOutIsAResult(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := filepath.Join(dir, "capture")
	if code, _, errOut := runCmd(runTrace, "inspect", "--out", res, traceData("farm-lo.pcap")); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	run, err := results.Read(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Validate(); err != nil {
		t.Fatal(err)
	}
	if run.Config.Mode != results.ModeCapture || run.Ops["get-exclusive"] == nil || run.Ops["get-exclusive"].Corrected.P99 == 0 ||
		len(run.Logs) == 0 || len(run.Intervals) < 3 || len(run.Config.Targets) != 1 {
		t.Fatalf("result: mode %q, ops %v, %d logs, %d intervals, targets %v", run.Config.Mode, run.Ops, len(run.Logs), len(run.Intervals), run.Config.Targets)
	}
	if code, _, errOut := runCmd(runReport, "--out", filepath.Join(dir, "report"), res); code != 0 {
		t.Fatalf("report: exit %d: %s", code, errOut)
	}
	if code, out, errOut := runCmd(runCompare, res, res); code != 0 || !strings.Contains(out, "op:get-exclusive") {
		t.Fatalf("compare: exit %d: %s\n%s", code, errOut, out)
	}
}

func TestTraceInspectBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	whole, err := os.ReadFile(traceData("farm-lo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	usb := append([]byte{}, whole[:24]...)
	usb[20] = 189 // LINKTYPE_USB_LINUX
	text := write("notes.txt", []byte("not a capture\n"))
	cut := write("cut.pcap", whole[:len(whole)/2])
	linkType := write("usb.pcap", usb)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no file", []string{"inspect"}, 2, []string{"give the capture files"}},
		{"bad port", []string{"inspect", "--port", "70000", text}, 2, []string{"--port 70000"}},
		{"not a capture", []string{"inspect", text}, 2, []string{text, "not a pcap or pcapng capture", "etl2pcap"}},
		{"truncated", []string{"inspect", cut}, 2, []string{cut, "truncated", "editcap -r"}},
		{"unknown link type", []string{"inspect", linkType}, 2, []string{linkType, "unsupported link type 189", "tcpdump -i"}},
		{"missing file", []string{"inspect", filepath.Join(dir, "nope.pcap")}, 2, []string{"nope.pcap", "no such file"}},
		{"no traffic on the port", []string{"inspect", "--port", "80", traceData("real-service.pcapng")}, 1,
			[]string{"real-service.pcapng", "no TCP traffic on port 80", "42424 ×", "--port"}},
		{"HTTP on the port", []string{"inspect", traceData("http-on-42424.pcapng")}, 1, []string{"http-on-42424.pcapng", "carries HTTP", "--port"}},
		{"TLS on the port", []string{"inspect", traceData("tls-on-42424.pcapng")}, 1, []string{"tls-on-42424.pcapng", "carries TLS", "--port"}},
		{"unknown subcommand", []string{"bogus"}, 2, []string{`unknown command "bogus"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(runTrace, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			first := strings.SplitN(errOut, "\n", 2)[0]
			for _, w := range tc.want {
				if !strings.Contains(first, w) {
					t.Errorf("first line of stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// startCapture starts tcpdump on loopback for one TCP port, or skips the
// test where live capture is impossible. stop ends it and returns the file.
func startCapture(t *testing.T, port int) (stop func() string) {
	t.Helper()
	bin, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump is not installed (apt-get install tcpdump); live capture tests need it")
	}
	file := filepath.Join(t.TempDir(), "live.pcap")
	cmd := exec.Command(bin, "-i", "lo", "--immediate-mode", "-U", "-w", file, fmt.Sprintf("tcp port %d", port))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start tcpdump: %v", err)
	}
	sc := bufio.NewScanner(stderr)
	var head []string
	for sc.Scan() {
		head = append(head, sc.Text())
		if strings.Contains(sc.Text(), "listening on") {
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	if len(head) == 0 || !strings.Contains(head[len(head)-1], "listening on") {
		cmd.Wait()
		msg := strings.Join(head, "; ")
		if strings.Contains(msg, "ermission") || strings.Contains(msg, "not permitted") {
			t.Skipf("live capture is not possible here (needs root or CAP_NET_RAW): %s", msg)
		}
		t.Fatalf("tcpdump did not start: %s", msg)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return func() string {
		stopped = true
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		return file
	}
}

// startInProc starts a reference server in the test's process.
func startInProc(t *testing.T, ctx context.Context) target.Target {
	t.Helper()
	tg, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// loadOnce runs the tiny scenario against addr and returns its result.
func loadOnce(t *testing.T, ctx context.Context, addr string) *results.Run {
	t.Helper()
	dir := t.TempDir()
	scen := filepath.Join(dir, "tiny.yaml")
	if err := os.WriteFile(scen, []byte(tinyScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	var stdout, stderr strings.Builder
	if code := runLoad(ctx, []string{"--scenario", scen, "--target", "tcp://" + addr, "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("load: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	run, err := results.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if run.Correctness.Total != 0 {
		t.Fatalf("load saw %d correctness violations", run.Correctness.Total)
	}
	return run
}

// checkCaptureMatchesRun reads a capture of run's traffic: every operation
// the load generator recorded is in it with the same statuses (the load
// generator's own health check, one HEAD per target, comes on top).
func checkCaptureMatchesRun(t *testing.T, file string, port int, run *results.Run) trace.Stats {
	t.Helper()
	counts := map[string]int64{}
	statuses := map[string]int64{}
	st, err := trace.Read(context.Background(), []string{file}, trace.Options{Port: uint16(port)}, func(e *trace.Exchange) error {
		counts[e.Op().String()]++
		if e.Reply != nil {
			statuses[fmt.Sprintf("%s/%d", e.Op(), e.Reply.Status)]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped.Any() {
		t.Errorf("%s", st.Skipped)
	}
	for op, s := range run.Ops {
		extra := counts[op] - s.Count
		if extra != 0 && !(op == "reset-timeout" && extra == 1) {
			t.Errorf("%s: %d in the capture, %d recorded by the load generator", op, counts[op], s.Count)
		}
		for code, n := range s.Statuses {
			if got := statuses[op+"/"+code]; got < n || got > n+1 {
				t.Errorf("%s %s: %d in the capture, %d recorded", op, code, got, n)
			}
		}
	}
	return st
}

// TestTraceInspectLiveCapture captures aspstate load against a reference
// server with tcpdump and checks that the capture holds exactly what the
// load generator recorded.
func TestTraceInspectLiveCapture(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tg := startInProc(t, ctx)
	_, portText, _ := net.SplitHostPort(tg.Addr())
	var port int
	fmt.Sscan(portText, &port)
	stop := startCapture(t, port)
	run := loadOnce(t, ctx, tg.Addr())
	file := stop()
	st := checkCaptureMatchesRun(t, file, port, run)
	if st.Exchanges < 20 {
		t.Fatalf("only %d exchanges captured", st.Exchanges)
	}
	code, out, errOut := runCmd(runTrace, "inspect", "--port", portText, file)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("exchanges: %d", st.Exchanges)) {
		t.Fatalf("inspect: exit %d\n%s%s", code, out, errOut)
	}
}

// runTrace runs `aspstate trace ARGS…` through the command tree.
func runTrace(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, append([]string{"trace"}, args...), stdout, stderr)
}
