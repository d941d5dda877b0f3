// Package rawio reads and writes a TCP connection with raw system calls
// inside the runtime's poller: the same non-blocking read and write as
// package net, minus the runtime's system-call bookkeeping. On a socket that
// never blocks (the poller waits instead), that bookkeeping only costs: the
// runtime's monitor takes the processor away from a goroutine whose write
// runs longer than 20 µs (loopback writes carry the peer's whole TCP receive
// path) and hands it to another thread, a context switch each time.
//
// Off Linux, and under the race detector, Wrap returns the connection as it
// is: package net tells the race detector that a write on a socket happens
// before the read of it, and code (tests above all) relies on that; the raw
// calls cannot say so. `make test` also runs this package's and the
// protocol's tests without -race, so the raw path is tested too.
package rawio

// Awaiter is a connection that can write a message and then wait for the
// answer without first trying a read that finds nothing (*Conn on Linux:
// see Conn.WriteAwait).
type Awaiter interface {
	WriteAwait(p []byte) (int, error)
}
