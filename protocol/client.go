package protocol

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Op names one protocol message (SPEC 2.2.5). Load results are recorded per Op.
type Op int

// The protocol messages, as the spec names them.
const (
	OpGet              Op = iota + 1 // GET: Get_Request
	OpGetExclusive                   // GET Exclusive: acquire: GetExclusive_Request
	OpReleaseExclusive               // GET Exclusive: release: ReleaseExclusive_Request
	OpSet                            // PUT: Set_Request
	OpRemove                         // DELETE: Remove_Request
	OpResetTimeout                   // HEAD: ResetTimeout_Request
)

// Ops lists every Op in protocol order.
var Ops = []Op{OpGet, OpGetExclusive, OpReleaseExclusive, OpSet, OpRemove, OpResetTimeout}

var opNames = [...]string{"", "get", "get-exclusive", "release", "set", "remove", "reset-timeout"}

// String returns the short lowercase name used in results: get,
// get-exclusive, release, set, remove, reset-timeout.
func (o Op) String() string {
	if o > 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// ParseOp returns the Op whose String is s.
func ParseOp(s string) (Op, bool) {
	for _, o := range Ops {
		if o.String() == s {
			return o, true
		}
	}
	return 0, false
}

// OpOf classifies a request: which message it is. It returns 0 for a verb or
// Exclusive value that is not part of the protocol.
func OpOf(req *Request) Op {
	switch req.Method {
	case MethodGet:
		v, ok := req.Header.Get(HeaderExclusive)
		switch {
		case !ok:
			return OpGet
		case strings.EqualFold(v, ExclusiveAcquire):
			return OpGetExclusive
		case strings.EqualFold(v, ExclusiveRelease):
			return OpReleaseExclusive
		}
		return 0
	case MethodPut:
		return OpSet
	case MethodDelete:
		return OpRemove
	case MethodHead:
		return OpResetTimeout
	}
	return 0
}

// DefaultHost is the Host header value the client sends for a loopback
// connection string (CAP).
const DefaultHost = "localhost"

func itoa32(n int32) string { return strconv.FormatInt(int64(n), 10) }

// NewGetRequest builds a plain GET as the client sends it.
func NewGetRequest(host, target string) *Request {
	return &Request{Method: MethodGet, Target: target, Proto: "HTTP/1.1",
		Header: Header{{Name: HeaderHost, Value: host}}}
}

// NewGetExclusiveRequest builds "GET … Exclusive: acquire" byte for byte as
// the captured .NET 4 client request.
func NewGetExclusiveRequest(host, target string) *Request {
	return &Request{Method: MethodGet, Target: target, Proto: "HTTP/1.1",
		Header: Header{{Name: HeaderHost, Value: host}, {Name: HeaderExclusive, Value: ExclusiveAcquire}}}
}

// NewReleaseExclusiveRequest builds "GET … Exclusive: release" with the cookie.
func NewReleaseExclusiveRequest(host, target string, cookie int32) *Request {
	return &Request{Method: MethodGet, Target: target, Proto: "HTTP/1.1",
		Header: Header{{Name: HeaderHost, Value: host}, {Name: HeaderExclusive, Value: ExclusiveRelease},
			{Name: HeaderLockCookie, Value: itoa32(cookie), Tight: true}}}
}

// SetParams are the values of a PUT. The real client always sends all three.
type SetParams struct {
	Timeout    int32 // minutes, 0..525600 (0 never expires)
	LockCookie int32 // the lock cookie held, 0 for none
	ExtraFlags int32 // 1 for CreateUninitializedItem
}

// NewSetRequest builds a PUT byte for byte as the captured .NET 4 client:
// Host, Timeout, Content-Length, ExtraFlags, LockCookie, tight spelling.
func NewSetRequest(host, target string, body []byte, p SetParams) *Request {
	return &Request{Method: MethodPut, Target: target, Proto: "HTTP/1.1",
		Header: Header{
			{Name: HeaderHost, Value: host},
			{Name: HeaderTimeout, Value: itoa32(p.Timeout), Tight: true},
			{Name: HeaderContentLength, Value: strconv.Itoa(len(body)), Tight: true},
			{Name: HeaderExtraFlags, Value: itoa32(p.ExtraFlags), Tight: true},
			{Name: HeaderLockCookie, Value: itoa32(p.LockCookie), Tight: true},
		},
		Body: body}
}

// NewRemoveRequest builds a DELETE with the lock cookie.
func NewRemoveRequest(host, target string, cookie int32) *Request {
	return &Request{Method: MethodDelete, Target: target, Proto: "HTTP/1.1",
		Header: Header{{Name: HeaderHost, Value: host}, {Name: HeaderLockCookie, Value: itoa32(cookie), Tight: true}}}
}

// NewResetTimeoutRequest builds a HEAD.
func NewResetTimeoutRequest(host, target string) *Request {
	return &Request{Method: MethodHead, Target: target, Proto: "HTTP/1.1",
		Header: Header{{Name: HeaderHost, Value: host}}}
}

// Reply is what a client needs from a response, with the raw Response beside it.
type Reply struct {
	Status int
	// Version is the X-AspNet-Version value; HasVersion reports whether the
	// header was present at all.
	Version     string
	HasVersion  bool
	LockCookie  int32 // LockCookie header (acquire 200 and every 423)
	HasCookie   bool
	LockAge     int64 // LockAge header in seconds (423)
	HasLockAge  bool
	LockDate    int64 // LockDate header in .NET ticks, server local time (423)
	HasLockDate bool
	Timeout     int32 // Timeout header in minutes (GET 200)
	HasTimeout  bool
	// ActionFlags is the ActionFlags header (1 on the first GET after an
	// uninitialized create); 0 when absent.
	ActionFlags int32
	Body        []byte
	Response    *Response
}

// VersionMajor returns the integer before the first "." of the version header
// as the client parses it, or 0 when the header is absent or not a number.
func (r *Reply) VersionMajor() int { return VersionMajor(r.Version) }

// VersionMajor parses the major version of an X-AspNet-Version value the way
// the ASP.NET client does: the integer before the first ".", 0 if none.
func VersionMajor(v string) int {
	if i := strings.IndexByte(v, '.'); i >= 0 {
		v = v[:i]
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// NewReply interprets resp. Malformed numeric headers are reported as errors,
// since a client cannot use them.
func NewReply(resp *Response) (*Reply, error) {
	r := &Reply{Status: resp.Status, Body: resp.Body, Response: resp}
	var bad []string
	num := func(name string, bits int) (int64, bool) {
		v, ok := resp.Header.Get(name)
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %q", name, v))
			return 0, false
		}
		return n, true
	}
	r.Version, r.HasVersion = resp.Header.Get(HeaderVersion)
	var n int64
	n, r.HasCookie = num(HeaderLockCookie, 32)
	r.LockCookie = int32(n)
	r.LockAge, r.HasLockAge = num(HeaderLockAge, 64)
	r.LockDate, r.HasLockDate = num(HeaderLockDate, 64)
	n, r.HasTimeout = num(HeaderTimeout, 32)
	r.Timeout = int32(n)
	n, _ = num(HeaderActionFlags, 32)
	r.ActionFlags = int32(n)
	if bad != nil {
		return r, errorf(KindMalformed, "reply has unusable headers: %s", strings.Join(bad, ", "))
	}
	return r, nil
}

// ConnOptions configure a Conn.
type ConnOptions struct {
	Host   string // Host header value; DefaultHost when empty
	Limits Limits // reply limits; zero fields take the defaults
	// Tap, when set, sees every byte sent (sent=true) and received, in order.
	// It is how the conformance suite records wire transcripts.
	Tap func(sent bool, b []byte)
}

// Conn is one client connection to a state server. It sends one request at a
// time and reads its reply, as the ASP.NET client does on a pooled socket. A
// Conn is not safe for concurrent use. Once a call fails with a network or
// protocol error the Conn is broken: later calls fail with ErrBroken and the
// caller should close it and dial again.
type Conn struct {
	nc     net.Conn
	rd     *Reader
	opts   ConnOptions
	wbuf   []byte
	broken error
	// LastUsed is when the last exchange finished; pools use it for idle expiry.
	LastUsed time.Time
}

// ErrBroken is returned by calls on a Conn that failed earlier.
var ErrBroken = errors.New("protocol: connection is broken by an earlier error")

// Dial connects to a state server at addr ("host:port").
func Dial(ctx context.Context, addr string, opts ConnOptions) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return NewConn(nc, opts), nil
}

// NewConn wraps an established connection.
func NewConn(nc net.Conn, opts ConnOptions) *Conn {
	if opts.Host == "" {
		opts.Host = DefaultHost
	}
	c := &Conn{nc: nc, opts: opts, LastUsed: time.Now()}
	var src = readerFunc(nc.Read)
	if opts.Tap != nil {
		tap := opts.Tap
		src = func(p []byte) (int, error) {
			n, err := nc.Read(p)
			if n > 0 {
				tap(false, p[:n])
			}
			return n, err
		}
	}
	c.rd = NewReader(bufio.NewReaderSize(src, 8<<10), opts.Limits)
	return c
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// Host returns the Host header value this Conn sends.
func (c *Conn) Host() string { return c.opts.Host }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// Broken returns the error that broke the Conn, or nil.
func (c *Conn) Broken() error { return c.broken }

// Do sends req and reads one reply. A reply of any status is a success; the
// error is for network failures, context ends, and malformed replies
// (a *Error). The returned Response is the caller's.
func (c *Conn) Do(ctx context.Context, req *Request) (*Response, error) {
	if c.broken != nil {
		return nil, ErrBroken
	}
	resp, err := c.roundTrip(ctx, req)
	if err != nil {
		c.broken = err
		return nil, err
	}
	c.LastUsed = time.Now()
	return resp, nil
}

// DoRaw writes raw bytes as they are and reads one reply: for tests that send
// what no well-behaved client would.
func (c *Conn) DoRaw(ctx context.Context, raw []byte) (*Response, error) {
	if c.broken != nil {
		return nil, ErrBroken
	}
	stop := c.watch(ctx)
	resp, err := c.exchange(raw)
	if stop != nil {
		stop()
	}
	if err != nil {
		err = c.ctxErr(ctx, err)
		c.broken = err
		return nil, err
	}
	c.LastUsed = time.Now()
	return resp, nil
}

func (c *Conn) roundTrip(ctx context.Context, req *Request) (*Response, error) {
	stop := c.watch(ctx)
	c.wbuf = req.AppendTo(c.wbuf[:0])
	resp, err := c.exchange(c.wbuf)
	if stop != nil {
		stop()
	}
	if err != nil {
		return nil, c.ctxErr(ctx, err)
	}
	return resp, nil
}

func (c *Conn) exchange(raw []byte) (*Response, error) {
	if c.opts.Tap != nil {
		c.opts.Tap(true, raw)
	}
	if _, err := c.nc.Write(raw); err != nil {
		return nil, err
	}
	resp := new(Response)
	if err := c.rd.ReadResponse(resp); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("protocol: server closed the connection before replying: %w", err)
		}
		return nil, err
	}
	return resp, nil
}

// watch applies ctx's deadline to the socket and arranges for a cancel to
// interrupt blocked I/O. It returns a function that undoes both.
func (c *Conn) watch(ctx context.Context) func() {
	if ctx.Done() == nil {
		return nil
	}
	dl, hasDL := ctx.Deadline()
	if hasDL {
		_ = c.nc.SetDeadline(dl)
	}
	var mu sync.Mutex
	done := false
	stopAfter := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			_ = c.nc.SetDeadline(time.Unix(1, 0))
		}
	})
	return func() {
		stopAfter()
		mu.Lock()
		done = true
		mu.Unlock()
		if hasDL {
			_ = c.nc.SetDeadline(time.Time{})
		}
	}
}

// ctxErr attributes an I/O error to ctx when ctx caused it. The socket
// deadline is ctx's deadline, and it can fire a moment before ctx's own timer
// marks ctx done: a timeout at or past the deadline is ctx's too.
func (c *Conn) ctxErr(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w (%v)", ctxErr, err)
	}
	var ne net.Error
	if dl, ok := ctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(dl) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

func (c *Conn) call(ctx context.Context, req *Request) (*Reply, error) {
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	return NewReply(resp)
}

// Get sends a plain GET (Get_Request).
func (c *Conn) Get(ctx context.Context, target string) (*Reply, error) {
	return c.call(ctx, NewGetRequest(c.opts.Host, target))
}

// GetExclusive sends GET with Exclusive: acquire (GetExclusive_Request).
func (c *Conn) GetExclusive(ctx context.Context, target string) (*Reply, error) {
	return c.call(ctx, NewGetExclusiveRequest(c.opts.Host, target))
}

// ReleaseExclusive sends GET with Exclusive: release and the cookie.
func (c *Conn) ReleaseExclusive(ctx context.Context, target string, cookie int32) (*Reply, error) {
	return c.call(ctx, NewReleaseExclusiveRequest(c.opts.Host, target, cookie))
}

// Set sends a PUT (Set_Request) with the body and parameters.
func (c *Conn) Set(ctx context.Context, target string, body []byte, p SetParams) (*Reply, error) {
	return c.call(ctx, NewSetRequest(c.opts.Host, target, body, p))
}

// Remove sends a DELETE (Remove_Request) with the cookie.
func (c *Conn) Remove(ctx context.Context, target string, cookie int32) (*Reply, error) {
	return c.call(ctx, NewRemoveRequest(c.opts.Host, target, cookie))
}

// ResetTimeout sends a HEAD (ResetTimeout_Request).
func (c *Conn) ResetTimeout(ctx context.Context, target string) (*Reply, error) {
	return c.call(ctx, NewResetTimeoutRequest(c.opts.Host, target))
}
