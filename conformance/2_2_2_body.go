package conformance

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// section2_2_2_3: [MS-ASP] 2.2.2.3 Content-Length — the body is framed by
// Content-Length, whatever TCP does to the bytes.
func section2_2_2_3(e *env) {
	Describe("2.2.2.3 Content-Length", func() {
		e.Rule("2.2.2.3-content-length-split", func() {
			e.It("stores the exact body of a PUT delivered in pieces cut inside the request line, a header and the body", func(ctx SpecContext) {
				k, body := e.key(), content("split-body-with-some-length")
				raw := request("PUT", k, body, "Timeout:20", "ExtraFlags:0", "LockCookie:0")
				cuts := []int{5, len("PUT ") + len(k)/2, len(raw) - len(body) - 12, len(raw) - len(body)/2}
				rc := e.dialRaw(ctx)
				prev := 0
				for _, cut := range append(cuts, len(raw)) {
					Expect(rc.send(raw[prev:cut])).To(Succeed())
					prev = cut
					// Pace the pieces so that they arrive as separate reads.
					wait(ctx, 2*time.Millisecond)
				}
				replies, err := rc.readReplies(ctx, 1)
				Expect(err).NotTo(HaveOccurred(), "reading the reply to the split PUT")
				status(replies[0], 200, "PUT delivered in pieces")
				expectContent(ctx, e.dial(ctx), k, body, "GET after the split PUT")
			})
		})

		e.Rule("2.2.2.3-crlf-split", func() {
			e.It("answers a PUT cut in two at every byte position (CR and LF of each line in separate reads included) and stores its body", func(ctx SpecContext) {
				k := e.key()
				// Bodies of one length, so that every request has the same cut positions.
				mk := func(i int) []byte { return []byte(fmt.Sprintf("crlf split at %04d", i)) }
				n := len(request("PUT", k, mk(0), "Timeout:20", "ExtraFlags:0", "LockCookie:0"))
				rc := e.dialRaw(ctx)
				c := e.dial(ctx)
				for cut := 1; cut < n; cut++ {
					body := mk(cut)
					raw := request("PUT", k, body, "Timeout:20", "ExtraFlags:0", "LockCookie:0")
					Expect(rc.send(raw[:cut])).To(Succeed())
					// Pace the halves so that they arrive as separate reads.
					wait(ctx, time.Millisecond)
					Expect(rc.send(raw[cut:])).To(Succeed())
					replies, err := rc.readReplies(ctx, 1)
					Expect(err).NotTo(HaveOccurred(), "reading the reply to the PUT cut after byte %d (%q | %q)", cut, escapeWire(raw[max(0, cut-6):cut]), escapeWire(raw[cut:min(n, cut+6)]))
					status(replies[0], 200, fmt.Sprintf("PUT cut after byte %d (%q | %q)", cut, escapeWire(raw[max(0, cut-6):cut]), escapeWire(raw[cut:min(n, cut+6)])))
					expectContent(ctx, c, k, body, fmt.Sprintf("GET after the PUT cut after byte %d", cut))
				}
			})
		})
	})
}

// section2_2_2_4: [MS-ASP] 2.2.2.4 Message body — opaque bytes, round-tripped exactly.
func section2_2_2_4(e *env) {
	Describe("2.2.2.4 Message body", func() {
		e.Rule("2.2.2.4-roundtrip-binary", func() {
			e.It("returns a body holding all 256 byte values byte for byte with the exact Content-Length", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := make([]byte, 0, 600)
				for i := 0; i < 256; i++ {
					body = append(body, byte(i))
				}
				body = append(body, "\r\n\r\n200 OK\r\nContent-Length: 99\r\n\r\n\x00"...)
				for i := 255; i >= 0; i-- {
					body = append(body, byte(i))
				}
				create(ctx, c, k, body, 20)
				r := get(ctx, c, k)
				status(r, 200, "GET of the binary item")
				Expect(hv(r, protocol.HeaderContentLength)).To(Equal(itoa(len(body))), "Content-Length of the GET reply")
				Expect(r.Body).To(Equal(body), "body of the GET reply")
			})
		})

		e.Rule("2.2.2.4-empty-body-put", func() {
			e.It("answers 200 to the PUT and 200 with Content-Length: 0 and no body to the GET", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				status(doRaw(ctx, c, request("PUT", k, []byte{}, "Timeout:20", "ExtraFlags:0", "LockCookie:0")), 200, "PUT with Content-Length:0")
				r := get(ctx, c, k)
				status(r, 200, "GET of the empty item (the ASP.NET client reads it as no session, e.5)")
				Expect(hv(r, protocol.HeaderContentLength)).To(Equal("0"), "Content-Length of the GET reply")
				Expect(r.Body).To(BeEmpty())
			})
		})
	})
}
