package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/aspstate/aspstate/protocol"
)

// maxTranscript bounds the bytes one spec's transcript keeps; the 200-connection
// spec would otherwise record megabytes nobody reads.
const maxTranscript = 256 << 10

// wireEvent is one chunk of bytes seen on a connection.
type wireEvent struct {
	conn int
	sent bool
	at   time.Duration
	data []byte
	note bool // commentary by the suite, not wire bytes
}

// recorder keeps the wire bytes of every connection one spec opens, in order.
// Taps run on the goroutines doing the I/O, so it is locked.
type recorder struct {
	mu        sync.Mutex
	start     time.Time
	events    []wireEvent
	size      int
	conns     int
	truncated bool
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

// newConn numbers a new connection and returns its tap.
func (r *recorder) newConn() (int, func(sent bool, b []byte)) {
	r.mu.Lock()
	r.conns++
	n := r.conns
	r.mu.Unlock()
	return n, func(sent bool, b []byte) { r.add(n, sent, b) }
}

// note records a line of commentary (a close, a timeout) in the transcript.
func (r *recorder) note(conn int, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, wireEvent{conn: conn, at: time.Since(r.start), data: []byte(fmt.Sprintf(format, args...)), note: true})
}

func (r *recorder) add(conn int, sent bool, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.size+len(b) > maxTranscript {
		r.truncated = true
		return
	}
	r.size += len(b)
	at := time.Since(r.start)
	if n := len(r.events); n > 0 {
		last := &r.events[n-1]
		if last.conn == conn && last.sent == sent && !last.note {
			last.data = append(last.data, b...)
			return
		}
	}
	r.events = append(r.events, wireEvent{conn: conn, sent: sent, at: at, data: append([]byte(nil), b...)})
}

// render returns the transcript as text: one line per wire line, "→" for bytes
// the suite sent and "←" for bytes the server sent, each prefixed with the
// connection number and the time since the spec started. CR, LF and other
// control bytes are shown escaped so that "Timeout:20\r\n" reads exactly.
func (r *recorder) render() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.events {
		if e.note {
			fmt.Fprintf(&b, "#%d %8s  ·· %s\n", e.conn, fmtDur(e.at), e.data)
			continue
		}
		arrow := "←"
		if e.sent {
			arrow = "→"
		}
		for _, line := range splitWireLines(e.data) {
			fmt.Fprintf(&b, "#%d %8s  %s %s\n", e.conn, fmtDur(e.at), arrow, line)
		}
	}
	if r.truncated {
		fmt.Fprintf(&b, "(transcript truncated at %d bytes)\n", maxTranscript)
	}
	return b.String()
}

func fmtDur(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds()*1000, 'f', 1, 64) + "ms"
}

// splitWireLines splits data after each LF and escapes each piece. Long
// pieces (bodies) are clipped in the middle.
func splitWireLines(data []byte) []string {
	var out []string
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var piece []byte
		if i < 0 {
			piece, data = data, nil
		} else {
			piece, data = data[:i+1], data[i+1:]
		}
		out = append(out, escapeWire(piece))
	}
	return out
}

func escapeWire(b []byte) string {
	const clipAt = 160
	var s strings.Builder
	write := func(p []byte) {
		for _, c := range p {
			switch {
			case c == '\r':
				s.WriteString(`\r`)
			case c == '\n':
				s.WriteString(`\n`)
			case c == '\t':
				s.WriteString(`\t`)
			case c == '\\':
				s.WriteString(`\\`)
			case c < 0x20 || c >= 0x7f:
				fmt.Fprintf(&s, `\x%02x`, c)
			default:
				s.WriteByte(c)
			}
		}
	}
	if len(b) > clipAt {
		write(b[:clipAt/2])
		fmt.Fprintf(&s, "…(%d bytes)…", len(b)-clipAt)
		write(b[len(b)-clipAt/2:])
	} else {
		write(b)
	}
	return s.String()
}

// rawConn is a recorded TCP connection for specs that send bytes no client
// would: half requests, garbage, pipelined batches.
type rawConn struct {
	nc  *net.TCPConn
	id  int
	tap func(bool, []byte)
	rec *recorder
}

func (c *rawConn) send(b []byte) error {
	if c.tap != nil {
		c.tap(true, b)
	}
	_, err := c.nc.Write(b)
	return err
}

// closeWrite half-closes the connection: the server reads EOF after the bytes
// sent so far, as if the client had finished.
func (c *rawConn) closeWrite() error {
	if c.rec != nil {
		c.rec.note(c.id, "suite half-closed the connection (no more bytes will be sent)")
	}
	return c.nc.CloseWrite()
}

// Close closes the connection.
func (c *rawConn) Close() error { return c.nc.Close() }

// readUntilClose reads until the server closes the connection or d passes.
// It returns the bytes and whether the server closed (EOF or reset) in time.
// Only rules about closing itself use it; rules about replies use
// awaitReplies, which returns as soon as the replies are there.
func (c *rawConn) readUntilClose(d time.Duration) ([]byte, bool, error) {
	x, err := c.await(d, func([]byte) bool { return false })
	return x.data, x.closed, err
}

// exchange is what a raw connection brought back: the bytes, the replies
// parsed from them, and whether the server closed the connection.
type exchange struct {
	data    []byte
	replies []*protocol.Response
	// perr is set when the bytes are not well-formed replies; a reply cut
	// short by the end of the wait or the close counts as malformed too.
	perr   error
	closed bool
	waited time.Duration
}

// awaitReplies reads until n complete replies arrived, the server closed the
// connection, the bytes can no longer be replies, or d passed: a reply that
// arrived is never waited on.
func (c *rawConn) awaitReplies(n int, d time.Duration) (exchange, error) {
	return c.await(d, func(data []byte) bool {
		replies, err := parseReplies(data)
		if err != nil {
			return !errors.Is(err, io.ErrUnexpectedEOF) // malformed: nothing to wait for
		}
		return len(replies) >= n
	})
}

// await reads until done(bytes so far) is true, the server closes, or d
// passes, then parses what arrived.
func (c *rawConn) await(d time.Duration, done func([]byte) bool) (exchange, error) {
	start := time.Now()
	_ = c.nc.SetReadDeadline(start.Add(d))
	defer c.nc.SetReadDeadline(time.Time{})
	buf := make([]byte, 32<<10)
	var x exchange
	var rerr error
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			x.data = append(x.data, buf[:n]...)
			if c.tap != nil {
				c.tap(false, buf[:n])
			}
			if done(x.data) {
				break
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if c.rec != nil {
					c.rec.note(c.id, "server neither closed nor sent more for %v", d)
				}
				break
			}
			if c.rec != nil {
				c.rec.note(c.id, "server closed the connection (%v)", err)
			}
			x.closed = true
			if !errors.Is(err, io.EOF) && !isReset(err) {
				rerr = err
			}
			break
		}
	}
	x.waited = time.Since(start)
	x.replies, x.perr = parseReplies(x.data)
	return x, rerr
}

// judge checks an exchange the way a reader reasons about it: bytes that are
// not replies first, then each reply's status, then — only when nothing
// arrived — whether the server at least closed. It fails the spec with the
// first thing that is actually wrong.
func (x exchange) judge(what string, allow ...int) {
	GinkgoHelper()
	if x.perr != nil {
		Fail(fmt.Sprintf("%s: the server's bytes are not well-formed replies (%v): %q", what, x.perr, clip(x.data)))
	}
	for _, r := range x.replies {
		if !slices.Contains(allow, r.Status) {
			Fail(fmt.Sprintf("%s: expected %s or a clean close, observed the reply %s", what, statusList(allow), describe(r)))
		}
	}
	if len(x.replies) == 0 && !x.closed {
		Fail(fmt.Sprintf("%s: the server neither answered nor closed the connection within %v", what, x.waited.Round(time.Millisecond)))
	}
}

// statusList writes statuses as "400" or "200 or 400".
func statusList(s []int) string {
	parts := make([]string, len(s))
	for i, n := range s {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, " or ")
}

// readReplies reads exactly n replies (or fails), for pipelined batches and
// byte-by-byte delivery.
func (c *rawConn) readReplies(ctx context.Context, n int) ([]*protocol.Response, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetReadDeadline(dl)
		defer c.nc.SetReadDeadline(time.Time{})
	}
	src := readerFunc(func(p []byte) (int, error) {
		k, err := c.nc.Read(p)
		if k > 0 && c.tap != nil {
			c.tap(false, p[:k])
		}
		return k, err
	})
	rd := protocol.NewReader(src, protocol.Limits{})
	var out []*protocol.Response
	for i := 0; i < n; i++ {
		resp := new(protocol.Response)
		if err := rd.ReadResponse(resp); err != nil {
			return out, fmt.Errorf("reply %d of %d: %w", i+1, n, err)
		}
		out = append(out, resp)
	}
	if rd.Buffered() > 0 {
		return out, fmt.Errorf("%d unexpected bytes after reply %d", rd.Buffered(), n)
	}
	return out, nil
}

type readerFunc func([]byte) (int, error)

// Read calls f.
func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func isReset(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe")
}

// parseReplies parses every reply in b; err is set when the bytes are not
// well-formed replies (a partial reply at the end included).
func parseReplies(b []byte) (replies []*protocol.Response, err error) {
	rd := protocol.NewReader(bytes.NewReader(b), protocol.Limits{})
	for {
		resp := new(protocol.Response)
		e := rd.ReadResponse(resp)
		if e == io.EOF {
			return replies, nil
		}
		if e != nil {
			return replies, e
		}
		replies = append(replies, resp)
	}
}

// request builds request bytes by hand: the request line, "Host: localhost",
// the given header lines verbatim, the blank line, and body. When body is not
// nil a "Content-Length:N" line (client spelling) is added after the headers.
func request(method, target string, body []byte, headers ...string) []byte {
	var b bytes.Buffer
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != nil {
		b.WriteString("Content-Length:" + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// refusedTimeout is the header rules use to provoke a 400 when the 400 is
// not what they test: a well-formed Int32 above the one-year maximum, which
// Microsoft's managed code refuses (PROTOCOL.md c.2 row 2, REF) whatever the
// native parser's leniency about the number's spelling.
const refusedTimeout = "Timeout:525601"

// header returns the value of name in resp.
func header(resp *protocol.Response, name string) (string, bool) {
	return resp.Header.Get(name)
}

// absent is what hv returns for a header that is not there.
const absent = "<absent>"

// hv returns the value of name in resp, or "<absent>".
func hv(resp *protocol.Response, name string) string {
	if v, ok := resp.Header.Get(name); ok {
		return v
	}
	return absent
}

func itoa(n int) string { return strconv.Itoa(n) }

// headerInt returns the value of name as an integer; ok is false when the
// header is absent or not a number.
func headerInt(resp *protocol.Response, name string) (int64, bool) {
	v, ok := resp.Header.Get(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// describe summarises a reply for failure messages: status line and header names.
func describe(resp *protocol.Response) string {
	if resp == nil {
		return "no reply"
	}
	var b strings.Builder
	if resp.Proto != "" {
		b.WriteString(resp.Proto + " ")
	}
	fmt.Fprintf(&b, "%d %s", resp.Status, resp.Reason)
	for _, f := range resp.Header {
		fmt.Fprintf(&b, " | %s: %s", f.Name, f.Value)
	}
	if len(resp.Body) > 0 {
		fmt.Fprintf(&b, " | body %d bytes", len(resp.Body))
	}
	return b.String()
}
