//go:build !linux || race

package rawio

import "net"

// Enabled reports whether Wrap makes raw connections in this build.
const Enabled = false

// Wrap returns c.
func Wrap(c net.Conn) net.Conn { return c }
