package stateserver

import (
	"hash/maphash"
	"sync"
	"time"
	"unsafe"

	"github.com/aspstate/aspstate/protocol"
)

// numShards is the number of independently locked parts of the store. A
// power of two so the shard index is a mask of the key hash.
const numShards = 256

// bucketsPerMinute sets the expiry bucket width: 20 protocol seconds, like
// ASP.NET's CacheExpires (_tsPerBucket).
const bucketsPerMinute = 3

// entry is one session item (PROTOCOL.md c, abstract data model). It is
// kept small: with 1 KiB bodies the store must hold a million of them in
// 1.5 GiB.
type entry struct {
	key string
	// The body, as a pointer, length and capacity rather than a 24-byte
	// slice header, to keep the entry in the 80-byte size class. It is read
	// and written only under the shard lock: replies copy it out, and a PUT
	// of a body that fits the buffer overwrites it in place, so rewriting a
	// session makes no garbage.
	bodyPtr *byte
	bodyLen uint32
	bodyCap uint32
	expires int64 // server clock (ns); meaningless when timeout == 0
	lockAt  int64 // server clock (ns) when the lock was taken
	timeout int32 // minutes; 0 never expires
	cookie  int32 // the per-item lock cookie counter: the last cookie handed out
	locked  bool
	uninit  bool // ExtraFlags bit 0: the next GET reports ActionFlags: 1

	// prev and next link the entry into its expiry bucket (an intrusive
	// doubly linked list), so moving it between buckets is O(1).
	prev, next *entry
}

// bodyBytes returns the stored body (aliasing the entry's buffer).
func (e *entry) bodyBytes() []byte {
	if e.bodyPtr == nil {
		return nil
	}
	return unsafe.Slice(e.bodyPtr, e.bodyCap)[:e.bodyLen]
}

// setBody stores a copy of b, in place when it fits the current buffer and
// does not waste more than half of it.
func (e *entry) setBody(b []byte) {
	n := uint32(len(b))
	if n == 0 {
		e.bodyLen = 0
		return
	}
	if e.bodyPtr != nil && n <= e.bodyCap && n >= e.bodyCap/2 {
		copy(unsafe.Slice(e.bodyPtr, e.bodyCap), b)
		e.bodyLen = n
		return
	}
	buf := append([]byte(nil), b...) // capacity rounded up to the allocation's size class
	e.bodyPtr, e.bodyLen, e.bodyCap = unsafe.SliceData(buf), n, uint32(cap(buf))
}

// shard is one lock domain of the store. The counters are guarded by mu.
type shard struct {
	mu      sync.Mutex
	items   map[string]*entry
	buckets map[int64]*entry // expiry bucket index → list head
	swept   int64            // every bucket below this index has been scavenged
	// lastLSN is the log position just after the last mutation record of
	// this shard (persistence only): a reply about this shard waits for it
	// under FsyncAlways, so no reply reveals a state that may not survive.
	lastLSN int64

	active, total, abandoned, timedOut int64
	_                                  [64]byte // keep hot shards on separate cache lines
}

// store is the sharded session store with sliding expiry on a bucketed time
// base. All times are nanoseconds on the server clock (monotonic, since the
// store was made); one protocol minute lasts minute nanoseconds.
type store struct {
	wal    *wal // nil without persistence
	seed   maphash.Seed
	minute int64 // ns per protocol minute
	second int64 // ns per protocol second: the minimum expiry re-arm delta
	width  int64 // ns per expiry bucket
	shards [numShards]shard
}

func newStore(minute time.Duration) *store {
	st := &store{seed: maphash.MakeSeed(), minute: int64(minute)}
	st.second = st.minute / 60
	if st.second < 1 {
		st.second = 1
	}
	st.width = st.minute / bucketsPerMinute
	if st.width < 1 {
		st.width = 1
	}
	for i := range st.shards {
		st.shards[i].items = make(map[string]*entry)
		st.shards[i].buckets = make(map[int64]*entry)
	}
	return st
}

// shardFor returns the shard of key. Keys arrive as bytes decoded into a
// per-connection buffer, so that a lookup allocates nothing (the compiler
// does not copy for m[string(b)]); only a created item copies its key.
func (st *store) shardFor(key []byte) *shard {
	return &st.shards[maphash.Bytes(st.seed, key)&(numShards-1)]
}

// cookieArg is a LockCookie request header as the service sees it.
type cookieArg struct {
	present bool  // the header was sent
	valid   bool  // it is an Int32 ≥ 0
	value   int32 // when valid
}

// parseCookie interprets a LockCookie header value.
func parseCookie(v string, present bool) cookieArg {
	if !present {
		return cookieArg{}
	}
	n, ok := protocol.ParseInt32(v)
	return cookieArg{present: true, valid: ok && n >= 0, value: n}
}

// getMode is the kind of GET (c.1).
type getMode uint8

const (
	getPlain getMode = iota
	getAcquire
	getRelease
)

// result is the outcome of one store operation: what the reply says.
type result struct {
	status      int
	actionFlags bool   // add "ActionFlags: 1"
	cookie      int32  // acquire 200: the new cookie; 423: the holder's
	timeout     int32  // GET 200
	lockAt      int64  // 423: when the lock was taken (server clock)
	body        []byte // GET 200: a copy of the item's body in the caller's scratch buffer
	lsn         int64  // persistence: the log position this reply depends on (0 = none)
}

// change is what an operation did to an item, for the log.
type change uint8

const (
	chNone   change = iota // nothing (at most a slide of the expiry)
	chMeta                 // lock state, cookie or uninitialized bit
	chState                // body and everything else
	chDelete               // removed by DELETE
)

// logLocked appends the log record of one operation (caller holds sh.mu,
// so records of one key are logged in the order they happened) and
// returns the log position the reply depends on. A slide that moved the
// item to another expiry bucket is logged as a touch, which no reply
// waits for; other slides are not logged (a restart may shorten a sliding
// window by up to one bucket).
func (st *store) logLocked(sh *shard, key []byte, e *entry, ch change, moved bool) int64 {
	w := st.wal
	switch ch {
	case chMeta:
		sh.lastLSN = w.appendState(key, e, false)
	case chState:
		sh.lastLSN = w.appendState(key, e, true)
	case chDelete:
		sh.lastLSN = w.appendDelete(key)
	default:
		if moved && e != nil {
			w.appendTouch(key, e)
		}
	}
	return sh.lastLSN
}

func (st *store) bucketOf(expires int64) int64 { return expires / st.width }

// link puts e into the bucket of its expiry. Items that never expire are
// in no bucket.
func (sh *shard) link(st *store, e *entry) {
	if e.timeout == 0 {
		return
	}
	b := st.bucketOf(e.expires)
	head := sh.buckets[b]
	e.prev = nil
	e.next = head
	if head != nil {
		head.prev = e
	}
	sh.buckets[b] = e
}

// unlink takes e out of its bucket.
func (sh *shard) unlink(st *store, e *entry) {
	if e.timeout == 0 {
		return
	}
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		b := st.bucketOf(e.expires)
		if e.next != nil {
			sh.buckets[b] = e.next
		} else {
			delete(sh.buckets, b)
		}
	}
	if e.next != nil {
		e.next.prev = e.prev
	}
	e.prev, e.next = nil, nil
}

// remove deletes e from the shard (not from any counter).
func (sh *shard) remove(st *store, e *entry) {
	sh.unlink(st, e)
	delete(sh.items, e.key)
	sh.active--
}

// lookup is the step every verb shares (PROTOCOL.md c, d): an absent or
// expired key is "not found" (an expired entry is removed and counted as
// timed out); a found item has its expiry slid to now + timeout when that
// moves it by at least one protocol second. moved reports that the slide
// moved the item to another expiry bucket. Caller holds sh.mu.
func (sh *shard) lookup(st *store, key []byte, now int64) (e *entry, moved bool) {
	e = sh.items[string(key)]
	if e == nil {
		return nil, false
	}
	if e.timeout == 0 {
		return e, false
	}
	if now > e.expires {
		sh.remove(st, e)
		sh.timedOut++
		return nil, false
	}
	exp := now + int64(e.timeout)*st.minute
	if exp-e.expires >= st.second {
		if st.bucketOf(exp) != st.bucketOf(e.expires) {
			sh.unlink(st, e)
			e.expires = exp
			sh.link(st, e)
			moved = true
		} else {
			e.expires = exp
		}
	}
	return e, moved
}

// locked fills r as a 423 for e.
func (r *result) setLocked(e *entry) {
	r.status = protocol.StatusLocked
	r.cookie = e.cookie
	r.lockAt = e.lockAt
}

// get implements c.1 (plain GET, acquire and release) in its order of
// evaluation.
// A 200's body is copied into dst (reused scratch) under the lock.
func (st *store) get(key []byte, mode getMode, c cookieArg, now int64, dst []byte) result {
	sh := st.shardFor(key)
	sh.mu.Lock()
	e, moved := sh.lookup(st, key, now)
	r, ch := getLocked(e, mode, c, now, dst)
	if st.wal != nil {
		r.lsn = st.logLocked(sh, key, e, ch, moved)
	}
	sh.mu.Unlock()
	return r
}

// getLocked is get on the looked-up item e (nil = not found).
func getLocked(e *entry, mode getMode, c cookieArg, now int64, dst []byte) (r result, ch change) {
	if e == nil { // row 1: headers not validated
		r.status = protocol.StatusNotFound
		return
	}
	if e.uninit { // row 2: exactly one request sees it, whatever the outcome
		e.uninit = false
		r.actionFlags = true
		ch = chMeta
	}
	if mode == getRelease {
		switch {
		case !c.valid: // row 3
			r.status = protocol.StatusBadRequest
		case !e.locked: // row 6
			r.status = protocol.StatusOK
		case c.value == e.cookie: // row 4
			e.locked = false
			r.status = protocol.StatusOK
			ch = chMeta
		default: // row 5
			r.setLocked(e)
		}
		return
	}
	if e.locked { // row 7
		r.setLocked(e)
		return
	}
	if mode == getAcquire { // row 8
		e.cookie++ // Int32 ++ without wrap handling, as REF
		e.locked = true
		e.lockAt = now
		r.cookie = e.cookie
		ch = chMeta
	}
	r.status = protocol.StatusOK // rows 8, 9
	r.timeout = e.timeout
	r.body = append(dst[:0], e.bodyBytes()...)
	return
}

// put implements c.2 rows 4–9; the caller has done rows 1–3 (timeout and
// ExtraFlags validation). body is copied; the caller keeps it.
func (st *store) put(key []byte, body []byte, timeout, flags int32, c cookieArg, now int64) result {
	sh := st.shardFor(key)
	sh.mu.Lock()
	e, moved := sh.lookup(st, key, now)
	r, e, ch := st.putLocked(sh, e, key, body, timeout, flags, c, now)
	if st.wal != nil {
		r.lsn = st.logLocked(sh, key, e, ch, moved)
	}
	sh.mu.Unlock()
	return r
}

// putLocked is put on the looked-up item e (nil = not found); it returns
// the item as it is afterwards.
func (st *store) putLocked(sh *shard, e *entry, key []byte, body []byte, timeout, flags int32, c cookieArg, now int64) (r result, _ *entry, ch change) {
	if e == nil { // row 9: LockCookie ignored
		e = &entry{key: string(key), timeout: timeout, cookie: 1,
			uninit: flags&protocol.ExtraFlagUninitialized != 0}
		e.setBody(body)
		e.expires = now + int64(timeout)*st.minute
		sh.items[e.key] = e
		sh.link(st, e)
		sh.active++
		sh.total++
		r.status = protocol.StatusOK
		return r, e, chState
	}
	switch {
	case flags&protocol.ExtraFlagUninitialized != 0: // row 4: no lock check, cookie not validated
		r.status = protocol.StatusOK
		return r, e, chNone
	case c.present && !c.valid: // row 5
		r.status = protocol.StatusBadRequest
		return r, e, chNone
	case e.locked && (!c.present || c.value != e.cookie): // row 6
		r.setLocked(e)
		return r, e, chNone
	}
	r.status = protocol.StatusOK
	if e.timeout == timeout { // row 7: counter, lock date, uninit bit kept
		e.setBody(body)
		e.locked = false
		return r, e, chState
	}
	// Row 8: the item is replaced by a new one (not counted as removed or
	// created, REF IgnoreCacheItemRemoved).
	sh.unlink(st, e)
	e.setBody(body)
	e.locked = false
	e.lockAt = 0
	e.timeout = timeout
	e.uninit = flags&protocol.ExtraFlagUninitialized != 0
	if c.present {
		e.cookie = c.value
	} else {
		e.cookie = -1
	}
	e.expires = now + int64(timeout)*st.minute
	sh.link(st, e)
	return r, e, chState
}

// remove implements c.3.
func (st *store) remove(key []byte, c cookieArg, now int64) (r result) {
	sh := st.shardFor(key)
	sh.mu.Lock()
	e, moved := sh.lookup(st, key, now)
	ch := chNone
	switch {
	case e == nil: // row 1
		r.status = protocol.StatusNotFound
	case c.present && !c.valid: // row 2
		r.status = protocol.StatusBadRequest
	case e.locked && (!c.present || c.value != e.cookie): // row 3
		r.setLocked(e)
	default: // row 4
		sh.remove(st, e)
		sh.abandoned++
		r.status = protocol.StatusOK
		ch = chDelete
	}
	if st.wal != nil {
		r.lsn = st.logLocked(sh, key, e, ch, moved)
	}
	sh.mu.Unlock()
	return
}

// head implements c.4: the lookup slides the expiry; locks are ignored.
func (st *store) head(key []byte, now int64) (r result) {
	sh := st.shardFor(key)
	sh.mu.Lock()
	e, moved := sh.lookup(st, key, now)
	if e == nil {
		r.status = protocol.StatusNotFound
	} else {
		r.status = protocol.StatusOK
	}
	if st.wal != nil {
		r.lsn = st.logLocked(sh, key, e, chNone, moved)
	}
	sh.mu.Unlock()
	return
}

// scavenge physically removes items whose bucket is wholly in the past.
// It touches only due buckets: a bucket's items all expire before the
// bucket ends, so every item in a due bucket is expired.
func (st *store) scavenge(now int64) int {
	due := st.bucketOf(now) // buckets < due have ended: their items expire before now
	n := 0
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		if due > sh.swept {
			if due-sh.swept <= int64(len(sh.buckets)) {
				for b := sh.swept; b < due; b++ {
					n += sh.sweepBucket(st, b)
				}
			} else {
				for b := range sh.buckets {
					if b < due {
						n += sh.sweepBucket(st, b)
					}
				}
			}
			sh.swept = due
		}
		sh.mu.Unlock()
	}
	return n
}

func (sh *shard) sweepBucket(st *store, b int64) int {
	e := sh.buckets[b]
	if e == nil {
		return 0
	}
	delete(sh.buckets, b)
	n := 0
	for e != nil {
		next := e.next
		e.prev, e.next = nil, nil
		delete(sh.items, e.key)
		sh.active--
		sh.timedOut++
		n++
		e = next
	}
	return n
}

// sessionCounts sums the session counters of every shard.
func (st *store) sessionCounts() (active, total, abandoned, timedOut int64) {
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		active += sh.active
		total += sh.total
		abandoned += sh.abandoned
		timedOut += sh.timedOut
		sh.mu.Unlock()
	}
	return
}
