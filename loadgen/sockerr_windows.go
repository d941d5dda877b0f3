//go:build windows

package loadgen

import (
	"errors"

	"golang.org/x/sys/windows"
)

// connRefused reports whether err is a refused connection: nothing listens
// at the address. Winsock's codes are not the syscall.E* values, and
// errors.Is does not map them, so they are named here.
func connRefused(err error) bool { return errors.Is(err, windows.WSAECONNREFUSED) }

// connReset reports whether err is a connection the peer reset, or one the
// local stack aborted (Windows' form of a write to a closed connection).
func connReset(err error) bool {
	return errors.Is(err, windows.WSAECONNRESET) || errors.Is(err, windows.WSAECONNABORTED)
}
