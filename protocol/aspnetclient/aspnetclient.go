// Package aspnetclient holds the rules by which ASP.NET's out-of-process
// session state client (SessionStateModule + OutOfProcSessionStateStore,
// PROTOCOL.md e.1–e.5) reacts to the state server's replies: the version
// check, the 400 exception, how a GET reply is read, the lock age, when a
// lock is broken, lock polling and the per-session request queue limit.
//
// It is the one implementation of those rules: the load generator's client
// emulation and the conformance suite's client rules both call it, so they
// cannot disagree. It holds rules, not I/O: callers make the requests with
// the protocol package and ask this package what the client does next.
// It depends on the standard library and protocol only.
package aspnetclient

import (
	"errors"
	"sync"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

// The client's constants (PROTOCOL.md e.2–e.4, REF).
const (
	// WhidbeyMajorVersion is the lowest X-AspNet-Version major the client
	// accepts on its first reply (WHIDBEY_MAJOR_VERSION).
	WhidbeyMajorVersion = 2
	// LockPollInterval is LOCKED_ITEM_POLLING_INTERVAL: a locked item is
	// polled this often (real time for the real service).
	LockPollInterval = 500 * time.Millisecond
	// LockPollDelta is LOCKED_ITEM_POLLING_DELTA: a poll is skipped when the
	// previous one completed less than this long ago.
	LockPollDelta = 250 * time.Millisecond
	// ExecutionTimeoutSeconds is httpRuntime executionTimeout's default: a
	// lock at least this old is broken, and a request waits at most this
	// long for a lock.
	ExecutionTimeoutSeconds = 110
	// MaxLockAgeSeconds is one year: a LockAge from it on is taken as 0.
	MaxLockAgeSeconds = 31_536_000
	// DefaultRequestQueueLimitPerSession is aspnet:RequestQueueLimitPerSession
	// for applications targeting .NET 4.6.3 or later; older ones have no limit.
	DefaultRequestQueueLimitPerSession = 50
)

// The client's exception messages (REF System.Web resources).
const (
	// MsgNeedV2 is Need_v2_State_Server (e.4).
	MsgNeedV2 = "Unable to use session state server because this version of ASP.NET requires session state server version 2.0 or above."
	// MsgBadRequest is Bad_state_server_request (e.1).
	MsgBadRequest = "Unable to make the session state request to the session state server. The request is not formatted correctly."
	// MsgQueueFull is the exception of a request beyond the per-session
	// queue limit (e.2).
	MsgQueueFull = "The request queue limit of the session is exceeded."
)

// Errors the client throws.
var (
	// ErrNeedV2: the first reply of an application lacks X-AspNet-Version
	// with a major version of at least 2.
	//
	//lint:ignore ST1005 the message is System.Web's Need_v2_State_Server, verbatim
	ErrNeedV2 = errors.New(MsgNeedV2)
	// ErrBadRequest: any reply with status 400.
	//
	//lint:ignore ST1005 the message is System.Web's Bad_state_server_request, verbatim
	ErrBadRequest = errors.New(MsgBadRequest)
	// ErrQueueFull: more requests of one session than the queue limit.
	//
	//lint:ignore ST1005 the message mirrors System.Web's queue-limit exception
	ErrQueueFull = errors.New(MsgQueueFull)
)

// VersionUnchecked is the stored version of a partition before its first
// checked reply (StateServerVersion = -1).
const VersionUnchecked = -1

// AfterReply applies MakeRequest's rules to one reply (e.1, e.4). stored is
// the partition's stored version (VersionUnchecked until a reply was
// checked). A 400 throws ErrBadRequest before the version is stored, so the
// next request checks again. Otherwise, while the version is unchecked, the
// reply's major version (0 without the header) is stored and a major below
// WhidbeyMajorVersion throws ErrNeedV2 — once: later requests are not
// checked (the KB 2836759 symptom). Any other status is not an error.
func AfterReply(stored int, status int, version string) (int, error) {
	if status == protocol.StatusBadRequest {
		return stored, ErrBadRequest
	}
	if stored != VersionUnchecked {
		return stored, nil
	}
	major := protocol.VersionMajor(version)
	if major < WhidbeyMajorVersion {
		return major, ErrNeedV2
	}
	return major, nil
}

// Item is what GetItem and GetItemExclusive return to SessionStateModule.
type Item struct {
	Found   bool   // a session exists: 200 with a non-empty body
	Body    []byte // the serialized session
	Locked  bool   // 423
	LockID  int32  // LockCookie
	LockAge int64  // protocol seconds, as LockAge computes it (423 only)
	Actions int32  // ActionFlags
}

// ReadItem interprets a reply to GET or GET Exclusive: acquire as DoGet does
// (e.5). A 200 with Content-Length 0 is "no item" (its cookie is ignored);
// 423 is locked with the lock's cookie and age; any other status (404, 500)
// is not found. second is the real duration of one protocol second.
func ReadItem(r *protocol.Reply, now time.Time, second time.Duration) Item {
	switch r.Status {
	case protocol.StatusOK:
		if len(r.Body) == 0 {
			return Item{}
		}
		return Item{Found: true, Body: r.Body, LockID: r.LockCookie, Actions: r.ActionFlags}
	case protocol.StatusLocked:
		return Item{Locked: true, LockID: r.LockCookie, LockAge: LockAge(r, now, second), Actions: r.ActionFlags}
	}
	return Item{}
}

// LockAge is the lock age, in protocol seconds, that the client computes
// from a 423 (e.3): LockAge when it is in [0, one year); 0 when it is one
// year or more; when it is negative or absent, now − LockDate (server-local
// .NET ticks) when that date lies in (0, now), else 0. second is the real
// duration of one protocol second (time.Second for the real service), since
// LockDate counts real time while LockAge counts the server's protocol time;
// zero means time.Second.
func LockAge(r *protocol.Reply, now time.Time, second time.Duration) int64 {
	if second <= 0 {
		second = time.Second
	}
	if r.HasLockAge && r.LockAge >= 0 {
		if r.LockAge < MaxLockAgeSeconds {
			return r.LockAge
		}
		return 0
	}
	if r.HasLockDate {
		if nowTicks := DotNetTicks(now); r.LockDate > 0 && r.LockDate < nowTicks {
			return int64(time.Duration(nowTicks-r.LockDate) * 100 / second)
		}
	}
	return 0
}

// BreakLock reports whether the client force-releases a lock of the given
// age (protocol seconds) under an execution timeout (seconds): e.3.
func BreakLock(age, executionTimeoutSeconds int64) bool {
	return age >= executionTimeoutSeconds
}

// DotNetTicks returns t as .NET ticks (100 ns since 0001-01-01) in t's zone:
// DateTime.Now.Ticks for a local t.
func DotNetTicks(t time.Time) int64 {
	_, off := t.Zone()
	const unixEpochTicks = 621_355_968_000_000_000
	return unixEpochTicks + (t.UnixNano()+int64(off)*int64(time.Second))/100
}

// SessionQueue is aspnet:RequestQueueLimitPerSession (e.2): at most limit
// requests of one session may be in SessionStateModule at once (holding or
// waiting for its lock); one more fails at once with ErrQueueFull. It is
// safe for concurrent use.
type SessionQueue struct {
	limit int
	mu    sync.Mutex
	n     map[string]int
}

// NewSessionQueue returns a queue of the given limit; a limit of 0 or less
// is unlimited (applications targeting .NET before 4.6.3).
func NewSessionQueue(limit int) *SessionQueue {
	return &SessionQueue{limit: limit, n: map[string]int{}}
}

// Enter admits one request of session, or refuses it with ErrQueueFull when
// limit requests of it are already in. Call leave when the request is done.
func (q *SessionQueue) Enter(session string) (leave func(), err error) {
	if q == nil || q.limit <= 0 {
		return func() {}, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n[session] >= q.limit {
		return nil, ErrQueueFull
	}
	q.n[session]++
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			if q.n[session]--; q.n[session] == 0 {
				delete(q.n, session)
			}
		})
	}, nil
}
