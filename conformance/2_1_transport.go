package conformance

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// section2_1: [MS-ASP] 2.1 Transport — plain TCP, persistent connections.
func section2_1(e *env) {
	Describe("2.1 Transport", func() {
		e.Rule("2.1-keepalive", func() {
			e.It("answers a PUT, a GET and a HEAD sent one after another on one TCP connection", func(ctx SpecContext) {
				c, k, body := e.dial(ctx), e.key(), content("keepalive")
				status(put(ctx, c, k, body, 20, 0, 0), 200, "request 1 (PUT)")
				r := get(ctx, c, k)
				status(r, 200, "request 2 (GET) on the same connection")
				Expect(r.Body).To(Equal(body), "request 2 (GET): body")
				status(head(ctx, c, k), 200, "request 3 (HEAD) on the same connection")
			})
		})

		e.Rule("2.1-idle-close", func() {
			e.It("after an idle period the connection is still usable or was closed cleanly, and a new connection is served", func(ctx SpecContext) {
				k, body := e.key(), content("idle")
				rc := e.dialRaw(ctx)
				Expect(rc.send(request("PUT", k, body, "Timeout:20", "ExtraFlags:0", "LockCookie:0"))).To(Succeed())
				replies, err := rc.readReplies(ctx, 1)
				Expect(err).NotTo(HaveOccurred(), "reading the PUT reply")
				status(replies[0], 200, "PUT before the idle period")

				data, closed, err := rc.readUntilClose(idleWindow(e.minute))
				Expect(err).NotTo(HaveOccurred(), "while the connection was idle")
				Expect(data).To(BeEmpty(), "the server sent bytes on an idle connection nobody asked for")
				if !closed {
					// Still open: it must still work (the server may close it
					// right now; then the new connection below must work).
					Expect(rc.send(request("GET", k, nil))).To(Succeed())
					if again, err := rc.readReplies(ctx, 1); err == nil {
						status(again[0], 200, "GET on the connection that stayed open")
						Expect(again[0].Body).To(Equal(body))
					}
				}
				expectContent(ctx, e.dial(ctx), k, body, "GET on a new connection after the idle period")
			})
		})
	})
}
