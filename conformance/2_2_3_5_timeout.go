package conformance

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// section2_2_3_5: [MS-ASP] 2.2.3.5 Timeout — item lifetime in minutes.
func section2_2_3_5(e *env) {
	Describe("2.2.3.5 Timeout", func() {
		e.Rule("2.2.3.5-timeout-default", func() {
			e.It("answers a GET of an item PUT without a Timeout header with Timeout: 20", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				status(doRaw(ctx, c, request("PUT", k, content("default"), "ExtraFlags:0", "LockCookie:0")), 200, "PUT without Timeout")
				r := get(ctx, c, k)
				status(r, 200, "GET")
				Expect(hv(r, protocol.HeaderTimeout)).To(Equal("20"), "Timeout header of the GET reply")
			})
		})

		e.Rule("2.2.3.5-timeout-echo", func() {
			e.It("answers GET and GET Exclusive: acquire of an item PUT with Timeout:7 with Timeout: 7", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("echo"), 7)
				r := get(ctx, c, k)
				status(r, 200, "GET")
				Expect(hv(r, protocol.HeaderTimeout)).To(Equal("7"), "Timeout header of the GET reply")
				r = acquireReq(ctx, c, k)
				status(r, 200, "GET Exclusive: acquire")
				Expect(hv(r, protocol.HeaderTimeout)).To(Equal("7"), "Timeout header of the acquire reply")
			})
		})

		e.Rule("2.2.3.5-timeout-max", func() {
			e.It("accepts Timeout:525600 and answers Timeout:525601 with 400 without creating the item", func(ctx SpecContext) {
				c, k1, k2 := e.dial(ctx), e.key(), e.key()
				status(put(ctx, c, k1, content("max"), protocol.MaxTimeout, 0, 0), 200, "PUT Timeout:525600")
				r := get(ctx, c, k1)
				status(r, 200, "GET of the one-year item")
				Expect(hv(r, protocol.HeaderTimeout)).To(Equal("525600"))
				status(put(ctx, c, k2, content("over"), protocol.MaxTimeout+1, 0, 0), 400, "PUT Timeout:525601")
				expectAbsent(ctx, c, k2, "GET after the refused PUT Timeout:525601")
			})
		})

		e.Rule("2.2.3.5-timeout-negative", func() {
			e.It("answers PUT Timeout:-5 with 400 and creates nothing", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				status(put(ctx, c, k, content("neg"), -5, 0, 0), 400, "PUT Timeout:-5")
				expectAbsent(ctx, c, k, "GET after the refused PUT")
			})
		})

		e.Rule("2.2.3.5-timeout-nonnumeric", func() {
			e.It("answers PUT Timeout:abc with 400 and creates nothing", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				status(doRaw(ctx, c, request("PUT", k, content("nan"), "Timeout:abc", "ExtraFlags:0", "LockCookie:0")), 400, "PUT Timeout:abc")
				expectAbsent(ctx, c, k, "GET after the refused PUT")
			})
		})

		e.Rule("2.2.3.5-timeout-zero", func() {
			e.It("reports Timeout: 0 and still has the item after a Timeout:1 item created with it has expired", func(ctx SpecContext) {
				c, zero, one := e.dial(ctx), e.key(), e.key()
				body := content("zero")
				create(ctx, c, zero, body, 0)
				create(ctx, c, one, content("one"), 1)
				created := time.Now()
				r := get(ctx, c, zero)
				status(r, 200, "GET of the Timeout:0 item")
				Expect(hv(r, protocol.HeaderTimeout)).To(Equal("0"))
				waitUntil(ctx, created.Add(e.pmin(1.5)))
				c = e.dial(ctx)
				expectAbsent(ctx, c, one, "GET of the Timeout:1 item 1.5 minutes later (the control: the clock did run)")
				expectContent(ctx, c, zero, body, "GET of the Timeout:0 item 1.5 minutes later")
			})
		})
	})
}
