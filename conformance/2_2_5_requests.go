package conformance

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// section2_2_5_1: [MS-ASP] 2.2.5.1 request line and target.
func section2_2_5_1(e *env) {
	Describe("2.2.5.1 Request target", func() {
		e.Rule("2.2.5.1-no-leading-slash", func() {
			e.It("stores and returns an item addressed as %2fLM%2fW3SVC…", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				Expect(k).To(HavePrefix("%2f"))
				body := content("nolead")
				create(ctx, c, k, body, 20)
				expectContent(ctx, c, k, body, "GET through the %2f target")
			})
		})

		e.Rule("2.2.5.1-leading-slash", func() {
			e.It("answers a GET of /conformance/ID with the item PUT as %2fconformance%2fID", func(ctx SpecContext) {
				c, id := e.dial(ctx), newID()
				e.cleanup("%2fconformance%2f" + id)
				body := content("lead")
				create(ctx, c, "%2fconformance%2f"+id, body, 20)
				expectContent(ctx, c, "/conformance/"+id, body, "GET through /conformance/ID")
			})
		})
	})
}

// section2_2_5_2: [MS-ASP] 2.2.5.2 error replies.
func section2_2_5_2(e *env) {
	Describe("2.2.5.2 Error replies", func() {
		e.Rule("2.2.5.2-no-error-bodies", func() {
			e.It("sends Content-Length: 0 and no body with 400, 404 and 423", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("errbody"), 20)
				bad := doRaw(ctx, c, request("PUT", k, []byte("x"), refusedTimeout))
				missing := get(ctx, c, protocol.Target(AppID, newID()))
				lock(ctx, c, k)
				locked := get(ctx, c, k)
				for _, x := range []struct {
					r    *protocol.Response
					want int
				}{{bad, 400}, {missing, 404}, {locked, 423}} {
					status(x.r, x.want, "error reply (the 400 is provoked with PUT "+refusedTimeout+", see rule 2.2.3.5-timeout-max)")
					Expect(hv(x.r, protocol.HeaderContentLength)).To(Equal("0"), "Content-Length of the %d reply", x.want)
					Expect(x.r.Body).To(BeEmpty(), "body of the %d reply", x.want)
				}
			})
		})
	})
}
