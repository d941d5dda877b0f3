package protocol

import (
	"strconv"
)

// AppendStatusLine appends "CODE Reason\r\n" (no HTTP/1.x prefix, as the
// service writes it). The code is always three digits (0 → "000"); codes
// outside 0..999 are written as they are. An empty reason takes StatusText(code).
func AppendStatusLine(b []byte, code int, reason string) []byte {
	if reason == "" {
		reason = StatusText(code)
	}
	if code >= 0 && code < 100 {
		b = append(b, '0')
		if code < 10 {
			b = append(b, '0')
		}
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, reason...)
	return append(b, '\r', '\n')
}

// AppendHeader appends "Name: value\r\n", the server's spelling.
func AppendHeader(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ':', ' ')
	b = append(b, value...)
	return append(b, '\r', '\n')
}

// AppendHeaderInt appends "Name: n\r\n" without allocating.
func AppendHeaderInt(b []byte, name string, n int64) []byte {
	b = append(b, name...)
	b = append(b, ':', ' ')
	b = strconv.AppendInt(b, n, 10)
	return append(b, '\r', '\n')
}

// AppendField appends f, with or without the space after the colon as f.Tight says.
func AppendField(b []byte, f Field) []byte {
	b = append(b, f.Name...)
	b = append(b, ':')
	if !f.Tight {
		b = append(b, ' ')
	}
	b = append(b, f.Value...)
	return append(b, '\r', '\n')
}

// AppendBodyEnd appends "Content-Length: len(body)\r\n\r\n" and the body: the
// way every reply ends.
func AppendBodyEnd(b []byte, body []byte) []byte {
	b = AppendHeaderInt(b, HeaderContentLength, int64(len(body)))
	b = append(b, '\r', '\n')
	return append(b, body...)
}

// AppendTo appends the wire form of resp: the bare status line, the header
// fields in order except any Content-Length, then Content-Length and the body.
// Proto is never written.
func (resp *Response) AppendTo(b []byte) []byte {
	b = AppendStatusLine(b, resp.Status, resp.Reason)
	for _, f := range resp.Header {
		if equalFold(f.Name, HeaderContentLength) {
			continue
		}
		b = AppendField(b, f)
	}
	return AppendBodyEnd(b, resp.Body)
}

// Bytes returns the wire form of resp.
func (resp *Response) Bytes() []byte { return resp.AppendTo(nil) }

// AppendTo appends the wire form of req: the request line, the header fields
// in order with every Content-Length field rewritten to len(Body) in place, and
// the body. A request with a body and no Content-Length field gets one
// appended after the other fields.
func (req *Request) AppendTo(b []byte) []byte {
	proto := req.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, req.Target...)
	b = append(b, ' ')
	b = append(b, proto...)
	b = append(b, '\r', '\n')
	wroteLength := false
	for _, f := range req.Header {
		if equalFold(f.Name, HeaderContentLength) {
			f.Value = strconv.Itoa(len(req.Body))
			wroteLength = true
		}
		b = AppendField(b, f)
	}
	if !wroteLength && len(req.Body) > 0 {
		b = AppendHeaderInt(b, HeaderContentLength, int64(len(req.Body)))
	}
	b = append(b, '\r', '\n')
	return append(b, req.Body...)
}

// Bytes returns the wire form of req.
func (req *Request) Bytes() []byte { return req.AppendTo(nil) }
