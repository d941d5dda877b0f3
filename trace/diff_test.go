package trace

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/servers/target"
)

// startServe starts a fresh reference server in the test's process.
func startServe(t *testing.T) string {
	t.Helper()
	tg, err := target.Start(context.Background(), target.Spec{Kind: target.KindInProc}, target.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg.Addr()
}

func diffFile(t *testing.T, addr string, files ...string) *DiffReport {
	t.Helper()
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join("testdata", f))
	}
	rep, err := Diff(context.Background(), paths, DiffOptions{Target: addr})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func groupTitles(rep *DiffReport) string {
	var s []string
	for _, g := range rep.Groups {
		s = append(s, g.Title()+": "+g.Examples[0].Detail)
	}
	return strings.Join(s, "\n")
}

// A capture of aspstate load against aspstate serve, replayed against a
// fresh aspstate serve: every reply the same.
func TestDiffServeCaptureAgainstServe(t *testing.T) {
	t.Parallel()
	rep := diffFile(t, startServe(t), "farm-lo.pcap")
	if rep.Error != "" || rep.Unexplained != 0 {
		t.Fatalf("error %q, %d unexplained differences:\n%s", rep.Error, rep.Unexplained, groupTitles(rep))
	}
	if rep.Exch != 219 || rep.Compared != rep.Exch || rep.Conns != 6 || rep.Session != 50 {
		t.Errorf("replayed %d exchanges (compared %d) on %d connections, %d sessions; want 219 on 6, 50 sessions", rep.Exch, rep.Compared, rep.Conns, rep.Session)
	}
	if rep.Failed() {
		t.Errorf("failed: %s", rep.Verdict())
	}
}

// The real service's bytes: the session existed before the capture (its
// first acquire is answered 200), so it is seeded; aspstate serve answers
// every request as the real service did.
func TestDiffRealServiceCaptureAgainstServe(t *testing.T) {
	t.Parallel()
	rep := diffFile(t, startServe(t), "real-service.pcapng")
	if rep.Seeded != 1 || rep.Compared != 3 {
		t.Errorf("seeded %d, compared %d; want 1 and 3", rep.Seeded, rep.Compared)
	}
	if rep.Error != "" || len(rep.Groups) != 0 || rep.Same != 3 {
		t.Fatalf("error %q, %d same, differences:\n%s", rep.Error, rep.Same, groupTitles(rep))
	}
}

// recorder makes a recording by running requests against a live server,
// one protocol.Conn per named connection, timing each exchange.
type recorder struct {
	t     *testing.T
	addr  string
	conns map[uint16]*protocol.Conn
	seq   map[uint16]int
	exs   []*Exchange
}

func newRecorder(t *testing.T, addr string) *recorder {
	r := &recorder{t: t, addr: addr, conns: map[uint16]*protocol.Conn{}, seq: map[uint16]int{}}
	t.Cleanup(func() {
		for _, c := range r.conns {
			c.Close()
		}
	})
	return r
}

func (r *recorder) do(port uint16, req *protocol.Request) *Exchange {
	r.t.Helper()
	c := r.conns[port]
	if c == nil {
		var err error
		if c, err = protocol.Dial(context.Background(), r.addr, protocol.ConnOptions{}); err != nil {
			r.t.Fatal(err)
		}
		r.conns[port] = c
	}
	start := time.Now()
	resp, err := c.Do(context.Background(), req)
	if err != nil {
		r.t.Fatal(err)
	}
	end := time.Now()
	ex := &Exchange{Conn: testConn("127.0.0.1", port), Seq: r.seq[port], Request: req, Reply: resp,
		RequestStart: start, RequestEnd: start, ReplyStart: end, ReplyEnd: end}
	r.seq[port]++
	r.exs = append(r.exs, ex)
	return ex
}

// Each kind of difference is found, with its op and statuses, and a body
// is never shown, only its length and the offset where it differs.
func TestDiffKindsAndPrivacy(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, startServe(t))
	secret := []byte("SECRET-session-state-0123456789")
	rec.do(1, protocol.NewSetRequest("localhost", tgt("s1"), secret, protocol.SetParams{Timeout: 20}))
	get := rec.do(1, protocol.NewGetRequest("localhost", tgt("s1")))
	acquire := rec.do(1, acq("s1"))
	c, _ := headerInt32(acquire.Reply.Header, protocol.HeaderLockCookie)
	release := rec.do(1, rel("s1", c))
	rec.do(2, protocol.NewGetRequest("localhost", tgt("s2")))
	again := rec.do(2, protocol.NewGetRequest("localhost", tgt("s1")))
	head := rec.do(2, protocol.NewResetTimeoutRequest("localhost", tgt("s1")))

	// What another server would have answered.
	get.Reply.Body = append([]byte(nil), get.Reply.Body...)
	get.Reply.Body[5] ^= 1
	acquire.Reply.Header = setField(acquire.Reply.Header, protocol.HeaderTimeout, "21")
	release.Reply.Header = release.Reply.Header[1:] // no X-AspNet-Version
	again.Reply.Status, again.Reply.Reason = 404, "Not Found"
	head.Reply.Header = append(head.Reply.Header, protocol.Field{Name: protocol.HeaderActionFlags, Value: "0"})
	// Values that must differ do not count.
	for _, e := range rec.exs {
		e.Reply.Header = setField(e.Reply.Header, protocol.HeaderVersion, "4.0.99999")
	}

	rep, err := DiffExchanges(context.Background(), rec.exs, DiffOptions{Target: startServe(t)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		DiffBodyBytes:     "body-bytes on get 200/200 ×1",
		DiffHeaderValue:   "header-value Timeout on get-exclusive 200/200 ×1",
		DiffHeaderPresent: "header-present X-AspNet-Version on release 200/200 ×1",
		DiffStatus:        "status on get 404/200 ×1",
		DiffHeaderMissing: "header-missing ActionFlags on reset-timeout 200/200 ×1",
	}
	got := map[string]string{}
	for _, g := range rep.Groups {
		got[g.Kind] = g.Title()
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
	if len(rep.Groups) != len(want) || rep.Unexplained != len(want) || !rep.Failed() || rep.Same != 2 {
		t.Errorf("%d groups, %d unexplained, %d same, failed %v; want %d, %d, 2, true:\n%s",
			len(rep.Groups), rep.Unexplained, rep.Same, rep.Failed(), len(want), len(want), groupTitles(rep))
	}
	for _, g := range rep.Groups {
		if g.Kind == DiffBodyBytes && !strings.Contains(g.Examples[0].Detail, "from byte 5 on") {
			t.Errorf("body detail %q: want the offset of the first differing byte", g.Examples[0].Detail)
		}
		if g.Kind == DiffHeaderValue && !strings.Contains(g.Examples[0].Transcript, `← Timeout: 21\r\n`) {
			t.Errorf("transcript lacks the recorded reply:\n%s", g.Examples[0].Transcript)
		}
	}
	var all strings.Builder
	rep.WriteText(&all)
	if err := rep.WriteJSON(&all); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJUnit(&all); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(&all); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(all.String(), "SECRET") || strings.Contains(all.String(), tgt("s1")) {
		t.Errorf("a report shows a body or a recorded session id")
	}
	for _, s := range []string{"(body: 31 bytes)", `<failure message=`, `"kind": "body-bytes"`, "FAILED: 5 unexplained differences"} {
		if !strings.Contains(all.String(), s) {
			t.Errorf("reports lack %q", s)
		}
	}
	var back DiffReport
	js := new(strings.Builder)
	rep.WriteJSON(js)
	if err := json.Unmarshal([]byte(js.String()), &back); err != nil || back.Unexplained != rep.Unexplained {
		t.Errorf("JSON does not read back: %v", err)
	}
}

func setField(h protocol.Header, name, value string) protocol.Header {
	out := append(protocol.Header(nil), h...)
	for i := range out {
		if strings.EqualFold(out[i].Name, name) {
			out[i].Value = value
		}
	}
	return out
}

// slowRelease is a proxy that holds every release for a while before
// passing it on: a target that keeps locks longer than the recorded server.
func slowRelease(t *testing.T, upstream string, hold time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				defer up.Close()
				rd, urd, w := protocol.NewReader(bufio.NewReader(c), protocol.Limits{}), protocol.NewReader(up, protocol.Limits{}), bufio.NewWriter(c)
				for {
					var req protocol.Request
					var resp protocol.Response
					if rd.ReadRequest(&req) != nil {
						return
					}
					if protocol.OpOf(&req) == protocol.OpReleaseExclusive {
						time.Sleep(hold)
					}
					if _, err := up.Write(req.Bytes()); err != nil || urd.ReadResponse(&resp) != nil {
						return
					}
					w.Write(resp.Bytes())
					if w.Flush() != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A 423 where the recording got 200, because the target held the lock
// longer than the recorded server did, is timing-dependent: reported apart,
// not failing the check.
func TestDiffTimingDependentLock(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, startServe(t))
	rec.do(1, protocol.NewSetRequest("localhost", tgt("s1"), []byte("state"), protocol.SetParams{Timeout: 20}))
	a := rec.do(1, acq("s1"))
	c, _ := headerInt32(a.Reply.Header, protocol.HeaderLockCookie)
	r := rec.do(1, rel("s1", c))
	b := rec.do(2, acq("s1"))
	c2, _ := headerInt32(b.Reply.Header, protocol.HeaderLockCookie)
	rec.do(2, rel("s1", c2))
	// In the recording, web server 2's acquire went out just after web
	// server 1's release and was served after it.
	b.RequestStart = r.RequestStart.Add(20 * time.Microsecond)
	b.RequestEnd = b.RequestStart

	rep, err := DiffExchanges(context.Background(), rec.exs, DiffOptions{Target: slowRelease(t, startServe(t), 300*time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() || rep.Unexplained != 0 || rep.TimingDependent == 0 {
		t.Fatalf("%s; %d unexplained, %d timing-dependent; want only timing-dependent differences:\n%s",
			rep.Verdict(), rep.Unexplained, rep.TimingDependent, groupTitles(rep))
	}
	if g := rep.Groups[0]; g.Kind != DiffStatus || g.Op != "get-exclusive" || g.Recorded != 200 || g.Live != 423 || !g.Timing {
		t.Errorf("first group %s; want status on get-exclusive 200/423 (timing-dependent)", g.Title())
	}
}
