// Package trace reads captures of real ASP.NET State Service traffic
// (pcap and pcapng), reassembles each TCP connection in both directions,
// decodes [MS-ASP] with the project's protocol codec and pairs every request
// with its reply (an Exchange). On top of exchanges it rebuilds the pages of
// the ASP.NET client's flow, fits a scenario to them, and serves them to the
// load generator and to the differential check.
//
// What a capture cannot give never becomes a wrong exchange: a connection
// joined mid-stream is resynchronised at the next request line, a gap in a
// stream drops that connection's exchanges up to the next request line, and
// every such case is counted in Skipped.
package trace

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

// ConnID names one TCP connection by its two ends: Client is the web server
// (the side that sends requests), Server the state server (the side on the
// capture's port).
type ConnID struct {
	Client netip.AddrPort
	Server netip.AddrPort
}

// String formats the connection as "client->server".
func (c ConnID) String() string { return c.Client.String() + "->" + c.Server.String() }

// Exchange is one request and the reply to it, as a capture holds them.
// Bodies are kept only while the exchange is being processed: Read sets
// Request.Body and Reply.Body to nil once its callback returns, and readers
// of a capture never store or print them (privacy: session state holds
// personal data).
type Exchange struct {
	Conn ConnID
	// Seq numbers the exchanges of one connection from 0, in wire order.
	Seq int
	// Request is the decoded request, byte-exact (protocol.Request.Bytes
	// writes it back as it was on the wire, save that bare LF line ends,
	// which the real client never sends, come back as CRLF).
	Request *protocol.Request
	// Reply is the decoded reply, or nil when the connection ended (FIN, RST
	// or the capture's end) before a whole reply arrived.
	Reply *protocol.Response
	// RequestStart and RequestEnd are the capture times of the packets that
	// carried the request's first and last bytes; ReplyStart and ReplyEnd the
	// same for the reply (zero when Reply is nil). The server's latency for
	// this exchange is ReplyStart - RequestEnd.
	RequestStart, RequestEnd time.Time
	ReplyStart, ReplyEnd     time.Time
	// RequestSize and ReplySize are the message sizes on the wire in bytes.
	RequestSize, ReplySize int
}

// Latency is the server's time for the exchange: from the last request byte
// to the first reply byte, as the capture saw them. It is 0 without a reply.
func (e *Exchange) Latency() time.Duration {
	if e.Reply == nil {
		return 0
	}
	return e.ReplyStart.Sub(e.RequestEnd)
}

// Op is the protocol operation of the exchange's request.
func (e *Exchange) Op() protocol.Op { return protocol.OpOf(e.Request) }

// Skipped counts what a capture could not give, so that it is reported and
// never turned into a wrong exchange.
type Skipped struct {
	// JoinedMidStream counts connections whose capture began inside a message:
	// their bytes up to the next request line were dropped.
	JoinedMidStream int
	// Gaps counts holes in a stream (bytes the capture lost); LostToGaps the
	// exchanges dropped because of them (up to the next request line).
	Gaps, LostToGaps int
	// Unanswered counts requests whose reply the capture did not hold whole.
	Unanswered int
	// Undecodable counts messages the codec refused (bytes that are not
	// [MS-ASP]); their connection is resynchronised at the next request line.
	Undecodable int
	// LostToJoins counts replies whose requests began before the capture
	// did (or before a connection was picked up): exchanges lost to joins.
	LostToJoins int
}

// Any reports whether anything was skipped.
func (s Skipped) Any() bool { return s != Skipped{} }

// String reports the skipped parts in one line, e.g. "skipped: 3
// connections joined mid-request, 41 exchanges lost to 2 gaps", or
// "skipped: nothing".
func (s Skipped) String() string {
	var parts []string
	if s.JoinedMidStream > 0 {
		p := plural(s.JoinedMidStream, "connection", "connections") + " joined mid-request"
		if s.LostToJoins > 0 {
			p += " (" + plural(s.LostToJoins, "exchange", "exchanges") + " lost)"
		}
		parts = append(parts, p)
	} else if s.LostToJoins > 0 {
		parts = append(parts, plural(s.LostToJoins, "reply", "replies")+" to requests sent before the capture began")
	}
	if s.Gaps > 0 {
		parts = append(parts, plural(s.LostToGaps, "exchange", "exchanges")+" lost to "+plural(s.Gaps, "gap", "gaps"))
	}
	if s.Unanswered > 0 {
		parts = append(parts, plural(s.Unanswered, "request", "requests")+" without a whole reply")
	}
	if s.Undecodable > 0 {
		parts = append(parts, plural(s.Undecodable, "message", "messages")+" not [MS-ASP]")
	}
	if len(parts) == 0 {
		return "skipped: nothing"
	}
	return "skipped: " + strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
