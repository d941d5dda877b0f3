package conformance

import (
	"context"
	"errors"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// firstRequestHelp explains a failed first-request version check.
const firstRequestHelp = `the ASP.NET client checks X-AspNet-Version on the first reply after each application start (per state server, per AppDomain) and requires a major version of 2 or more.
Consequence: the first request after every application restart fails with
  "` + msgNeedV2 + `"
and later requests work (KB 2836759), so the failure comes back on every recycle.
Fix: enable the version header — on Microsoft's service in the machine-level web.config, <httpRuntime enableVersionHeader="true"/> (the service reads the machine configuration only) — or fix the server to send "X-AspNet-Version: 4.0.30319" first on every reply of every status`

// section2_2_3_4: [MS-ASP] 2.2.3.4 X-AspNet-Version.
func section2_2_3_4(e *env) {
	Describe("2.2.3.4 X-AspNet-Version", func() {
		e.Rule("2.2.3.4-version-header", func() {
			e.It("sends X-AspNet-Version with a major version of at least 2 first in replies of every status", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				replies := map[string]*protocol.Response{
					"200 to PUT":     put(ctx, c, k, content("version"), 20, 0, 0),
					"200 to GET":     get(ctx, c, k),
					"404 to GET":     get(ctx, c, protocol.Target(AppID, newID())),
					"400 to PUT":     doRaw(ctx, c, request("PUT", k, []byte("x"), "Timeout:-5")),
					"200 to acquire": acquireReq(ctx, c, k),
				}
				replies["423 to GET"] = get(ctx, c, k)
				for what, r := range replies {
					Expect(r.Header).NotTo(BeEmpty(), "%s has no headers", what)
					Expect(r.Header[0].Name).To(Equal(protocol.HeaderVersion), "%s: first header (observed %s)", what, describe(r))
					v := hv(r, protocol.HeaderVersion)
					Expect(protocol.VersionMajor(v)).To(BeNumerically(">=", 2), "%s: X-AspNet-Version %q has major < 2", what, v)
				}
			})
		})

		e.Rule("2.2.3.4-first-request", func() {
			firstRequest := func(what string, prepare func(ctx context.Context, k string), req func(k string) *protocol.Request) {
				e.It("passes the version check of a freshly started application whose first request is "+what, func(ctx SpecContext) {
					k := e.key()
					if prepare != nil {
						prepare(ctx, k)
					}
					app := newASPNETClient(e.tgt.Addr(), e.minute, e.rec.newConn)
					DeferCleanup(app.Close)
					_, err := app.call(ctx, req(k))
					if errors.Is(err, errNeedV2) {
						Fail(fmt.Sprintf("%v\nThe first request of a freshly started application was %s.\n%s", err, what, firstRequestHelp))
					}
					Expect(err).NotTo(HaveOccurred(), "first request (%s)", what)
					Expect(app.stateServerVersion).To(BeNumerically(">=", 2))
				})
			}
			mk := func(ctx context.Context, k string) {
				create(ctx, e.dial(ctx), k, content("first"), 20)
			}
			mkLocked := func(ctx context.Context, k string) {
				c := e.dial(ctx)
				create(ctx, c, k, content("first"), 20)
				lock(ctx, c, k)
			}
			firstRequest("GET Exclusive: acquire on a new session id, answered 404", nil,
				func(k string) *protocol.Request { return protocol.NewGetExclusiveRequest(protocol.DefaultHost, k) })
			firstRequest("PUT ExtraFlags:1 (CreateUninitializedItem), answered 200", nil, func(k string) *protocol.Request {
				return protocol.NewSetRequest(protocol.DefaultHost, k, []byte{20, 0, 0, 0, 0, 0, 0xff}, protocol.SetParams{Timeout: 20, ExtraFlags: 1})
			})
			firstRequest("GET Exclusive: acquire, answered 200", mk,
				func(k string) *protocol.Request { return protocol.NewGetExclusiveRequest(protocol.DefaultHost, k) })
			firstRequest("a plain GET on a locked session, answered 423", mkLocked,
				func(k string) *protocol.Request { return protocol.NewGetRequest(protocol.DefaultHost, k) })
			firstRequest("HEAD (ResetTimeout), answered 200", mk,
				func(k string) *protocol.Request { return protocol.NewResetTimeoutRequest(protocol.DefaultHost, k) })
			firstRequest("DELETE on an unknown session, answered 404", nil,
				func(k string) *protocol.Request { return protocol.NewRemoveRequest(protocol.DefaultHost, k, 0) })
		})
	})
}
