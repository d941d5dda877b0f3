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
	r := new(Request)
	r.setGet(host, target, "")
	return r
}

// NewGetExclusiveRequest builds "GET … Exclusive: acquire" byte for byte as
// the captured .NET 4 client request.
func NewGetExclusiveRequest(host, target string) *Request {
	r := new(Request)
	r.setGet(host, target, ExclusiveAcquire)
	return r
}

// NewReleaseExclusiveRequest builds "GET … Exclusive: release" with the cookie.
func NewReleaseExclusiveRequest(host, target string, cookie int32) *Request {
	r := new(Request)
	r.setRelease(host, target, cookie)
	return r
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
	r := new(Request)
	r.setSet(host, target, body, p)
	return r
}

// NewRemoveRequest builds a DELETE with the lock cookie.
func NewRemoveRequest(host, target string, cookie int32) *Request {
	r := new(Request)
	r.setRemove(host, target, cookie)
	return r
}

// NewResetTimeoutRequest builds a HEAD.
func NewResetTimeoutRequest(host, target string) *Request {
	r := new(Request)
	r.begin(MethodHead, host, target, nil)
	return r
}

// The setters below rebuild r in place, reusing its header slice: the
// constructors above and the Conn's typed calls share them.

func (r *Request) begin(method, host, target string, body []byte) {
	r.Method, r.Target, r.Proto, r.Body = method, target, "HTTP/1.1", body
	r.Header = append(r.Header[:0], Field{Name: HeaderHost, Value: host})
}

func (r *Request) add(name, value string, tight bool) {
	r.Header = append(r.Header, Field{Name: name, Value: value, Tight: tight})
}

// setGet builds a GET, with an Exclusive header unless exclusive is "".
func (r *Request) setGet(host, target, exclusive string) {
	r.begin(MethodGet, host, target, nil)
	if exclusive != "" {
		r.add(HeaderExclusive, exclusive, false)
	}
}

func (r *Request) setRelease(host, target string, cookie int32) {
	r.setGet(host, target, ExclusiveRelease)
	r.add(HeaderLockCookie, itoa32(cookie), true)
}

func (r *Request) setSet(host, target string, body []byte, p SetParams) {
	r.begin(MethodPut, host, target, body)
	r.add(HeaderTimeout, itoa32(p.Timeout), true)
	r.add(HeaderContentLength, strconv.Itoa(len(body)), true)
	r.add(HeaderExtraFlags, itoa32(p.ExtraFlags), true)
	r.add(HeaderLockCookie, itoa32(p.LockCookie), true)
}

func (r *Request) setRemove(host, target string, cookie int32) {
	r.begin(MethodDelete, host, target, nil)
	r.add(HeaderLockCookie, itoa32(cookie), true)
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
	r := new(Reply)
	return r, r.fill(resp)
}

// fill sets r from resp, as NewReply does.
func (r *Reply) fill(resp *Response) error {
	*r = Reply{Status: resp.Status, Body: resp.Body, Response: resp}
	// One pass over the header; the first field of each name counts, as
	// Header.Get would find it.
	var vals [len(replyHeaders)]string
	var seen [len(replyHeaders)]bool
	for _, f := range resp.Header {
		if i := replyHeader(f.Name); i >= 0 && !seen[i] {
			vals[i], seen[i] = f.Value, true
		}
	}
	var bad []string
	num := func(i, bits int) (int64, bool) {
		if !seen[i] {
			return 0, false
		}
		n, err := strconv.ParseInt(vals[i], 10, bits)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %q", replyHeaders[i], vals[i]))
			return 0, false
		}
		return n, true
	}
	r.Version, r.HasVersion = vals[0], seen[0]
	var n int64
	n, r.HasCookie = num(1, 32)
	r.LockCookie = int32(n)
	r.LockAge, r.HasLockAge = num(2, 64)
	r.LockDate, r.HasLockDate = num(3, 64)
	n, r.HasTimeout = num(4, 32)
	r.Timeout = int32(n)
	n, _ = num(5, 32)
	r.ActionFlags = int32(n)
	if bad != nil {
		return errorf(KindMalformed, "reply has unusable headers: %s", strings.Join(bad, ", "))
	}
	return nil
}

// replyHeaders are the reply headers Reply.fill reads, in its order.
var replyHeaders = [...]string{HeaderVersion, HeaderLockCookie, HeaderLockAge, HeaderLockDate, HeaderTimeout, HeaderActionFlags}

// replyHeader returns name's index in replyHeaders (any letter case), or -1.
func replyHeader(name string) int {
	for i, h := range replyHeaders {
		if len(name) == len(h) && (name == h || strings.EqualFold(name, h)) {
			return i
		}
	}
	return -1
}

// ConnOptions configure a Conn.
type ConnOptions struct {
	Host   string // Host header value; DefaultHost when empty
	Limits Limits // reply limits; zero fields take the defaults
	// Tap, when set, sees every byte sent (sent=true) and received, in order.
	// It is how the conformance suite records wire transcripts.
	Tap func(sent bool, b []byte)
	// Timeout, when positive, bounds each call's exchange (its write and
	// its read) without a context timer: the socket deadline is the earlier
	// of now+Timeout and the context's deadline. A call that runs out of it
	// fails with a timeout net.Error (os.ErrDeadlineExceeded). The Timeout's
	// deadline is moved lazily: a call may run up to TimeoutSlack(Timeout)
	// longer before it fails, and a Conn making call after call sets its
	// socket deadline about once per slack instead of at every call.
	Timeout time.Duration
	// ReuseReplies makes every call reuse one Response, one Reply and one
	// body buffer: a reply is then valid only until the next call on the
	// Conn. For load generators, which read a reply and drop it; off by
	// default.
	ReuseReplies bool
}

// Awaiter is a net.Conn that can write a request and then wait until the
// reply can be read, without first trying a read that finds nothing yet
// (one system call less per call). A Conn whose net.Conn is an Awaiter
// sends with WriteAwait whenever its reader holds nothing buffered, so the
// reply is all still to come. The price: bytes a server sent unasked, still
// unread in the socket, are seen only with the reply or at the timeout. The
// load generator's raw connections are Awaiters; a connection from Dial is
// not (the conformance suite wants stray bytes reported at once).
//
// WriteAwait writes all of p and returns once the connection has something
// to read or its read deadline passed (then with a timeout error).
type Awaiter interface {
	net.Conn
	WriteAwait(p []byte) (int, error)
}

// Conn is one client connection to a state server. It sends one request at a
// time and reads its reply, as the ASP.NET client does on a pooled socket. A
// Conn is not safe for concurrent use. Once a call fails with a network or
// protocol error the Conn is broken: later calls fail with ErrBroken and the
// caller should close it and dial again.
type Conn struct {
	nc     net.Conn
	aw     Awaiter // nc when it is an Awaiter, else nil
	rd     *Reader
	opts   ConnOptions
	wbuf   []byte
	broken error
	// dl is the deadline last set on nc (the zero time: none); calls set it
	// only when it changes, and do not clear it afterwards. dlSlack: dl is
	// a Timeout deadline with its slack (see ConnOptions.Timeout).
	dl      time.Time
	dlSlack bool
	// The context whose end interrupts this Conn's I/O: one AfterFunc per
	// context, not per call. wctx belongs to the calling goroutine; wstop and
	// wgen are under wmu, since Close may run beside a call. gen tells a
	// stale interrupt (of a context the Conn has moved on from) from a live
	// one.
	wctx  context.Context
	wmu   sync.Mutex
	wstop func() bool
	wgen  uint64

	req   Request  // the typed calls' request, rebuilt in place
	resp  Response // with ReuseReplies
	reply Reply    // with ReuseReplies
}

// TimeoutSlack is how much later than Timeout after its start a call may
// fail (see ConnOptions.Timeout): 1/64 of the timeout, at most 10 ms (less
// than the 15.6 ms tick of the Windows timers the native client's own
// timeouts run on).
func TimeoutSlack(timeout time.Duration) time.Duration { return min(timeout/64, 10*time.Millisecond) }

// unknownDeadline marks c.dl as not known (an interrupt may have moved it).
var unknownDeadline = time.Unix(1, 1)

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

// NewConn wraps an established connection: any net.Conn, read through one
// buffered Reader and written one request at a time (with WriteAwait when
// nc is an Awaiter).
func NewConn(nc net.Conn, opts ConnOptions) *Conn {
	if opts.Host == "" {
		opts.Host = DefaultHost
	}
	c := &Conn{nc: nc, opts: opts}
	c.aw, _ = nc.(Awaiter)
	var src io.Reader = nc
	if opts.Tap != nil {
		tap := opts.Tap
		src = readerFunc(func(p []byte) (int, error) {
			n, err := nc.Read(p)
			if n > 0 {
				tap(false, p[:n])
			}
			return n, err
		})
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

// Close closes the connection. It may be called while a call is in
// progress, from another goroutine, to end it.
func (c *Conn) Close() error {
	c.stopWatch()
	return c.nc.Close()
}

// Broken returns the error that broke the Conn, or nil.
func (c *Conn) Broken() error { return c.broken }

// Do sends req and reads one reply. A reply of any status is a success; the
// error is for network failures, context ends, and malformed replies
// (a *Error). The returned Response is the caller's, unless the Conn was
// made with ReuseReplies.
func (c *Conn) Do(ctx context.Context, req *Request) (*Response, error) {
	c.wbuf = req.AppendTo(c.wbuf[:0])
	return c.do(ctx, c.wbuf)
}

// DoRaw writes raw bytes as they are and reads one reply: for tests that send
// what no well-behaved client would.
func (c *Conn) DoRaw(ctx context.Context, raw []byte) (*Response, error) {
	return c.do(ctx, raw)
}

// do sends raw under ctx and reads one reply. A context that has already
// ended fails the call before anything is sent, and the Conn stays usable.
func (c *Conn) do(ctx context.Context, raw []byte) (*Response, error) {
	if c.broken != nil {
		return nil, ErrBroken
	}
	if err := c.arm(ctx); err != nil {
		return nil, err
	}
	resp, err := c.exchange(raw)
	if err != nil {
		err = c.ctxErr(ctx, err)
		c.broken = err
		return nil, err
	}
	return resp, nil
}

func (c *Conn) exchange(raw []byte) (*Response, error) {
	if c.opts.Tap != nil {
		c.opts.Tap(true, raw)
	}
	if c.aw != nil && c.rd.Buffered() == 0 {
		// Nothing is buffered, so the reply is all still to come: wait for
		// it rather than try a read that finds nothing.
		if _, err := c.aw.WriteAwait(raw); err != nil {
			return nil, err
		}
	} else if _, err := c.nc.Write(raw); err != nil {
		return nil, err
	}
	resp := &c.resp
	if !c.opts.ReuseReplies {
		resp = new(Response)
	}
	if err := c.rd.ReadResponse(resp); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("protocol: server closed the connection before replying: %w", err)
		}
		return nil, err
	}
	return resp, nil
}

// arm makes ctx's end interrupt the Conn's I/O and sets the socket deadline
// for one call: ctx's deadline or now+Timeout, the earlier. Both cost
// nothing in the usual case: the interrupt is registered once per context,
// and the deadline is set only when it changes.
func (c *Conn) arm(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ctx != c.wctx && (ctx.Done() != nil || c.wctx != nil) {
		c.stopWatch()
		c.wctx = nil
		c.dl = unknownDeadline // a past interrupt may have moved the deadline
		if ctx.Done() != nil {
			c.wmu.Lock()
			gen := c.wgen
			c.wstop = context.AfterFunc(ctx, func() { c.interrupt(gen) })
			c.wmu.Unlock()
			c.wctx = ctx
		}
	}
	dl, has := ctx.Deadline()
	slack := false
	if t := c.opts.Timeout; t > 0 {
		if td := time.Now().Add(t); !has || td.Before(dl) {
			late := td.Add(TimeoutSlack(t))
			if c.dlSlack && !c.dl.Before(td) && !c.dl.After(late) && (!has || !c.dl.After(dl)) {
				return nil // the deadline set by an earlier call still fits
			}
			if !has || late.Before(dl) {
				dl, slack = late, true
			} // else ctx's deadline, between td and late, comes first
			has = true
		}
	}
	if !has {
		dl = time.Time{}
	}
	if dl.Equal(c.dl) {
		c.dlSlack = slack
		return nil
	}
	if err := c.nc.SetDeadline(dl); err != nil {
		c.dl = unknownDeadline
		return err
	}
	c.dl, c.dlSlack = dl, slack
	// An interrupt that ran before this SetDeadline was undone by it; ctx
	// ended before the interrupt ran, so this check sees it.
	if err := ctx.Err(); err != nil {
		c.dl = unknownDeadline
		return err
	}
	return nil
}

// interrupt ends blocked I/O when the watched context ends, unless the Conn
// has moved on to another context since (gen changed).
func (c *Conn) interrupt(gen uint64) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if gen == c.wgen {
		_ = c.nc.SetDeadline(time.Unix(1, 0))
	}
}

// stopWatch stops the interrupt of the watched context, if any, and makes
// one already running do nothing.
func (c *Conn) stopWatch() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wstop != nil {
		c.wstop()
		c.wstop = nil
	}
	c.wgen++
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

func (c *Conn) call(ctx context.Context) (*Reply, error) {
	resp, err := c.Do(ctx, &c.req)
	c.req.Body = nil // the caller's
	if err != nil {
		return nil, err
	}
	r := &c.reply
	if !c.opts.ReuseReplies {
		r = new(Reply)
	}
	return r, r.fill(resp)
}

// Get sends a plain GET (Get_Request).
func (c *Conn) Get(ctx context.Context, target string) (*Reply, error) {
	c.req.setGet(c.opts.Host, target, "")
	return c.call(ctx)
}

// GetExclusive sends GET with Exclusive: acquire (GetExclusive_Request).
func (c *Conn) GetExclusive(ctx context.Context, target string) (*Reply, error) {
	c.req.setGet(c.opts.Host, target, ExclusiveAcquire)
	return c.call(ctx)
}

// ReleaseExclusive sends GET with Exclusive: release and the cookie.
func (c *Conn) ReleaseExclusive(ctx context.Context, target string, cookie int32) (*Reply, error) {
	c.req.setRelease(c.opts.Host, target, cookie)
	return c.call(ctx)
}

// Set sends a PUT (Set_Request) with the body and parameters.
func (c *Conn) Set(ctx context.Context, target string, body []byte, p SetParams) (*Reply, error) {
	c.req.setSet(c.opts.Host, target, body, p)
	return c.call(ctx)
}

// Remove sends a DELETE (Remove_Request) with the cookie.
func (c *Conn) Remove(ctx context.Context, target string, cookie int32) (*Reply, error) {
	c.req.setRemove(c.opts.Host, target, cookie)
	return c.call(ctx)
}

// ResetTimeout sends a HEAD (ResetTimeout_Request).
func (c *Conn) ResetTimeout(ctx context.Context, target string) (*Reply, error) {
	c.req.begin(MethodHead, c.opts.Host, target, nil)
	return c.call(ctx)
}
