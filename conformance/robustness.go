package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// malformed is one entry of the robustness corpus: bytes no client should
// send. The server must answer 400 or close the connection cleanly, keep
// serving, and change no other session.
type malformed struct {
	name string
	// raw builds the bytes for a fresh key k (absent unless exists is set).
	raw func(k string) []byte
	// exists creates k before the request (for rules that only validate a
	// header on an existing item).
	exists bool
	// allow lists the statuses the replies may have (default: 400 only).
	allow []int
	// noHalfClose: do not half-close after sending; the server must refuse
	// from what it already has (a 4 GB Content-Length must not be waited for).
	noHalfClose bool
}

func lit(s string) func(string) []byte { return func(string) []byte { return []byte(s) } }

func line(format string) func(string) []byte {
	return func(k string) []byte { return []byte(fmt.Sprintf(format, k)) }
}

// reqLine builds a request from a request line (%s is the key) followed by a
// valid Host header and the blank line: only the request line is malformed,
// so a server's Host check cannot refuse it for another reason.
func reqLine(format string) func(string) []byte {
	return func(k string) []byte {
		l := format
		if strings.Contains(format, "%s") {
			l = fmt.Sprintf(format, k)
		}
		return []byte(l + "\r\nHost: localhost\r\n\r\n")
	}
}

func withHeaders(method string, body []byte, headers ...string) func(string) []byte {
	return func(k string) []byte { return request(method, k, body, headers...) }
}

func rawHead(method string, headers ...string) func(string) []byte {
	return func(k string) []byte {
		return []byte(method + " " + k + " HTTP/1.1\r\nHost: localhost\r\n" + strings.Join(headers, "\r\n") + "\r\n\r\n")
	}
}

// corpus is the table of malformed requests, by robustness rule.
var corpus = map[string][]malformed{
	"robustness-request-line": {
		{name: "method only", raw: reqLine("GET")},
		{name: "no protocol version", raw: reqLine("GET %s")},
		{name: "two spaces after the method", raw: reqLine("GET  %s HTTP/1.1")},
		{name: "a fourth field", raw: reqLine("GET %s HTTP/1.1 extra")},
		{name: "HTTP/2.0", raw: reqLine("GET %s HTTP/2.0")},
		{name: "FTP/1.1", raw: reqLine("GET %s FTP/1.1")},
		{name: "HTTP/1.1x", raw: reqLine("GET %s HTTP/1.1x")},
		{name: "lower-case http/1.1", raw: reqLine("GET %s http/1.1")},
		{name: "NUL in the target", raw: reqLine("GET %s\x00 HTTP/1.1")},
		{name: "leading space", raw: reqLine(" GET %s HTTP/1.1")},
		{name: "tabs instead of spaces", raw: reqLine("GET\t%s\tHTTP/1.1")},
		{name: "CR CR LF line end", raw: reqLine("GET %s HTTP/1.1\r")},
		{name: "70000-byte target", raw: reqLine("GET " + strings.Repeat("a", 70000) + " HTTP/1.1")},
		{name: "no line end, then EOF", raw: line("GET %s HTTP/1.1")},
		{name: "request line only, then EOF", raw: line("GET %s HTTP/1.1\r\n")},
		{name: "headers without the blank line, then EOF", raw: line("GET %s HTTP/1.1\r\nHost: localhost\r\n")},
		{name: "empty request line", raw: lit("\r\nGARBAGE\r\nHost: localhost\r\n\r\n")},
	},
	"robustness-unknown-verb": {
		{name: "POST", raw: withHeaders("POST", []byte("x"))},
		{name: "OPTIONS", raw: withHeaders("OPTIONS", nil)},
		{name: "TRACE", raw: withHeaders("TRACE", nil)},
		{name: "CONNECT", raw: withHeaders("CONNECT", nil)},
		{name: "PATCH", raw: withHeaders("PATCH", []byte("x"))},
		{name: "lower-case get", raw: withHeaders("get", nil)},
		{name: "Put", raw: withHeaders("Put", []byte("x"), "Timeout:20")},
		{name: "G3T", raw: withHeaders("G3T", nil)},
		{name: "DELETE2", raw: withHeaders("DELETE2", nil)},
		{name: "3000-character verb", raw: withHeaders(strings.Repeat("X", 3000), nil)},
		{name: "verb with a slash", raw: withHeaders("GET/1", nil)},
	},
	"robustness-headers": {
		{name: "header without a colon", raw: rawHead("GET", "NoColonHere")},
		{name: "empty header name", raw: rawHead("GET", ": value")},
		{name: "space in a header name", raw: rawHead("PUT", "Time out: 1")},
		{name: "folded header line", raw: rawHead("GET", "X-A: 1", " folded")},
		{name: "control byte in a value", raw: rawHead("GET", "X-A: a\x01b")},
		{name: "DEL in a value", raw: rawHead("GET", "X-A: a\x7fb")},
		{name: "NUL in a header name", raw: rawHead("GET", "X\x00A: 1")},
		{name: "41 header fields", raw: rawHead("GET", repeatHeaders(41, 10)...)},
		{name: "a 5000-byte header line", raw: rawHead("GET", "X-Long: "+strings.Repeat("v", 5000))},
		{name: "a 20 KB header block", raw: rawHead("GET", repeatHeaders(20, 1000)...)},
		{name: "Transfer-Encoding: chunked", raw: rawHead("PUT", "Transfer-Encoding: chunked", "Timeout:20")},
		{name: "colon-only line", raw: rawHead("GET", ":")},
	},
	"robustness-numbers": {
		{name: "Timeout:abc", raw: withHeaders("PUT", []byte("x"), "Timeout:abc")},
		{name: "Timeout:-5", raw: withHeaders("PUT", []byte("x"), "Timeout:-5")},
		{name: "Timeout:525601", raw: withHeaders("PUT", []byte("x"), "Timeout:525601")},
		{name: "Timeout:2147483648", raw: withHeaders("PUT", []byte("x"), "Timeout:2147483648")},
		{name: "Timeout:99999999999999999999", raw: withHeaders("PUT", []byte("x"), "Timeout:99999999999999999999")},
		{name: "Timeout:1e3", raw: withHeaders("PUT", []byte("x"), "Timeout:1e3")},
		{name: "Timeout:0x10", raw: withHeaders("PUT", []byte("x"), "Timeout:0x10")},
		{name: "Timeout: (empty)", raw: withHeaders("PUT", []byte("x"), "Timeout:")},
		{name: "Timeout:1 2", raw: withHeaders("PUT", []byte("x"), "Timeout:1 2")},
		{name: "Timeout: Arabic-Indic digit", raw: withHeaders("PUT", []byte("x"), "Timeout:\u0663")},
		{name: "ExtraFlags:abc", raw: withHeaders("PUT", []byte("x"), "Timeout:20", "ExtraFlags:abc")},
		{name: "ExtraFlags:99999999999", raw: withHeaders("PUT", []byte("x"), "Timeout:20", "ExtraFlags:99999999999")},
		{name: "ExtraFlags:1.0", raw: withHeaders("PUT", []byte("x"), "Timeout:20", "ExtraFlags:1.0")},
		{name: "PUT LockCookie:abc on an existing item", exists: true, raw: withHeaders("PUT", []byte("x"), "Timeout:20", "LockCookie:abc")},
		{name: "PUT LockCookie:2147483648 on an existing item", exists: true, raw: withHeaders("PUT", []byte("x"), "Timeout:20", "LockCookie:2147483648")},
		{name: "release LockCookie:abc", exists: true, raw: withHeaders("GET", nil, "Exclusive: release", "LockCookie:abc")},
		{name: "release LockCookie:-1", exists: true, raw: withHeaders("GET", nil, "Exclusive: release", "LockCookie:-1")},
		{name: "release LockCookie:99999999999999999999", exists: true, raw: withHeaders("GET", nil, "Exclusive: release", "LockCookie:99999999999999999999")},
		{name: "DELETE LockCookie:abc", exists: true, raw: withHeaders("DELETE", nil, "LockCookie:abc")},
		{name: "DELETE LockCookie:-7", exists: true, raw: withHeaders("DELETE", nil, "LockCookie:-7")},
	},
	"robustness-content-length": {
		{name: "Content-Length:abc", raw: rawHead("PUT", "Content-Length:abc")},
		{name: "Content-Length:-1", raw: rawHead("PUT", "Content-Length:-1")},
		{name: "Content-Length:+5", raw: rawHead("PUT", "Content-Length:+5")},
		{name: "Content-Length:0x10", raw: rawHead("PUT", "Content-Length:0x10")},
		{name: "Content-Length: (empty)", raw: rawHead("PUT", "Content-Length:")},
		{name: "Content-Length:1e3", raw: rawHead("PUT", "Content-Length:1e3")},
		{name: "two different Content-Length fields", raw: func(k string) []byte {
			return []byte("PUT " + k + " HTTP/1.1\r\nHost: localhost\r\nContent-Length:5\r\nContent-Length:6\r\n\r\nhello!")
		}},
		{name: "Content-Length 4 GB, nothing waited for", noHalfClose: true, raw: func(k string) []byte {
			return []byte("PUT " + k + " HTTP/1.1\r\nHost: localhost\r\nTimeout:20\r\nContent-Length:4294967296\r\n\r\n0123456789")
		}},
		{name: "Content-Length 10^23, nothing waited for", noHalfClose: true, raw: rawHead("PUT", "Content-Length:99999999999999999999999")},
		{name: "Content-Length above 2^63", noHalfClose: true, raw: rawHead("PUT", "Content-Length:9223372036854775808")},
		{name: "missing Content-Length on a PUT with a body", allow: []int{200, 400}, raw: func(k string) []byte {
			return []byte("PUT " + k + " HTTP/1.1\r\nHost: localhost\r\nTimeout:20\r\n\r\nthis body is not framed")
		}},
	},
	"robustness-garbage": {
		{name: "1 KB of random bytes", raw: func(string) []byte {
			r := rand.New(rand.NewPCG(1, 2))
			b := make([]byte, 1024)
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			return b
		}},
		{name: "TLS ClientHello", raw: lit("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + strings.Repeat("\x00", 32) + "\x00\x00\x02\x13\x01\x01\x00")},
		{name: "HTTP/2 preface", raw: lit("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")},
		{name: "NUL bytes", raw: lit(strings.Repeat("\x00", 100))},
		{name: "10 KB without a line end", raw: lit(strings.Repeat("GET", 3500))},
		{name: "UTF-16 request line", raw: lit("G\x00E\x00T\x00 \x00/\x00 \x00H\x00T\x00T\x00P\x00\r\x00\n\x00\r\x00\n\x00")},
		{name: "JSON", raw: lit("{\"op\":\"get\",\"id\":1}\r\n\r\n")},
		{name: "1000 empty lines", raw: lit(strings.Repeat("\r\n", 1000))},
		{name: "bare LF and CR soup", raw: lit("\n\r\n\r\r\r\n\n\n")},
	},
}

func repeatHeaders(n, size int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("X-Filler-%d: %s", i, strings.Repeat("f", size))
	}
	return out
}

// corpusRules lists the corpus's rules in a fixed order.
var corpusRules = []string{
	"robustness-request-line",
	"robustness-unknown-verb",
	"robustness-headers",
	"robustness-numbers",
	"robustness-content-length",
	"robustness-garbage",
}

// canary is a session that must not change while a malformed request is
// handled. It is locked, so that a corrupted lock table shows too — when the
// server holds locks at all: on a server whose locks do not hold (which the
// lock rules report) the canary checks its content only, so that the
// robustness rules are not blamed for the lock rules' failure.
type canary struct {
	key    string
	body   []byte
	cookie int32
	locked bool
}

func (e *env) newCanary(ctx context.Context) canary {
	GinkgoHelper()
	c, k, body := e.dial(ctx), e.key(), content("canary")
	create(ctx, c, k, body, 20)
	cn := canary{key: k, body: body, cookie: lock(ctx, c, k)}
	r := get(ctx, c, k)
	cn.locked = r.Status == protocol.StatusLocked && hv(r, protocol.HeaderLockCookie) == itoa(int(cn.cookie))
	if !cn.locked {
		e.rec.note(0, "the canary's lock does not hold (%s): it checks its content only", describe(r))
	}
	return cn
}

// check verifies, on a new connection, that the server still serves and that
// the canary has its lock and content.
func (cn canary) check(ctx context.Context, e *env) {
	GinkgoHelper()
	c := e.dial(ctx)
	if cn.locked {
		expectLockedBy(ctx, c, cn.key, cn.cookie, "canary session (locked before the malformed request)")
		status(release(ctx, c, cn.key, cn.cookie), 200, "releasing the canary")
	}
	expectContent(ctx, c, cn.key, cn.body, "canary session content")
}

// refuseWindow is how long a server may take to answer or close after a
// malformed request; a correct server does it at once.
const refuseWindow = 2 * time.Second

// sendMalformed sends m for key k and checks the reply: only allowed
// statuses, well-formed, then a close.
func sendMalformed(ctx context.Context, e *env, m malformed, k string) {
	GinkgoHelper()
	allow := m.allow
	if allow == nil {
		allow = []int{400}
	}
	rc := e.dialRaw(ctx)
	err := rc.send(m.raw(k))
	if err != nil && !isReset(err) {
		Fail(fmt.Sprintf("%s: sending: %v", m.name, err))
	}
	if !m.noHalfClose {
		_ = rc.closeWrite()
	}
	x, err := rc.awaitReplies(1, refuseWindow)
	Expect(err).NotTo(HaveOccurred(), "%s: reading the reply", m.name)
	what := m.name
	if m.noHalfClose {
		what += " (the client sent no more and did not close: a server that waits for the declared body never answers)"
	}
	x.judge(what, allow...)
}

// sectionRobustness: malformed input, odd delivery and many connections.
func sectionRobustness(e *env) {
	Describe("Robustness", func() {
		for _, id := range corpusRules {
			e.Rule(id, func() {
				for _, m := range corpus[id] {
					e.It("refuses "+m.name+" with 400 or a clean close and changes no other session", func(ctx SpecContext) {
						cn := e.newCanary(ctx)
						k := e.key()
						if m.exists {
							create(ctx, e.dial(ctx), k, content("exists"), 20)
						}
						sendMalformed(ctx, e, m, k)
						cn.check(ctx, e)
					})
				}
			})
		}

		e.Rule("robustness-truncated-body", func() {
			for _, tc := range []struct {
				name    string
				declare int
				send    int
			}{{"10 of 100 bytes", 100, 10}, {"99 of 100 bytes", 100, 99}, {"0 of 1 byte", 1, 0}} {
				e.It("stores nothing for a PUT with "+tc.name+" and closes", func(ctx SpecContext) {
					cn := e.newCanary(ctx)
					k := e.key()
					raw := []byte(fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: localhost\r\nTimeout:20\r\nContent-Length:%d\r\n\r\n%s", k, tc.declare, strings.Repeat("b", tc.send)))
					sendMalformed(ctx, e, malformed{name: "PUT with " + tc.name, raw: func(string) []byte { return raw }}, k)
					expectAbsent(ctx, e.dial(ctx), k, "GET of the truncated PUT's key")
					cn.check(ctx, e)
				})
			}
		})

		e.Rule("robustness-byte-by-byte", func() {
			e.It("answers a PUT and a GET sent one byte at a time with 200 and the stored body", func(ctx SpecContext) {
				k, body := e.key(), content("bytewise")
				raw := append(request("PUT", k, body, "Timeout:20", "ExtraFlags:0", "LockCookie:0"), request("GET", k, nil)...)
				rc := e.dialRaw(ctx)
				for i := range raw {
					Expect(rc.send(raw[i : i+1])).To(Succeed())
				}
				replies, err := rc.readReplies(ctx, 2)
				Expect(err).NotTo(HaveOccurred())
				status(replies[0], 200, "PUT sent byte by byte")
				status(replies[1], 200, "GET sent byte by byte")
				Expect(replies[1].Body).To(Equal(body))
			})
			e.It("refuses a malformed request sent one byte at a time with 400 or a clean close", func(ctx SpecContext) {
				cn := e.newCanary(ctx)
				raw := []byte("GET " + protocol.Target(AppID, newID()) + " HTTP/9.9\r\nHost: localhost\r\n\r\n")
				rc := e.dialRaw(ctx)
				for i := range raw {
					if err := rc.send(raw[i : i+1]); err != nil {
						break // the server may close as soon as it sees the bad version
					}
				}
				_ = rc.closeWrite()
				x, err := rc.awaitReplies(1, refuseWindow)
				Expect(err).NotTo(HaveOccurred())
				x.judge("malformed request (HTTP/9.9) sent byte by byte", 400)
				cn.check(ctx, e)
			})
		})

		e.Rule("robustness-pipelined", func() {
			e.It("answers PUT, GET, HEAD, DELETE, GET written in one batch with 200, 200, 200, 200, 404 in order", func(ctx SpecContext) {
				k, body := e.key(), content("pipe")
				var batch []byte
				batch = append(batch, request("PUT", k, body, "Timeout:20", "ExtraFlags:0", "LockCookie:0")...)
				batch = append(batch, request("GET", k, nil)...)
				batch = append(batch, request("HEAD", k, nil)...)
				batch = append(batch, request("DELETE", k, nil, "LockCookie:0")...)
				batch = append(batch, request("GET", k, nil)...)
				rc := e.dialRaw(ctx)
				Expect(rc.send(batch)).To(Succeed())
				replies, err := rc.readReplies(ctx, 5)
				Expect(err).NotTo(HaveOccurred())
				var got []int
				for _, r := range replies {
					got = append(got, r.Status)
				}
				Expect(got).To(Equal([]int{200, 200, 200, 200, 404}), "statuses in order")
				Expect(replies[1].Body).To(Equal(body))
			})
			e.It("answers a valid PUT before a malformed request in the same batch, then refuses the rest or closes", func(ctx SpecContext) {
				cn := e.newCanary(ctx)
				k, body := e.key(), content("pipe")
				batch := append(request("PUT", k, body, "Timeout:20", "ExtraFlags:0", "LockCookie:0"), "BOGUS LINE\r\n\r\n"...)
				batch = append(batch, request("GET", k, nil)...)
				rc := e.dialRaw(ctx)
				Expect(rc.send(batch)).To(Succeed())
				_ = rc.closeWrite()
				x, err := rc.awaitReplies(2, refuseWindow)
				Expect(err).NotTo(HaveOccurred())
				Expect(x.perr).NotTo(HaveOccurred(), "reply bytes %q", clip(x.data))
				Expect(x.replies).NotTo(BeEmpty(), "the valid PUT before the malformed request was not answered")
				status(x.replies[0], 200, "the valid PUT")
				rest := x
				rest.replies = x.replies[1:]
				rest.judge("the malformed request after the PUT", 400)
				expectContent(ctx, e.dial(ctx), k, body, "GET of the pipelined PUT's item")
				cn.check(ctx, e)
			})
		})

		e.Rule("robustness-closed-mid-request", func() {
			for _, tc := range []struct {
				name  string
				cut   func(raw []byte) []byte
				reset bool
			}{
				{"inside the request line", func(raw []byte) []byte { return raw[:7] }, false},
				{"inside the headers", func(raw []byte) []byte { return raw[:bytes.Index(raw, []byte("Timeout"))+4] }, false},
				{"inside the body, with a reset", func(raw []byte) []byte { return raw[:len(raw)-5] }, true},
			} {
				e.It("forgets a PUT whose connection closes "+tc.name, func(ctx SpecContext) {
					cn := e.newCanary(ctx)
					k := e.key()
					raw := request("PUT", k, content("cut-short-body"), "Timeout:20", "ExtraFlags:0", "LockCookie:0")
					rc := e.dialRaw(ctx)
					Expect(rc.send(tc.cut(raw))).To(Succeed())
					if tc.reset {
						_ = rc.nc.SetLinger(0)
					}
					Expect(rc.Close()).To(Succeed())
					e.rec.note(rc.id, "suite closed the connection")
					expectAbsent(ctx, e.dial(ctx), k, "GET of the cut PUT's key on a new connection")
					cn.check(ctx, e)
				})
			}
		})

		e.Rule("robustness-many-connections", func() {
			e.It("serves a PUT and a GET on each of 200 concurrent connections, or refuses some by closing them", func(ctx SpecContext) {
				cn := e.newCanary(ctx)
				const n = 200
				var (
					wg      sync.WaitGroup
					mu      sync.Mutex
					served  int
					refused int
					bad     []string
				)
				conns := make([]*protocol.Conn, 0, n)
				for i := 0; i < n; i++ {
					_, tap := e.rec.newConn()
					c, err := protocol.Dial(ctx, e.tgt.Addr(), protocol.ConnOptions{Tap: tap})
					if err != nil {
						bad = append(bad, fmt.Sprintf("dial %d: %v", i, err))
						continue
					}
					DeferCleanup(func() { _ = c.Close() })
					conns = append(conns, c)
				}
				Expect(bad).To(BeEmpty(), "the server did not accept the connections")
				for i, c := range conns {
					wg.Add(1)
					go func() {
						defer wg.Done()
						k := protocol.Target(AppID, newID())
						body := []byte(fmt.Sprintf("conn %d", i))
						err := func() error {
							r, err := c.Set(ctx, k, body, protocol.SetParams{Timeout: 20})
							if err != nil {
								return err
							}
							if r.Status != 200 {
								return fmt.Errorf("PUT answered %d", r.Status)
							}
							g, err := c.Get(ctx, k)
							if err != nil {
								return err
							}
							if g.Status != 200 || !bytes.Equal(g.Body, body) {
								return fmt.Errorf("GET answered %d with %q", g.Status, g.Body)
							}
							_, err = c.Remove(ctx, k, 0)
							return err
						}()
						mu.Lock()
						defer mu.Unlock()
						switch {
						case err == nil:
							served++
						case errors.Is(err, io.EOF) || isReset(err) || isClosedBeforeReply(err):
							refused++
						default:
							bad = append(bad, fmt.Sprintf("connection %d: %v", i, err))
						}
					}()
				}
				wg.Wait()
				Expect(bad).To(BeEmpty(), "connections neither served nor cleanly refused")
				Expect(served).To(BeNumerically(">", 0), "no connection was served (%d refused)", refused)
				AddReportEntry("connections", fmt.Sprintf("%d served, %d refused", served, refused))
				cn.check(ctx, e)
			})
		})
	})
}

func isClosedBeforeReply(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return strings.Contains(err.Error(), "closed the connection") || errors.Is(err, protocol.ErrTruncated)
}

// corpusSize returns how many malformed requests the corpus holds.
func corpusSize() int {
	n := 0
	for _, ms := range corpus {
		n += len(ms)
	}
	return n
}
