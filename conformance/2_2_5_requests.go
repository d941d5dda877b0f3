package conformance

import (
	"fmt"

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

		e.Rule("2.2.5.1-version-token", func() {
			for _, v := range versionTokens {
				e.It("refuses a request line with "+v.name+" or serves it as the same key, never another", func(ctx SpecContext) {
					k, body := e.key(), content("version")
					create(ctx, e.dial(ctx), k, body, 20)
					rc := e.dialRaw(ctx)
					Expect(rc.send([]byte(fmt.Sprintf(v.format, "GET", k) + "\r\nHost: localhost\r\n\r\n"))).To(Succeed())
					_ = rc.closeWrite()
					x, err := rc.awaitReplies(1, refuseWindow)
					Expect(err).NotTo(HaveOccurred())
					what := "GET with " + v.name + " of an existing item"
					x.judge(what, 200, 400)
					for _, r := range x.replies {
						if r.Status == 200 {
							Expect(r.Body).To(Equal(body), "%s: answered 200 with another body", what)
						}
					}

					fresh, newBody := e.key(), content("version-put")
					rc = e.dialRaw(ctx)
					Expect(rc.send(append([]byte(fmt.Sprintf(v.format, "PUT", fresh)+"\r\nHost: localhost\r\nTimeout:20\r\nContent-Length:"+
						itoa(len(newBody))+"\r\n\r\n"), newBody...))).To(Succeed())
					_ = rc.closeWrite()
					x, err = rc.awaitReplies(1, refuseWindow)
					Expect(err).NotTo(HaveOccurred())
					what = "PUT with " + v.name
					x.judge(what, 200, 400)
					r := get(ctx, e.dial(ctx), fresh)
					if len(x.replies) > 0 && x.replies[0].Status == 200 {
						status(r, 200, "GET with HTTP/1.1 of the key a "+what+" answered 200 (404: the version token went into the key)")
						Expect(r.Body).To(Equal(newBody), "body stored by the %s", what)
					} else {
						status(r, 404, "GET of the key a refused "+what+" named (nothing may be stored)")
					}
				})
			}
		})
	})
}

// versionTokens are request lines whose version token is not the client's
// "HTTP/1.1": a server refuses them or serves them as the same request, never
// takes the token (or an extra field) for part of the key.
var versionTokens = []struct{ name, format string }{
	{"HTTP/1.0", "%s %s HTTP/1.0"},
	{"lower-case http/1.1", "%s %s http/1.1"},
	{"an extra field after HTTP/1.1", "%s %s HTTP/1.1 extra"},
	{"HTTP/1.9", "%s %s HTTP/1.9"},
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
