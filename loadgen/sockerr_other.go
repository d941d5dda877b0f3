//go:build !windows

package loadgen

import (
	"errors"
	"syscall"
)

// connRefused reports whether err is a refused connection: nothing listens
// at the address.
func connRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// connReset reports whether err is a connection the peer reset or closed
// while we were writing.
func connReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
