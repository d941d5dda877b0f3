package conformance

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// section3_1_5_5: [MS-ASP] 3.1.5.5 Remove_Request, and decision table c.3.
func section3_1_5_5(e *env) {
	Describe("3.1.5.5 Remove_Request", func() {
		e.Rule("3.1.5.5-delete-owner", func() {
			e.It("answers 200, and GET then answers 404", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("del"), 20)
				status(remove(ctx, c, k, lock(ctx, c, k)), 200, "DELETE with the holder's cookie")
				expectAbsent(ctx, c, k, "GET after the DELETE")
			})
		})

		e.Rule("3.1.5.5-delete-wrong", func() {
			e.It("answers 423 to DELETE with a wrong cookie and to DELETE without one, and the item is still there", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("keep")
				create(ctx, c, k, body, 20)
				cookie := lock(ctx, c, k)
				r := remove(ctx, c, k, cookie+1)
				status(r, 423, "DELETE with a wrong cookie")
				Expect(cookieOf(r, "423 to the DELETE")).To(Equal(cookie))
				status(doRaw(ctx, c, request("DELETE", k, nil)), 423, "DELETE without LockCookie")
				status(release(ctx, c, k, cookie), 200, "release by the holder")
				expectContent(ctx, c, k, body, "GET after the refused DELETEs")
			})
		})

		e.Rule("3.1.5.5-delete-unlocked-nocookie", func() {
			e.It("answers 200 and GET then answers 404", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("del"), 20)
				status(doRaw(ctx, c, request("DELETE", k, nil)), 200, "DELETE without LockCookie")
				expectAbsent(ctx, c, k, "GET after it")
			})
		})

		e.Rule("3.1.5.5-delete-absent", func() {
			e.It("answers 404", func(ctx SpecContext) {
				status(remove(ctx, e.dial(ctx), protocol.Target(AppID, newID()), 0), 404, "DELETE of an unknown key")
			})
		})
	})

	Describe("c.3 DELETE decision table", func() {
		e.Rule("c.3-1-not-found", func() {
			e.It("answers DELETE with LockCookie:abc, LockCookie:-1 and no cookie on an unknown key with 404", func(ctx SpecContext) {
				c, k := e.dial(ctx), protocol.Target(AppID, newID())
				for _, h := range []string{"LockCookie:abc", "LockCookie:-1", ""} {
					var hs []string
					if h != "" {
						hs = append(hs, h)
					}
					status(doRaw(ctx, c, request("DELETE", k, nil, hs...)), 404, "DELETE "+h)
				}
			})
		})

		e.Rule("c.3-2-cookie-invalid", func() {
			e.It("answers DELETE LockCookie:abc and LockCookie:-1 on an existing item with 400", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("keep")
				create(ctx, c, k, body, 20)
				for _, h := range []string{"LockCookie:abc", "LockCookie:-1"} {
					status(doRaw(ctx, c, request("DELETE", k, nil, h)), 400, "DELETE "+h)
				}
				expectContent(ctx, c, k, body, "GET after them")
			})
		})

		e.Rule("c.3-3-locked-mismatch", func() {
			e.It("answers 423 with LockDate, LockAge and the holder's cookie", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("a"), 20)
				cookie := lock(ctx, c, k)
				r := doRaw(ctx, c, request("DELETE", k, nil))
				status(r, 423, "DELETE without cookie on the locked item")
				Expect(r.Header.Has(protocol.HeaderLockDate) && r.Header.Has(protocol.HeaderLockAge)).To(BeTrue(), "lock headers of %s", describe(r))
				Expect(cookieOf(r, "423")).To(Equal(cookie))
			})
		})

		e.Rule("c.3-4-remove", func() {
			e.It("removes an unlocked item given a random cookie and a locked one given its cookie", func(ctx SpecContext) {
				c, k1, k2 := e.dial(ctx), e.key(), e.key()
				create(ctx, c, k1, content("a"), 20)
				status(remove(ctx, c, k1, 31337), 200, "DELETE LockCookie:31337 of an unlocked item")
				expectAbsent(ctx, c, k1, "GET after it")
				create(ctx, c, k2, content("b"), 20)
				status(remove(ctx, c, k2, lock(ctx, c, k2)), 200, "DELETE by the holder")
				expectAbsent(ctx, c, k2, "GET after it")
			})
		})
	})
}
