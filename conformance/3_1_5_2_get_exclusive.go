package conformance

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// section3_1_5_2: [MS-ASP] 3.1.5.2 GetExclusive_Request.
func section3_1_5_2(e *env) {
	Describe("3.1.5.2 GetExclusive_Request", func() {
		e.Rule("3.1.5.2-acquire-locked", func() {
			e.It("answers 423 with the holder's LockCookie, and the holder can still release with its cookie", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("acqlocked"), 20)
				cookie := lock(ctx, c, k)
				r := acquireReq(ctx, e.dial(ctx), k)
				status(r, 423, "second acquire")
				Expect(cookieOf(r, "second acquire")).To(Equal(cookie), "the 423 names the holder's cookie")
				status(release(ctx, c, k, cookie), 200, "release by the holder with its original cookie")
			})
		})

		e.Rule("3.1.5.2-acquire-missing", func() {
			e.It("answers 404 with no LockCookie", func(ctx SpecContext) {
				r := acquireReq(ctx, e.dial(ctx), protocol.Target(AppID, newID()))
				status(r, 404, "acquire of an unknown key")
				Expect(r.Header.Has(protocol.HeaderLockCookie)).To(BeFalse())
			})
		})

		e.Rule("3.1.5.2-acquire-release-extend", func() {
			e.It("keeps a Timeout:1 item alive through acquire, release, acquire, release, each 0.6 minutes after the one before, with no other request", func(ctx SpecContext) {
				k, body := e.key(), content("lockslide")
				create(ctx, e.dial(ctx), k, body, 1)
				last := time.Now()
				var cookie int32
				for i := 1; i <= 4; i++ {
					waitUntil(ctx, last.Add(e.pmin(0.6)))
					c := e.dial(ctx)
					last = time.Now()
					if i%2 == 1 {
						what := fmt.Sprintf("acquire %d, 0.6 minutes after the previous request (404: the request before it did not slide the expiry)", (i+1)/2)
						r := acquireReq(ctx, c, k)
						status(r, 200, what)
						cookie = cookieOf(r, what)
						continue
					}
					status(release(ctx, c, k, cookie), 200, fmt.Sprintf("release %d, 0.6 minutes after its acquire (404: the acquire did not slide the expiry)", i/2))
				}
				expectContent(ctx, e.dial(ctx), k, body, "GET right after the last release")
			})
		})
	})
}
