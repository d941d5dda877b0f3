package conformance

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// section2_2_3_11: [MS-ASP] 2.2.3.11 ExtraFlags (and the client's header spelling).
func section2_2_3_11(e *env) {
	Describe("2.2.3.11 ExtraFlags", func() {
		e.Rule("2.2.3.11-nospace-headers", func() {
			e.It("stores a PUT written exactly as the captured client writes it: Timeout:20, Content-Length:7, ExtraFlags:0, LockCookie:0", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := []byte("7 bytes")
				raw := []byte("PUT " + k + " HTTP/1.1\r\nHost: localhost\r\nTimeout:20\r\nContent-Length:7\r\nExtraFlags:0\r\nLockCookie:0\r\n\r\n" + string(body))
				status(doRaw(ctx, c, raw), 200, "PUT in the client's spelling")
				r := get(ctx, c, k)
				status(r, 200, "GET")
				Expect(r.Body).To(Equal(body))
				Expect(hv(r, protocol.HeaderTimeout)).To(Equal("20"))
			})
		})

		e.Rule("2.2.3.11-uninit-create", func() {
			e.It("answers the PUT 200 and the next GET 200 with ActionFlags: 1", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				status(put(ctx, c, k, emptySession, 20, 0, 1), 200, "PUT ExtraFlags:1 (CreateUninitializedItem)")
				r := get(ctx, c, k)
				status(r, 200, "GET of the uninitialized item")
				Expect(hv(r, protocol.HeaderActionFlags)).To(Equal("1"), "ActionFlags of the first GET")
			})
		})
	})
}

// emptySession is what CreateUninitializedItem sends: an empty session with
// timeout 20 (PROTOCOL.md b.7).
var emptySession = []byte{0x14, 0, 0, 0, 0, 0, 0xff}

// section2_2_3_12: [MS-ASP] 2.2.3.12 ActionFlags.
func section2_2_3_12(e *env) {
	Describe("2.2.3.12 ActionFlags", func() {
		e.Rule("2.2.3.12-actionflags-once", func() {
			e.It("answers the second GET of an uninitialized item without an ActionFlags header", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				status(put(ctx, c, k, emptySession, 20, 0, 1), 200, "PUT ExtraFlags:1")
				status(get(ctx, c, k), 200, "first GET")
				r := get(ctx, c, k)
				status(r, 200, "second GET")
				Expect(r.Header.Has(protocol.HeaderActionFlags)).To(BeFalse(), "second GET still has ActionFlags: %s", hv(r, protocol.HeaderActionFlags))
			})
		})

		e.Rule("2.2.3.12-never-zero", func() {
			e.It("never sends ActionFlags: 0 in replies to any kind of request on new, uninitialized and locked items", func(ctx SpecContext) {
				c, k, u := e.dial(ctx), e.key(), e.key()
				var replies []*protocol.Response
				add := func(r *protocol.Response) { replies = append(replies, r) }
				add(put(ctx, c, k, content("zero"), 20, 0, 0))
				add(get(ctx, c, k))
				add(head(ctx, c, k))
				add(acquireReq(ctx, c, k))
				add(get(ctx, c, k))
				add(acquireReq(ctx, c, k))
				add(release(ctx, c, k, 999))
				add(put(ctx, c, u, emptySession, 20, 0, 1))
				add(get(ctx, c, u))
				add(acquireReq(ctx, c, u))
				add(get(ctx, c, u))
				add(get(ctx, c, protocol.Target(AppID, newID())))
				for _, r := range replies {
					if v, ok := header(r, protocol.HeaderActionFlags); ok {
						Expect(v).NotTo(Equal("0"), "reply %s", describe(r))
					}
				}
			})
		})
	})
}

// section2_2_3_13: [MS-ASP] 2.2.3.13 the unique identifier (request target → key).
func section2_2_3_13(e *env) {
	Describe("2.2.3.13 Unique identifier", func() {
		e.Rule("2.2.3.13-key-decoding", func() {
			e.It("answers a GET through %2F…%3D with the item PUT through %2f…%3d", func(ctx SpecContext) {
				c, id := e.dial(ctx), newID()
				lower := "%2fconformance%2fkeys(x%3d)%2f" + id
				upper := "%2Fconformance%2Fkeys(x%3D)%2F" + id
				e.cleanup(lower)
				body := content("decode")
				create(ctx, c, lower, body, 20)
				expectContent(ctx, c, upper, body, "GET through the upper-case escapes")
			})
		})

		e.Rule("2.2.3.13-key-case", func() {
			e.It("answers 404 to a GET whose session id differs only in letter case", func(ctx SpecContext) {
				c, id := e.dial(ctx), newID()
				k := e.keyFor(id)
				create(ctx, c, k, content("case"), 20)
				expectAbsent(ctx, c, protocol.Target(AppID, strings.ToUpper(id)), "GET with the upper-case session id")
			})
		})

		e.Rule("2.2.3.13-double-slash", func() {
			e.It("answers a GET of %2fa%2fs with the item PUT as //a/s", func(ctx SpecContext) {
				c, id := e.dial(ctx), newID()
				e.cleanup("%2fconformance%2f" + id)
				body := content("slash")
				create(ctx, c, "//conformance/"+id, body, 20)
				expectContent(ctx, c, "%2fconformance%2f"+id, body, "GET through %2fconformance%2fID")
			})
		})
	})
}

// keyFor returns the target of session id and arranges its cleanup.
func (e *env) keyFor(id string) string {
	t := protocol.Target(AppID, id)
	e.cleanup(t)
	return t
}
