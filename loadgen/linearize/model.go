// Package linearize checks that a state server's per-session histories are
// linearizable with respect to a sequential model of the [MS-ASP] decision
// tables c.1–c.4 (PROTOCOL.md), using the porcupine checker
// (github.com/anishathalye/porcupine).
//
// # Histories
//
// A history is a list of porcupine Operations whose Input is an [Input] and
// whose Output is an [Output]; Call and Return are nanoseconds on one
// monotonic clock. An operation without a reply (a timeout, a reset
// connection, a malformed reply) is indeterminate: its Return is
// [Infinity] and its Output has Indeterminate set, so the checker may place
// it anywhere after its call, including after every other operation (which
// is the same as "it never reached the server"), and any outcome is
// accepted for it. Check orders indeterminate operations with the same
// input by their call (see Input.Group): any linearization can use them in
// that order, and it spares porcupine the 2^k subsets of k timed-out
// acquires of one session after a network fault (a 10 s run with a 2 s
// blackhole went from sessions given up after 10 s to 0.1 s in all).
//
// # Model
//
// The state of one session key is [State]: whether the item exists, its lock
// (locked flag and the lock cookie, which is also the item's cookie
// counter), its body, its timeout and its uninitialized bit. Every row of
// c.1 (Get, GetExclusive, ReleaseExclusive), c.2 (Set), c.3 (Remove) and
// c.4 (ResetTimeout) is modelled exactly, including the quirks: the first
// acquire after a create returns cookie 2, a release of an unlocked item is
// a 200 no-op, a DELETE of an unlocked item ignores its cookie, a Set with
// ExtraFlags:1 on an existing item is a no-op even when it is locked, a Set
// that changes the timeout replaces the item and resets its cookie counter
// to the request's LockCookie (−1 when absent), and ActionFlags: 1 appears
// on exactly one GET-family reply after an uninitialized create. The output
// of every determinate operation is compared field by field: status,
// LockCookie (acquire 200 and every 423), ActionFlags, Timeout (GET 200)
// and the body (as a 64-bit FNV-1a digest, see [BodyOf]). Lock age and lock
// date are not modelled.
//
// So two acquires answered 200 without a release, a matching PUT or DELETE
// between them, a PUT or DELETE with a wrong cookie on a locked item
// answered 200, a release with a wrong cookie answered 200, a cookie other
// than counter+1, or a read of a body that no linearization allows, all make
// a history illegal.
//
// # Expiry and lost state
//
// With [Config].Minute zero, items never expire: right for runs much shorter
// than the session timeout (20 protocol minutes by default). With a minute,
// an item may vanish before an operation whose reply came at least Timeout
// minutes (less one protocol second, the server's re-arm step, and
// [ExpirySlack]) after the call of the last operation that found it: the
// model then also tries the operation on an absent item. Check tracks
// expiry only in sessions whose history is longer than the shortest life
// of their items, and lets an indeterminate operation find the item expired
// only if it could have expired by the session's last reply. Lookups that find
// the item slide its expiry, whatever their status (PROTOCOL.md d). A
// Timeout of 0 never expires. [Config].LostState lists windows (a server
// restart) during which every item may vanish once.
//
// The cookie counter is an Int32 that the model increments without wrap
// (2³¹ acquires of one session are out of reach of a load run).
package linearize

import (
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/aspstate/aspstate/protocol"
)

// Infinity is the Return time of an indeterminate operation.
const Infinity int64 = math.MaxInt64

// ExpirySlack is added to the expiry window to allow for scheduling between
// the client's clock reading and the server's handling.
const ExpirySlack = 5 * time.Millisecond

// Body identifies a session body: a digest of its bytes and a short label
// for people (loadgen's bodies carry a version, shown as "v12").
type Body struct {
	// Digest is the FNV-1a 64-bit hash of the bytes.
	Digest uint64
	// Label describes the body in visualisations; it is derived from the
	// bytes, so equal digests have equal labels.
	Label string
}

// BodyOf returns the Body of b, with label (or "N bytes" when label is "").
func BodyOf(b []byte, label string) Body {
	h := fnv.New64a()
	h.Write(b)
	if label == "" {
		label = fmt.Sprintf("%dB", len(b))
	}
	return Body{Digest: h.Sum64(), Label: label}
}

// Input is what one protocol operation sent.
type Input struct {
	// Op is the protocol message.
	Op protocol.Op
	// Key is the session's request target (the partition key).
	Key string
	// Cookie is the LockCookie header, when HasCookie.
	Cookie    int32
	HasCookie bool
	// Timeout is a Set's Timeout header in minutes, when HasTimeout.
	Timeout    int32
	HasTimeout bool
	// Flags is a Set's ExtraFlags header (absent is 0).
	Flags int32
	// Body is a Set's body.
	Body Body
	// Call is the operation's call time, as in the porcupine Operation; the
	// model needs it for expiry.
	Call int64
	// Group and Rank, set by Check on indeterminate operations: operations
	// of one Group (1, 2, …) have the same input but for their call, so any
	// linearization can use them in call order (an earlier call can take a
	// later one's place); the model accepts operation Rank of a group only
	// after ranks 0…Rank−1, which spares the checker every other order.
	Group, Rank int
}

// Output is what came back.
type Output struct {
	// Indeterminate: no usable reply (timeout, network error, malformed
	// reply); any outcome is accepted. Err says what happened.
	Indeterminate bool
	Err           string
	// Status is the reply's status code.
	Status int
	// Cookie is the LockCookie header, when HasCookie.
	Cookie    int32
	HasCookie bool
	// ActionFlags is the ActionFlags header (0 when absent).
	ActionFlags int32
	// Timeout is the Timeout header, when HasTimeout.
	Timeout    int32
	HasTimeout bool
	// Body is the reply body of a GET-family 200, when HasBody.
	Body    Body
	HasBody bool
	// Return is the operation's return time, as in the porcupine
	// Operation (Infinity when indeterminate).
	Return int64
}

// State is the model's state of one session key.
type State struct {
	// Exists reports whether the item is stored.
	Exists bool
	// Locked reports an exclusive lock; Cookie is the item's lock cookie,
	// which is also its counter (the next acquire gets Cookie+1).
	Locked bool
	Cookie int32
	// Body is the stored content.
	Body Body
	// Timeout is the item's timeout in minutes.
	Timeout int32
	// Uninit is the uninitialized bit (ExtraFlags:1 at creation).
	Uninit bool
	// Touched is the latest Call of an operation that found the item (a
	// lower bound of when the server last slid its expiry); only kept when
	// expiry is modelled.
	Touched int64
	// Lost counts the LostState windows already used.
	Lost int
	// Used holds, per Input.Group, how many of its operations are
	// linearized (two bytes per group, little endian).
	Used string
}

// used returns how many operations of group g (1-based) are linearized.
func (s State) used(g int) int {
	i := 2 * (g - 1)
	if i+1 >= len(s.Used) {
		return 0
	}
	return int(s.Used[i]) | int(s.Used[i+1])<<8
}

// withUsed returns Used with group g's count set to n.
func withUsed(used string, g, n int) string {
	b := []byte(used)
	for len(b) < 2*g {
		b = append(b, 0)
	}
	b[2*(g-1)], b[2*(g-1)+1] = byte(n), byte(n>>8)
	return string(b)
}

// Window is a span of time, on the history's clock, during which the server
// may have lost every item (a restart).
type Window struct{ From, To int64 }

// Config tunes the model.
type Config struct {
	// Minute is the target's protocol minute in nanoseconds of the history's
	// clock; 0 means items never expire.
	Minute time.Duration
	// LostState are windows during which every item may vanish (sorted by
	// From).
	LostState []Window
	// End, when set, is the last return time of the history: an expiry
	// after it changes nothing observed, so an indeterminate operation lets
	// the item expire only if it could by End (Check sets it per session).
	End int64
}

// reply is what the server must answer.
type reply struct {
	status      int
	cookie      int32
	hasCookie   bool
	actionFlags int32
	timeout     int32
	hasTimeout  bool
	body        Body
	hasBody     bool
}

func (c Config) expires() bool { return c.Minute > 0 }

// step returns every state the model may be in after in/out from s.
func (c Config) step(s State, in Input, out Output) []State {
	used := s.Used
	if in.Group > 0 {
		if s.used(in.Group) != in.Rank {
			return nil // an earlier-called twin goes first
		}
		used = withUsed(used, in.Group, in.Rank+1)
	}
	var next []State
	try := func(s State) {
		if ns, ok := c.apply(s, in, out); ok {
			ns.Used = used
			for _, x := range next {
				if x == ns {
					return
				}
			}
			next = append(next, ns)
		}
	}
	try(s)
	if s.Exists && c.expires() && s.Timeout > 0 {
		ret := out.Return
		if ret == Infinity && c.End > 0 {
			ret = c.End
		}
		if ret == Infinity || ret-s.Touched >= c.life(s.Timeout) {
			try(State{Lost: s.Lost})
		}
	}
	for i := s.Lost; i < len(c.LostState); i++ {
		if out.Return >= c.LostState[i].From {
			try(State{Lost: i + 1})
		}
	}
	return next
}

// life is how long after its last lookup an item of timeout t may be gone:
// t minutes less one protocol second (the server re-arms expiry only when it
// moves by a second or more) and ExpirySlack.
func (c Config) life(t int32) int64 {
	return int64(t)*int64(c.Minute) - int64(c.Minute/60) - int64(ExpirySlack)
}

// expiryObservable reports whether, in ops (one session), an item could
// expire early enough to be observed: some Set gives it a positive timeout
// and the history lasts longer than the shortest such life. When not, the
// model need not track expiry, which keeps its states few.
func (c Config) expiryObservable(ops []porcupine.Operation) bool {
	if !c.expires() || len(ops) == 0 {
		return false
	}
	first, last := ops[0].Call, int64(0)
	shortest := int64(math.MaxInt64)
	for _, op := range ops {
		first = min(first, op.Call)
		if op.Return != Infinity {
			last = max(last, op.Return)
		}
		in := op.Input.(Input)
		if in.Op != protocol.OpSet {
			continue
		}
		t := int32(protocol.DefaultTimeout)
		if in.HasTimeout {
			t = in.Timeout
		}
		if t > 0 && t <= protocol.MaxTimeout {
			shortest = min(shortest, c.life(t))
		}
	}
	return shortest != math.MaxInt64 && last-first >= shortest
}

// touch slides the expiry of a found item.
func (c Config) touch(s *State, in Input) {
	if c.expires() && in.Call > s.Touched {
		s.Touched = in.Call
	}
}

// apply runs in on s and reports whether out is what the server must answer.
func (c Config) apply(s State, in Input, out Output) (State, bool) {
	ns, want := c.decide(s, in)
	if out.Indeterminate {
		return ns, true
	}
	return ns, matches(want, out)
}

func matches(w reply, o Output) bool {
	if o.Status != w.status || o.HasCookie != w.hasCookie || o.ActionFlags != w.actionFlags || o.HasBody != w.hasBody {
		return false
	}
	if w.hasCookie && o.Cookie != w.cookie {
		return false
	}
	// Timeout is compared where the server must send it (GET 200); other
	// replies are not required to lack it.
	if w.hasTimeout && (!o.HasTimeout || o.Timeout != w.timeout) {
		return false
	}
	return !w.hasBody || o.Body.Digest == w.body.Digest
}

// decide is the sequential specification: PROTOCOL.md c.1–c.4.
func (c Config) decide(s State, in Input) (State, reply) {
	switch in.Op {
	case protocol.OpGet, protocol.OpGetExclusive, protocol.OpReleaseExclusive:
		// c.1
		if !s.Exists {
			return s, reply{status: 404} // #1
		}
		c.touch(&s, in)
		var r reply
		if s.Uninit { // #2
			r.actionFlags = 1
			s.Uninit = false
		}
		locked := func() (State, reply) {
			r.status, r.cookie, r.hasCookie = 423, s.Cookie, true
			return s, r
		}
		if in.Op == protocol.OpReleaseExclusive {
			switch {
			case !in.HasCookie || in.Cookie < 0: // #3
				r.status = 400
			case s.Locked && in.Cookie == s.Cookie: // #4
				s.Locked = false
				r.status = 200
			case s.Locked: // #5
				return locked()
			default: // #6
				r.status = 200
			}
			return s, r
		}
		if s.Locked { // #7
			return locked()
		}
		r.status, r.timeout, r.hasTimeout, r.body, r.hasBody = 200, s.Timeout, true, s.Body, true
		if in.Op == protocol.OpGetExclusive { // #8
			s.Cookie++
			s.Locked = true
			r.cookie, r.hasCookie = s.Cookie, true
		}
		return s, r // #8, #9

	case protocol.OpSet:
		// c.2
		t := int32(protocol.DefaultTimeout)
		if in.HasTimeout {
			t = in.Timeout
			if t < 0 || t > protocol.MaxTimeout { // #1, #2
				return s, reply{status: 400}
			}
		}
		if !s.Exists { // #9
			return State{Exists: true, Cookie: 1, Body: in.Body, Timeout: t, Uninit: in.Flags&1 == 1,
				Touched: c.created(in), Lost: s.Lost}, reply{status: 200}
		}
		c.touch(&s, in)
		if in.Flags&1 == 1 { // #4
			return s, reply{status: 200}
		}
		if in.HasCookie && in.Cookie < 0 { // #5
			return s, reply{status: 400}
		}
		if s.Locked && (!in.HasCookie || in.Cookie != s.Cookie) { // #6
			return s, reply{status: 423, cookie: s.Cookie, hasCookie: true}
		}
		if t == s.Timeout { // #7
			s.Body = in.Body
			s.Locked = false
			return s, reply{status: 200}
		}
		cookie := int32(-1) // #8
		if in.HasCookie {
			cookie = in.Cookie
		}
		return State{Exists: true, Cookie: cookie, Body: in.Body, Timeout: t, Uninit: in.Flags&1 == 1,
			Touched: c.created(in), Lost: s.Lost}, reply{status: 200}

	case protocol.OpRemove:
		// c.3
		if !s.Exists {
			return s, reply{status: 404} // #1
		}
		c.touch(&s, in)
		if in.HasCookie && in.Cookie < 0 { // #2
			return s, reply{status: 400}
		}
		if s.Locked && (!in.HasCookie || in.Cookie != s.Cookie) { // #3
			return s, reply{status: 423, cookie: s.Cookie, hasCookie: true}
		}
		return State{Lost: s.Lost}, reply{status: 200} // #4

	case protocol.OpResetTimeout:
		// c.4
		if !s.Exists {
			return s, reply{status: 404}
		}
		c.touch(&s, in)
		return s, reply{status: 200}
	}
	// c.5: anything else is a 400 and changes nothing.
	return s, reply{status: 400}
}

func (c Config) created(in Input) int64 {
	if c.expires() {
		return in.Call
	}
	return 0
}

// NewModel returns the porcupine model of c.1–c.4 under cfg, partitioned by
// session key (Input.Key).
func NewModel(cfg Config) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: partition,
		Init:      func() []any { return []any{State{}} },
		Step: func(state, input, output any) []any {
			ns := cfg.step(state.(State), input.(Input), output.(Output))
			out := make([]any, len(ns))
			for i, s := range ns {
				out[i] = s
			}
			return out
		},
		Equal:             func(a, b any) bool { return a.(State) == b.(State) },
		Hash:              func(s any) uint64 { return hashState(s.(State)) },
		DescribeOperation: func(input, output any) string { return DescribeOperation(input.(Input), output.(Output)) },
		DescribeState:     func(s any) string { return DescribeState(s.(State)) },
	}
	return nm.ToModel()
}

func hashState(s State) uint64 {
	h := s.Body.Digest ^ uint64(uint32(s.Cookie))<<1 ^ uint64(uint32(s.Timeout))<<33 ^ uint64(s.Touched)*0x9E3779B97F4A7C15
	if s.Exists {
		h ^= 1
	}
	if s.Locked {
		h ^= 1 << 62
	}
	if s.Uninit {
		h ^= 1 << 61
	}
	h ^= uint64(s.Lost) << 40
	for i := 0; i < len(s.Used); i++ {
		h = h*1099511628211 ^ uint64(s.Used[i])
	}
	return h
}

// partition splits a history by session key, keeping each key's
// operations in their original order.
func partition(history []porcupine.Operation) [][]porcupine.Operation {
	idx := map[string]int{}
	var out [][]porcupine.Operation
	for _, op := range history {
		k := op.Input.(Input).Key
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], op)
	}
	return out
}

var opLabels = map[protocol.Op]string{
	protocol.OpGet: "get", protocol.OpGetExclusive: "acquire", protocol.OpReleaseExclusive: "release",
	protocol.OpSet: "set", protocol.OpRemove: "delete", protocol.OpResetTimeout: "head",
}

// DescribeOperation renders an operation for the visualisation, e.g.
// "acquire → 200 cookie 3 v12" or "set(v13, cookie 3, timeout 20) → 423 cookie 4".
func DescribeOperation(in Input, out Output) string {
	var b strings.Builder
	b.WriteString(opLabels[in.Op])
	if b.Len() == 0 {
		b.WriteString(in.Op.String())
	}
	var args []string
	if in.Op == protocol.OpSet {
		args = append(args, in.Body.Label)
		if in.Flags != 0 {
			args = append(args, fmt.Sprintf("flags %d", in.Flags))
		}
	}
	if in.HasCookie {
		args = append(args, fmt.Sprintf("cookie %d", in.Cookie))
	}
	if in.HasTimeout {
		args = append(args, fmt.Sprintf("timeout %d", in.Timeout))
	}
	if len(args) > 0 {
		b.WriteString("(" + strings.Join(args, ", ") + ")")
	}
	b.WriteString(" → ")
	if out.Indeterminate {
		b.WriteString("? (" + out.Err + ")")
		return b.String()
	}
	fmt.Fprintf(&b, "%d", out.Status)
	if out.HasCookie {
		fmt.Fprintf(&b, " cookie %d", out.Cookie)
	}
	if out.ActionFlags != 0 {
		fmt.Fprintf(&b, " actionflags %d", out.ActionFlags)
	}
	if out.HasBody {
		b.WriteString(" " + out.Body.Label)
	}
	return b.String()
}

// DescribeState renders a state, e.g. "v12 locked(3) timeout 20".
func DescribeState(s State) string {
	if !s.Exists {
		if s.Lost > 0 {
			return fmt.Sprintf("absent (lost %d)", s.Lost)
		}
		return "absent"
	}
	var b strings.Builder
	b.WriteString(s.Body.Label)
	if s.Locked {
		fmt.Fprintf(&b, " locked(%d)", s.Cookie)
	} else {
		fmt.Fprintf(&b, " unlocked(%d)", s.Cookie)
	}
	fmt.Fprintf(&b, " timeout %d", s.Timeout)
	if s.Uninit {
		b.WriteString(" uninit")
	}
	return b.String()
}
