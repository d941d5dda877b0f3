package conformance

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
)

// section3_1_5_3: [MS-ASP] 3.1.5.3 Set_Request, expiry, and decision table c.2.
func section3_1_5_3(e *env) {
	Describe("3.1.5.3 Set_Request", func() {
		e.Rule("3.1.5.3-put-locked-nocookie", func() {
			e.It("answers 423 and keeps the old content", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("old")
				create(ctx, c, k, body, 20)
				cookie := lock(ctx, c, k)
				status(doRaw(ctx, c, request("PUT", k, content("new"), "Timeout:20", "ExtraFlags:0")), 423, "PUT without LockCookie")
				status(release(ctx, c, k, cookie), 200, "release")
				expectContent(ctx, c, k, body, "GET after the refused PUT")
			})
		})

		e.Rule("3.1.5.3-put-locked-wrongcookie", func() {
			e.It("answers 423 and keeps the old content", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("old")
				create(ctx, c, k, body, 20)
				cookie := lock(ctx, c, k)
				status(put(ctx, c, k, content("new"), 20, cookie+1, 0), 423, "PUT with a wrong cookie")
				status(release(ctx, c, k, cookie), 200, "release")
				expectContent(ctx, c, k, body, "GET after the refused PUT")
			})
		})

		e.Rule("3.1.5.3-put-owner-releases", func() {
			e.It("answers 200, and a plain GET then answers 200 with the new content", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("old"), 20)
				cookie := lock(ctx, c, k)
				body := content("new")
				status(put(ctx, c, k, body, 20, cookie, 0), 200, "PUT by the holder")
				expectContent(ctx, c, k, body, "plain GET after the holder's PUT")
			})
		})

		e.Rule("3.1.5.3-put-unlocked-anycookie", func() {
			e.It("answers PUT LockCookie:12345 on an unlocked item with 200 and stores the content", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("old"), 20)
				body := content("new")
				status(put(ctx, c, k, body, 20, 12345, 0), 200, "PUT LockCookie:12345")
				expectContent(ctx, c, k, body, "GET after it")
			})
		})

		e.Rule("3.1.5.3-uninit-noop-existing", func() {
			e.It("answers 200 and keeps the existing content", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("keep")
				create(ctx, c, k, body, 20)
				status(put(ctx, c, k, content("new"), 20, 0, 1), 200, "PUT ExtraFlags:1 on the existing item")
				expectContent(ctx, c, k, body, "GET after it")
			})
		})

		e.Rule("3.1.5.3-uninit-noop-locked", func() {
			e.It("answers 200 (not 423) without a cookie and changes neither content nor lock", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("keep")
				create(ctx, c, k, body, 20)
				cookie := lock(ctx, c, k)
				status(doRaw(ctx, c, request("PUT", k, content("new"), "Timeout:20", "ExtraFlags:1")), 200, "PUT ExtraFlags:1 without a cookie on the locked item")
				expectLockedBy(ctx, c, k, cookie, "GET after it")
				status(release(ctx, c, k, cookie), 200, "release")
				expectContent(ctx, c, k, body, "GET after the release")
			})
		})

		e.Rule("3.1.5.3-new-ignores-cookie", func() {
			e.It("answers PUT LockCookie:999 on an absent key with 200 and the first acquire with LockCookie: 2", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				status(put(ctx, c, k, content("new"), 20, 999, 0), 200, "PUT LockCookie:999 creating the item")
				Expect(lock(ctx, c, k)).To(Equal(int32(2)), "first acquire")
			})
		})

		e.Rule("3.1.5.3-timeout-change-resets-counter", func() {
			e.It("continues from the holder's cookie after a PUT with LockCookie and a new Timeout", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("a"), 20)
				cookie := lock(ctx, c, k)
				status(put(ctx, c, k, content("b"), 30, cookie, 0), 200, "PUT by the holder with Timeout:30")
				Expect(lock(ctx, c, k)).To(Equal(cookie+1), "acquire after the Timeout change (counter = the PUT's LockCookie %d)", cookie)
			})
			e.It("restarts at 0 after a PUT without LockCookie and a new Timeout", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("a"), 20)
				status(doRaw(ctx, c, request("PUT", k, content("b"), "Timeout:30", "ExtraFlags:0")), 200, "PUT Timeout:30 without LockCookie")
				Expect(lock(ctx, c, k)).To(Equal(int32(0)), "acquire after the Timeout change (counter = -1)")
			})
		})

		e.Rule("3.1.5.3-badcookie-existing", func() {
			e.It("answers PUT LockCookie:-1 with 400 and keeps the content", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("keep")
				create(ctx, c, k, body, 20)
				status(put(ctx, c, k, content("new"), 20, -1, 0), 400, "PUT LockCookie:-1")
				expectContent(ctx, c, k, body, "GET after it")
			})
		})

		e.Rule("3.1.5.3-expiry", func() {
			e.It("still has a Timeout:1 item after 0.75 minutes and has forgotten an untouched one after 1.33 minutes", func(ctx SpecContext) {
				c, early, late := e.dial(ctx), e.key(), e.key()
				create(ctx, c, early, content("early"), 1)
				create(ctx, c, late, content("late"), 1)
				created := time.Now()
				waitUntil(ctx, created.Add(e.pmin(0.75)))
				c = e.dial(ctx)
				status(get(ctx, c, early), 200, "GET 0.75 minutes after PUT Timeout:1 (expired too early)")
				waitUntil(ctx, created.Add(e.pmin(1.33)))
				expectAbsent(ctx, e.dial(ctx), late, "GET 1.33 minutes after PUT Timeout:1 with no request in between")
			})
		})

		e.Rule("3.1.5.3-get-extends", func() {
			e.It("keeps a Timeout:1 item alive for 2 minutes of plain GETs every half minute", func(ctx SpecContext) {
				k, body := e.key(), content("getslide")
				create(ctx, e.dial(ctx), k, body, 1)
				last := time.Now()
				for i := 0; i < 4; i++ {
					waitUntil(ctx, last.Add(e.pmin(0.5)))
					c := e.dial(ctx)
					last = time.Now()
					expectContent(ctx, c, k, body, "plain GET every half minute (404 means the GETs did not slide the expiry)")
				}
			})
		})
	})

	Describe("c.2 PUT decision table", func() {
		e.Rule("c.2-1-timeout-invalid", func() {
			e.It("answers PUT Timeout:x1, Timeout:-1 and Timeout:1.5 with 400, on an absent and on an existing item", func(ctx SpecContext) {
				c, k, absent := e.dial(ctx), e.key(), e.key()
				body := content("keep")
				create(ctx, c, k, body, 20)
				for _, v := range []string{"Timeout:x1", "Timeout:-1", "Timeout:1.5"} {
					status(doRaw(ctx, c, request("PUT", absent, []byte("n"), v, "ExtraFlags:0", "LockCookie:0")), 400, "PUT "+v+" on an absent key")
					status(doRaw(ctx, c, request("PUT", k, []byte("n"), v, "ExtraFlags:0", "LockCookie:0")), 400, "PUT "+v+" on an existing item")
				}
				expectAbsent(ctx, c, absent, "absent key after the refused PUTs")
				expectContent(ctx, c, k, body, "existing item after the refused PUTs")
			})
		})

		e.Rule("c.2-2-timeout-too-large", func() {
			e.It("answers PUT Timeout:525601 and Timeout:2147483647 on an existing item with 400 and keeps it", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("keep")
				create(ctx, c, k, body, 20)
				status(put(ctx, c, k, []byte("n"), protocol.MaxTimeout+1, 0, 0), 400, "PUT Timeout:525601")
				status(put(ctx, c, k, []byte("n"), 2147483647, 0, 0), 400, "PUT Timeout:2147483647")
				r := get(ctx, c, k)
				status(r, 200, "GET")
				Expect(r.Body).To(Equal(body))
				Expect(hv(r, protocol.HeaderTimeout)).To(Equal("20"))
			})
		})

		e.Rule("c.2-3-extraflags-invalid", func() {
			e.It("answers PUT ExtraFlags:abc with 400 and creates nothing", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				status(doRaw(ctx, c, request("PUT", k, []byte("n"), "Timeout:20", "ExtraFlags:abc", "LockCookie:0")), 400, "PUT ExtraFlags:abc")
				expectAbsent(ctx, c, k, "GET after it")
			})
		})

		e.Rule("c.2-4-uninit-existing", func() {
			e.It("answers PUT ExtraFlags:1 LockCookie:abc on a locked item with 200 and changes nothing", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("keep")
				create(ctx, c, k, body, 20)
				cookie := lock(ctx, c, k)
				status(doRaw(ctx, c, request("PUT", k, []byte("n"), "Timeout:20", "ExtraFlags:1", "LockCookie:abc")), 200, "PUT ExtraFlags:1 LockCookie:abc")
				expectLockedBy(ctx, c, k, cookie, "GET after it")
				status(release(ctx, c, k, cookie), 200, "release")
				expectContent(ctx, c, k, body, "GET after the release")
			})
		})

		e.Rule("c.2-5-cookie-invalid", func() {
			e.It("answers PUT LockCookie:abc and LockCookie:-3 on an existing item with 400 and keeps it", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("keep")
				create(ctx, c, k, body, 20)
				for _, v := range []string{"LockCookie:abc", "LockCookie:-3"} {
					status(doRaw(ctx, c, request("PUT", k, []byte("n"), "Timeout:20", "ExtraFlags:0", v)), 400, "PUT "+v)
				}
				expectContent(ctx, c, k, body, "GET after them")
			})
		})

		e.Rule("c.2-6-locked-mismatch", func() {
			e.It("answers 423 with LockDate, LockAge and the holder's LockCookie", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("a"), 20)
				cookie := lock(ctx, c, k)
				r := put(ctx, c, k, content("b"), 20, cookie+1, 0)
				status(r, 423, "PUT with another cookie")
				Expect(r.Header.Has(protocol.HeaderLockDate) && r.Header.Has(protocol.HeaderLockAge)).To(BeTrue(), "lock headers of %s", describe(r))
				Expect(cookieOf(r, "423 to the PUT")).To(Equal(cookie))
			})
		})

		e.Rule("c.2-7-same-timeout", func() {
			e.It("continues the cookie counter after the holder's PUT with the same Timeout", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("a"), 20)
				cookie := lock(ctx, c, k)
				status(put(ctx, c, k, content("b"), 20, cookie, 0), 200, "PUT by the holder, same Timeout")
				Expect(lock(ctx, c, k)).To(Equal(cookie+1), "acquire after it")
			})
			e.It("keeps ActionFlags pending after PUT ExtraFlags:0 with the same Timeout on an uninitialized item", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				status(put(ctx, c, k, emptySession, 20, 0, 1), 200, "PUT ExtraFlags:1")
				body := content("b")
				status(put(ctx, c, k, body, 20, 0, 0), 200, "PUT ExtraFlags:0, same Timeout")
				r := get(ctx, c, k)
				status(r, 200, "GET")
				Expect(r.Body).To(Equal(body))
				Expect(hv(r, protocol.HeaderActionFlags)).To(Equal("1"), "the uninitialized flag survives a PUT with the same Timeout")
			})
		})

		e.Rule("c.2-8-new-timeout", func() {
			e.It("reports the new Timeout, drops the uninitialized flag and continues the counter from LockCookie:7", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				status(put(ctx, c, k, emptySession, 20, 0, 1), 200, "PUT ExtraFlags:1")
				body := content("b")
				status(put(ctx, c, k, body, 45, 7, 0), 200, "PUT Timeout:45 LockCookie:7 ExtraFlags:0")
				r := acquireReq(ctx, c, k)
				status(r, 200, "acquire")
				Expect(r.Body).To(Equal(body))
				Expect(hv(r, protocol.HeaderTimeout)).To(Equal("45"))
				Expect(r.Header.Has(protocol.HeaderActionFlags)).To(BeFalse(), "the replaced item has the PUT's ExtraFlags (0)")
				Expect(cookieOf(r, "acquire")).To(Equal(int32(8)))
			})
		})

		e.Rule("c.2-9-absent", func() {
			e.It("creates the item from a PUT with LockCookie:abc and no Timeout; the first acquire gets 2 and Timeout: 20", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("new")
				status(doRaw(ctx, c, request("PUT", k, body, "ExtraFlags:0", "LockCookie:abc")), 200, "PUT LockCookie:abc on an absent key")
				r := acquireReq(ctx, c, k)
				status(r, 200, "acquire")
				Expect(r.Body).To(Equal(body))
				Expect(hv(r, protocol.HeaderTimeout)).To(Equal("20"))
				Expect(cookieOf(r, "acquire")).To(Equal(int32(2)))
			})
		})

		e.Rule("c.2-numbers", func() {
			for _, tc := range []struct {
				header string
				rows   string
				// absentOK: on an absent item the header is not validated (row 9).
				absentOK bool
			}{
				{"Timeout:abc", "row 1", false}, {"Timeout:-1", "row 1", false}, {"Timeout:1.5", "row 1", false}, {"Timeout:", "row 1", false},
				{"Timeout:525601", "row 2", false}, {"Timeout:2147483648", "rows 1-2", false},
				{"ExtraFlags:abc", "row 3", false}, {"ExtraFlags:2147483648", "row 3", false}, {"ExtraFlags:1.0", "row 3", false},
				{"LockCookie:abc", "rows 5 and 9", true}, {"LockCookie:-1", "rows 5 and 9", true}, {"LockCookie:2147483648", "rows 5 and 9", true},
			} {
				e.It("answers PUT "+tc.header+" per c.2 "+tc.rows+" on an absent and on an existing item", func(ctx SpecContext) {
					c, k, fresh := e.dial(ctx), e.key(), e.key()
					body := content("numbers")
					create(ctx, c, k, body, 20)
					headers := []string{"Timeout:20", "ExtraFlags:0", "LockCookie:0"}
					name := tc.header[:strings.IndexByte(tc.header, ':')+1]
					for i, h := range headers {
						if strings.HasPrefix(h, name) {
							headers[i] = tc.header
						}
					}
					r := doRaw(ctx, c, request("PUT", k, content("replaced"), headers...))
					status(r, 400, "PUT "+tc.header+" on an existing item")
					expectContent(ctx, c, k, body, "GET after the refused PUT "+tc.header+" (nothing changes)")
					r = doRaw(ctx, c, request("PUT", fresh, body, headers...))
					if tc.absentOK {
						status(r, 200, "PUT "+tc.header+" on an absent item (row 9: LockCookie is not validated)")
						expectContent(ctx, c, fresh, body, "GET of the item created by PUT "+tc.header)
						return
					}
					status(r, 400, "PUT "+tc.header+" on an absent item")
					expectAbsent(ctx, c, fresh, "GET after the refused PUT "+tc.header+" (nothing is created)")
				})
			}
			e.It("answers PUT ExtraFlags:1 with LockCookie:abc or -1 on an existing item 200 without validating the cookie (row 4)", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				body := content("numbers-uninit")
				create(ctx, c, k, body, 20)
				for _, h := range []string{"LockCookie:abc", "LockCookie:-1"} {
					status(doRaw(ctx, c, request("PUT", k, emptySession, "Timeout:20", "ExtraFlags:1", h)), 200, "PUT ExtraFlags:1 "+h)
				}
				expectContent(ctx, c, k, body, "GET after the no-op PUTs")
			})
		})
	})
}
