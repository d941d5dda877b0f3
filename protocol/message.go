package protocol

import (
	"strconv"
	"strings"
)

// Protocol verbs (SPEC 2.2.5; REF StateProtocolVerb).
const (
	MethodGet    = "GET"
	MethodPut    = "PUT"
	MethodDelete = "DELETE"
	MethodHead   = "HEAD"
)

// Header names as the real client and server spell them (PROTOCOL.md b.4, b.6).
const (
	HeaderHost          = "Host"
	HeaderExclusive     = "Exclusive"
	HeaderTimeout       = "Timeout"
	HeaderContentLength = "Content-Length"
	HeaderExtraFlags    = "ExtraFlags"
	HeaderLockCookie    = "LockCookie"
	HeaderVersion       = "X-AspNet-Version"
	HeaderActionFlags   = "ActionFlags"
	HeaderLockDate      = "LockDate"
	HeaderLockAge       = "LockAge"
	HeaderCacheControl  = "Cache-Control"
)

// Values of the Exclusive request header.
const (
	ExclusiveAcquire = "acquire"
	ExclusiveRelease = "release"
)

// Protocol constants (PROTOCOL.md b, c, d).
const (
	// DefaultPort is the TCP port of the ASP.NET State Service.
	DefaultPort = 42424
	// DefaultTimeout is the item timeout in minutes when a PUT has no Timeout header.
	DefaultTimeout = 20
	// MaxTimeout is the largest Timeout (minutes, one year) the service accepts.
	MaxTimeout = 525600
	// DefaultVersion is the X-AspNet-Version value sent by the .NET 4.x service.
	DefaultVersion = "4.0.30319"
	// CacheControlPrivate is the Cache-Control value on every reply.
	CacheControlPrivate = "private"
	// ExtraFlagUninitialized is bit 0 of ExtraFlags: the item was created by
	// CreateUninitializedItem.
	ExtraFlagUninitialized = 1
	// MaxSessionIDLength is the longest session id the ASP.NET client sends.
	MaxSessionIDLength = 80
)

// Status codes the service uses.
const (
	StatusOK                  = 200
	StatusBadRequest          = 400
	StatusNotFound            = 404
	StatusLocked              = 423
	StatusInternalServerError = 500
)

// StatusText returns the reason phrase the service writes for code
// (REF WorkerRequest.cs), or "" for a code it never sends.
func StatusText(code int) string {
	switch code {
	case StatusOK:
		return "OK"
	case StatusBadRequest:
		return "Bad Request"
	case StatusNotFound:
		return "Not Found"
	case StatusLocked:
		return "Locked"
	case StatusInternalServerError:
		return "Internal Server Error"
	}
	return ""
}

// Field is one header line. Tight records the real client's spelling with no
// space after the colon ("Timeout:20"); a writer reproduces it, so a parsed
// message writes back byte for byte.
type Field struct {
	Name  string
	Value string
	Tight bool
}

// Header is the header block of a message in wire order.
type Header []Field

// Get returns the value of the first field named name (ASCII case-insensitive)
// and whether there was one.
func (h Header) Get(name string) (string, bool) {
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			return h[i].Value, true
		}
	}
	return "", false
}

// Has reports whether a field named name is present.
func (h Header) Has(name string) bool {
	_, ok := h.Get(name)
	return ok
}

// Count returns how many fields are named name.
func (h Header) Count(name string) int {
	n := 0
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			n++
		}
	}
	return n
}

// Names returns the field names in wire order.
func (h Header) Names() []string {
	out := make([]string, len(h))
	for i := range h {
		out[i] = h[i].Name
	}
	return out
}

// Request is one request as read from or written to the wire.
type Request struct {
	Method string // GET, PUT, DELETE, HEAD, or any token the peer sent
	Target string // the raw request target, e.g. "%2fLM%2fW3SVC%2f1%2fROOT(...)%2fid"
	Proto  string // "HTTP/1.1" as the client sends it
	Header Header // in wire order, Content-Length included where it was sent
	Body   []byte
}

// Response is one reply as read from or written to the wire.
type Response struct {
	// Proto is an "HTTP/1.x" prefix found before the status code when reading.
	// The real service never sends one; it is recorded so a conformance check
	// can flag it. Writers never emit it.
	Proto  string
	Status int
	Reason string // the reason phrase; writers use StatusText when empty
	// Header holds the fields in wire order. When reading, Content-Length is
	// included where it appeared; writers skip any Content-Length field here
	// and append the real one last.
	Header Header
	Body   []byte
}

// ParseInt32 parses a header value as the service does: an optional sign and
// decimal digits within the Int32 range. Anything else is not a number.
func ParseInt32(s string) (int32, bool) {
	if s == "" || len(s) > 11 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}
