package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"unsafe"
)

// Limits bound what a Reader accepts. They are checked before anything is
// allocated for the part they bound: a 4 GB Content-Length is refused from
// the header alone.
type Limits struct {
	MaxLine        int   // longest request, status or header line in bytes, CRLF excluded
	MaxHeaders     int   // most header fields in one message
	MaxHeaderBytes int   // most bytes in the whole head (start line and fields)
	MaxBody        int64 // largest Content-Length
}

// Default limits. P2P State Server uses 2048-byte lines, 40 header lines and
// 20 MiB bodies; the Microsoft service's limits are unknown (PROTOCOL.md f.27).
// Lines here allow a long application path plus an 80-character session id
// after URL encoding.
const (
	DefaultMaxLine        = 4096
	DefaultMaxHeaders     = 40
	DefaultMaxHeaderBytes = 16 << 10
	DefaultMaxBody        = 20 << 20
)

// DefaultLimits returns the limits used when a field of Limits is zero.
func DefaultLimits() Limits {
	return Limits{
		MaxLine:        DefaultMaxLine,
		MaxHeaders:     DefaultMaxHeaders,
		MaxHeaderBytes: DefaultMaxHeaderBytes,
		MaxBody:        DefaultMaxBody,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxLine <= 0 {
		l.MaxLine = d.MaxLine
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = d.MaxHeaders
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxBody <= 0 {
		l.MaxBody = d.MaxBody
	}
	return l
}

// Reader reads requests or responses from a buffered stream. It is not safe
// for concurrent use. After it returns an error the stream position is
// undefined and the connection should be closed.
type Reader struct {
	br   *bufio.Reader
	lim  Limits
	head []byte // scratch for the head, reused between messages
	view bool   // strings alias head (ReadRequestView) instead of copying
	// last holds, per known header name, the value last read for it, and
	// reason the last reason phrase: a value that repeats (the version,
	// the timeout, a body's length) is not allocated again.
	last   [len(knownNames)]string
	reason string
}

// NewReader returns a Reader over r with the given limits (zero fields take
// the defaults). If r is a *bufio.Reader it is used as is.
func NewReader(r io.Reader, lim Limits) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 8<<10)
	}
	return &Reader{br: br, lim: lim.withDefaults()}
}

// Buffered returns how many bytes are already read from the stream but not
// yet consumed (a pipelined request, for instance).
func (r *Reader) Buffered() int { return r.br.Buffered() }

// readLine appends one line (without its line end) to r.head and returns the
// slice of r.head holding it. A bare LF is accepted as a line end; a CR is
// stripped only when it immediately precedes the LF. atStart reports whether
// nothing of this message has been read yet, so that a clean close before a
// message is io.EOF rather than a truncation.
func (r *Reader) readLine(atStart bool) ([]byte, error) {
	start := len(r.head)
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(r.head)-start+len(chunk) > r.lim.MaxLine+2 {
			return nil, errorf(KindLineTooLong, "a line is longer than %d bytes", r.lim.MaxLine)
		}
		if len(r.head)+len(chunk) > r.lim.MaxHeaderBytes+2 {
			return nil, errorf(KindHeaderTooLarge, "the head is larger than %d bytes", r.lim.MaxHeaderBytes)
		}
		r.head = append(r.head, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			if atStart && len(r.head) == start {
				return nil, io.EOF
			}
			return nil, errorf(KindTruncated, "the connection closed in the middle of a line")
		}
		return nil, err
	}
	line := r.head[start : len(r.head)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > r.lim.MaxLine {
		return nil, errorf(KindLineTooLong, "a line is longer than %d bytes", r.lim.MaxLine)
	}
	return line, nil
}

// isToken reports whether b is a non-empty RFC 7230 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChar[c] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return
}()

func hasCTL(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// readFields reads header lines up to the empty line, appending to h.
func (r *Reader) readFields(h Header) (Header, error) {
	for {
		line, err := r.readLine(false)
		if err != nil {
			return h, err
		}
		if len(line) == 0 {
			return h, nil
		}
		if len(h) >= r.lim.MaxHeaders {
			return h, errorf(KindTooManyHeaders, "more than %d header fields", r.lim.MaxHeaders)
		}
		if line[0] == ' ' || line[0] == '\t' {
			return h, errorf(KindMalformed, "folded header line %q", clip(line))
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return h, errorf(KindMalformed, "header line without a name and colon: %q", clip(line))
		}
		name := line[:colon]
		if !isToken(name) {
			return h, errorf(KindMalformed, "bad header name %q", clip(name))
		}
		value := line[colon+1:]
		tight := len(value) == 0 || (value[0] != ' ' && value[0] != '\t')
		value = bytes.Trim(value, " \t")
		if hasCTL(value) {
			return h, errorf(KindMalformed, "control character in header %q", clip(name))
		}
		h = append(h, r.field(name, value, tight))
	}
}

// str returns b as a string: a copy, or in view mode a string that aliases
// the head buffer until the next read.
func (r *Reader) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if r.view {
		return unsafe.String(unsafe.SliceData(b), len(b))
	}
	return string(b)
}

// knownNames are the header names the real client and server send, so that
// reading them allocates nothing.
var knownNames = [...]string{HeaderHost, HeaderExclusive, HeaderTimeout, HeaderContentLength, HeaderExtraFlags,
	HeaderLockCookie, HeaderVersion, HeaderActionFlags, HeaderLockDate, HeaderLockAge, HeaderCacheControl}

// field returns a header field, its name interned when it is spelled as
// the protocol spells it and its value reused when it repeats the last
// value of that name.
func (r *Reader) field(name, value []byte, tight bool) Field {
	for i, k := range knownNames {
		if string(name) == k {
			return Field{Name: k, Value: r.repeat(&r.last[i], value), Tight: tight}
		}
	}
	return Field{Name: r.str(name), Value: r.str(value), Tight: tight}
}

// repeat returns b as a string, reusing *last when it is the same bytes
// (and remembering b otherwise).
func (r *Reader) repeat(last *string, b []byte) string {
	if r.view || len(b) == 0 {
		return r.str(b)
	}
	if string(b) != *last {
		*last = string(b)
	}
	return *last
}

// clip shortens b for an error message.
func clip(b []byte) string {
	const max = 64
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// contentLength returns the body length declared by h: 0 when absent. Several
// fields must agree.
func (r *Reader) contentLength(h Header) (int64, error) {
	n := int64(-1)
	for i := range h {
		f := &h[i]
		if len(f.Name) != len(HeaderContentLength) || !equalFold(f.Name, HeaderContentLength) {
			if equalFold(f.Name, "Transfer-Encoding") {
				return 0, errorf(KindMalformed, "Transfer-Encoding is not part of the protocol")
			}
			continue
		}
		v, err := parseLength(f.Value)
		if err != nil {
			return 0, err
		}
		if n >= 0 && v != n {
			return 0, errorf(KindMalformed, "conflicting Content-Length values %d and %d", n, v)
		}
		n = v
	}
	if n < 0 {
		return 0, nil
	}
	if n > r.lim.MaxBody {
		return 0, errorf(KindBodyTooLarge, "Content-Length %d exceeds the limit of %d bytes", n, r.lim.MaxBody)
	}
	return n, nil
}

func parseLength(s string) (int64, error) {
	if s == "" || len(s) > 19 {
		if len(s) > 19 && isDigits(s) {
			return 0, errorf(KindBodyTooLarge, "Content-Length %s is too large", clip([]byte(s)))
		}
		return 0, errorf(KindMalformed, "bad Content-Length %q", clip([]byte(s)))
	}
	if !isDigits(s) {
		return 0, errorf(KindMalformed, "bad Content-Length %q", s)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errorf(KindBodyTooLarge, "Content-Length %s is too large", s)
	}
	return v, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// readBody reads exactly n bytes into buf (reusing its capacity).
func (r *Reader) readBody(buf []byte, n int64) ([]byte, error) {
	if n == 0 {
		return buf[:0], nil
	}
	if int64(cap(buf)) >= n {
		buf = buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(r.br, buf); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, errorf(KindTruncated, "the connection closed after part of a %d-byte body", n)
		}
		return nil, err
	}
	return buf, nil
}

// ReadRequest reads the next request into req, reusing req's header slice and
// body buffer: req.Body is overwritten by the next ReadRequest into the same
// req, so copy it to keep it. It returns io.EOF when the peer closed cleanly between
// requests, a *Error for malformed or oversized input, or the stream's error.
func (r *Reader) ReadRequest(req *Request) error {
	r.head = r.head[:0]
	line, err := r.readLine(true)
	if err != nil {
		return err
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errorf(KindMalformed, "request line %q is not METHOD TARGET VERSION", clip(line))
	}
	rest := line[sp1+1:]
	sp2 := bytes.LastIndexByte(rest, ' ')
	if sp2 <= 0 {
		return errorf(KindMalformed, "request line %q is not METHOD TARGET VERSION", clip(line))
	}
	method, target, proto := line[:sp1], rest[:sp2], rest[sp2+1:]
	if !isToken(method) {
		return errorf(KindMalformed, "bad method %q", clip(method))
	}
	if len(target) == 0 || bytes.IndexByte(target, ' ') >= 0 || hasCTL(target) {
		return errorf(KindMalformed, "bad request target %q", clip(target))
	}
	if !validProto(proto) {
		return errorf(KindMalformed, "bad protocol version %q (want HTTP/1.1)", clip(proto))
	}
	req.Method = internMethod(method)
	req.Target = r.str(target)
	req.Proto = internProto(proto)
	req.Header, err = r.readFields(req.Header[:0])
	if err != nil {
		return err
	}
	n, err := r.contentLength(req.Header)
	if err != nil {
		return err
	}
	req.Body, err = r.readBody(req.Body, n)
	return err
}

// ReadRequestView is ReadRequest without copies: req.Target, header names
// and values alias the Reader's buffer and stay valid only until the next
// read on this Reader. It allocates nothing for a request of known headers
// once its buffers have grown, which keeps a busy server's garbage near zero.
// Copy any string that must outlive the request.
func (r *Reader) ReadRequestView(req *Request) error {
	r.view = true
	err := r.ReadRequest(req)
	r.view = false
	return err
}

func validProto(p []byte) bool {
	return len(p) == 8 && string(p[:7]) == "HTTP/1." && p[7] >= '0' && p[7] <= '9'
}

func internMethod(m []byte) string {
	switch string(m) {
	case MethodGet:
		return MethodGet
	case MethodPut:
		return MethodPut
	case MethodDelete:
		return MethodDelete
	case MethodHead:
		return MethodHead
	}
	return string(m)
}

func internProto(p []byte) string {
	if string(p) == "HTTP/1.1" {
		return "HTTP/1.1"
	}
	return string(p)
}

// ReadResponse reads the next reply into resp. It accepts an optional
// "HTTP/1.x " prefix on the status line (recorded in resp.Proto) so that a
// conformance check can report it instead of failing to parse. A missing
// Content-Length means an empty body.
func (r *Reader) ReadResponse(resp *Response) error {
	r.head = r.head[:0]
	line, err := r.readLine(true)
	if err != nil {
		return err
	}
	resp.Proto = ""
	if bytes.HasPrefix(line, []byte("HTTP/")) {
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 || !validProto(line[:sp]) {
			return errorf(KindMalformed, "bad status line %q", clip(line))
		}
		resp.Proto = string(line[:sp])
		line = line[sp+1:]
	}
	if len(line) < 3 || !isDigits(string(line[:3])) || (len(line) > 3 && line[3] != ' ') {
		return errorf(KindMalformed, "bad status line %q (want e.g. \"200 OK\")", clip(line))
	}
	resp.Status = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	resp.Reason = ""
	if len(line) > 4 {
		resp.Reason = r.repeat(&r.reason, line[4:])
	}
	resp.Header, err = r.readFields(resp.Header[:0])
	if err != nil {
		return err
	}
	n, err := r.contentLength(resp.Header)
	if err != nil {
		return err
	}
	resp.Body, err = r.readBody(resp.Body, n)
	return err
}

// ParseRequest parses one complete request from b.
func ParseRequest(b []byte, lim Limits) (*Request, error) {
	req := new(Request)
	r := NewReader(bytes.NewReader(b), lim)
	if err := r.ReadRequest(req); err != nil {
		if err == io.EOF {
			return nil, errorf(KindTruncated, "no request")
		}
		return nil, err
	}
	return req, nil
}

// ParseResponse parses one complete reply from b.
func ParseResponse(b []byte, lim Limits) (*Response, error) {
	resp := new(Response)
	r := NewReader(bytes.NewReader(b), lim)
	if err := r.ReadResponse(resp); err != nil {
		if err == io.EOF {
			return nil, errorf(KindTruncated, "no response")
		}
		return nil, err
	}
	return resp, nil
}
