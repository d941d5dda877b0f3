package conformance

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// section3_1_5_other: decision table c.5 — anything that is not one of the
// six messages.
func section3_1_5_other(e *env) {
	Describe("c.5 Anything else", func() {
		e.Rule("c.5-1-unknown-verb", func() {
			for _, verb := range []string{"POST", "OPTIONS", "PATCH", "get", "PUTX"} {
				e.It("answers "+verb+" with 400 or closes the connection, and creates nothing", func(ctx SpecContext) {
					k := e.key()
					expectRefused(ctx, e, request(verb, k, []byte("data")), verb)
					expectAbsent(ctx, e.dial(ctx), k, "GET after "+verb)
				})
			}
		})

		e.Rule("c.5-2-unknown-input", func() {
			e.It("answers Exclusive: bogus with 400 or a close, and does not lock the item", func(ctx SpecContext) {
				k, body := e.key(), content("bogus")
				create(ctx, e.dial(ctx), k, body, 20)
				expectRefused(ctx, e, request("GET", k, nil, "Exclusive: bogus"), "GET Exclusive: bogus")
				expectContent(ctx, e.dial(ctx), k, body, "plain GET afterwards (not locked)")
			})
			e.It("answers a GET without a Host header with the item, 400 or a close", func(ctx SpecContext) {
				k, body := e.key(), content("nohost")
				create(ctx, e.dial(ctx), k, body, 20)
				rc := e.dialRaw(ctx)
				Expect(rc.send([]byte("GET " + k + " HTTP/1.1\r\n\r\n"))).To(Succeed())
				_ = rc.closeWrite()
				x, err := rc.awaitReplies(1, refuseWindow)
				Expect(err).NotTo(HaveOccurred())
				x.judge("GET without Host", 200, 400)
				for _, r := range x.replies {
					if r.Status == 200 {
						Expect(r.Body).To(Equal(body))
					} else {
						Expect(r.Status).To(Equal(400), "GET without Host: %s", describe(r))
					}
				}
			})
		})

		e.Rule("c.5-3-internal-error", func() {
			e.It("has the emulated client read a 500 to GetExclusive as a missing session, not an error", func(ctx SpecContext) {
				peer, err := startScriptedPeer(
					cannedReply(500, nil, protocol.HeaderVersion+": 4.0.30319"),
					cannedReply(500, nil, protocol.HeaderVersion+": 4.0.30319"))
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(func() { _ = peer.Close() })
				app := newASPNETClient(peer.addr(), e.minute, e.rec.newConn)
				DeferCleanup(app.Close)
				r, err := app.getItem(ctx, protocol.Target(AppID, newID()), true)
				Expect(err).NotTo(HaveOccurred(), "a 500 to GET is not an exception")
				Expect(r.Found || r.Locked).To(BeFalse(), "a 500 means no session")
				reply, err := app.call(ctx, protocol.NewRemoveRequest(protocol.DefaultHost, protocol.Target(AppID, newID()), 0))
				Expect(err).NotTo(HaveOccurred(), "a 500 to DELETE is ignored")
				Expect(reply.Status).To(Equal(500))
			})
		})
	})
}
