//go:build !linux

package rawio

import "net"

// Enabled reports whether New makes raw connections on this platform.
const Enabled = false

// New returns c: raw socket I/O is Linux-only.
func New(c net.Conn) net.Conn { return c }
