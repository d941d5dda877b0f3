// Package rawio reads and writes TCP connections with raw system calls
// inside the runtime's poller (rawio_linux.go): the same non-blocking read
// and write as package net, minus the runtime's system-call bookkeeping. On
// a socket that never blocks (the poller waits instead), that bookkeeping
// only costs: the runtime's monitor takes the processor away from a
// goroutine whose write runs longer than 20 µs (loopback writes carry the
// peer's whole TCP receive path) and hands it to another thread, a context
// switch each time. A raw connection is also a protocol.Awaiter: a call
// writes its request and waits for the reply through the poller, without
// first trying a read that finds nothing.
//
// Its two users are the load generator's connection pool and the reference
// server's connections (docs/reference-server.md has what it saves there).
// Package protocol does not import it: protocol works on any net.Conn.
//
// Wrap wraps a connection only off the race detector: package net tells the
// race detector that a write on a socket happens before the read of it, and
// code (tests above all) relies on that; the raw calls cannot say so. New
// builds a raw connection under -race too, and this package's tests use it
// directly, so `go test -race` runs them on the raw path.
package rawio

import "net"

// Wrap returns nc read and written with raw system calls when this build
// has them (Linux, no race detector) and nc is a TCP connection, else nc.
func Wrap(nc net.Conn) net.Conn {
	if raceDetector {
		return nc
	}
	return New(nc)
}
