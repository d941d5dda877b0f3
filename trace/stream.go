package trace

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/aspstate/aspstate/protocol"
)

// factory makes one conn per TCP connection on the port.
type factory struct{ r *reader }

// New is called by the assembler for the first packet of a connection.
func (f *factory) New(netFlow, tcpFlow gopacket.Flow, tcp *layers.TCP, _ reassembly.AssemblerContext) reassembly.Stream {
	src, dst := netFlow.Endpoints()
	c := &conn{r: f.r, firstC2S: uint16(tcp.DstPort) == f.r.port}
	a, b := addrPort(src.Raw(), uint16(tcp.SrcPort)), addrPort(dst.Raw(), uint16(tcp.DstPort))
	if c.firstC2S {
		c.id = ConnID{Client: a, Server: b}
	} else {
		c.id = ConnID{Client: b, Server: a}
	}
	c.req.isReq, c.req.dec = true, f.r.reqDec
	c.rep.dec = f.r.repDec
	return c
}

// lossReason says why a connection lost exchanges, so that they are counted
// under the right heading of Skipped.
type lossReason int

const (
	lossNone lossReason = iota
	lossJoin
	lossGap
	lossUndecodable
)

// conn is one TCP connection: the request half (client to server), the
// reply half, and the requests waiting for their replies.
type conn struct {
	r        *reader
	id       ConnID
	firstC2S bool // the first packet the assembler saw went client -> server
	req, rep half
	pending  []pendingRequest
	seq      int
	// lossy is set once the connection lost bytes (a join, a gap, an
	// undecodable message): from then on a reply is paired with the last
	// request that ended before the reply began, never simply the oldest.
	lossy   bool
	reason  lossReason
	joined  bool // counted in Skipped.JoinedMidStream
	foreign bool // counted in Stats.Foreign
	counted bool // counted in Stats.Connections
}

// pendingRequest is a whole request waiting for its reply.
type pendingRequest struct {
	req        *protocol.Request
	start, end time.Time
	size       int
}

// half is one direction of a connection: the bytes not yet decoded and the
// capture time of each.
type half struct {
	isReq   bool
	started bool // Accept saw a packet in this direction
	syn     bool // and the first was a SYN: the capture holds the start
	// next is the sequence number after the bytes delivered so far, maxEnd
	// after the highest byte seen: beyond next means bytes wait for a hole.
	next, maxEnd uint32
	// synced: buf[0] is the first byte of a message. An unsynced half drops
	// bytes up to the next start line (request line or status line).
	synced bool
	// lineStart: buf[0] follows a line end or begins a packet after a join or
	// a gap, so a start line may begin there.
	lineStart bool
	dropped   bool // bytes were dropped before the first message
	// partialLost: the message begun in buf is already counted as lost
	// (its reply came without it).
	partialLost bool
	seenData    bool
	buf         []byte
	marks       []mark
	want        int // do not try to decode before len(buf) reaches want
	dec         *decoder
}

// decoder is the codec state of one direction, shared by every connection:
// decoding is synchronous, so one protocol.Reader (and its buffers) serves
// them all. req and resp hold the last message decoded.
type decoder struct {
	isReq bool
	lim   protocol.Limits
	src   bytes.Reader
	br    *bufio.Reader
	rd    *protocol.Reader
	req   protocol.Request
	resp  protocol.Response
}

func newDecoder(lim protocol.Limits, isReq bool) *decoder {
	d := &decoder{isReq: isReq, lim: lim}
	if d.lim.MaxLine <= 0 {
		d.lim.MaxLine = protocol.DefaultMaxLine
	}
	d.br = bufio.NewReaderSize(&d.src, 16<<10)
	d.rd = protocol.NewReader(d.br, lim)
	return d
}

// mark is the capture time of the bytes from off on.
type mark struct {
	off int
	ts  time.Time
}

// Accept takes every packet; a direction whose start the capture missed is
// started at its first packet (and resynchronised at a start line).
func (c *conn) Accept(tcp *layers.TCP, _ gopacket.CaptureInfo, dir reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, _ reassembly.AssemblerContext) bool {
	h := c.half(dir)
	if !h.started && nextSeq == -1 {
		h.started = true
		*start = true
		h.synced = tcp.SYN
		h.syn = tcp.SYN
		h.lineStart = true
		h.next = tcp.Seq
		if tcp.SYN {
			h.next++
		}
		h.maxEnd = h.next
	}
	if end := tcp.Seq + uint32(len(tcp.Payload)); len(tcp.Payload) > 0 && seqAfter(end, h.maxEnd) {
		h.maxEnd = end
	}
	// The peer acknowledges bytes of the other direction that the capture
	// never delivered, while later bytes wait behind them: the capture lost
	// them and no retransmission will come. Have the reader push the
	// waiting bytes through as a gap now, then offer this packet again,
	// so that its data (often the reply) meets its request.
	if o := c.other(h); tcp.ACK && !c.r.resubmitting && o.started &&
		seqAfter(o.maxEnd, o.next) && seqAfter(tcp.Ack, o.next) {
		c.r.flushNow = true
		return false
	}
	return true
}

// seqAfter reports whether TCP sequence number a is after b (modulo 2^32).
func seqAfter(a, b uint32) bool { return int32(a-b) > 0 }

// other returns the opposite half of h.
func (c *conn) other(h *half) *half {
	if h == &c.req {
		return &c.rep
	}
	return &c.req
}

func (c *conn) half(dir reassembly.TCPFlowDirection) *half {
	if (dir == reassembly.TCPDirClientToServer) == c.firstC2S {
		return &c.req
	}
	return &c.rep
}

// ReassembledSG takes the next bytes of one direction in order.
func (c *conn) ReassembledSG(sg reassembly.ScatterGather, _ reassembly.AssemblerContext) {
	dir, _, _, skip := sg.Info()
	h := c.half(dir)
	n, _ := sg.Lengths()
	h.next += uint32(max(skip, 0) + n)
	if skip > 0 {
		c.gap(h)
	}
	if n == 0 {
		return
	}
	data := sg.Fetch(n)
	c.detectForeign(h, data)
	h.addMarks(sg, n)
	h.buf = append(h.buf, data...)
	h.seenData = true
	if !c.counted {
		// Connections are counted once they carry data, not for a stray
		// ACK after a close.
		c.counted = true
		c.r.stats.Connections++
	}
	if h.isReq {
		c.requests()
	} else {
		c.replies()
	}
}

// ReassemblyComplete is called when both directions ended (FIN, RST, an
// idle close or the capture's end): requests still waiting are passed on
// without a reply.
func (c *conn) ReassemblyComplete(_ reassembly.AssemblerContext) bool {
	for _, p := range c.pending {
		if !c.foreign {
			c.r.stats.Skipped.Unanswered++
		}
		c.emit(p, nil, time.Time{}, time.Time{}, 0)
	}
	c.pending = nil
	return true
}

// addMarks records the capture times of the n bytes about to be appended.
// The chunks of a reassembled run are found by where the capture info
// changes.
func (h *half) addMarks(sg reassembly.ScatterGather, n int) {
	base := len(h.buf)
	add := func(off int, ts time.Time) {
		if k := len(h.marks); k > 0 && h.marks[k-1].ts.Equal(ts) {
			return
		}
		h.marks = append(h.marks, mark{base + off, ts})
	}
	if sg.Stats().Chunks <= 1 {
		add(0, sg.CaptureInfo(0).Timestamp)
		return
	}
	for off := 0; off < n; {
		ts := sg.CaptureInfo(off).Timestamp
		add(off, ts)
		// The first offset after off whose time differs: binary search.
		lo, hi := off+1, n
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if sg.CaptureInfo(mid).Timestamp.Equal(ts) {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		off = lo
	}
}

// at returns the capture time of byte off of buf.
func (h *half) at(off int) time.Time {
	i := sort.Search(len(h.marks), func(i int) bool { return h.marks[i].off > off })
	if i == 0 {
		if len(h.marks) == 0 {
			return time.Time{}
		}
		return h.marks[0].ts
	}
	return h.marks[i-1].ts
}

// drop removes the first n bytes of buf and their marks.
func (h *half) drop(n int) {
	if n <= 0 {
		return
	}
	if n >= len(h.buf) {
		h.buf = h.buf[:0]
		if cap(h.buf) > 64<<10 {
			h.buf = nil // a large body passed: do not keep its buffer for the connection's life
		}
		h.marks = h.marks[:0]
		h.want = 0
		return
	}
	h.buf = h.buf[:copy(h.buf, h.buf[n:])]
	i := sort.Search(len(h.marks), func(i int) bool { return h.marks[i].off > n })
	// marks[i-1] covers byte n: it becomes the first mark, at 0.
	if i > 0 {
		i--
	}
	m := h.marks[:copy(h.marks, h.marks[i:])]
	for k := range m {
		m[k].off -= n
	}
	if len(m) > 0 && m[0].off < 0 {
		m[0].off = 0
	}
	h.marks = m
	h.want = max(0, h.want-n)
}

// reset forgets everything buffered: the half is unsynced.
func (h *half) reset() {
	h.partialLost = false
	h.drop(len(h.buf))
	h.synced = false
	h.lineStart = true
}

// decode tries to read one message from buf. It returns the message's length,
// 0 when more bytes are needed, or the codec's error for bytes that are not
// [MS-ASP].
func (h *half) decode() (int, error) {
	if len(h.buf) == 0 || len(h.buf) < h.want {
		return 0, nil
	}
	d := h.dec
	d.src.Reset(h.buf)
	d.br.Reset(&d.src)
	var err error
	var hdr *protocol.Header
	if h.isReq {
		d.req.Body = d.req.Body[:0]
		err = d.rd.ReadRequest(&d.req)
		hdr = &d.req.Header
	} else {
		err = d.rd.ReadResponse(&d.resp)
		hdr = &d.resp.Header
	}
	if err == nil {
		h.want = 0
		return len(h.buf) - d.src.Len() - d.br.Buffered(), nil
	}
	if err != io.EOF && !errors.Is(err, protocol.ErrTruncated) {
		return 0, err
	}
	// More bytes are needed. When the head is whole the codec has read its
	// Content-Length, so the whole message's length is known: wait for it
	// rather than decoding again at every packet of a large body.
	h.want = len(h.buf) + 1
	if end := headEnd(h.buf); end > 0 {
		if v, ok := hdr.Get(protocol.HeaderContentLength); ok {
			if n, err := strconv.Atoi(v); err == nil && end+n > h.want {
				h.want = end + n
			}
		}
	}
	return 0, nil
}

// headEnd returns the length of the head at the start of b (through the
// empty line that ends it), or -1 when b holds no empty line yet. Lines end
// at LF, an optional CR before it, as the codec reads them.
func headEnd(b []byte) int {
	for i := 1; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if b[i-1] == '\n' || (b[i-1] == '\r' && i >= 2 && b[i-2] == '\n') {
			return i + 1
		}
	}
	return -1
}

// next decodes the next whole message buffered on h, resynchronising first
// and skipping bytes the codec refuses. It returns the message's length, 0
// when more bytes are needed.
func (c *conn) next(h *half) int {
	for len(h.buf) > 0 {
		if !h.synced && !c.resync(h) {
			return 0
		}
		n, err := h.decode()
		if err != nil {
			c.undecodable(h)
			continue
		}
		return n
	}
	return 0
}

// requests decodes the whole requests buffered on the request half.
func (c *conn) requests() {
	h := &c.req
	for {
		n := c.next(h)
		if n == 0 {
			return
		}
		p := pendingRequest{start: h.at(0), end: h.at(n - 1), size: n}
		req := &h.dec.req
		if protocol.OpOf(req) == 0 {
			// Well formed, but not a message of the protocol (POST, an
			// unknown Exclusive value): not an exchange.
			h.drop(n)
			c.r.stats.Skipped.Undecodable++
			c.lost(lossUndecodable)
			continue
		}
		p.req = &protocol.Request{Method: req.Method, Target: req.Target, Proto: req.Proto,
			Header: slices.Clone(req.Header), Body: bytes.Clone(req.Body)}
		h.drop(n)
		h.lineStart = true
		h.partialLost = false
		c.pending = append(c.pending, p)
	}
}

// replies decodes the whole replies buffered on the reply half and pairs
// each with its request.
func (c *conn) replies() {
	h := &c.rep
	for {
		n := c.next(h)
		if n == 0 {
			return
		}
		start, end := h.at(0), h.at(n-1)
		if h.dec.resp.Proto != "" {
			// "HTTP/1.1 200 OK": an HTTP server, not the state service.
			c.markForeign(false)
			h.drop(n)
			c.r.stats.Skipped.Undecodable++
			c.lost(lossUndecodable)
			continue
		}
		c.reply(start, end, n)
		h.drop(n)
		h.lineStart = true
	}
}

// reply pairs the reply decoded into c.rep.resp with its request and passes
// the exchange on.
func (c *conn) reply(start, end time.Time, size int) {
	i := -1
	if !c.lossy {
		if len(c.pending) > 0 {
			i = 0
		}
	} else {
		// After a loss, a reply belongs to the last request that ended
		// before it began; older ones lost their replies.
		for j := range c.pending {
			if !c.pending[j].end.After(start) {
				i = j
			}
		}
	}
	if i < 0 {
		// A reply to a request the capture did not hold whole: sent
		// before the capture began, or, on a connection whose start the
		// capture holds, hidden by a gap not yet found.
		if c.reason == lossNone {
			c.reason = lossJoin
			if c.req.syn {
				c.reason = lossGap
			}
		}
		if c.req.partialLost {
			return // this request's loss is counted already
		}
		c.countLost(1)
		// The request half of a lost exchange may still hold its start:
		// do not count it again when its gap is found.
		c.req.partialLost = c.req.synced && len(c.req.buf) > 0
		return
	}
	c.countLost(i)
	p := c.pending[i]
	c.pending = c.pending[i+1:]
	d := c.rep.dec
	resp := &protocol.Response{Proto: d.resp.Proto, Status: d.resp.Status, Reason: d.resp.Reason,
		Header: slices.Clone(d.resp.Header), Body: d.resp.Body}
	c.emit(p, resp, start, end, size)
}

// emit passes one exchange to fn, then takes its bodies back.
func (c *conn) emit(p pendingRequest, resp *protocol.Response, start, end time.Time, size int) {
	if c.foreign {
		return // a connection of another protocol has no exchanges
	}
	e := &Exchange{Conn: c.id, Seq: c.seq, Request: p.req, Reply: resp,
		RequestStart: p.start, RequestEnd: p.end, ReplyStart: start, ReplyEnd: end,
		RequestSize: p.size, ReplySize: size}
	c.seq++
	c.r.stats.Exchanges++
	if c.r.err == nil {
		c.r.err = c.r.fn(e)
	}
	p.req.Body = nil
	if resp != nil {
		resp.Body = nil
	}
}

// countLost counts n exchanges lost under the connection's loss reason.
func (c *conn) countLost(n int) {
	if n <= 0 {
		return
	}
	s := &c.r.stats.Skipped
	switch c.reason {
	case lossGap:
		s.LostToGaps += n
	case lossJoin:
		s.LostToJoins += n
	default:
		s.Unanswered += n
	}
}

// lost records a loss on the connection: from now on replies are paired by
// time.
func (c *conn) lost(r lossReason) {
	c.lossy = true
	c.reason = r
}

// gap handles bytes the capture lost in one direction: the message they cut
// is lost; on the reply side, so are the replies of every waiting request.
func (c *conn) gap(h *half) {
	c.r.stats.Skipped.Gaps++
	c.lost(lossGap)
	if h.isReq {
		if h.synced && len(h.buf) > 0 && !h.partialLost {
			c.countLost(1)
		}
	} else {
		c.countLost(len(c.pending))
		c.pending = c.pending[:0]
	}
	h.reset()
}

// undecodable handles bytes the codec refused: the half is resynchronised
// at the next start line after them.
func (c *conn) undecodable(h *half) {
	c.r.stats.Skipped.Undecodable++
	c.lost(lossUndecodable)
	h.synced = false
	h.lineStart = false
	h.drop(1)
}

// resync drops bytes up to the next start line of h's direction and reports
// whether buf now begins with one.
func (c *conn) resync(h *half) bool {
	i := 0
	if !h.lineStart {
		nl := bytes.IndexByte(h.buf, '\n')
		if nl < 0 {
			c.resyncDrop(h, len(h.buf))
			return false
		}
		i = nl + 1
	}
	for {
		switch startLine(h.buf[i:], h.isReq, h.dec.lim.MaxLine) {
		case lineYes:
			c.resyncDrop(h, i)
			h.synced = true
			return true
		case lineMore:
			c.resyncDrop(h, i)
			h.lineStart = true
			return false
		}
		nl := bytes.IndexByte(h.buf[i:], '\n')
		if nl < 0 {
			c.resyncDrop(h, len(h.buf))
			h.lineStart = false
			return false
		}
		i += nl + 1
	}
}

// resyncDrop drops n bytes while resynchronising; bytes dropped before the
// first message of a direction whose start the capture missed mean the
// connection was joined mid-message.
func (c *conn) resyncDrop(h *half, n int) {
	if n <= 0 {
		return
	}
	if !h.dropped && c.reason == lossNone && !c.joined {
		c.joined = true
		c.r.stats.Skipped.JoinedMidStream++
		c.lost(lossJoin)
	}
	h.dropped = true
	h.drop(n)
}

type lineVerdict int

const (
	lineNo   lineVerdict = iota // b does not begin with a start line
	lineYes                     // b begins with a whole start line
	lineMore                    // b may begin with one: more bytes are needed
)

// methods are the protocol's verbs followed by the space of a request line.
var methods = [...]string{"GET ", "PUT ", "DELETE ", "HEAD "}

// startLine reports whether b begins with a request line (METHOD TARGET
// HTTP/1.x) or a status line ("200 OK", or "HTTP/1.1 200 OK" which is then
// reported as foreign), the places where a lost stream is picked up again.
func startLine(b []byte, isReq bool, maxLine int) lineVerdict {
	nl := bytes.IndexByte(b, '\n')
	line := b
	if nl >= 0 {
		line = b[:nl]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	} else if len(b) > maxLine+2 {
		return lineNo
	}
	if isReq {
		return requestLine(line, nl >= 0)
	}
	return statusLine(line, nl >= 0)
}

func requestLine(line []byte, whole bool) lineVerdict {
	for _, m := range methods {
		if len(line) < len(m) {
			if !whole && string(line) == m[:len(line)] {
				return lineMore
			}
			continue
		}
		if string(line[:len(m)]) != m {
			continue
		}
		rest := line[len(m):]
		if !whole {
			if bytes.IndexFunc(rest, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
				return lineNo
			}
			return lineMore
		}
		sp := bytes.IndexByte(rest, ' ')
		if sp <= 0 || bytes.IndexFunc(rest[:sp], func(r rune) bool { return r <= 0x20 || r == 0x7f }) >= 0 {
			return lineNo
		}
		p := rest[sp+1:]
		if len(p) == 8 && string(p[:7]) == "HTTP/1." && p[7] >= '0' && p[7] <= '9' {
			return lineYes
		}
		return lineNo
	}
	return lineNo
}

func statusLine(line []byte, whole bool) lineVerdict {
	if bytes.HasPrefix(line, []byte("HTTP/1.")) {
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			if whole || len(line) > 8 {
				return lineNo
			}
			return lineMore
		}
		line = line[sp+1:]
	} else if !whole && len(line) < 7 && bytes.HasPrefix([]byte("HTTP/1."), line) {
		return lineMore
	}
	for i := 0; i < 3; i++ {
		if i == len(line) {
			if whole {
				return lineNo
			}
			return lineMore
		}
		if line[i] < '0' || line[i] > '9' {
			return lineNo
		}
	}
	if len(line) > 3 && line[3] != ' ' {
		return lineNo
	}
	for _, c := range line[3:] {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return lineNo
		}
	}
	if !whole {
		return lineMore
	}
	return lineYes
}

// detectForeign notes a connection whose first bytes are a TLS handshake.
func (c *conn) detectForeign(h *half, data []byte) {
	if h.seenData || c.foreign || len(data) < 3 {
		return
	}
	// A TLS record: handshake (22) or alert (21), version 3.x.
	if (data[0] == 22 || data[0] == 21) && data[1] == 3 && data[2] <= 4 {
		c.markForeign(true)
	}
}

func (c *conn) markForeign(tls bool) {
	if c.foreign {
		return
	}
	c.foreign = true
	if tls {
		c.r.stats.Foreign.TLS++
	} else {
		c.r.stats.Foreign.HTTP++
	}
}
