package conformance

import (
	"context"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// section3_1_5_1: [MS-ASP] 3.1.5.1 Get_Request, and decision table c.1
// (GET, GET Exclusive: acquire, GET Exclusive: release).
func section3_1_5_1(e *env) {
	Describe("3.1.5.1 Get_Request", func() {
		e.Rule("3.1.5.1-get-locked", func() {
			e.It("answers 423 with the LockCookie the acquire returned", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("getlocked"), 20)
				cookie := lock(ctx, c, k)
				expectLockedBy(ctx, e.dial(ctx), k, cookie, "plain GET from another connection")
			})
		})

		e.Rule("3.1.5.1-get-unlocked", func() {
			e.It("answers two plain GETs 200, and an acquire afterwards succeeds", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("getunlocked")
				create(ctx, c, k, body, 20)
				expectContent(ctx, c, k, body, "first plain GET")
				r := get(ctx, c, k)
				status(r, 200, "second plain GET")
				Expect(r.Header.Has(protocol.HeaderLockCookie)).To(BeFalse(), "a plain GET reply has a LockCookie")
				lock(ctx, c, k)
			})
		})

		e.Rule("3.1.5.1-423-extends", func() {
			e.It("keeps a locked Timeout:1 item alive for 2 minutes of plain GETs answered 423 every half minute", func(ctx SpecContext) {
				k, body := e.key(), content("423slide")
				c := e.dial(ctx)
				create(ctx, c, k, body, 1)
				cookie := lock(ctx, c, k)
				last := time.Now()
				for i := 0; i < 4; i++ {
					waitUntil(ctx, last.Add(e.pmin(0.5)))
					c = e.dial(ctx)
					last = time.Now()
					status(get(ctx, c, k), 423, "plain GET of the locked item")
				}
				status(release(ctx, c, k, cookie), 200, "release 2 minutes after the Timeout:1 item was created (404 means it expired although every GET touched it)")
				expectContent(ctx, c, k, body, "GET after the release")
			})
		})

		e.Rule("3.1.5.1-concurrency", func() {
			e.It("answers 50 simultaneous acquires on 50 connections with one 200 and 49 423s, all with the same cookie", func(ctx SpecContext) {
				k := e.key()
				create(ctx, e.dial(ctx), k, content("race"), 20)
				const n = 50
				conns := make([]*protocol.Conn, n)
				for i := range conns {
					conns[i] = e.dial(ctx)
				}
				replies := make([]*protocol.Response, n)
				errs := make([]error, n)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range conns {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						replies[i], errs[i] = conns[i].Do(ctx, protocol.NewGetExclusiveRequest(protocol.DefaultHost, k))
					}()
				}
				close(start)
				wg.Wait()
				wins, locked := 0, 0
				cookies := map[string]int{}
				for i, r := range replies {
					Expect(errs[i]).NotTo(HaveOccurred(), "acquire %d", i)
					switch r.Status {
					case 200:
						wins++
					case 423:
						locked++
					default:
						Fail("acquire answered " + describe(r))
					}
					cookies[hv(r, protocol.HeaderLockCookie)]++
				}
				Expect(wins).To(Equal(1), "acquires answered 200")
				Expect(locked).To(Equal(n-1), "acquires answered 423")
				Expect(cookies).To(HaveLen(1), "LockCookie values seen (value → count)")
			})
		})

		e.Rule("3.1.5.1-badrequest-verb", func() {
			e.It("answers POST with 400 or closes the connection, then serves a new connection", func(ctx SpecContext) {
				k := e.key()
				expectRefused(ctx, e, request("POST", k, []byte("x")), "POST")
				status(put(ctx, e.dial(ctx), k, content("after"), 20, 0, 0), 200, "PUT on a new connection after the POST")
			})
		})
	})

	Describe("c.1 GET decision table", func() {
		e.Rule("c.1-1-not-found", func() {
			e.It("answers 404 to GET, acquire, release with a cookie, release without one and release with a bad one on an unknown key", func(ctx SpecContext) {
				c, k := e.dial(ctx), protocol.Target(AppID, newID())
				status(get(ctx, c, k), 404, "GET")
				status(acquireReq(ctx, c, k), 404, "GET Exclusive: acquire")
				status(release(ctx, c, k, 2), 404, "release LockCookie:2")
				status(doRaw(ctx, c, request("GET", k, nil, "Exclusive: release")), 404, "release without LockCookie")
				status(doRaw(ctx, c, request("GET", k, nil, "Exclusive: release", "LockCookie:abc")), 404, "release LockCookie:abc")
			})
		})

		e.Rule("c.1-2-actionflags-first-reply", func() {
			e.It("puts ActionFlags: 1 on a release answered 400 and not on the GET after it", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				status(put(ctx, c, k, emptySession, 20, 0, 1), 200, "PUT ExtraFlags:1")
				r := doRaw(ctx, c, request("GET", k, nil, "Exclusive: release"))
				status(r, 400, "release without LockCookie on the uninitialized item")
				Expect(hv(r, protocol.HeaderActionFlags)).To(Equal("1"), "ActionFlags of the first reply (a 400)")
				r = get(ctx, c, k)
				status(r, 200, "GET after it")
				Expect(r.Header.Has(protocol.HeaderActionFlags)).To(BeFalse(), "the flag was cleared by the first request")
			})
			e.It("puts ActionFlags: 1 on a 423 when the item was locked before anyone read it", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				status(put(ctx, c, k, emptySession, 20, 0, 1), 200, "PUT ExtraFlags:1")
				r := acquireReq(ctx, c, k)
				status(r, 200, "acquire")
				Expect(hv(r, protocol.HeaderActionFlags)).To(Equal("1"), "ActionFlags of the acquire")
				r = get(ctx, c, k)
				status(r, 423, "GET of the locked item")
				Expect(r.Header.Has(protocol.HeaderActionFlags)).To(BeFalse(), "ActionFlags is sent once")
			})
		})

		e.Rule("c.1-3-release-bad-cookie", func() {
			e.It("answers release without LockCookie, with LockCookie:abc and with LockCookie:-1 on an existing item with 400", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("relbad"), 20)
				cookie := lock(ctx, c, k)
				for _, h := range [][]string{{"Exclusive: release"}, {"Exclusive: release", "LockCookie:abc"}, {"Exclusive: release", "LockCookie:-1"}} {
					status(doRaw(ctx, c, request("GET", k, nil, h...)), 400, "GET "+h[len(h)-1])
				}
				expectLockedBy(ctx, c, k, cookie, "the item is still locked")
			})
		})

		e.Rule("c.1-4-release-match", func() {
			e.It("answers 200 with only X-AspNet-Version, [ActionFlags,] Cache-Control and Content-Length: 0, and unlocks", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("relok")
				create(ctx, c, k, body, 20)
				r := release(ctx, c, k, lock(ctx, c, k))
				status(r, 200, "release with the cookie")
				Expect(r.Header.Has(protocol.HeaderTimeout) || r.Header.Has(protocol.HeaderLockCookie)).To(BeFalse(), "release reply %s", describe(r))
				Expect(hv(r, protocol.HeaderContentLength)).To(Equal("0"))
				expectContent(ctx, c, k, body, "plain GET after the release")
			})
		})

		e.Rule("c.1-5-release-mismatch", func() {
			e.It("answers 423 with LockDate, LockAge and the holder's LockCookie and keeps the lock", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("relwrong"), 20)
				cookie := lock(ctx, c, k)
				r := release(ctx, c, k, cookie+7)
				status(r, 423, "release with a wrong cookie")
				Expect(r.Header.Has(protocol.HeaderLockDate) && r.Header.Has(protocol.HeaderLockAge)).To(BeTrue(), "lock headers of %s", describe(r))
				Expect(cookieOf(r, "423 to the release")).To(Equal(cookie))
				expectLockedBy(ctx, c, k, cookie, "GET after the refused release")
			})
		})

		e.Rule("c.1-6-release-unlocked", func() {
			e.It("answers 200 and the item stays unlocked with its content", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("relunlocked")
				create(ctx, c, k, body, 20)
				status(release(ctx, c, k, 5), 200, "release of an unlocked item")
				expectContent(ctx, c, k, body, "GET after it")
			})
		})

		e.Rule("c.1-7-locked", func() {
			e.It("answers both a plain GET and an acquire of a locked item with 423 and the holder's cookie", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("locked"), 20)
				cookie := lock(ctx, c, k)
				for _, r := range []*protocol.Response{get(ctx, c, k), acquireReq(ctx, c, k)} {
					status(r, 423, "request on the locked item")
					Expect(r.Header.Has(protocol.HeaderLockDate) && r.Header.Has(protocol.HeaderLockAge)).To(BeTrue(), "lock headers of %s", describe(r))
					Expect(cookieOf(r, "423")).To(Equal(cookie))
					Expect(r.Body).To(BeEmpty())
				}
			})
		})

		e.Rule("c.1-8-acquire", func() {
			e.It("answers 200 with LockCookie, Timeout and the body, and the item is then locked", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("acq")
				create(ctx, c, k, body, 9)
				r := acquireReq(ctx, c, k)
				status(r, 200, "acquire")
				Expect(r.Body).To(Equal(body))
				Expect(hv(r, protocol.HeaderTimeout)).To(Equal("9"))
				expectLockedBy(ctx, c, k, cookieOf(r, "acquire"), "GET after the acquire")
			})
		})

		e.Rule("c.1-9-get", func() {
			e.It("answers 200 with Timeout and the body and no LockCookie", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("get")
				create(ctx, c, k, body, 11)
				r := get(ctx, c, k)
				status(r, 200, "GET")
				Expect(r.Body).To(Equal(body))
				Expect(hv(r, protocol.HeaderTimeout)).To(Equal("11"))
				Expect(r.Header.Has(protocol.HeaderLockCookie)).To(BeFalse())
			})
		})

		e.Rule("c.1-numbers", func() {
			e.It("answers release with LockCookie -1, abc, 1.0, empty, 2147483648 or 99999999999 with 400 (row 3) and keeps the lock", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("relnum"), 20)
				cookie := lock(ctx, c, k)
				for _, v := range []string{"-1", "abc", "1.0", "", "2147483648", "99999999999"} {
					status(doRaw(ctx, c, request("GET", k, nil, "Exclusive: release", "LockCookie:"+v)), 400, "release LockCookie:"+v)
				}
				expectLockedBy(ctx, c, k, cookie, "GET after the refused releases (still locked)")
			})
			e.It("ignores Timeout, ExtraFlags and LockCookie on a plain GET and an acquire, whatever their value (rows 7-9 validate nothing)", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("getnum")
				create(ctx, c, k, body, 20)
				for _, h := range []string{"Timeout:abc", "Timeout:-1", "ExtraFlags:abc", "LockCookie:abc", "LockCookie:-1", "LockCookie:2147483648"} {
					r := doRaw(ctx, c, request("GET", k, nil, h))
					status(r, 200, "plain GET with "+h)
					Expect(r.Body).To(Equal(body), "plain GET with %s: body", h)
				}
				r := doRaw(ctx, c, request("GET", k, nil, "Exclusive: acquire", "LockCookie:abc", "Timeout:-1", "ExtraFlags:abc"))
				status(r, 200, "acquire with LockCookie:abc, Timeout:-1, ExtraFlags:abc")
				cookie := cookieOf(r, "acquire")
				r = doRaw(ctx, c, request("GET", k, nil, "Exclusive: release", "LockCookie:"+itoa(int(cookie)), "Timeout:abc", "ExtraFlags:abc"))
				status(r, 200, "release with the holder's cookie and Timeout:abc, ExtraFlags:abc (not validated)")
				expectContent(ctx, c, k, body, "GET after the release")
			})
		})
	})
}

// expectRefused sends raw on a fresh connection and requires the server to
// answer 400 or to close the connection without answering; any reply must
// be well-formed.
func expectRefused(ctx context.Context, e *env, raw []byte, what string) {
	GinkgoHelper()
	rc := e.dialRaw(ctx)
	Expect(rc.send(raw)).To(Succeed())
	_ = rc.closeWrite()
	x, err := rc.awaitReplies(1, refuseWindow)
	Expect(err).NotTo(HaveOccurred(), "%s: reading the reply", what)
	x.judge(what, 400)
}

func clip(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}
