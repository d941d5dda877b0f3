package conformance

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// section3_1_5_6: [MS-ASP] 3.1.5.6 ResetTimeout_Request (HEAD), and decision table c.4.
func section3_1_5_6(e *env) {
	Describe("3.1.5.6 ResetTimeout_Request", func() {
		e.Rule("3.1.5.6-head-ok", func() {
			e.It("answers 200 without a body for an existing item and 404 for an unknown key", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("head"), 20)
				r := head(ctx, c, k)
				status(r, 200, "HEAD of an existing item")
				Expect(hv(r, protocol.HeaderContentLength)).To(Equal("0"))
				Expect(r.Body).To(BeEmpty())
				status(head(ctx, c, protocol.Target(AppID, newID())), 404, "HEAD of an unknown key")
			})
		})

		e.Rule("3.1.5.6-head-ignores-lock", func() {
			e.It("answers 200 to a HEAD of a locked item", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("headlocked"), 20)
				cookie := lock(ctx, c, k)
				status(head(ctx, e.dial(ctx), k), 200, "HEAD of the locked item")
				expectLockedBy(ctx, c, k, cookie, "GET after the HEAD (still locked)")
			})
		})

		e.Rule("3.1.5.6-head-extends", func() {
			e.It("keeps a Timeout:1 item alive for 2 minutes of HEADs every half minute", func(ctx SpecContext) {
				k, body := e.key(), content("headslide")
				create(ctx, e.dial(ctx), k, body, 1)
				last := time.Now()
				for i := 0; i < 4; i++ {
					waitUntil(ctx, last.Add(e.pmin(0.5)))
					c := e.dial(ctx)
					last = time.Now()
					status(head(ctx, c, k), 200, "HEAD every half minute (404 means the HEADs did not slide the expiry)")
				}
				expectContent(ctx, e.dial(ctx), k, body, "GET after 2 minutes of HEADs")
			})
		})
	})

	Describe("c.4 HEAD decision table", func() {
		e.Rule("c.4-1-not-found", func() {
			e.It("answers HEAD of an unknown key with 404 and creates nothing", func(ctx SpecContext) {
				c, k := e.dial(ctx), protocol.Target(AppID, newID())
				status(head(ctx, c, k), 404, "HEAD")
				expectAbsent(ctx, c, k, "GET after the HEAD")
			})
		})

		e.Rule("c.4-2-found", func() {
			e.It("answers HEAD of a locked item with 200 and only X-AspNet-Version, Cache-Control and Content-Length: 0", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("head"), 20)
				lock(ctx, c, k)
				r := head(ctx, c, k)
				status(r, 200, "HEAD of the locked item")
				Expect(r.Header.Names()).To(ConsistOf(protocol.HeaderVersion, protocol.HeaderCacheControl, protocol.HeaderContentLength), "headers of %s", describe(r))
				Expect(hv(r, protocol.HeaderContentLength)).To(Equal("0"))
			})
		})
	})
}
