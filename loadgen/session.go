package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of correctness violation.
const (
	// ViolationLostUpdate: a read returned a version older than a write that
	// was acknowledged (200 to the lock holder's PUT) before the read was sent.
	ViolationLostUpdate = "lost-update"
	// ViolationTornBody: a body that is not one this run wrote (bad magic,
	// length or checksum).
	ViolationTornBody = "torn-body"
	// ViolationForeignBody: a well-formed body of another session, or a
	// version of this session that was never written.
	ViolationForeignBody = "foreign-body"
	// ViolationSessionGone: 404 for a session while its timeout since the
	// last request the server answered had not yet run out.
	ViolationSessionGone = "session-gone-early"
	// ViolationDoubleLock: an acquire got 200 while another page held the
	// session's lock and had neither released it nor had it broken.
	ViolationDoubleLock = "double-lock"
)

// ViolationKinds lists every violation kind.
var ViolationKinds = []string{ViolationDoubleLock, ViolationForeignBody, ViolationLostUpdate, ViolationSessionGone, ViolationTornBody}

// Session body layout, little endian:
//
//	"ASPL" | format 1 | len(id) | id | version uint64 | payload length uint32 | payload | CRC-32C of all before
//
// The empty session the client writes with ExtraFlags:1 is the real
// serialization (PROTOCOL.md b.7): Int32 timeout, two false flags, 0xFF.
var bodyMagic = [4]byte{'A', 'S', 'P', 'L'}

const bodyFormat = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bodyOverhead is the size of a body with an empty payload for id.
func bodyOverhead(id string) int { return 4 + 1 + 1 + len(id) + 8 + 4 + 4 }

// fillCycle is the filler generator's period (x → x·29+11 mod 256, which
// visits every byte) written twice, so any 256-byte window of it starts at
// any value; fillPos[x] is where x first appears.
var fillCycle, fillPos = func() (c [512]byte, pos [256]uint16) {
	x := byte(0)
	for i := range 256 {
		c[i], c[i+256] = x, x
		pos[x] = uint16(i)
		x = x*29 + 11
	}
	return c, pos
}()

// appendBody returns a body of total size (at least the overhead) for
// session id at version, written in dst's space (from dst[:0]) when it fits.
func appendBody(dst []byte, id string, version uint64, size int) []byte {
	over := bodyOverhead(id)
	if size < over {
		size = over
	}
	b := dst[:0]
	if cap(b) < size {
		b = make([]byte, 0, size)
	}
	b = append(b, bodyMagic[:]...)
	b = append(b, bodyFormat, byte(len(id)))
	b = append(b, id...)
	b = binary.LittleEndian.AppendUint64(b, version)
	n := size - over
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	fill := b[len(b) : len(b)+n]
	// The filler is x, x·29+11, … (mod 256) from x = version·131+7: a full
	// period 256 generator, so it is a window of fillCycle, copied in chunks.
	at := int(fillPos[byte(version*131+7)])
	for i := 0; i < n; {
		c := copy(fill[i:], fillCycle[at:at+256])
		i += c
	}
	b = b[:len(b)+n]
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// emptySessionBody is what CreateUninitializedItem sends: an empty
// serialized session with the timeout in minutes.
func emptySessionBody(timeout int32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(timeout))
	return append(b, 0, 0, 0xFF)
}

var errTorn = errors.New("torn")

// decodeBody parses a body. empty reports the uninitialized-session body.
func decodeBody(b []byte, timeout int32) (id string, version uint64, empty bool, err error) {
	if len(b) == 7 && string(b) == string(emptySessionBody(timeout)) {
		return "", 0, true, nil
	}
	if len(b) < 4+1+1+8+4+4 || [4]byte(b[:4]) != bodyMagic || b[4] != bodyFormat {
		return "", 0, false, fmt.Errorf("%w: %d bytes without the loadgen header", errTorn, len(b))
	}
	idLen := int(b[5])
	if len(b) < bodyOverhead("")+idLen {
		return "", 0, false, fmt.Errorf("%w: %d bytes, too short for its header", errTorn, len(b))
	}
	id = string(b[6 : 6+idLen])
	p := 6 + idLen
	version = binary.LittleEndian.Uint64(b[p:])
	n := int(binary.LittleEndian.Uint32(b[p+8:]))
	if len(b) != bodyOverhead(id)+n {
		return id, version, false, fmt.Errorf("%w: %d bytes, header says %d", errTorn, len(b), bodyOverhead(id)+n)
	}
	sum := binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(b[:len(b)-4], castagnoli) != sum {
		return id, version, false, fmt.Errorf("%w: checksum mismatch", errTorn)
	}
	return id, version, false, nil
}

// state is what the run knows about all sessions, and the violation counts.
type state struct {
	seq        atomic.Int64
	timeout    int32         // session timeout, minutes
	minute     time.Duration // protocol minute
	faultEpoch atomic.Uint64 // bumped by faults that may lose sessions (bumpEpoch)
	onLost     func()        // a session we had written was 404 after a fault (may be nil)

	epochMu sync.Mutex // serializes bumpEpoch
	// epochTimes[i] is when faultEpoch became i+1. Replaced, never changed
	// in place, so that epochAt (every touch) reads it without a lock.
	epochTimes atomic.Pointer[[]time.Time]

	checks     atomic.Int64
	skipped    atomic.Int64
	mu         sync.Mutex
	violations map[string]int64
	examples   []string
}

const maxExamples = 10

func newState(timeout int32, minute time.Duration) *state {
	return &state{timeout: timeout, minute: minute, violations: map[string]int64{}}
}

func (st *state) newSession(id, target string, partition int) *session {
	return &session{seq: st.seq.Add(1), id: id, target: target, partition: partition}
}

func (st *state) violate(kind string, s *session, format string, args ...any) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.violations[kind]++
	if len(st.examples) < maxExamples {
		st.examples = append(st.examples, fmt.Sprintf("%s: session %s: %s", kind, s.id, fmt.Sprintf(format, args...)))
	}
}

// snapshotViolations returns the counts and examples so far.
func (st *state) snapshotViolations() (map[string]int64, []string, int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	m := make(map[string]int64, len(st.violations))
	var total int64
	for k, v := range st.violations {
		m[k] = v
		total += v
	}
	ex := append([]string(nil), st.examples...)
	sort.Strings(ex)
	return m, ex, total
}

// session is the client side's record of one session id. Its mutex guards
// the fields below; it is held only for bookkeeping, never across a request.
type session struct {
	seq       int64
	id        string
	target    string // request target (app prefix + encoded id)
	partition int
	app       int

	mu          sync.Mutex
	nextVersion uint64 // versions allocated to writes so far
	floor       uint64 // no read may return less (see readCheck)
	exists      bool   // created by us and not seen gone since
	lastTouch   time.Time
	touchFault  uint64 // fault epoch when lastTouch was sent
	disrupt     uint64 // bumped by events after which old floors do not hold
	inflight    int    // removes and stale writes in flight
	writing     int    // holders' PUTs in flight whose lock was not broken since they began
	holder      bool   // some page holds the lock, as far as we know
	holderPage  int64
	breakEpoch  uint64 // bumped by each forced break
	size        int    // body size of the next write (0 = not sampled yet)
}

// snap is what a request remembers from when it was sent.
type snap struct {
	floor   uint64
	disrupt uint64
	fault   uint64
	quiet   bool // nothing that may reorder content was in flight
	sent    time.Time
	// What was known, when the request was sent, about the session's
	// existence: only replies received before the send prove that the
	// server held the session before it handled this request.
	exists     bool
	lastTouch  time.Time
	touchFault uint64
}

func (st *state) snapshot(s *session, sent time.Time) snap {
	s.mu.Lock()
	defer s.mu.Unlock()
	return snap{floor: s.floor, disrupt: s.disrupt, fault: st.faultEpoch.Load(), quiet: s.inflight == 0, sent: sent,
		exists: s.exists, lastTouch: s.lastTouch, touchFault: s.touchFault}
}

// stable reports whether nothing happened to s during the request.
func (st *state) stable(s *session, sn snap) bool {
	return sn.quiet && s.inflight == 0 && s.disrupt == sn.disrupt && st.faultEpoch.Load() == sn.fault
}

// bumpEpoch starts a new fault epoch and remembers when.
func (st *state) bumpEpoch() {
	st.epochMu.Lock()
	var times []time.Time
	if old := st.epochTimes.Load(); old != nil {
		times = append(times, *old...)
	}
	times = append(times, time.Now())
	st.epochTimes.Store(&times)
	st.faultEpoch.Add(1)
	st.epochMu.Unlock()
}

// epochAt returns the fault epoch in force at t.
func (st *state) epochAt(t time.Time) uint64 {
	p := st.epochTimes.Load()
	if p == nil {
		return 0
	}
	times := *p
	n := len(times)
	for n > 0 && times[n-1].After(t) {
		n--
	}
	return uint64(n)
}

// touched records that the server answered a request sent at sent (200 or
// 423), which slides the session's expiry. The touch belongs to the fault
// epoch in force when the request was sent, not when its reply is handled: a
// reply from the server before a restart, read after the restart began, must
// not make a later 404 look like a session lost before its time.
func (s *session) touched(sent time.Time, st *state) {
	epoch := st.epochAt(sent)
	s.mu.Lock()
	if sent.After(s.lastTouch) {
		s.lastTouch = sent
		s.touchFault = epoch
	}
	s.mu.Unlock()
}

// readCheck checks a 200 body read by a request snapshotted as sn.
func (st *state) readCheck(s *session, sn snap, body []byte) {
	st.checks.Add(1)
	id, v, empty, err := decodeBody(body, st.timeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exists = true
	switch {
	case err != nil:
		st.violate(ViolationTornBody, s, "%v", err)
		return
	case empty:
		v = 0
	case id != s.id:
		st.violate(ViolationForeignBody, s, "body belongs to session %q", id)
		return
	case v > s.nextVersion:
		st.violate(ViolationForeignBody, s, "version %d was never written (last allocated %d)", v, s.nextVersion)
		return
	}
	if !st.stable(s, sn) {
		st.skipped.Add(1)
		return
	}
	if v < sn.floor {
		st.violate(ViolationLostUpdate, s, "read version %d after version %d was acknowledged", v, sn.floor)
	}
}

// gone handles a 404 for a request snapshotted as sn and answered at recv.
func (st *state) gone(s *session, sn snap, recv time.Time) {
	st.checks.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn.exists && s.exists && st.stable(s, sn) && st.timeout > 0 && !sn.lastTouch.IsZero() && sn.touchFault == st.faultEpoch.Load() {
		life := time.Duration(st.timeout) * st.minute
		// The server slides expiry when it handles a request, which is after
		// we sent it; allow one protocol second (the sliding re-arm step)
		// and a little scheduling slack.
		slack := st.minute/60 + 5*time.Millisecond
		if recv.Add(slack).Before(sn.lastTouch.Add(life)) {
			st.violate(ViolationSessionGone, s, "404 %s after the last answered request; timeout is %s",
				recv.Sub(sn.lastTouch).Round(time.Millisecond), life)
		}
	}
	if sn.exists && s.exists && s.touchFault != st.faultEpoch.Load() && st.onLost != nil {
		st.onLost() // last answered before a fault, gone after it
	}
	s.exists = false
	s.holder = false
	s.floor = 0
	s.disrupt++
}

// acquired handles a 200 to an exclusive acquire by page.
func (st *state) acquired(s *session, sn snap, page int64) uint64 {
	st.checks.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder && st.stable(s, sn) {
		st.violate(ViolationDoubleLock, s, "page %d got the lock while page %d held it", page, s.holderPage)
	}
	s.holder = true
	s.holderPage = page
	return s.breakEpoch
}

// releasing records that the holder sends its release, PUT or DELETE: from
// now on the lock may be free.
func (s *session) releasing(page int64) {
	s.mu.Lock()
	if s.holder && s.holderPage == page {
		s.holder = false
	}
	s.mu.Unlock()
}

// breaking records a forced release sent by another page. The holder's PUT
// may already be on its way: if the break reaches the server first and a new
// holder writes, that PUT still lands (a PUT on an unlocked item succeeds
// whatever its cookie, PROTOCOL.md c.2 #7) and puts an older version back.
// So the writes in flight become stale writes from now on.
func (s *session) breaking() {
	s.mu.Lock()
	s.holder = false
	s.breakEpoch++
	s.disrupt++
	s.inflight += s.writing
	s.writing = 0
	s.mu.Unlock()
}

// write is a PUT in progress, from beginWrite to endWrite.
type write struct {
	version uint64
	epoch   uint64 // breakEpoch when the page acquired
	// clean: nothing that may reorder content (a stale write, a DELETE) was
	// in flight when the write began.
	clean   bool
	disrupt uint64 // s.disrupt when the write began
}

// beginWrite allocates the version of a PUT by a page that acquired at
// epoch. A writer whose lock was broken since is stale: its PUT may land
// after a newer one, so it is tracked as in flight. A writer whose lock is
// broken while its PUT is in flight becomes stale then (see breaking).
func (s *session) beginWrite(epoch uint64, size int) write {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextVersion++
	w := write{version: s.nextVersion, epoch: epoch, clean: s.inflight == 0}
	if epoch != s.breakEpoch {
		s.inflight++
		s.disrupt++
	} else {
		s.writing++
	}
	w.disrupt = s.disrupt
	return w
}

// endWrite records the outcome of a PUT: stale when the lock was broken
// before or during the write. An acknowledged write raises the floor only
// when nothing that may reorder content was in flight at any time during it:
// a stale write sent before it may still land after it (two connections,
// no order between them), and put an older version back.
func (s *session) endWrite(w write, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stale := w.epoch != s.breakEpoch
	if stale {
		s.inflight--
		s.disrupt++
	} else {
		s.writing--
	}
	if !ok {
		return
	}
	s.exists = true
	switch {
	case stale:
		s.floor = 0 // the stale write may have overwritten newer data
	case !w.clean || s.disrupt != w.disrupt:
		// Raising the floor could judge a read against a version that a
		// late stale write has already replaced.
	case w.version > s.floor:
		s.floor = w.version
	}
}

// beginRemove and endRemove bracket a DELETE.
func (s *session) beginRemove() {
	s.mu.Lock()
	s.inflight++
	s.disrupt++
	s.mu.Unlock()
}

func (s *session) endRemove(ok bool) {
	s.mu.Lock()
	s.inflight--
	s.disrupt++
	if ok {
		s.exists = false
		s.floor = 0
		s.holder = false
	}
	s.mu.Unlock()
}

// created records a successful CreateUninitializedItem (or an existing item).
func (s *session) created() {
	s.mu.Lock()
	s.exists = true
	s.mu.Unlock()
}

// nextSize returns the body size of the next write: first for the first
// write of the session, the previous size plus growth after that.
func (s *session) nextSize(first, growth int, max int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.size == 0 {
		s.size = max1(first)
	} else {
		s.size += growth
	}
	if max > 0 && int64(s.size) > max {
		s.size = int(max)
	}
	return s.size
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}
