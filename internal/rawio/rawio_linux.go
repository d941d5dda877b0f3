//go:build linux

package rawio

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Enabled reports whether New makes raw connections on this platform.
const Enabled = true

// rawConn is a connection read and written with raw system calls (see
// the package doc); it keeps the deadlines and the poller of the net.Conn it
// wraps.
//
// Unlike a net.Conn, a rawConn takes one Read at a time and one Write (or
// WriteAwait) at a time: the state of the call in progress lives in the
// rawConn, and the poller's callbacks are bound once, so that a call
// allocates nothing. A Read may run alongside a Write.
type rawConn struct {
	net.Conn
	rc syscall.RawConn

	rp    []byte // the Read in progress
	rn    int
	rerr  syscall.Errno
	wp    []byte // the Write or WriteAwait in progress
	wn    int
	wrote bool
	werr  syscall.Errno

	readFn, writeFn, awaitFn func(fd uintptr) bool
}

// New returns c with raw reads and writes when c is a *net.TCPConn,
// else c.
func New(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	rw := &rawConn{Conn: c, rc: rc}
	rw.readFn, rw.writeFn, rw.awaitFn = rw.read, rw.write, rw.await
	return rw
}

// SyscallConn returns the socket's raw connection, as a *net.TCPConn's
// does: the load generator pool's liveness check (peekAlive) looks at the socket with it.
func (c *rawConn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// Read reads what the socket holds, waiting through the poller for data.
func (c *rawConn) Read(p []byte) (int, error) {
	c.rp, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerr
	c.rp = nil
	if err != nil {
		return 0, rawOpError("read", c.Conn, err)
	}
	if errno != 0 {
		return 0, rawOpError("read", c.Conn, errno)
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// read is Read's poller callback: false to wait for data.
func (c *rawConn) read(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(bytesPtr(c.rp)), uintptr(len(c.rp)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait for data
		}
		c.rn, c.rerr = int(r), e
		return true
	}
}

// Write writes all of p, waiting through the poller when the socket is full.
func (c *rawConn) Write(p []byte) (int, error) {
	c.wp, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeFn)
	written, errno := c.wn, c.werr
	c.wp = nil
	if err != nil {
		return written, rawOpError("write", c.Conn, err)
	}
	if errno != 0 {
		return written, rawOpError("write", c.Conn, errno)
	}
	return written, nil
}

// write is Write's poller callback: false to wait for room.
func (c *rawConn) write(fd uintptr) bool {
	var room bool
	room, c.werr = writeFD(fd, c.wp, &c.wn)
	return room
}

// WriteAwait writes p and then waits, through the poller, until the socket
// has something to read (or the read deadline passes), for a caller that
// expects an answer and has nothing buffered: a Read right after a write
// almost always finds nothing yet and costs a system call for EAGAIN. The
// write is made inside the poller's read preparation, which forgets any
// readiness seen so far, so the reply's arrival, which can only follow the
// write, is never missed. When the socket cannot take all of p at once the
// rest is written as Write does and no wait is made (the next Read waits).
func (c *rawConn) WriteAwait(p []byte) (int, error) {
	c.wp, c.wn, c.wrote, c.werr = p, 0, false, 0
	err := c.rc.Read(c.awaitFn)
	written, errno := c.wn, c.werr
	c.wp = nil
	switch {
	case errno != 0:
		return written, rawOpError("write", c.Conn, errno)
	case written < len(p) && err == nil:
		n, err := c.Write(p[written:])
		return written + n, err
	case err != nil && written < len(p):
		return written, rawOpError("write", c.Conn, err)
	case err != nil:
		return written, rawOpError("read", c.Conn, err)
	}
	return written, nil
}

// await is WriteAwait's poller callback.
func (c *rawConn) await(fd uintptr) bool {
	if c.wrote {
		return true // readable (or woken by an error or a deadline)
	}
	c.wrote = true
	var room bool
	room, c.werr = writeFD(fd, c.wp, &c.wn)
	// All written: wait for the answer; else an error, or the socket is
	// full and WriteAwait's Write finishes.
	return !room || c.werr != 0
}

// writeFD writes p from *written on until all of it is written (true), the
// socket is full (false) or the write fails (true, with the errno).
func writeFD(fd uintptr, p []byte, written *int) (bool, syscall.Errno) {
	for *written < len(p) {
		rest := p[*written:]
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(bytesPtr(rest)), uintptr(len(rest)))
		switch e {
		case 0:
			*written += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false, 0
		default:
			return true, e
		}
	}
	return true, 0
}

func bytesPtr(p []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(p)) }

// rawOpError wraps err as package net does, so callers see the same error
// values (net.Error timeouts, syscall errnos under *os.SyscallError).
func rawOpError(op string, c net.Conn, err error) error {
	if _, ok := err.(interface{ Timeout() bool }); !ok {
		err = os.NewSyscallError(op, err)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
