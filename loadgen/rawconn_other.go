//go:build !linux

package loadgen

import "net"

// rawIO reports whether newRawConn makes raw connections on this platform.
const rawIO = false

// newRawConn returns c: raw socket I/O is Linux-only.
func newRawConn(c net.Conn) net.Conn { return c }
