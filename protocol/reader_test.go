package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseRequestLenient(t *testing.T) {
	cases := []struct {
		name, raw string
		method    string
		target    string
		header    string // name whose value is checked
		value     string
		body      string
	}{
		{"capture spelling, no space", "PUT a HTTP/1.1\r\nTimeout:20\r\nContent-Length:3\r\n\r\nabc", "PUT", "a", "Timeout", "20", "abc"},
		{"space after colon", "PUT a HTTP/1.1\r\nTimeout: 20\r\nContent-Length: 3\r\n\r\nabc", "PUT", "a", "Timeout", "20", "abc"},
		{"tab and trailing blanks", "PUT a HTTP/1.1\r\nTimeout:\t20  \r\nContent-Length:0\r\n\r\n", "PUT", "a", "Timeout", "20", ""},
		{"header name case", "GET a HTTP/1.1\r\nexclusive: ACQUIRE\r\n\r\n", "GET", "a", "Exclusive", "ACQUIRE", ""},
		{"leading slash target", "GET /LM/W3SVC/1/ROOT(x)/id HTTP/1.1\r\nHost: localhost\r\n\r\n", "GET", "/LM/W3SVC/1/ROOT(x)/id", "Host", "localhost", ""},
		{"bare LF line ends", "GET a HTTP/1.1\nHost: h\n\n", "GET", "a", "Host", "h", ""},
		{"HTTP/1.0", "HEAD a HTTP/1.0\r\n\r\n", "HEAD", "a", "", "", ""},
		{"unknown verb is a token", "POST a HTTP/1.1\r\n\r\n", "POST", "a", "", "", ""},
		{"empty header value", "GET a HTTP/1.1\r\nX:\r\n\r\n", "GET", "a", "X", "", ""},
		{"binary body", "PUT a HTTP/1.1\r\nContent-Length:4\r\n\r\n\x00\r\n\xff", "PUT", "a", "", "", "\x00\r\n\xff"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := ParseRequest([]byte(c.raw), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != c.method || req.Target != c.target || string(req.Body) != c.body {
				t.Errorf("got %q %q body %q", req.Method, req.Target, req.Body)
			}
			if c.header != "" {
				if v, ok := req.Header.Get(c.header); !ok || v != c.value {
					t.Errorf("%s = %q, %v; want %q", c.header, v, ok, c.value)
				}
			}
			if OpOf(req) == 0 && (c.method == "GET" && strings.EqualFold(c.value, "acquire")) {
				t.Errorf("OpOf = 0 for an acquire")
			}
		})
	}
}

func TestParseRequestRejects(t *testing.T) {
	lim := Limits{MaxLine: 64, MaxHeaders: 3, MaxHeaderBytes: 150, MaxBody: 100}
	long := strings.Repeat("a", 80)
	cases := []struct {
		name string
		raw  string
		kind *Error
	}{
		{"no version", "GET a\r\n\r\n", ErrMalformed},
		{"only a method", "GET\r\n\r\n", ErrMalformed},
		{"bad version", "GET a HTTP/2\r\n\r\n", ErrMalformed},
		{"lowercase version", "GET a http/1.1\r\n\r\n", ErrMalformed},
		{"space in method", " GET a HTTP/1.1\r\n\r\n", ErrMalformed},
		{"control in target", "GET a\x01b HTTP/1.1\r\n\r\n", ErrMalformed},
		{"header without colon", "GET a HTTP/1.1\r\nHost localhost\r\n\r\n", ErrMalformed},
		{"empty header name", "GET a HTTP/1.1\r\n: x\r\n\r\n", ErrMalformed},
		{"space in header name", "GET a HTTP/1.1\r\nLock Cookie: 1\r\n\r\n", ErrMalformed},
		{"folded header", "GET a HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", ErrMalformed},
		{"control in value", "GET a HTTP/1.1\r\nHost: a\x00b\r\n\r\n", ErrMalformed},
		{"negative length", "PUT a HTTP/1.1\r\nContent-Length: -1\r\n\r\n", ErrMalformed},
		{"hex length", "PUT a HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", ErrMalformed},
		{"empty length", "PUT a HTTP/1.1\r\nContent-Length:\r\n\r\n", ErrMalformed},
		{"conflicting lengths", "PUT a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", ErrMalformed},
		{"chunked", "PUT a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", ErrMalformed},
		{"body over limit", "PUT a HTTP/1.1\r\nContent-Length: 101\r\n\r\n", ErrBodyTooLarge},
		{"4 GB body", "PUT a HTTP/1.1\r\nContent-Length: 4294967296\r\n\r\n", ErrBodyTooLarge},
		{"huge length digits", "PUT a HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", ErrBodyTooLarge},
		{"long request line", "GET " + long + " HTTP/1.1\r\n\r\n", ErrLineTooLong},
		{"long header line", "GET a HTTP/1.1\r\nX: " + long + "\r\n\r\n", ErrLineTooLong},
		{"too many headers", "GET a HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", ErrTooManyHeaders},
		{"head too large", "GET a HTTP/1.1\r\nA: " + long[:50] + "\r\nB: " + long[:50] + "\r\nC: " + long[:50] + "\r\n\r\n", ErrHeaderTooLarge},
		{"truncated head", "GET a HTTP/1.1\r\nHost: loc", ErrTruncated},
		{"truncated body", "PUT a HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", ErrTruncated},
		{"no blank line", "GET a HTTP/1.1\r\nHost: a\r\n", ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRequest([]byte(c.raw), lim)
			if !errors.Is(err, c.kind) {
				t.Fatalf("err = %v, want kind %v", err, c.kind.Kind)
			}
			if !IsProtocolError(err) {
				t.Errorf("IsProtocolError(%v) = false", err)
			}
		})
	}
}

// A body over the limit is refused from the header alone: nothing of that
// size is allocated and the body bytes are never read.
func TestBodyLimitBeforeAllocation(t *testing.T) {
	head := "PUT a HTTP/1.1\r\nContent-Length: 4000000000\r\n\r\n"
	r := NewReader(io.MultiReader(strings.NewReader(head), iotest.ErrReader(errors.New("body must not be read"))), Limits{})
	var req Request
	err := r.ReadRequest(&req)
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if cap(req.Body) != 0 {
		t.Errorf("a body buffer of %d bytes was allocated", cap(req.Body))
	}
}

func TestReadRequestByteByByte(t *testing.T) {
	raw := "PUT %2fa HTTP/1.1\r\nHost: localhost\r\nTimeout:20\r\nContent-Length:5\r\nExtraFlags:0\r\nLockCookie:0\r\n\r\nhello"
	r := NewReader(iotest.OneByteReader(strings.NewReader(raw+raw)), Limits{})
	for i := 0; i < 2; i++ {
		var req Request
		if err := r.ReadRequest(&req); err != nil {
			t.Fatal(err)
		}
		if string(req.Body) != "hello" || req.Target != "%2fa" {
			t.Fatalf("request %d: %+v", i, req)
		}
	}
	var req Request
	if err := r.ReadRequest(&req); err != io.EOF {
		t.Fatalf("after the last request: %v, want io.EOF", err)
	}
}

func TestParseResponse(t *testing.T) {
	cases := []struct {
		name, raw string
		proto     string
		status    int
		body      string
		err       *Error
	}{
		{"bare", "404 Not Found\r\nX-AspNet-Version: 4.0.30319\r\nCache-Control: private\r\nContent-Length: 0\r\n\r\n", "", 404, "", nil},
		{"http prefix recorded", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", "HTTP/1.1", 200, "hi", nil},
		{"no reason", "423\r\nContent-Length: 0\r\n\r\n", "", 423, "", nil},
		{"no content length", "200 OK\r\n\r\n", "", 200, "", nil},
		{"bad code", "2x0 OK\r\n\r\n", "", 0, "", ErrMalformed},
		{"code glued to reason", "200OK\r\n\r\n", "", 0, "", ErrMalformed},
		{"bad prefix", "HTTP/9 200 OK\r\n\r\n", "", 0, "", ErrMalformed},
		{"truncated body", "200 OK\r\nContent-Length: 5\r\n\r\nab", "", 0, "", ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := ParseResponse([]byte(c.raw), Limits{})
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err.Kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Proto != c.proto || resp.Status != c.status || string(resp.Body) != c.body {
				t.Errorf("got %q %d %q", resp.Proto, resp.Status, resp.Body)
			}
		})
	}
}

func TestRequestWriterRewritesContentLength(t *testing.T) {
	req := &Request{Method: "PUT", Target: "a", Header: Header{{Name: "content-length", Value: "99", Tight: true}}, Body: []byte("xyz")}
	if got, want := string(req.Bytes()), "PUT a HTTP/1.1\r\ncontent-length:3\r\n\r\nxyz"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	req = &Request{Method: "PUT", Target: "a", Body: []byte("xyz")}
	if got, want := string(req.Bytes()), "PUT a HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestResponseWriterPutsContentLengthLast(t *testing.T) {
	resp := &Response{Status: 423, Header: Header{
		{Name: HeaderContentLength, Value: "7"},
		{Name: HeaderVersion, Value: DefaultVersion},
		{Name: HeaderLockCookie, Value: "2"},
	}}
	want := "423 Locked\r\nX-AspNet-Version: 4.0.30319\r\nLockCookie: 2\r\nContent-Length: 0\r\n\r\n"
	if got := string(resp.Bytes()); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseInt32(t *testing.T) {
	for s, want := range map[string]int32{"0": 0, "20": 20, "-5": -5, "+7": 7, "2147483647": 2147483647} {
		if n, ok := ParseInt32(s); !ok || n != want {
			t.Errorf("ParseInt32(%q) = %d, %v", s, n, ok)
		}
	}
	for _, s := range []string{"", "abc", "1.5", "2147483648", "-2147483649", " 1", "0x1", "99999999999999"} {
		if _, ok := ParseInt32(s); ok {
			t.Errorf("ParseInt32(%q) accepted", s)
		}
	}
}

func TestStatusText(t *testing.T) {
	for code, want := range map[int]string{200: "OK", 400: "Bad Request", 404: "Not Found", 423: "Locked", 500: "Internal Server Error", 418: ""} {
		if got := StatusText(code); got != want {
			t.Errorf("StatusText(%d) = %q", code, got)
		}
	}
}

func TestHeaderHelpers(t *testing.T) {
	h := Header{{Name: "A", Value: "1"}, {Name: "b", Value: "2"}, {Name: "a", Value: "3"}}
	if v, _ := h.Get("a"); v != "1" {
		t.Errorf("Get = %q", v)
	}
	if h.Count("A") != 2 || !h.Has("B") || h.Has("c") {
		t.Errorf("Count/Has wrong")
	}
	if got := strings.Join(h.Names(), ","); got != "A,b,a" {
		t.Errorf("Names = %q", got)
	}
	if !bytes.Equal(AppendField(nil, Field{Name: "T", Value: "1", Tight: true}), []byte("T:1\r\n")) {
		t.Errorf("tight field")
	}
}

// ReadRequestView allocates nothing for the client's requests once warm, and
// its strings hold until the next read.
func TestReadRequestViewAllocatesNothing(t *testing.T) {
	raw := []byte("PUT %2fa%2fb HTTP/1.1\r\nHost: localhost\r\nTimeout:20\r\nContent-Length:5\r\nExtraFlags:0\r\nLockCookie:2\r\n\r\nhello" +
		"GET %2fa%2fb HTTP/1.1\r\nHost: localhost\r\nExclusive: acquire\r\n\r\n")
	src := bytes.NewReader(raw)
	r := NewReader(src, Limits{})
	var req Request
	read := func() {
		src.Reset(raw)
		r.br.Reset(src)
		for i := 0; i < 2; i++ {
			if err := r.ReadRequestView(&req); err != nil {
				t.Fatal(err)
			}
		}
	}
	read()
	if req.Target != "%2fa%2fb" || req.Method != MethodGet {
		t.Fatalf("got %q %q", req.Method, req.Target)
	}
	if v, _ := req.Header.Get(HeaderExclusive); v != "acquire" {
		t.Fatalf("Exclusive = %q", v)
	}
	if n := testing.AllocsPerRun(100, read); n != 0 {
		t.Errorf("ReadRequestView allocated %.1f times per two requests", n)
	}
	// The copying form still returns strings that survive later reads.
	r2 := NewReader(bytes.NewReader(raw), Limits{})
	var a, b Request
	if err := r2.ReadRequest(&a); err != nil {
		t.Fatal(err)
	}
	if err := r2.ReadRequest(&b); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Header.Get(HeaderTimeout); v != "20" || a.Target != "%2fa%2fb" {
		t.Errorf("ReadRequest strings changed by a later read: %+v", a)
	}
}
