package conformance

import (
	"math"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/protocol/aspnetclient"
)

// section2_2_3_6: [MS-ASP] 2.2.3.6 Exclusive.
func section2_2_3_6(e *env) {
	Describe("2.2.3.6 Exclusive", func() {
		e.Rule("2.2.3.6-acquire-lowercase", func() {
			e.It("answers the first acquire 200 with a LockCookie and a second acquire 423", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("lower"), 20)
				cookie := lock(ctx, c, k)
				r := acquireReq(ctx, c, k)
				status(r, 423, "second GET Exclusive: acquire")
				Expect(cookieOf(r, "second acquire")).To(Equal(cookie))
			})
		})

		e.Rule("2.2.3.6-acquire-case", func() {
			e.It("answers GET Exclusive: Acquire with 200 and a LockCookie, and a plain GET then with 423", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("upper"), 20)
				r := doRaw(ctx, c, request("GET", k, nil, "Exclusive: Acquire"))
				status(r, 200, "GET Exclusive: Acquire")
				cookie := cookieOf(r, "GET Exclusive: Acquire")
				expectLockedBy(ctx, c, k, cookie, "plain GET after Exclusive: Acquire")
			})
		})
	})
}

// section2_2_3_8: [MS-ASP] 2.2.3.8 LockDate.
func section2_2_3_8(e *env) {
	Describe("2.2.3.8 LockDate", func() {
		e.Rule("2.2.3.8-lockdate-ticks", func() {
			e.It("sends a LockDate within 2 s of the local time (in .NET ticks) at which the lock was taken", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("lockdate"), 20)
				before := time.Now()
				lock(ctx, c, k)
				after := time.Now()
				r := get(ctx, c, k)
				status(r, 423, "GET of the locked item")
				ticks, ok := headerInt(r, protocol.HeaderLockDate)
				Expect(ok).To(BeTrue(), "LockDate %q is not an Int64", hv(r, protocol.HeaderLockDate))
				lo, hi := aspnetclient.DotNetTicks(before.Add(-2*time.Second)), aspnetclient.DotNetTicks(after.Add(2*time.Second))
				utc := aspnetclient.DotNetTicks(before.UTC())
				Expect(ticks).To(BeNumerically(">=", lo), "LockDate %d is earlier than the lock (local ticks %d..%d; UTC ticks would be about %d)", ticks, lo, hi, utc)
				Expect(ticks).To(BeNumerically("<=", hi), "LockDate %d is later than the lock (local ticks %d..%d; UTC ticks would be about %d)", ticks, lo, hi, utc)
			})
		})
	})
}

// section2_2_3_9: [MS-ASP] 2.2.3.9 LockCookie.
func section2_2_3_9(e *env) {
	Describe("2.2.3.9 LockCookie", func() {
		e.Rule("2.2.3.9-first-cookie", func() {
			e.It("answers the first acquire of a freshly PUT item with LockCookie: 2", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("first"), 20)
				Expect(lock(ctx, c, k)).To(Equal(int32(2)), "LockCookie of the first acquire")
			})
		})

		e.Rule("2.2.3.9-cookie-increments", func() {
			e.It("answers acquire, release, acquire with cookies n then n+1", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("incr"), 20)
				first := lock(ctx, c, k)
				status(release(ctx, c, k, first), 200, "release with the cookie")
				Expect(lock(ctx, c, k)).To(Equal(first+1), "LockCookie of the second acquire (the first was %d)", first)
			})
		})
	})
}

// section2_2_3_10: [MS-ASP] 2.2.3.10 LockAge.
func section2_2_3_10(e *env) {
	Describe("2.2.3.10 LockAge", func() {
		e.Rule("2.2.3.10-lockage-grows", func() {
			e.It("reports in each 423 a LockAge within the seconds observed since the lock, growing between two 423s", func(ctx SpecContext) {
				c, k := e.dial(ctx), e.key()
				create(ctx, c, k, content("age"), 20)
				lockSent := time.Now()
				lock(ctx, c, k)
				lockDone := time.Now()
				ps := e.psec(1)
				ageAt := func(what string) int64 {
					GinkgoHelper()
					sent := time.Now()
					r := get(ctx, c, k)
					done := time.Now()
					status(r, 423, what)
					age, ok := headerInt(r, protocol.HeaderLockAge)
					Expect(ok).To(BeTrue(), "%s: LockAge %q is not an integer", what, hv(r, protocol.HeaderLockAge))
					lo := math.Floor(float64(sent.Sub(lockDone))/float64(ps)) - 1
					hi := math.Ceil(float64(done.Sub(lockSent))/float64(ps)) + 1
					Expect(float64(age)).To(BeNumerically(">=", lo), "%s: LockAge %d, but at least %.0f protocol seconds had passed (1 s = %v)", what, age, lo+1, ps)
					Expect(float64(age)).To(BeNumerically("<=", hi), "%s: LockAge %d, but at most %.0f protocol seconds had passed (1 s = %v)", what, age, hi-1, ps)
					return age
				}
				a1 := ageAt("first GET of the locked item")
				wait(ctx, max(e.psec(6), 60*time.Millisecond))
				a2 := ageAt("second GET of the locked item")
				Expect(a2).To(BeNumerically(">", a1), "LockAge did not grow between the two 423 replies")
			})
		})
	})
}
