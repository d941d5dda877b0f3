package conformance

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// section2_2_4: [MS-ASP] 2.2.4 Responses — status line and header block.
func section2_2_4(e *env) {
	Describe("2.2.4 Responses", func() {
		e.Rule("2.2.4-status-line", func() {
			e.It("writes bare status lines with the standard reason phrases for 200, 400, 404 and 423", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				replies := []*protocol.Response{
					put(ctx, c, k, content("status"), 20, 0, 0),
					doRaw(ctx, c, request("PUT", k, []byte("x"), refusedTimeout)),
					get(ctx, c, protocol.Target(AppID, newID())),
					acquireReq(ctx, c, k),
					get(ctx, c, k),
				}
				for _, r := range replies {
					Expect(r.Proto).To(BeEmpty(), "status line of %s starts with %q; the service writes a bare \"%d %s\"", describe(r), r.Proto+" ", r.Status, protocol.StatusText(r.Status))
					Expect(r.Reason).To(Equal(protocol.StatusText(r.Status)), "reason phrase of %s", describe(r))
				}
				Expect(replies[1].Status).To(Equal(400), "the PUT %s reply (%s), the 400 whose status line this rule checks; see rule 2.2.3.5-timeout-max", refusedTimeout, describe(replies[1]))
				Expect(replies[4].Status).To(Equal(423), "the GET of the locked item (%s)", describe(replies[4]))
			})
		})

		e.Rule("2.2.4-header-order", func() {
			e.It("orders the headers of acquire, GET, PUT, 404 and 423 replies as Microsoft's service does", func(ctx SpecContext) {
				c, k, u := e.dial(ctx), e.key(), e.key()
				V, AF, LC, TO, CC, CL := protocol.HeaderVersion, protocol.HeaderActionFlags, protocol.HeaderLockCookie, protocol.HeaderTimeout, protocol.HeaderCacheControl, protocol.HeaderContentLength
				LD, LA := protocol.HeaderLockDate, protocol.HeaderLockAge
				check := func(r *protocol.Response, what string, want ...string) {
					GinkgoHelper()
					Expect(r.Header.Names()).To(Equal(want), "%s: header names in wire order (observed %s)", what, describe(r))
					Expect(hv(r, CC)).To(Equal("private"), "%s: Cache-Control", what)
				}
				check(put(ctx, c, k, content("order"), 20, 0, 0), "PUT 200", V, CC, CL)
				check(get(ctx, c, k), "GET 200", V, TO, CC, CL)
				check(acquireReq(ctx, c, k), "acquire 200", V, LC, TO, CC, CL)
				check(get(ctx, c, k), "GET 423", V, LD, LA, LC, CC, CL)
				check(get(ctx, c, protocol.Target(AppID, newID())), "GET 404", V, CC, CL)
				status(put(ctx, c, u, emptySession, 20, 0, 1), 200, "PUT ExtraFlags:1")
				check(acquireReq(ctx, c, u), "acquire 200 of an uninitialized item", V, AF, LC, TO, CC, CL)
			})
		})
	})
}

// section2_2_4_3: [MS-ASP] 2.2.4.3 Not Found.
func section2_2_4_3(e *env) {
	Describe("2.2.4.3 404 Not Found", func() {
		e.Rule("2.2.4.3-get-missing", func() {
			e.It("answers 404, Content-Length: 0, no body", func(ctx SpecContext) {
				r := get(ctx, e.dial(ctx), protocol.Target(AppID, newID()))
				status(r, 404, "GET of an unknown key")
				Expect(hv(r, protocol.HeaderContentLength)).To(Equal("0"), "Content-Length of the 404")
				Expect(r.Body).To(BeEmpty())
			})
		})
	})
}

// section2_2_4_4: [MS-ASP] 2.2.4.4 Locked.
func section2_2_4_4(e *env) {
	Describe("2.2.4.4 423 Locked", func() {
		e.Rule("2.2.4.4-locked-headers", func() {
			e.It("answers a GET of a locked item with LockDate, LockAge, LockCookie in order and an empty body", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("423"), 20)
				cookie := lock(ctx, c, k)
				r := get(ctx, c, k)
				status(r, 423, "GET of the locked item")
				var order []string
				for _, n := range r.Header.Names() {
					switch n {
					case protocol.HeaderLockDate, protocol.HeaderLockAge, protocol.HeaderLockCookie:
						order = append(order, n)
					}
				}
				Expect(order).To(Equal([]string{protocol.HeaderLockDate, protocol.HeaderLockAge, protocol.HeaderLockCookie}), "lock headers of the 423 (observed %s)", describe(r))
				_, dateOK := headerInt(r, protocol.HeaderLockDate)
				_, ageOK := headerInt(r, protocol.HeaderLockAge)
				Expect(dateOK && ageOK).To(BeTrue(), "LockDate and LockAge must be integers (observed %s)", describe(r))
				Expect(cookieOf(r, "423")).To(Equal(cookie))
				Expect(hv(r, protocol.HeaderContentLength)).To(Equal("0"), "Content-Length of the 423")
				Expect(r.Body).To(BeEmpty())
			})
		})
	})
}
