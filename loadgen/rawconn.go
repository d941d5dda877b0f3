package loadgen

import "net"

// The load generator's connections are read and written with raw system
// calls inside the runtime's poller (rawconn_linux.go): the same
// non-blocking read and write as package net, minus the runtime's
// system-call bookkeeping. On a socket that never blocks (the poller waits
// instead), that bookkeeping only costs: the runtime's monitor takes the
// processor away from a goroutine whose write runs longer than 20 µs
// (loopback writes carry the peer's whole TCP receive path) and hands it to
// another thread, a context switch each time. A raw connection is also a
// protocol.Awaiter: a call writes its request and waits for the reply
// through the poller, without first trying a read that finds nothing.
//
// The pool wraps its connections so only off the race detector (wrapRaw):
// package net tells the race detector that a write on a socket happens
// before the read of it, and code (tests above all) relies on that; the raw
// calls cannot say so. The raw connection itself is built under -race too,
// and its tests (rawconn_test.go, rawconn_linux_test.go) use it directly,
// so `go test -race` runs them on the raw path.

// wrapRaw returns nc read and written with raw system calls when this build
// has them (Linux, no race detector) and nc is a TCP connection, else nc.
func wrapRaw(nc net.Conn) net.Conn {
	if raceDetector {
		return nc
	}
	return newRawConn(nc)
}
