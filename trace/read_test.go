package trace

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
}

func collect(t testing.TB, opt Options, paths ...string) ([]seen, Stats, error) {
	t.Helper()
	var out []seen
	st, err := Read(context.Background(), paths, opt, func(e *Exchange) error {
		s := seen{ex: e, req: e.Request.Bytes()}
		if e.Reply != nil {
			s.resp = e.Reply.Bytes()
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
	got, st, err := collect(t, Options{}, b.close())
	if err != nil {
		t.Fatal(err)
	}
	if ids := checkPairs(t, got); len(ids) != 2 || ids[0] != 0 || ids[1] != 1 {
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
	got, st, err := collect(t, Options{}, b.close())
	if err != nil {
		t.Fatal(err)
	}
	if ids := checkPairs(t, got); len(ids) != 1 || ids[0] != 1 {
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
	got, st, err := collect(t, Options{}, b.close())
	if err != nil {
		t.Fatal(err)
	}
	if ids := checkPairs(t, got); len(ids) != 3 {
		t.Fatalf("exchanges %v, want 3", ids)
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
	got, st, err := collect(t, Options{}, b.close())
	if err != nil {
		t.Fatal(err)
	}
	ids := checkPairs(t, got)
	want := []int{0, 3, 4, 5}
	if len(ids) != len(want) {
		t.Fatalf("exchanges %v, want %v; %s", ids, want, st.Skipped)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("exchanges %v, want %v", ids, want)
		}
	}
	if st.Skipped.Gaps != 2 || st.Skipped.LostToGaps < 2 || st.Skipped.LostToJoins != 0 {
		t.Errorf("%+v", st.Skipped)
	}
}
