package conformance

import (
	"errors"
	"slices"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// Captured .NET 4 client requests (PROTOCOL.md S3; shared/captures).
const (
	captureAppID     = "/LM/W3SVC/2/ROOT"
	captureSessionID = "bpr4mimb2vjnvtn2jc4yp3uo"
	captureTarget    = "%2fLM%2fW3SVC%2f2%2fROOT(oXvpnxcuEWqKAgOETha32JavYZ6eCqrpTN5%2fHxWS854%3d)%2fbpr4mimb2vjnvtn2jc4yp3uo"
	captureAcquire   = "GET " + captureTarget + " HTTP/1.1\r\nHost: localhost\r\nExclusive: acquire\r\n\r\n"
	capturePutHead   = "PUT " + captureTarget + " HTTP/1.1\r\nHost: localhost\r\nTimeout:20\r\nContent-Length:30\r\nExtraFlags:0\r\nLockCookie:2\r\n\r\n"
)

// captureBody is the 30-byte session of the captured PUT.
var captureBody = []byte("\x14\x00\x00\x00\x01\x00\x01\x00\x00\x00\xff\xff\xff\xff\x03key\x07\x00\x00\x00\x01\x05value\xff")

// sectionClient: the CLIENT cases of PROTOCOL.md (h) — the project's
// emulation of the ASP.NET client and the protocol package's request bytes.
func sectionClient(e *env) {
	Describe("Client behaviour", func() {
		e.Rule("CLIENT-e.4-version", func() {
			e.It("throws Need_v2_State_Server on the first reply without a version header, not on the second", func(ctx SpecContext) {
				peer, err := startScriptedPeer(cannedReply(200, nil), cannedReply(200, nil), cannedReply(200, nil))
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(func() { _ = peer.Close() })
				app := newASPNETClient(peer.addr(), e.minute, e.rec.newConn)
				DeferCleanup(app.Close)
				k := protocol.Target(AppID, newID())
				_, err = app.call(ctx, protocol.NewResetTimeoutRequest(protocol.DefaultHost, k))
				Expect(errors.Is(err, errNeedV2)).To(BeTrue(), "first call without X-AspNet-Version: got %v", err)
				_, err = app.call(ctx, protocol.NewResetTimeoutRequest(protocol.DefaultHost, k))
				Expect(err).NotTo(HaveOccurred(), "second call (the check runs once per application)")
				fresh := newASPNETClient(peer.addr(), e.minute, e.rec.newConn)
				DeferCleanup(fresh.Close)
				_, err = fresh.call(ctx, protocol.NewResetTimeoutRequest(protocol.DefaultHost, k))
				Expect(errors.Is(err, errNeedV2)).To(BeTrue(), "a restarted application checks again: got %v", err)
			})
			for _, v := range []struct {
				version string
				ok      bool
			}{{"1.1.4322", false}, {"0.9", false}, {"garbage", false}, {"2.0.50727", true}, {"4.0.30319", true}, {"10.0", true}} {
				e.It("accepts X-AspNet-Version: "+v.version+" on the first call: "+strconv.FormatBool(v.ok), func(ctx SpecContext) {
					peer, err := startScriptedPeer(cannedReply(404, nil, protocol.HeaderVersion+": "+v.version))
					Expect(err).NotTo(HaveOccurred())
					DeferCleanup(func() { _ = peer.Close() })
					app := newASPNETClient(peer.addr(), e.minute, e.rec.newConn)
					DeferCleanup(app.Close)
					_, err = app.call(ctx, protocol.NewGetExclusiveRequest(protocol.DefaultHost, protocol.Target(AppID, newID())))
					if v.ok {
						Expect(err).NotTo(HaveOccurred())
					} else {
						Expect(errors.Is(err, errNeedV2)).To(BeTrue(), "got %v", err)
					}
				})
			}
			e.It("throws the 400 exception before the check, so the check runs again on the next call", func(ctx SpecContext) {
				peer, err := startScriptedPeer(cannedReply(400, nil), cannedReply(200, nil))
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(func() { _ = peer.Close() })
				app := newASPNETClient(peer.addr(), e.minute, e.rec.newConn)
				DeferCleanup(app.Close)
				k := protocol.Target(AppID, newID())
				_, err = app.call(ctx, protocol.NewResetTimeoutRequest(protocol.DefaultHost, k))
				Expect(errors.Is(err, errBadRequest)).To(BeTrue(), "first call answered 400: got %v", err)
				Expect(app.stateServerVersion).To(Equal(-1))
				_, err = app.call(ctx, protocol.NewResetTimeoutRequest(protocol.DefaultHost, k))
				Expect(errors.Is(err, errNeedV2)).To(BeTrue(), "second call without a version header: got %v", err)
			})
		})

		e.Rule("CLIENT-b.3-uri", func() {
			e.It("builds the captured GetExclusive request for /LM/W3SVC/2/ROOT and bpr4mimb2vjnvtn2jc4yp3uo", func(ctx SpecContext) {
				Expect(protocol.Target(captureAppID, captureSessionID)).To(Equal(captureTarget))
				got := protocol.NewGetExclusiveRequest(protocol.DefaultHost, protocol.Target(captureAppID, captureSessionID)).Bytes()
				Expect(string(got)).To(Equal(captureAcquire))
			})
		})

		e.Rule("CLIENT-b.4-put-format", func() {
			e.It("builds the captured SetAndReleaseItemExclusive request byte for byte", func(ctx SpecContext) {
				got := protocol.NewSetRequest(protocol.DefaultHost, captureTarget, captureBody, protocol.SetParams{Timeout: 20, LockCookie: 2}).Bytes()
				Expect(string(got)).To(Equal(capturePutHead + string(captureBody)))
			})
		})

		e.Rule("CLIENT-e.2-poll", func() {
			e.It("polls at the scaled interval, releases with the holder's cookie only after LockAge reached 110, then gets the lock", func(ctx SpecContext) {
				holder, k := e.dial(ctx), e.key()
				create(ctx, holder, k, content("poll"), 20)
				cookie := lock(ctx, holder, k)
				locked := time.Now()
				app := newASPNETClient(e.tgt.Addr(), e.minute, e.rec.newConn)
				DeferCleanup(app.Close)
				r, err := app.acquire(ctx, k, 1000)
				Expect(err).NotTo(HaveOccurred())
				Expect(r.Found).To(BeTrue(), "the client got the session after breaking the lock")
				Expect(r.LockID).To(Equal(cookie+1), "cookie after the lock break")

				reqs := app.requests()
				rel := slices.IndexFunc(reqs, func(s sentRequest) bool { return s.op == protocol.OpReleaseExclusive })
				Expect(rel).To(BeNumerically(">", 0), "the client never sent a release")
				Expect(reqs[rel].cookie).To(Equal(cookie), "the release carries the 423's cookie")
				Expect(reqs[rel-1].status).To(Equal(423))
				Expect(reqs[rel-1].lockAge).To(BeNumerically(">=", executionTimeoutSeconds), "release sent after a 423 with LockAge %d", reqs[rel-1].lockAge)
				for _, s := range reqs[:rel-1] {
					Expect(s.lockAge).To(BeNumerically("<", executionTimeoutSeconds), "the client should have broken the lock at an earlier 423")
				}
				Expect(reqs[rel].at.Sub(locked)).To(BeNumerically(">=", e.psec(executionTimeoutSeconds-1)), "release %v after the lock", reqs[rel].at.Sub(locked))
				var gaps []time.Duration
				for i := 1; i < rel; i++ {
					gaps = append(gaps, reqs[i].at.Sub(reqs[i-1].at))
				}
				slices.Sort(gaps)
				Expect(len(gaps)).To(BeNumerically(">=", 3), "polls before the break")
				median := gaps[len(gaps)/2]
				Expect(median).To(BeNumerically(">=", app.pollInterval), "median poll gap")
				Expect(median).To(BeNumerically("<=", 2*app.pollInterval+20*time.Millisecond), "median poll gap")
			})
		})

		e.Rule("CLIENT-e.5-empty-200", func() {
			e.It("reports no session for GET and GetExclusive of an empty item, while the server holds the lock", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				status(doRaw(ctx, c, request("PUT", k, []byte{}, "Timeout:20", "ExtraFlags:0", "LockCookie:0")), 200, "PUT of an empty item")
				app := newASPNETClient(e.tgt.Addr(), e.minute, e.rec.newConn)
				DeferCleanup(app.Close)
				r, err := app.getItem(ctx, k, false)
				Expect(err).NotTo(HaveOccurred())
				Expect(r.Found).To(BeFalse(), "plain GET of an empty item")
				r, err = app.getItem(ctx, k, true)
				Expect(err).NotTo(HaveOccurred())
				Expect(r.Found || r.Locked).To(BeFalse(), "GetExclusive of an empty item")
				status(acquireReq(ctx, c, k), 423, "acquire by another request (the lock the client ignored)")
			})
		})
	})
}
