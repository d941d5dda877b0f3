package stateserver

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/aspstate/aspstate/internal/rawio"
	"github.com/aspstate/aspstate/protocol"
)

// Request counting: one slot per (op, status). Ops are protocol.Op values
// 1..6 with 0 for anything else; statuses are the four the server sends.
const numOps = 7

var countedStatuses = [...]int{protocol.StatusOK, protocol.StatusBadRequest, protocol.StatusNotFound, protocol.StatusLocked}

func statusIndex(code int) int {
	switch code {
	case protocol.StatusOK:
		return 0
	case protocol.StatusBadRequest:
		return 1
	case protocol.StatusNotFound:
		return 2
	default:
		return 3
	}
}

// counts are request counters. Each connection owns one set (written by its
// goroutine only, so the atomic adds never contend); Stats sums them.
type counts struct {
	req       [numOps][len(countedStatuses)]atomic.Int64
	malformed atomic.Int64
}

func (c *counts) addTo(dst *counts) {
	for i := range c.req {
		for j := range c.req[i] {
			if n := c.req[i][j].Load(); n != 0 {
				dst.req[i][j].Add(n)
			}
		}
	}
	dst.malformed.Add(c.malformed.Load())
}

// Reply buffering. Replies to pipelined requests are gathered and written
// once flushAt bytes are pending; a buffer that grew past maxKeptBuf (a
// large body) is dropped after use. flushAt is half of maxKeptBuf, so
// gathering replies of up to flushAt bytes never outgrows the kept buffer
// and a busy pipelined connection makes no garbage.
const (
	maxKeptBuf = 64 << 10
	flushAt    = maxKeptBuf / 2
)

// conn is one client connection.
type conn struct {
	s    *Server
	sc   scratch
	nc   net.Conn
	io   net.Conn // nc's reads and writes (raw system calls on Linux: see internal/rawio)
	rd   *protocol.Reader
	req  protocol.Request
	wbuf []byte
	n    counts
	// armOnRead: no byte of the next request has arrived yet; the first one
	// starts the RequestTimeout clock (see Read).
	armOnRead bool
	// reqStart is when the first byte of the request being read arrived
	// (zero between requests); Read applies the request deadline from it
	// before it waits for more.
	reqStart time.Time
	// readDL and writeDL are the deadlines last set on nc (zero: none).
	// They are set lazily (see armDeadlines), not once per request: a
	// deadline is a runtime timer, and three timer updates per request
	// were a measurable share of the server's CPU.
	readDL, writeDL time.Time
}

// deadlineSlack is how much later than its nominal time an idle or write
// deadline may fire: deadlines are pushed forward only when less than the
// timeout remains, by the timeout plus this slack, so a busy connection
// updates its timers about once per slack instead of once per request.
func deadlineSlack(timeout time.Duration) time.Duration { return timeout / 8 }

func (s *Server) newConn(nc net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return nil
	}
	c := &conn{s: s, nc: nc, io: rawio.Wrap(nc)}
	c.rd = protocol.NewReader(c, s.limits)
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.connsActive.Add(1)
	s.connsTotal.Add(1)
	return c
}

func (c *conn) close() {
	_ = c.nc.Close() // the replies were written (or failed) before: nothing left to report
	s := c.s
	s.mu.Lock()
	delete(s.conns, c)
	c.n.addTo(&s.retired)
	s.mu.Unlock()
	s.connsActive.Add(-1)
	s.connWG.Done()
}

// Read reads from the connection for the request Reader. The first byte of
// a request that began with an empty buffer replaces the idle deadline by
// the request deadline, so a client that trickles a request (slowloris) is
// closed RequestTimeout after it began, however steadily it sends.
//
// The request deadline is applied lazily: a request that arrives whole in
// its first read never needs it, so only a read that waits for the rest of a
// started request sets it (to the first byte's time plus RequestTimeout).
func (c *conn) Read(p []byte) (int, error) {
	if !c.reqStart.IsZero() {
		if dl := c.reqStart.Add(c.s.cfg.RequestTimeout); !dl.Equal(c.readDL) {
			c.setReadDeadline(dl)
		}
	}
	n, err := c.io.Read(p)
	if n > 0 && c.armOnRead {
		c.armOnRead = false
		c.reqStart = time.Now()
	}
	return n, err
}

func (c *conn) setReadDeadline(t time.Time) {
	c.readDL = t
	_ = c.nc.SetReadDeadline(t) // fails only on a closed connection, whose next read fails too
}

// armDeadlines sets the read deadline for the next request: the idle
// timeout while nothing of it has arrived, the request timeout once part
// of it is buffered.
//
// The idle deadline fires between IdleTimeout and IdleTimeout plus
// deadlineSlack after the last request: it is moved only when it falls
// outside that window.
func (c *conn) armDeadlines() {
	idle, rt := c.s.cfg.IdleTimeout, c.s.cfg.RequestTimeout
	c.reqStart = time.Time{}
	if c.rd.Buffered() > 0 {
		// A pipelined request has begun: its clock starts now.
		c.armOnRead = false
		if rt > 0 {
			c.reqStart = time.Now()
		}
		return
	}
	c.armOnRead = rt > 0
	switch {
	case idle > 0:
		// Also when it is further off than that: a request deadline (see
		// Read) may be later than the idle one.
		now := time.Now()
		if lo := now.Add(idle); c.readDL.Before(lo) || c.readDL.After(lo.Add(deadlineSlack(idle))) {
			c.setReadDeadline(lo.Add(deadlineSlack(idle)))
		}
	case !c.readDL.IsZero():
		c.setReadDeadline(time.Time{}) // clear the last request's deadline
	}
}

// serve reads requests and answers them in order until the peer closes,
// sends malformed bytes, idles out, or the server shuts down.
func (c *conn) serve() {
	defer c.close()
	s := c.s
	for {
		if s.shutting.Load() && c.rd.Buffered() == 0 {
			return
		}
		c.armDeadlines()
		// The request's strings alias the reader's buffer until the next read:
		// nothing below keeps them (keys are decoded into sc.key, bodies copied
		// by the store), so a request costs no garbage.
		err := c.rd.ReadRequestView(&c.req)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !s.shutting.Load() {
				if c.armOnRead {
					s.connsIdleClosed.Add(1) // nothing of a request arrived
				} else {
					s.connsSlowClosed.Add(1) // a request began but did not finish in time
				}
			}
			if protocol.IsProtocolError(err) && !s.shutting.Load() {
				// Malformed or oversized: answer 400 and close (the stream
				// position is lost). A truncated request's peer may be gone;
				// the write then simply fails.
				c.n.malformed.Add(1)
				c.n.req[0][statusIndex(protocol.StatusBadRequest)].Add(1)
				c.wbuf = s.appendReply(c.wbuf, 0, &result{status: protocol.StatusBadRequest})
				if c.flush() {
					c.linger()
				}
			} else if len(c.wbuf) > 0 {
				c.flush()
			}
			return
		}
		if p := s.paused.Load(); p != nil {
			if len(c.wbuf) > 0 && !c.flush() {
				return
			}
			s.held.Add(1)
			select {
			case <-*p:
			case <-s.closed:
				s.held.Add(-1)
				return
			}
			s.held.Add(-1)
		}
		c.wbuf = s.handle(&c.req, c.wbuf, &c.sc, &c.n)
		// One Write per reply, or per batch of pipelined requests: flush only
		// when no further request is already buffered.
		if c.rd.Buffered() == 0 || len(c.wbuf) >= flushAt {
			if !c.flush() {
				return
			}
		}
	}
}

// lingerTime and lingerBytes bound how long and how much a connection
// closed after a 400 keeps reading.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

// linger half-closes the connection and discards what the peer still sends
// for a moment before the close: closing a socket with unread input sends a
// TCP reset, which can destroy the 400 reply before the peer reads it.
func (c *conn) linger() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(lingerTime)) // best effort: the connection is closing
	_, _ = io.CopyN(io.Discard, c.nc, lingerBytes)       // discarded input; ends at the deadline or the peer's close
}

// flush writes the pending replies; false if the connection failed. With
// a persistent store it first waits until the log records the replies depend
// on are durable (FsyncAlways) or the log backlog is bounded; if the log
// failed, the replies are dropped and the connection closed: nothing is
// acknowledged that may not survive.
func (c *conn) flush() bool {
	if c.sc.lsn > 0 {
		lsn := c.sc.lsn
		c.sc.lsn = 0
		if err := c.s.wal.wait(lsn); err != nil {
			c.wbuf = c.wbuf[:0]
			return false
		}
	}
	if wt := c.s.cfg.WriteTimeout; wt > 0 {
		// Lazily, as armDeadlines: a write may take from WriteTimeout to
		// WriteTimeout plus deadlineSlack before it is cut off.
		if now := time.Now(); c.writeDL.Before(now.Add(wt)) {
			c.writeDL = now.Add(wt + deadlineSlack(wt))
			_ = c.nc.SetWriteDeadline(c.writeDL) // fails only on a closed connection; the write below reports it
		}
	}
	_, err := c.io.Write(c.wbuf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.s.connsWriteTimeout.Add(1)
		}
	}
	if cap(c.wbuf) > maxKeptBuf {
		c.wbuf = nil
	} else {
		c.wbuf = c.wbuf[:0]
	}
	return err == nil
}

// scratch is per-connection space reused by every request.
type scratch struct {
	key  []byte // the item key decoded from the target
	body []byte // a copy of the body of a GET 200, taken under the shard lock
	lsn  int64  // persistence: the log position pending replies depend on (0 = none)
}

// handle answers one request, appending the reply to b.
func (s *Server) handle(req *protocol.Request, b []byte, sc *scratch, n *counts) []byte {
	op := protocol.OpOf(req)
	var r result
	if op == 0 {
		r.status = protocol.StatusBadRequest // c.5: unknown verb or Exclusive value
	} else {
		sc.key = protocol.AppendKey(sc.key[:0], req.Target)
		r = s.exec(op, req, sc)
		if r.lsn > sc.lsn {
			sc.lsn = r.lsn
		}
	}
	n.req[op][statusIndex(r.status)].Add(1)
	b = s.appendReply(b, op, &r)
	if cap(sc.body) > maxKeptBuf {
		sc.body = nil
	}
	return b
}

// exec evaluates a request against the store (PROTOCOL.md c.1–c.5).
func (s *Server) exec(op protocol.Op, req *protocol.Request, sc *scratch) result {
	key := sc.key
	bad := result{status: protocol.StatusBadRequest}
	switch op {
	case protocol.OpGet, protocol.OpGetExclusive, protocol.OpReleaseExclusive:
		mode := getPlain
		var c cookieArg
		switch op {
		case protocol.OpGetExclusive:
			mode = getAcquire
		case protocol.OpReleaseExclusive:
			mode = getRelease
			c = lockCookie(req)
		}
		r := s.store.get(key, mode, c, s.now(), sc.body)
		if r.body != nil {
			sc.body = r.body
		}
		return r
	case protocol.OpSet:
		timeout := int32(protocol.DefaultTimeout)
		if v, ok := req.Header.Get(protocol.HeaderTimeout); ok {
			t, ok := protocol.ParseInt32(v)
			if !ok || t < 0 || t > protocol.MaxTimeout { // c.2 rows 1, 2
				return bad
			}
			timeout = t
		}
		var flags int32
		if v, ok := req.Header.Get(protocol.HeaderExtraFlags); ok {
			f, ok := protocol.ParseInt32(v)
			if !ok { // c.2 row 3
				return bad
			}
			flags = f
		}
		// The Reader reuses req.Body: the store copies it.
		return s.store.put(key, req.Body, timeout, flags, lockCookie(req), s.now())
	case protocol.OpRemove:
		return s.store.remove(key, lockCookie(req), s.now())
	case protocol.OpResetTimeout:
		return s.store.head(key, s.now())
	}
	return bad // c.5: unknown verb or Exclusive value
}

// lockCookie reads the LockCookie header; the spec examples' "Lock-Cookie"
// spelling is accepted too (PROTOCOL.md b.4).
func lockCookie(req *protocol.Request) cookieArg {
	v, ok := req.Header.Get(protocol.HeaderLockCookie)
	if !ok {
		v, ok = req.Header.Get("Lock-Cookie")
	}
	return parseCookie(v, ok)
}

// appendReply writes r in the service's exact framing (PROTOCOL.md b.5):
// status line, X-AspNet-Version, [ActionFlags], verb headers,
// Cache-Control: private, Content-Length, and a body only on a GET 200.
func (s *Server) appendReply(b []byte, op protocol.Op, r *result) []byte {
	b = protocol.AppendStatusLine(b, r.status, "")
	b = append(b, s.verLine...)
	if r.actionFlags {
		b = protocol.AppendHeaderInt(b, protocol.HeaderActionFlags, 1)
	}
	var body []byte
	switch r.status {
	case protocol.StatusOK:
		if op == protocol.OpGet || op == protocol.OpGetExclusive {
			if op == protocol.OpGetExclusive {
				b = protocol.AppendHeaderInt(b, protocol.HeaderLockCookie, int64(r.cookie))
			}
			b = protocol.AppendHeaderInt(b, protocol.HeaderTimeout, int64(r.timeout))
			body = r.body
		}
	case protocol.StatusLocked:
		b = protocol.AppendHeaderInt(b, protocol.HeaderLockDate, s.lockDate(r.lockAt))
		b = protocol.AppendHeaderInt(b, protocol.HeaderLockAge, s.lockAge(r.lockAt))
		b = protocol.AppendHeaderInt(b, protocol.HeaderLockCookie, int64(r.cookie))
	}
	b = protocol.AppendHeader(b, protocol.HeaderCacheControl, protocol.CacheControlPrivate)
	return protocol.AppendBodyEnd(b, body)
}

// ticksAtUnixEpoch is 1970-01-01 in .NET ticks (100 ns since 0001-01-01).
const ticksAtUnixEpoch = 621355968000000000

// lockDate returns when the lock was taken as .NET ticks in the server's
// local time zone (REF ConvertToLocalTime). It is wall time: the time scale
// does not apply.
func (s *Server) lockDate(lockAt int64) int64 {
	t := s.base.Add(time.Duration(lockAt))
	_, off := t.Zone()
	return t.UnixNano()/100 + int64(off)*10_000_000 + ticksAtUnixEpoch
}

// lockAge returns the whole protocol seconds since the lock was taken.
func (s *Server) lockAge(lockAt int64) int64 {
	d := s.now() - lockAt
	if d < 0 {
		return 0
	}
	return d / s.store.second
}

// opName names an op for counters: the protocol.Op name or "unknown".
func opName(op int) string {
	if op == 0 {
		return "unknown"
	}
	return protocol.Op(op).String()
}
