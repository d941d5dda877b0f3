package conformance

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/servers/target"
)

// SlowMinute is the protocol minute from which timing specs carry the label
// "slow": each of them then waits several real minutes.
const SlowMinute = 10 * time.Second

// AppID is the application id the suite's unique ids are built from, as an
// ASP.NET application would (PROTOCOL.md b.3).
const AppID = "/LM/W3SVC/1/ROOT/aspstate-conformance"

// Labels the suite itself adds.
const (
	LabelTiming = "timing" // the spec waits on the protocol clock
	LabelSlow   = "slow"   // a timing spec while the minute is at least SlowMinute
)

// sections is the explicit list of spec files, one function per [MS-ASP]
// section, in section order.
var sections = []func(*env){
	section2_1,
	section2_2_2_3,
	section2_2_2_4,
	section2_2_3_4,
	section2_2_3_5,
	section2_2_3_6,
	section2_2_3_8,
	section2_2_3_9,
	section2_2_3_10,
	section2_2_3_11,
	section2_2_3_12,
	section2_2_3_13,
	section2_2_4,
	section2_2_4_3,
	section2_2_4_4,
	section2_2_5_1,
	section2_2_5_2,
	section3_1_5_1,
	section3_1_5_2,
	section3_1_5_3,
	section3_1_5_4,
	section3_1_5_5,
	section3_1_5_6,
	section3_1_5_other,
	sectionClient,
	sectionOps,
	sectionRobustness,
}

// env is what the spec tree needs while it is built and while it runs: the
// target, its time scale and the transcript of the running spec. Ginkgo's
// tree is process-global and runs once per process, so there is one env per
// process, created by Run.
type env struct {
	runCtx   context.Context
	tgt      target.Target
	minute   time.Duration
	selected func(id, level string) bool

	// Filled while the tree is built (inside RunSpecs, before any spec runs).
	counts   map[string]int  // rule id → specs registered for it
	declared map[string]bool // rule ids declared (selected or not)
	current  string          // the rule whose container body is being built

	// The running spec's transcript. Specs run one at a time.
	rec *recorder
}

func newEnv(ctx context.Context, tgt target.Target, minute time.Duration, selected func(id, level string) bool) *env {
	return &env{
		runCtx: ctx, tgt: tgt, minute: minute, selected: selected,
		counts: map[string]int{}, declared: map[string]bool{},
		rec: newRecorder(),
	}
}

// define declares the whole spec tree. Call it once, before RunSpecs.
func (e *env) define(collect func(SpecReport)) {
	BeforeEach(func() {
		e.rec = newRecorder()
		if err := e.runCtx.Err(); err != nil {
			Skip(cancelledSkip + err.Error())
		}
	})
	ReportAfterEach(collect)
	for _, s := range sections {
		s(e)
	}
}

// cancelledSkip starts the skip reason of specs the run did not reach
// because it was cancelled.
const cancelledSkip = "the run was cancelled: "

// labelValue returns the value of the first "key:value" label with key.
func labelValue(labels []string, key string) string {
	for _, l := range labels {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return v
		}
	}
	return ""
}

// Rule declares one conformance rule by its catalogue id: a container
// carrying the labels the catalogue gives it ("rule:ID", "level:LEVEL",
// "timing" and "slow" where they apply) and the catalogue's one-line text.
// The id, level and text live only in the catalogue (h2spec style). Its
// body declares the rule's specs with e.It. Rules that the run does not
// select are not declared at all.
func (e *env) Rule(id string, body func()) {
	info, ok := ruleByID(id)
	if !ok {
		panic("conformance: rule " + id + " is not in the catalogue (catalogue.go)")
	}
	if e.declared[id] {
		panic("conformance: rule " + id + " declared twice")
	}
	e.declared[id] = true
	if !e.selected(id, info.Level) {
		return
	}
	labels := Label("rule:"+id, "level:"+info.Level)
	if info.Timing {
		labels = append(labels, LabelTiming)
		if e.minute >= SlowMinute {
			labels = append(labels, LabelSlow)
		}
	}
	Describe(id+": "+info.Description, labels, func() {
		prev := e.current
		e.current = id
		body()
		e.current = prev
	})
}

// It declares one spec of the current rule. Every spec gets a SpecContext
// whose deadline bounds it, so a broken server fails the spec instead of
// hanging the run.
func (e *env) It(text string, body func(ctx SpecContext)) {
	if e.current == "" {
		panic("conformance: It outside a Rule: " + text)
	}
	e.counts[e.current]++
	It(text, func(sc SpecContext) {
		// The spec's context also ends when the run is cancelled (Ctrl-C),
		// so a spec waiting on the protocol clock stops at once.
		ctx, cancel := context.WithCancel(sc)
		defer cancel()
		stop := context.AfterFunc(e.runCtx, cancel)
		defer stop()
		body(runSpecContext{SpecContext: sc, ctx: ctx})
	}, SpecTimeout(30*time.Second+8*e.minute))
}

// runSpecContext is a SpecContext whose Done, Err and Value come from a
// context that the run's cancellation also ends.
type runSpecContext struct {
	SpecContext
	ctx context.Context
}

// Done is closed when the spec or the run ends.
func (c runSpecContext) Done() <-chan struct{} { return c.ctx.Done() }

// Err says why Done was closed.
func (c runSpecContext) Err() error { return c.ctx.Err() }

// Deadline is the spec's deadline.
func (c runSpecContext) Deadline() (time.Time, bool) { return c.ctx.Deadline() }

// Value looks key up in the spec's context.
func (c runSpecContext) Value(key any) any { return c.ctx.Value(key) }

// psec returns n protocol seconds as real time.
func (e *env) psec(n float64) time.Duration {
	return time.Duration(n * float64(e.minute) / 60)
}

// pmin returns n protocol minutes as real time.
func (e *env) pmin(n float64) time.Duration {
	return time.Duration(n * float64(e.minute))
}

// idleWindow is how long the idle-connection spec stays idle.
func idleWindow(minute time.Duration) time.Duration {
	return min(max(minute, 800*time.Millisecond), 15*time.Second)
}

// wait lets d of real time pass, for rules about time itself (expiry,
// sliding expiry, lock age). It is not used to wait for anything to happen.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		Fail(fmt.Sprintf("spec ended while waiting %v on the protocol clock: %v", d, context.Cause(ctx)))
	}
}

// waitUntil waits until the instant at.
func waitUntil(ctx context.Context, at time.Time) {
	if d := time.Until(at); d > 0 {
		wait(ctx, d)
	}
}

// newID returns a fresh random session id.
func newID() string {
	id, err := protocol.NewSessionID(rand.Reader)
	if err != nil {
		panic(err)
	}
	return id
}

// key returns the request target of a fresh session and arranges for the
// session to be removed (lock or not) when the spec ends.
func (e *env) key() string {
	t := protocol.Target(AppID, newID())
	e.cleanup(t)
	return t
}

// cleanup removes the item named by target after the spec, breaking its lock
// if needed, over a connection that is not recorded. Failures are ignored: a
// broken server may not let it.
func (e *env) cleanup(target string) {
	DeferCleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := protocol.Dial(ctx, e.tgt.Addr(), protocol.ConnOptions{})
		if err != nil {
			return
		}
		defer c.Close()
		r, err := c.Get(ctx, target)
		if err != nil || r.Status == protocol.StatusNotFound {
			return
		}
		_, _ = c.Remove(ctx, target, r.LockCookie)
	})
}

// dial opens a recorded connection to the target, closed after the spec.
func (e *env) dial(ctx context.Context) *protocol.Conn {
	GinkgoHelper()
	id, tap := e.rec.newConn()
	c, err := protocol.Dial(ctx, e.tgt.Addr(), protocol.ConnOptions{Tap: tap})
	Expect(err).NotTo(HaveOccurred(), "connecting to the target at %s (connection #%d)", e.tgt.Addr(), id)
	DeferCleanup(func() { _ = c.Close() })
	return c
}

// dialRaw opens a recorded raw TCP connection, closed after the spec.
func (e *env) dialRaw(ctx context.Context) *rawConn {
	GinkgoHelper()
	id, tap := e.rec.newConn()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", e.tgt.Addr())
	Expect(err).NotTo(HaveOccurred(), "connecting to the target at %s (connection #%d)", e.tgt.Addr(), id)
	DeferCleanup(func() { _ = nc.Close() })
	return &rawConn{nc: nc.(*net.TCPConn), id: id, tap: tap, rec: e.rec}
}

// do sends req on c and returns the reply; a network or protocol error fails the spec.
func do(ctx context.Context, c *protocol.Conn, req *protocol.Request) *protocol.Response {
	GinkgoHelper()
	resp, err := c.Do(ctx, req)
	Expect(err).NotTo(HaveOccurred(), "%s %s: no usable reply", req.Method, clipTarget(req.Target))
	return resp
}

// doRaw sends raw bytes on c and returns the reply.
func doRaw(ctx context.Context, c *protocol.Conn, raw []byte) *protocol.Response {
	GinkgoHelper()
	resp, err := c.DoRaw(ctx, raw)
	Expect(err).NotTo(HaveOccurred(), "request %q: no usable reply", firstLine(raw))
	return resp
}

func firstLine(b []byte) string {
	s := string(b)
	if i := strings.Index(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}

func clipTarget(t string) string {
	if len(t) > 48 {
		return "…" + t[len(t)-30:]
	}
	return t
}

// status asserts the reply's status code.
func status(resp *protocol.Response, want int, what string) {
	GinkgoHelper()
	Expect(resp.Status).To(Equal(want), "%s: expected status %d, observed reply: %s", what, want, describe(resp))
}

// get sends a plain GET.
func get(ctx context.Context, c *protocol.Conn, t string) *protocol.Response {
	GinkgoHelper()
	return do(ctx, c, protocol.NewGetRequest(c.Host(), t))
}

// acquireReq sends GET Exclusive: acquire.
func acquireReq(ctx context.Context, c *protocol.Conn, t string) *protocol.Response {
	GinkgoHelper()
	return do(ctx, c, protocol.NewGetExclusiveRequest(c.Host(), t))
}

// release sends GET Exclusive: release with cookie.
func release(ctx context.Context, c *protocol.Conn, t string, cookie int32) *protocol.Response {
	GinkgoHelper()
	return do(ctx, c, protocol.NewReleaseExclusiveRequest(c.Host(), t, cookie))
}

// put sends a PUT as the real client does (all three numeric headers).
func put(ctx context.Context, c *protocol.Conn, t string, body []byte, timeout, cookie, flags int32) *protocol.Response {
	GinkgoHelper()
	return do(ctx, c, protocol.NewSetRequest(c.Host(), t, body, protocol.SetParams{Timeout: timeout, LockCookie: cookie, ExtraFlags: flags}))
}

// remove sends a DELETE with cookie.
func remove(ctx context.Context, c *protocol.Conn, t string, cookie int32) *protocol.Response {
	GinkgoHelper()
	return do(ctx, c, protocol.NewRemoveRequest(c.Host(), t, cookie))
}

// head sends a HEAD.
func head(ctx context.Context, c *protocol.Conn, t string) *protocol.Response {
	GinkgoHelper()
	return do(ctx, c, protocol.NewResetTimeoutRequest(c.Host(), t))
}

// create PUTs body under t with the given timeout and expects 200.
func create(ctx context.Context, c *protocol.Conn, t string, body []byte, timeout int32) {
	GinkgoHelper()
	status(put(ctx, c, t, body, timeout, 0, 0), 200, "PUT creating the item")
}

// lock acquires t (which must exist and be unlocked) and returns the cookie.
func lock(ctx context.Context, c *protocol.Conn, t string) int32 {
	GinkgoHelper()
	resp := acquireReq(ctx, c, t)
	status(resp, 200, "GET Exclusive: acquire on an unlocked item")
	return cookieOf(resp, "GET Exclusive: acquire on an unlocked item")
}

// cookieOf returns the LockCookie header as int32, failing the spec if it is
// absent or not a number.
func cookieOf(resp *protocol.Response, what string) int32 {
	GinkgoHelper()
	v, ok := header(resp, protocol.HeaderLockCookie)
	Expect(ok).To(BeTrue(), "%s: expected a LockCookie header, observed reply: %s", what, describe(resp))
	n, ok := protocol.ParseInt32(v)
	Expect(ok).To(BeTrue(), "%s: LockCookie %q is not an Int32", what, v)
	return n
}

// content returns test content, tagged and different in every call.
func content(tag string) []byte {
	return []byte("aspstate conformance " + tag + " " + newID())
}

// expectContent asserts that a plain GET of t answers 200 with want.
func expectContent(ctx context.Context, c *protocol.Conn, t string, want []byte, what string) {
	GinkgoHelper()
	resp := get(ctx, c, t)
	status(resp, 200, what)
	Expect(resp.Body).To(Equal(want), "%s: body", what)
}

// expectLockedBy asserts that a plain GET of t answers 423 with cookie.
func expectLockedBy(ctx context.Context, c *protocol.Conn, t string, cookie int32, what string) {
	GinkgoHelper()
	resp := get(ctx, c, t)
	status(resp, 423, what)
	Expect(cookieOf(resp, what)).To(Equal(cookie), "%s: LockCookie of the 423", what)
}

// expectAbsent asserts that a plain GET of t answers 404.
func expectAbsent(ctx context.Context, c *protocol.Conn, t string, what string) {
	GinkgoHelper()
	status(get(ctx, c, t), 404, what)
}
