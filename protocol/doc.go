// Package protocol is the [MS-ASP] wire codec shared by the aspstate reference
// server, the conformance suite and the load generator.
//
// It reads and writes requests and responses exactly as Microsoft's ASP.NET
// State Service and its client put them on the wire: bare status lines
// ("200 OK", never "HTTP/1.1 200 OK"), headers in the real order with
// Content-Length last on replies, request targets without a leading "/", and
// the client's "Timeout:20" spelling with no space after the colon. It
// enforces size limits before allocating and reports malformed bytes as a
// *Error, distinct from a server's refusal (a 400 or 423 reply, which is a
// successful exchange).
//
// It also holds the client side: Conn, with one method per protocol message,
// and the helpers that build request targets like the ASP.NET client does.
// The package depends on the standard library only (doc_test.go checks it):
// the raw socket I/O of the load generator and the reference server lives in
// internal/rawio, and a Conn takes any net.Conn.
package protocol
