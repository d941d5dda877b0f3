package protocol

import (
	"errors"
	"fmt"
	"io"
)

// ErrorKind classifies malformed or oversized input.
type ErrorKind int

// The kinds of protocol error. Each is also a sentinel usable with errors.Is:
// errors.Is(err, protocol.ErrBodyTooLarge).
const (
	KindMalformed      ErrorKind = iota + 1 // bytes that do not follow the grammar
	KindLineTooLong                         // request, status or header line over the limit
	KindTooManyHeaders                      // more header fields than the limit
	KindHeaderTooLarge                      // header block over the limit
	KindBodyTooLarge                        // Content-Length over the limit
	KindTruncated                           // the peer closed in the middle of a message
)

var kindNames = map[ErrorKind]string{
	KindMalformed:      "malformed message",
	KindLineTooLong:    "line too long",
	KindTooManyHeaders: "too many header fields",
	KindHeaderTooLarge: "header block too large",
	KindBodyTooLarge:   "body too large",
	KindTruncated:      "truncated message",
}

func (k ErrorKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// Error is a protocol error: the peer sent bytes this codec will not accept.
// It is never used for a well-formed refusal such as a 400 or 423 reply.
type Error struct {
	Kind   ErrorKind
	Detail string // what was wrong, for people
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "protocol: " + e.Kind.String()
	}
	return "protocol: " + e.Kind.String() + ": " + e.Detail
}

// Is makes errors.Is(err, ErrMalformed) and friends match by kind, and a
// truncated message match io.ErrUnexpectedEOF.
func (e *Error) Is(target error) bool {
	if t, ok := target.(*Error); ok {
		return t.Kind == e.Kind && t.Detail == ""
	}
	return e.Kind == KindTruncated && target == io.ErrUnexpectedEOF
}

// Sentinels for errors.Is.
var (
	ErrMalformed      = &Error{Kind: KindMalformed}
	ErrLineTooLong    = &Error{Kind: KindLineTooLong}
	ErrTooManyHeaders = &Error{Kind: KindTooManyHeaders}
	ErrHeaderTooLarge = &Error{Kind: KindHeaderTooLarge}
	ErrBodyTooLarge   = &Error{Kind: KindBodyTooLarge}
	ErrTruncated      = &Error{Kind: KindTruncated}
)

func errorf(kind ErrorKind, format string, args ...any) error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// IsProtocolError reports whether err is (or wraps) a *Error.
func IsProtocolError(err error) bool {
	var pe *Error
	return errors.As(err, &pe)
}
