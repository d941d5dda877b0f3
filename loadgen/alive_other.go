//go:build !unix

package loadgen

import "net"

// peekAlive cannot look at the socket without blocking on this platform;
// a dead pooled connection is then found by the failed exchange, which is
// retried once on a new connection.
func peekAlive(net.Conn) bool { return true }
