package trace

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/aspstate/aspstate/protocol"
)

// golden reads one of the real service's captures (a copy of
// ../shared/captures kept by the protocol package).
func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "protocol", "testdata", "captures", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// capBuilder writes a synthetic capture for a test.
type capBuilder struct {
	t    testing.TB
	path string
	f    *os.File
	ng   *pcapgo.NgWriter
	pw   *packetWriter
	ts   time.Time
}

func newCap(t testing.TB, name string) *capBuilder {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	ng, err := pcapgo.NewNgWriter(f, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	return &capBuilder{t: t, path: path, f: f, ng: ng, pw: newPacketWriter(ng),
		ts: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// at advances the capture clock by d and returns it.
func (b *capBuilder) at(d time.Duration) time.Time {
	b.ts = b.ts.Add(d)
	return b.ts
}

func (b *capBuilder) must(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

// exchange writes a request from the client and the reply from the server.
func (b *capBuilder) exchange(c *tcpConn, req, reply []byte) {
	b.t.Helper()
	b.must(b.pw.send(c, true, b.at(time.Millisecond), req))
	b.must(b.pw.send(c, false, b.at(300*time.Microsecond), reply))
}

func (b *capBuilder) close() string {
	b.t.Helper()
	b.must(b.ng.Flush())
	b.must(b.f.Close())
	return b.path
}

func conn4(client string, server string) *tcpConn {
	return newTCPConn(netip.MustParseAddrPort(client), netip.MustParseAddrPort(server))
}

// collect reads a capture and returns its exchanges with the wire bytes
// of each message re-encoded (bodies are only available inside fn).
type seen struct {
	ex        *Exchange
	req, resp []byte
	// replyBody and status (the status line) are the reply's own bytes.
	replyBody, status []byte
}

func collect(t testing.TB, opt Options, paths ...string) ([]seen, Stats, error) {
	t.Helper()
	var out []seen
	st, err := Read(context.Background(), paths, opt, func(e *Exchange) error {
		if tt, ok := t.(*testing.T); ok {
			checkExchange(tt, e)
		}
		s := seen{ex: e, req: e.Request.Bytes()}
		if e.Reply != nil {
			s.resp = e.Reply.Bytes()
			s.replyBody = bytes.Clone(e.Reply.Body)
			s.status = []byte(strings.TrimSpace(strconv.Itoa(e.Reply.Status) + " " + e.Reply.Reason))
		}
		out = append(out, s)
		return nil
	})
	return out, st, err
}

func TestReadPairsRequestsWithReplies(t *testing.T) {
	t.Parallel()
	getReq, getResp := golden(t, "net4-get-acquire.request"), golden(t, "net4-get-acquire.response")
	putReq, putResp := golden(t, "net4-put-release.request"), golden(t, "net4-put-release.response")
	b := newCap(t, "two.pcapng")
	c1 := conn4("10.0.0.1:50001", "10.0.0.9:42424")
	c2 := conn4("10.0.0.2:50002", "10.0.0.9:42424")
	b.must(b.pw.handshake(c1, b.at(0)))
	b.must(b.pw.handshake(c2, b.at(0)))
	b.exchange(c1, getReq, getResp)
	b.exchange(c2, getReq, getResp)
	b.exchange(c1, putReq, putResp)
	b.exchange(c2, putReq, putResp)
	b.must(b.pw.fin(c1, true, b.at(time.Millisecond)))
	b.must(b.pw.fin(c1, false, b.at(time.Millisecond)))
	path := b.close()

	got, st, err := collect(t, Options{}, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || st.Exchanges != 4 || st.Connections != 2 {
		t.Fatalf("got %d exchanges (stats %d) on %d connections, want 4 on 2", len(got), st.Exchanges, st.Connections)
	}
	if st.Skipped.Any() {
		t.Errorf("clean capture: %s", st.Skipped)
	}
	perConn := map[ConnID][]seen{}
	for _, s := range got {
		perConn[s.ex.Conn] = append(perConn[s.ex.Conn], s)
	}
	for id, ss := range perConn {
		if id.Server != netip.MustParseAddrPort("10.0.0.9:42424") {
			t.Errorf("server side %v", id.Server)
		}
		if len(ss) != 2 || ss[0].ex.Seq != 0 || ss[1].ex.Seq != 1 {
			t.Fatalf("%v: %d exchanges", id, len(ss))
		}
		for i, want := range [][2][]byte{{getReq, getResp}, {putReq, putResp}} {
			if !bytes.Equal(ss[i].req, want[0]) || !bytes.Equal(ss[i].resp, want[1]) {
				t.Errorf("%v exchange %d: not byte-exact:\n%q\n%q", id, i, ss[i].req, ss[i].resp)
			}
			e := ss[i].ex
			if e.Latency() != 300*time.Microsecond {
				t.Errorf("latency %v, want 300µs", e.Latency())
			}
			if e.RequestSize != len(want[0]) || e.ReplySize != len(want[1]) {
				t.Errorf("sizes %d/%d", e.RequestSize, e.ReplySize)
			}
			if e.Request.Body != nil || e.Reply.Body != nil {
				t.Error("bodies kept after fn returned")
			}
		}
	}
}

func TestReadNotACapture(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, []byte("hello, this is text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := collect(t, Options{}, path)
	var fe *FileError
	if !errors.As(err, &fe) || !errors.Is(err, ErrNotCapture) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
}

var _ = protocol.DefaultPort

// numbered returns the i'th request and reply of a test connection: a
// GET exclusive acquire of session i and a 200 reply whose LockCookie is i,
// so that a wrongly paired exchange shows.
func numbered(i int) (req, reply []byte) {
	sid := strings.Repeat(string(rune('a'+i%26)), 24)
	r := &protocol.Request{Method: protocol.MethodGet, Target: protocol.Target("/LM/W3SVC/1/ROOT", sid), Proto: "HTTP/1.1",
		Header: protocol.Header{{Name: "Host", Value: "localhost"}, {Name: "Exclusive", Value: "acquire"}}}
	resp := &protocol.Response{Status: 200, Header: protocol.Header{
		{Name: "LockCookie", Value: strings.Repeat("1", i+1)}, {Name: "Timeout", Value: "20"}}, Body: []byte("session state body")}
	return r.Bytes(), resp.Bytes()
}

// readIDs reads the test capture b and returns the numbers of the
// exchanges it holds (see numbered), failing on any wrongly paired one.
func (b *capBuilder) readIDs(t *testing.T) ([]seen, []int, Stats) {
	t.Helper()
	got, st, err := collect(t, Options{}, b.close())
	if err != nil {
		t.Fatal(err)
	}
	return got, checkPairs(t, got), st
}

// checkPairs fails when an exchange's reply is not the one sent for its
// request: every exchange must be one the capture really holds.
func checkPairs(t *testing.T, got []seen) []int {
	t.Helper()
	var ids []int
	for _, s := range got {
		found := false
		for i := 0; i < 26; i++ {
			req, reply := numbered(i)
			if bytes.Equal(s.req, req) {
				found = true
				ids = append(ids, i)
				if s.resp != nil && !bytes.Equal(s.resp, reply) {
					t.Errorf("request %d paired with a wrong reply %q", i, s.resp)
				}
			}
		}
		if !found {
			t.Errorf("made-up request %q", s.req)
		}
	}
	return ids
}

func TestReadReassemblesOutOfOrderRetransmittedOverlapping(t *testing.T) {
	t.Parallel()
	b := newCap(t, "ooo.pcapng")
	c := conn4("10.0.0.1:50001", "10.0.0.9:42424")
	b.must(b.pw.handshake(c, b.at(0)))
	req, reply := numbered(0)
	s := c.cseq
	ack := tcpFlags{ACK: true}
	// Pieces [0,20) [20,60) [60,end), sent 3rd, 1st, overlapping [10,70),
	// 1st again (retransmission), then 2nd.
	b.must(b.pw.segment(c, true, b.at(time.Millisecond), s+60, ack, req[60:]))
	b.must(b.pw.segment(c, true, b.at(time.Microsecond), s, ack, req[:20]))
	b.must(b.pw.segment(c, true, b.at(time.Microsecond), s+10, ack, req[10:70]))
	b.must(b.pw.segment(c, true, b.at(time.Microsecond), s, ack, req[:20]))
	b.must(b.pw.segment(c, true, b.at(time.Microsecond), s+20, ack, req[20:60]))
	c.cseq += uint32(len(req))
	// The reply in two pieces, the second retransmitted.
	b.must(b.pw.segment(c, false, b.at(time.Millisecond), c.sseq, ack, reply[:30]))
	b.must(b.pw.segment(c, false, b.at(time.Microsecond), c.sseq+30, ack, reply[30:]))
	b.must(b.pw.segment(c, false, b.at(time.Microsecond), c.sseq+30, ack, reply[30:]))
	c.sseq += uint32(len(reply))
	req1, reply1 := numbered(1)
	b.exchange(c, req1, reply1)
	_, ids, st := b.readIDs(t)
	if !slices.Equal(ids, []int{0, 1}) {
		t.Fatalf("exchanges %v, want [0 1]; %s", ids, st.Skipped)
	}
	if st.Skipped.Any() {
		t.Errorf("%s", st.Skipped)
	}
}

func TestReadJoinedMidRequest(t *testing.T) {
	t.Parallel()
	b := newCap(t, "join.pcapng")
	c := conn4("10.0.0.1:50001", "10.0.0.9:42424")
	// No handshake: the capture starts in the middle of request 0.
	req0, reply0 := numbered(0)
	b.exchange(c, req0[25:], reply0)
	req1, reply1 := numbered(1)
	b.exchange(c, req1, reply1)
	_, ids, st := b.readIDs(t)
	if !slices.Equal(ids, []int{1}) {
		t.Fatalf("exchanges %v, want [1]", ids)
	}
	if st.Skipped.JoinedMidStream != 1 || st.Skipped.LostToJoins != 1 {
		t.Errorf("%+v", st.Skipped)
	}
	if !strings.Contains(st.Skipped.String(), "1 connection joined mid-request") {
		t.Errorf("%s", st.Skipped)
	}
}

func TestReadJoinedBetweenMessages(t *testing.T) {
	t.Parallel()
	b := newCap(t, "join-clean.pcapng")
	c := conn4("[fd00::1]:50001", "[fd00::9]:42424")
	for i := 0; i < 3; i++ {
		req, reply := numbered(i)
		b.exchange(c, req, reply)
	}
	got, ids, st := b.readIDs(t)
	if !slices.Equal(ids, []int{0, 1, 2}) {
		t.Fatalf("exchanges %v, want [0 1 2]", ids)
	}
	if st.Skipped.Any() {
		t.Errorf("%s", st.Skipped)
	}
	if got[0].ex.Conn.Client != netip.MustParseAddrPort("[fd00::1]:50001") {
		t.Errorf("client %v", got[0].ex.Conn.Client)
	}
}

func TestReadGapDropsExchangesUpToNextRequestLine(t *testing.T) {
	t.Parallel()
	b := newCap(t, "gap.pcapng")
	c := conn4("10.0.0.1:50001", "10.0.0.9:42424")
	b.must(b.pw.handshake(c, b.at(0)))
	req0, reply0 := numbered(0)
	b.exchange(c, req0, reply0)
	// Request 1's first 40 bytes were never captured.
	req1, reply1 := numbered(1)
	c.cseq += 40
	b.exchange(c, req1[40:], reply1)
	// A reply's middle lost: request 2's exchange is lost too.
	req2, reply2 := numbered(2)
	b.must(b.pw.send(c, true, b.at(time.Millisecond), req2))
	b.must(b.pw.send(c, false, b.at(time.Millisecond), reply2[:10]))
	c.sseq += 10
	b.must(b.pw.send(c, false, b.at(time.Millisecond), reply2[20:]))
	b.at(5 * time.Second)
	for i := 3; i < 6; i++ {
		req, reply := numbered(i)
		b.exchange(c, req, reply)
	}
	_, ids, st := b.readIDs(t)
	if !slices.Equal(ids, []int{0, 3, 4, 5}) {
		t.Fatalf("exchanges %v, want [0 3 4 5]; %s", ids, st.Skipped)
	}
	if st.Skipped.Gaps != 2 || st.Skipped.LostToGaps < 2 || st.Skipped.LostToJoins != 0 {
		t.Errorf("%+v", st.Skipped)
	}
}

// FuzzRead feeds arbitrary file bytes to Read: it must never panic, report
// a damaged file as a FileError, and pass on only exchanges that are
// protocol messages.
func FuzzRead(f *testing.F) {
	for _, name := range []string{"real-service.pcapng", "http-on-42424.pcapng", "tls-on-42424.pcapng", "farm-lo.pcap", "farm-any.pcap"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 4096)])
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.pcap")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		n := 0
		st, err := Read(context.Background(), []string{path}, Options{}, func(e *Exchange) error {
			n++
			checkExchange(t, e)
			return nil
		})
		var fe *FileError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("error %v is not a FileError", err)
		}
		if n != st.Exchanges {
			t.Fatalf("%d exchanges passed on, stats say %d", n, st.Exchanges)
		}
	})
}

// checkExchange fails unless e is a whole protocol exchange: its request
// and reply written back parse again to the same message. (Written back,
// bare LF line ends become CRLF, so sizes may grow.)
func checkExchange(t *testing.T, e *Exchange) {
	t.Helper()
	if e.Op() == 0 {
		t.Fatalf("exchange of no protocol operation: %q", e.Request.Method)
	}
	b := e.Request.Bytes()
	if len(b) < e.RequestSize {
		t.Fatalf("request of %d bytes written back as %d: %q", e.RequestSize, len(b), b)
	}
	again, err := protocol.ParseRequest(b, protocol.Limits{})
	if err != nil {
		t.Fatalf("request does not parse again: %v", err)
	}
	if again.Method != e.Request.Method || again.Target != e.Request.Target || !slices.Equal(again.Header, e.Request.Header) ||
		!bytes.Equal(again.Body, e.Request.Body) {
		t.Fatalf("request %q parses again differently", b)
	}
	if e.Reply != nil {
		if _, err := protocol.ParseResponse(e.Reply.Bytes(), protocol.Limits{}); err != nil {
			t.Fatalf("reply does not parse again: %v", err)
		}
	}
}

// FuzzReadStreams builds a connection from arbitrary client and server
// bytes, cut into segments that arrive in a fuzzed order with losses and
// retransmissions: every exchange passed on must be bytes the client and the
// server really sent, never a made-up one.
func FuzzReadStreams(f *testing.F) {
	req0, reply0 := numbered(0)
	req1, reply1 := numbered(1)
	f.Add(append(req0, req1...), append(reply0, reply1...), []byte{10, 3, 200, 7, 0, 5})
	f.Add(golden(f, "net4-put-release.request"), golden(f, "net4-put-release.response"), []byte{})
	f.Add([]byte("GET x HTTP/1.1\r\n\r\nGET y HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), []byte("200 OK\r\n\r\n423 Locked\r\nContent-Length: 1\r\n\r\nz"), []byte{1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, c2s, s2c, plan []byte) {
		if len(c2s) > 4<<10 || len(s2c) > 4<<10 {
			return
		}
		b := newCap(t, "fuzz.pcapng")
		c := conn4("10.0.0.1:50001", "10.0.0.9:42424")
		if len(plan) > 0 && plan[0]&1 == 1 {
			b.must(b.pw.handshake(c, b.at(0)))
		}
		// Alternate client and server segments; plan bytes choose each
		// segment's length, whether it is lost (skipped), sent twice, or
		// held back to go after the next one.
		ci, si := 0, 0
		p := 0
		next := func() byte {
			if len(plan) == 0 {
				return 64
			}
			v := plan[p%len(plan)]
			p++
			return v
		}
		var held func()
		for ci < len(c2s) || si < len(s2c) {
			for _, fromClient := range []bool{true, false} {
				data, at := s2c, &si
				seq := &c.sseq
				if fromClient {
					data, at, seq = c2s, &ci, &c.cseq
				}
				if *at >= len(data) {
					continue
				}
				v := next()
				n := min(len(data)-*at, int(v%97)+1)
				seg, s := data[*at:*at+n], *seq
				send := func() { b.must(b.pw.segment(c, fromClient, b.at(time.Millisecond), s, tcpFlags{ACK: true}, seg)) }
				switch {
				case v >= 250: // lost
				case v >= 240:
					send()
					send()
				case v >= 230 && held == nil:
					held = send
				default:
					send()
					if held != nil {
						held()
						held = nil
					}
				}
				*at += n
				*seq += uint32(n)
			}
		}
		if held != nil {
			held()
		}
		got, st, err := collect(t, Options{}, b.close())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			if !bytes.Contains(c2s, s.req) {
				t.Fatalf("made-up request %q", s.req)
			}
			if s.resp != nil && (!bytes.Contains(s2c, s.status) || !bytes.Contains(s2c, s.replyBody)) {
				t.Fatalf("made-up reply %q", s.resp)
			}
		}
		if len(got) != st.Exchanges {
			t.Fatalf("%d exchanges, stats %d", len(got), st.Exchanges)
		}
	})
}

// bigCapture writes a capture of about size bytes to dir: the packets of
// farm-lo.pcap repeated, each copy later in time and on its own client
// ports, so that it reads as one long capture of many connections.
func bigCapture(b *testing.B, dir string, size int64) string {
	b.Helper()
	type pkt struct {
		data []byte
		ts   time.Time
	}
	var pkts []pkt
	f, err := os.Open(filepath.Join("testdata", "farm-lo.pcap"))
	if err != nil {
		b.Fatal(err)
	}
	r, err := pcapgo.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		pkts = append(pkts, pkt{data, ci.Timestamp})
	}
	f.Close()
	span := pkts[len(pkts)-1].ts.Sub(pkts[0].ts) + time.Second
	path := filepath.Join(dir, "big.pcap")
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		b.Fatal(err)
	}
	var written int64 = 24
	for copyN := 0; written < size; copyN++ {
		for _, p := range pkts {
			d := bytes.Clone(p.data)
			tcp := 14 + int(d[14]&0x0f)*4
			// The client's port is the one that is not 42424.
			at := tcp
			if binary.BigEndian.Uint16(d[tcp:]) == protocol.DefaultPort {
				at = tcp + 2
			}
			port := binary.BigEndian.Uint16(d[at:])
			binary.BigEndian.PutUint16(d[at:], uint16(1024+(int(port)+copyN*11)%60000))
			ts := p.ts.Add(time.Duration(copyN) * span)
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(d), Length: len(d)}, d); err != nil {
				b.Fatal(err)
			}
			written += int64(16 + len(d))
		}
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkRead reads a 100 MB capture (farm-lo.pcap replicated). MB/s is
// capture bytes per wall-clock second with one core (Read is one
// goroutine); MB/cpu-s the same per CPU second the process used, the
// figure that holds on a busy machine:
//
//	go test -run '^$' -bench BenchmarkRead -benchtime 3x -cpu 1 ./trace
func BenchmarkRead(b *testing.B) {
	path := bigCapture(b, b.TempDir(), 100<<20)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	var exchanges int
	cpu0 := cpuTime()
	for b.Loop() {
		st, err := Read(context.Background(), []string{path}, Options{}, func(*Exchange) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		if st.Skipped.Any() {
			b.Fatalf("%s", st.Skipped)
		}
		exchanges = st.Exchanges
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(exchanges)*float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
	if cpu > 0 {
		// Read is one goroutine: capture bytes per CPU second is MB/s per
		// core, whatever else the machine is running.
		b.ReportMetric(float64(fi.Size())*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
	}
}

// TestReadGapFoundByAcknowledgement: when the peer acknowledges bytes the
// capture never saw, the gap is declared at once, so the next exchange is
// not lost waiting for a retransmission that will never come.
func TestReadGapFoundByAcknowledgement(t *testing.T) {
	t.Parallel()
	b := newCap(t, "ackgap.pcapng")
	c := conn4("10.0.0.1:50001", "10.0.0.9:42424")
	b.must(b.pw.handshake(c, b.at(0)))
	req0, reply0 := numbered(0)
	b.exchange(c, req0, reply0)
	req1, reply1 := numbered(1)
	b.must(b.pw.send(c, true, b.at(time.Millisecond), req1[:30]))
	c.cseq += uint32(len(req1) - 30) // request 1's tail was never captured
	b.must(b.pw.send(c, false, b.at(time.Millisecond), reply1))
	for i := 2; i < 4; i++ {
		req, reply := numbered(i)
		b.exchange(c, req, reply)
	}
	_, ids, st := b.readIDs(t)
	if !slices.Equal(ids, []int{0, 2, 3}) {
		t.Fatalf("exchanges %v, want [0 2 3]; %s", ids, st.Skipped)
	}
	if st.Skipped.Gaps != 1 || st.Skipped.LostToGaps != 1 {
		t.Errorf("%+v", st.Skipped)
	}
}
