package conformance

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// section3_1_5_4: [MS-ASP] 3.1.5.4 ReleaseExclusive_Request.
func section3_1_5_4(e *env) {
	Describe("3.1.5.4 ReleaseExclusive_Request", func() {
		e.Rule("3.1.5.4-release-ok", func() {
			e.It("answers 200 with no Timeout, no LockCookie and no body, and a new acquire then gets 200", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("rel"), 20)
				r := release(ctx, c, k, lock(ctx, c, k))
				status(r, 200, "release with the holder's cookie")
				Expect(r.Header.Has(protocol.HeaderTimeout)).To(BeFalse(), "release reply has Timeout: %s", describe(r))
				Expect(r.Header.Has(protocol.HeaderLockCookie)).To(BeFalse(), "release reply has LockCookie: %s", describe(r))
				Expect(r.Body).To(BeEmpty())
				lock(ctx, e.dial(ctx), k)
			})
		})

		e.Rule("3.1.5.4-release-wrong", func() {
			e.It("answers 423 with the holder's LockCookie, and a plain GET still answers 423", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("relwrong"), 20)
				cookie := lock(ctx, c, k)
				r := release(ctx, c, k, cookie+1)
				status(r, 423, "release with a wrong cookie")
				Expect(cookieOf(r, "423 to the release")).To(Equal(cookie))
				expectLockedBy(ctx, c, k, cookie, "plain GET after the refused release")
			})
		})

		e.Rule("3.1.5.4-release-missing-cookie", func() {
			e.It("answers GET Exclusive: release without LockCookie on a locked item with 400; the lock stays", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("relnocookie"), 20)
				cookie := lock(ctx, c, k)
				status(doRaw(ctx, c, request("GET", k, nil, "Exclusive: release")), 400, "release without LockCookie")
				expectLockedBy(ctx, c, k, cookie, "GET after it")
			})
		})

		e.Rule("3.1.5.4-release-unlocked", func() {
			e.It("answers 200 to a release of an item nobody locked", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("relunlocked"), 20)
				status(release(ctx, c, k, 2), 200, "release of an unlocked item")
			})
		})

		e.Rule("3.1.5.4-release-absent", func() {
			e.It("answers 404 with and without LockCookie", func(ctx SpecContext) {
				c, k := e.dial(ctx), protocol.Target(AppID, newID())
				status(release(ctx, c, k, 2), 404, "release LockCookie:2 of an unknown key")
				status(doRaw(ctx, c, request("GET", k, nil, "Exclusive: release")), 404, "release without LockCookie of an unknown key")
			})
		})

		e.Rule("3.1.5.4-force-release", func() {
			e.It("answers release with the cookie learned from a 423 with 200, and the next acquire with that cookie + 1", func(ctx SpecContext) {
				holder, breaker, k := e.dial(ctx), e.dial(ctx), e.key()
				create(ctx, holder, k, content("break"), 20)
				lock(ctx, holder, k)
				r := acquireReq(ctx, breaker, k)
				status(r, 423, "acquire by another request")
				stale := cookieOf(r, "423")
				status(release(ctx, breaker, k, stale), 200, "force release with the 423's cookie")
				Expect(lock(ctx, breaker, k)).To(Equal(stale+1), "acquire after the force release")
			})
		})
	})
}
