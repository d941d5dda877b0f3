//go:build linux && !race

package rawio

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Enabled reports whether Wrap makes raw connections in this build.
const Enabled = true

// Conn is a connection read and written with raw system calls; it keeps
// the deadlines and the poller of the net.Conn it wraps.
type Conn struct {
	net.Conn
	rc syscall.RawConn
}

// Wrap returns c with raw reads and writes when c is a *net.TCPConn, else c.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &Conn{Conn: c, rc: rc}
}

// Read reads what the socket holds, waiting through the poller for data.
func (c *Conn) Read(p []byte) (int, error) {
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(ptr(p)), uintptr(len(p)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait for data
			}
			n, errno = int(r), e
			return true
		}
	})
	if err != nil {
		return 0, opError("read", c.Conn, err)
	}
	if errno != 0 {
		return 0, opError("read", c.Conn, errno)
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p, waiting through the poller when the socket is full.
func (c *Conn) Write(p []byte) (int, error) {
	written := 0
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for written < len(p) {
			rest := p[written:]
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(ptr(rest)), uintptr(len(rest)))
			switch e {
			case 0:
				written += int(r)
				continue
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait for room
			}
			errno = e
			return true
		}
		return true
	})
	if err != nil {
		return written, opError("write", c.Conn, err)
	}
	if errno != 0 {
		return written, opError("write", c.Conn, errno)
	}
	return written, nil
}

func ptr(p []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(p)) }

// opError wraps err as package net does, so callers see the same error
// values (net.Error timeouts, syscall errnos under *os.SyscallError).
func opError(op string, c net.Conn, err error) error {
	if _, ok := err.(interface{ Timeout() bool }); !ok {
		err = os.NewSyscallError(op, err)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
