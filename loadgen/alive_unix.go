//go:build unix

package loadgen

import (
	"errors"
	"net"
	"syscall"
)

// peekAlive peeks at the socket with MSG_PEEK|MSG_DONTWAIT: nothing to read
// (EAGAIN) means alive; end of stream, an error or unexpected bytes mean
// dead. (A read with an expired deadline would not do: Go reports the
// deadline before it looks at the socket.)
func peekAlive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	live := false
	var buf [1]byte
	cerr := raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		_ = n
		live = (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK))
		return true // never wait for readiness
	})
	return cerr == nil && live
}
