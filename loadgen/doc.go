// Package loadgen replays a web-farm scenario against ASP.NET state servers
// and measures it honestly.
//
// # Load model
//
// Open model (the default): the scenario's rate shape (constant, ramp,
// steps; evenly spaced or Poisson) fixes every page's intended start before
// the run, with a seed; a population scenario fixes them from each user's
// think time instead. One dispatcher hands each slot to a free worker at its
// intended time and never waits for replies. Latency is measured from the
// intended start (coordinated omission corrected, as wrk2 does) and, beside
// it, from the actual start. Slots that start more than LateThreshold late,
// that find no free worker, or that cannot even be queued are counted.
//
// Closed-loop saturation (Config.ClosedLoop): N users send pages back to back.
// It measures capacity; its throughput is labelled a saturation figure and is
// never reported as an offered rate. It counts only pages served without
// error. Pages in progress at the end get the same drain time as in open mode.
//
// The seed fixes the plan; session ids are random in every run (120 bits,
// as the real client's), so runs with the same seed against one server do
// not share sessions.
//
// # Client emulation
//
// Each emulated web server keeps, per state-server partition, a LIFO pool of
// connections closed after one to two idle periods and re-dialled when found
// dead, and the first-request version check with its quirk (PROTOCOL.md e.4).
// Pages follow SessionStateModule (e.1–e.5): GetExclusive, create on 404
// (PUT ExtraFlags:1, acquire again), poll a locked session on a fixed tick
// and break a lock whose LockAge reached the execution timeout, then PUT,
// release or DELETE; read-only pages GET; sessionless pages HEAD. Every call
// has the network timeout as its deadline.
//
// # Time scale
//
// With a protocol minute M other than 1m (an in-process target run faster),
// the client timers that are measured against protocol time are scaled by
// M/1m: the lock poll interval and its skip delta (at least 2ms), and the
// time a request may wait for a lock (the execution timeout). The lock-break
// rule needs no scaling: it compares LockAge, which the server already counts
// in protocol seconds, with the execution timeout in seconds. Session
// timeouts are sent in minutes and scaled by the server. Page execution time,
// think time, the network timeout and the pool period stay in real time:
// they are about the web servers and the network, not the protocol.
//
// # Correctness
//
// Every session body carries a header (session id, version) and a CRC-32C.
// Every read checks it: no torn or foreign body, no version older than the
// last write the lock holder had acknowledged before the read was sent, no
// 404 before the session's timeout has run out since the server last
// answered for it, never two pages granted one lock. Checks that a
// concurrent DELETE, a broken lock's late write or a fault could invalidate
// are skipped and counted.
//
// # Recording
//
// Workers hand one record per page to a single collector goroutine, which
// owns every HdrHistogram (nanoseconds): per operation and per page type,
// corrected and uncorrected, per interval (written as .hlog entries) and in
// total (interval histograms merged).
package loadgen
