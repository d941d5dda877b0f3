package stateserver

// Persistence (Config.DataDir): an append-only log of mutation records plus
// periodic snapshots, so that sessions survive a restart or a crash.
//
// Files in the data directory:
//
//	LOCK                  held (flock) by the running server
//	snapshot              every live item at one moment, and the first log segment to replay after it
//	snapshot.tmp          a snapshot being written (removed on recovery)
//	log-0000000000000007  log segments, replayed in order after the snapshot
//
// Records carry resulting state, not operations: "item K now has this body,
// timeout, absolute expiry, lock state, cookie counter and uninitialized
// bit", "K's lock state is now …" (no body), "K was deleted", "K now
// expires at …". Replaying them is idempotent, which is what lets a
// snapshot be taken while requests go on: a record logged after the
// snapshot began may or may not be in the snapshot already, and applying it
// again gives the same item. Times are stored as wall-clock nanoseconds
// (Unix), so a restart keeps absolute expiries and lock dates; downtime
// counts against sliding windows, as it would have with the server up.
//
// Frame: u32 payload length, u32 CRC-32C of the payload, payload. A torn
// or corrupt frame ends the log: recovery truncates the last segment there.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Record types.
const (
	recState  = 1 // key, expiry, lock, timeout, cookie, flags, [body]
	recDelete = 2 // key
	recTouch  = 3 // key, expiry
	recEnd    = 4 // snapshot trailer: item count
)

// Record flags (recState).
const (
	flagLocked  = 1
	flagUninit  = 2
	flagHasBody = 4
)

const (
	frameHeader  = 8
	fileHeader   = 16
	logMagic     = "ASPLOG01"
	snapMagic    = "ASPSNAP1"
	snapName     = "snapshot"
	snapTmpName  = "snapshot.tmp"
	lockName     = "LOCK"
	logPrefix    = "log-"
	maxRecord    = MaxItemBytesLimit + 1<<20 // largest frame payload recovery accepts
	maxKeptLog   = 4 << 20                   // log buffers larger than this are dropped after a write
	maxBacklog   = 64 << 20                  // FsyncInterval/Never: replies wait once this much is unwritten
	snapChunkCap = 8 << 20                   // snapshot encode buffer kept between shards
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errWALClosed is the sticky error after the log was closed.
var errWALClosed = errors.New("stateserver: persistence closed")

// wal is the persistent side of a store: the log writer (group commit),
// the snapshotter and their counters.
type wal struct {
	fs        walFS
	dir       string
	policy    FsyncPolicy
	interval  time.Duration
	snapAfter int64
	wallBase  int64        // wall clock (Unix ns) at the origin of the server clock
	now       func() int64 // the server clock
	st        *store

	// mu guards the append buffer. Appenders hold a shard lock and take mu
	// (lock order shard → mu); nothing holding mu takes a shard lock.
	mu        sync.Mutex
	buf       []byte
	spare     []byte
	appended  int64 // log position (bytes appended since start) after buf
	rotateReq bool
	kick      chan struct{} // wakes the flusher (capacity 1)

	// Owned by the flusher goroutine (and recovery before it starts).
	f   walFile // the current segment; nil after a failed rotation
	seq uint64

	// Durability, for waiting replies.
	written atomic.Int64 // log position handed to the OS
	synced  atomic.Int64 // log position on disk
	dmu     sync.Mutex
	dcond   sync.Cond
	err     error // sticky: the log failed or closed (under dmu)

	snapReq   chan struct{} // flusher → snapshotter (capacity 1)
	rotated   chan uint64   // flusher → snapshotter: the new segment (0 = failed)
	quit      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	lock      *os.File

	fsyncs        atomic.Int64
	logBytes      atomic.Int64 // bytes written to log files since start
	sinceSnap     atomic.Int64 // log bytes not covered by the last snapshot
	snapshotting  atomic.Bool
	snapshots     atomic.Int64
	lastSnapAt    atomic.Int64 // wall clock (Unix ns) of the last snapshot, 0 = none
	lastSnapSize  atomic.Int64
	lastSnapDur   atomic.Int64
	lastSnapItems atomic.Int64
	rec           RecoveryStats
}

// RecoveryStats describes what New recovered from the data directory.
type RecoveryStats struct {
	Sessions       int64         // items live after recovery
	Expired        int64         // items dropped because they expired while the server was down
	SnapshotItems  int64         // items read from the snapshot
	LogRecords     int64         // log records replayed
	LogSegments    int           // log segments replayed
	TornBytes      int64         // bytes cut from the end of the last segment (a torn or corrupt tail)
	Duration       time.Duration // time New spent recovering
	SnapshotLoaded bool          // a snapshot was found and loaded
}

// openWAL locks dir, recovers its contents into st and starts the log
// writer and snapshotter.
func openWAL(cfg Config, st *store, base time.Time, now func() int64) (*wal, error) {
	start := time.Now()
	w := &wal{
		fs: cfg.fs, dir: cfg.DataDir, policy: cfg.Fsync, interval: cfg.FsyncInterval, snapAfter: cfg.SnapshotLogBytes,
		wallBase: base.UnixNano(), now: now, st: st,
		kick: make(chan struct{}, 1), snapReq: make(chan struct{}, 1), rotated: make(chan uint64, 1),
		quit: make(chan struct{}),
	}
	w.dcond.L = &w.dmu
	if w.fs == nil {
		w.fs = osFS{}
	}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return nil, fmt.Errorf("stateserver: data dir %s: %w (create it or choose another --data-dir)", w.dir, err)
	}
	lk, err := lockDir(filepath.Join(w.dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("stateserver: data dir %s is in use by another server (%v); stop it or choose another --data-dir", w.dir, err)
	}
	w.lock = lk
	if err := w.recover(); err != nil {
		unlockDir(lk)
		return nil, err
	}
	if err := w.openSegment(w.seq); err != nil {
		unlockDir(lk)
		return nil, err
	}
	w.rec.Duration = time.Since(start)
	w.wg.Add(2)
	go w.flusher()
	go w.snapshotter()
	return w, nil
}

// --- appending (under a shard lock) ---

// beginFrame (caller holds w.mu) reserves a frame
// header and writes the type and key; finishFrame seals the frame, releases
// w.mu and wakes the flusher.
func (w *wal) beginFrame(typ byte, key []byte) int {
	start := len(w.buf)
	w.buf = append(w.buf, 0, 0, 0, 0, 0, 0, 0, 0, typ)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(key)))
	w.buf = append(w.buf, key...)
	return start
}

func (w *wal) finishFrame(start int) int64 {
	payload := w.buf[start+frameHeader:]
	binary.LittleEndian.PutUint32(w.buf[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(w.buf[start+4:], crc32.Checksum(payload, crcTable))
	w.appended += int64(len(w.buf) - start)
	lsn := w.appended
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return lsn
}

// appendState logs e's state (with its body when withBody) and returns the
// log position after the record.
func (w *wal) appendState(key []byte, e *entry, withBody bool) int64 {
	w.mu.Lock()
	start := w.beginFrame(recState, key)
	w.buf = appendEntryState(w.buf, w.wallBase, e, withBody)
	return w.finishFrame(start)
}

// appendEntryState appends the fields of a recState payload after the key.
func appendEntryState(b []byte, wallBase int64, e *entry, withBody bool) []byte {
	var exp int64
	if e.timeout != 0 {
		exp = wallBase + e.expires
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(exp))
	b = binary.LittleEndian.AppendUint64(b, uint64(wallBase+e.lockAt))
	b = binary.LittleEndian.AppendUint32(b, uint32(e.timeout))
	b = binary.LittleEndian.AppendUint32(b, uint32(e.cookie))
	var fl byte
	if e.locked {
		fl |= flagLocked
	}
	if e.uninit {
		fl |= flagUninit
	}
	if withBody {
		fl |= flagHasBody
	}
	b = append(b, fl)
	if withBody {
		body := e.bodyBytes()
		b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
		b = append(b, body...)
	}
	return b
}

// appendDelete logs the removal of key.
func (w *wal) appendDelete(key []byte) int64 {
	w.mu.Lock()
	return w.finishFrame(w.beginFrame(recDelete, key))
}

// appendTouch logs a slid expiry of e.
func (w *wal) appendTouch(key []byte, e *entry) int64 {
	w.mu.Lock()
	start := w.beginFrame(recTouch, key)
	w.buf = binary.LittleEndian.AppendUint64(w.buf, uint64(w.wallBase+e.expires))
	return w.finishFrame(start)
}

// wait blocks until a reply that depends on log position lsn may be sent:
// under FsyncAlways until lsn is on disk; otherwise until the unwritten
// backlog is under maxBacklog. It returns an error only under FsyncAlways,
// when the log failed or closed before lsn was durable: the reply must not
// be sent. With the other policies a failed log leaves the server serving
// from memory (the failure shows in Stats.PersistError).
func (w *wal) wait(lsn int64) error {
	if w.policy == FsyncAlways {
		if w.synced.Load() >= lsn {
			return nil
		}
		w.dmu.Lock()
		for w.synced.Load() < lsn && w.err == nil {
			w.dcond.Wait()
		}
		err := w.err
		w.dmu.Unlock()
		if w.synced.Load() >= lsn {
			return nil
		}
		return err
	}
	target := lsn - maxBacklog
	if w.written.Load() >= target {
		return nil
	}
	w.dmu.Lock()
	for w.written.Load() < target && w.err == nil {
		w.dcond.Wait()
	}
	w.dmu.Unlock()
	return nil
}

// fail records the first error of the log and wakes every waiter.
func (w *wal) fail(err error) {
	w.dmu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.dcond.Broadcast()
	w.dmu.Unlock()
}

// failed returns the sticky error, nil while the log works.
func (w *wal) failed() error {
	w.dmu.Lock()
	defer w.dmu.Unlock()
	return w.err
}

// publish advances the durable positions and wakes waiters.
func (w *wal) publish(written, synced int64) {
	w.dmu.Lock()
	if written > w.written.Load() {
		w.written.Store(written)
	}
	if synced > w.synced.Load() {
		w.synced.Store(synced)
	}
	w.dcond.Broadcast()
	w.dmu.Unlock()
}

// --- the log writer ---

// flusher writes appended records to the current segment: one write (and
// under FsyncAlways one fsync) per batch of everything appended meanwhile,
// so concurrent writers share an fsync (group commit). It also rotates
// segments for the snapshotter and starts snapshots.
func (w *wal) flusher() {
	defer w.wg.Done()
	var tick <-chan time.Time
	if w.policy == FsyncInterval {
		t := time.NewTicker(w.interval)
		defer t.Stop()
		tick = t.C
	}
	var written, synced int64
	for {
		quit, ticked := false, false
		select {
		case <-w.kick:
		case <-tick:
			ticked = true
		case <-w.quit:
			quit = true
		}
		w.mu.Lock()
		data := w.buf
		w.buf, w.spare = w.spare[:0], nil
		end := w.appended
		rot := w.rotateReq
		w.rotateReq = false
		w.mu.Unlock()

		ok := w.failed() == nil
		if len(data) > 0 && ok {
			if _, err := w.f.Write(data); err != nil {
				w.fail(fmt.Errorf("stateserver: writing log %s: %w", w.f.Name(), err))
				ok = false
			} else {
				written = end
				w.logBytes.Add(int64(len(data)))
				w.sinceSnap.Add(int64(len(data)))
			}
		}
		if cap(data) <= maxKeptLog {
			w.mu.Lock()
			w.spare = data[:0]
			w.mu.Unlock()
		}
		// Always: every batch. Interval: on the tick. Never: only when a
		// segment is finished (rotation, close).
		if ok && written > synced && (w.policy == FsyncAlways || ticked || quit || rot) {
			if err := w.sync(); err != nil {
				ok = false
			} else {
				synced = written
			}
		}
		w.publish(written, synced)
		if rot {
			var seq uint64
			if ok {
				if err := w.rotate(); err != nil {
					w.fail(err)
				} else {
					seq = w.seq
				}
			}
			w.rotated <- seq
		}
		if quit {
			w.fail(errWALClosed)
			if w.f != nil {
				// What the segment holds was fsynced above, or the failure
				// was recorded: a close error changes neither.
				_ = w.f.Close()
			}
			return
		}
		if ok && !w.snapshotting.Load() {
			if n := w.sinceSnap.Load(); n >= w.snapAfter && n >= w.lastSnapSize.Load() {
				w.snapshotting.Store(true)
				w.snapReq <- struct{}{}
			}
		}
	}
}

// sync fsyncs the current segment.
func (w *wal) sync() error {
	if err := w.f.Sync(); err != nil {
		err = fmt.Errorf("stateserver: fsync of log %s: %w", w.f.Name(), err)
		w.fail(err)
		return err
	}
	w.fsyncs.Add(1)
	return nil
}

func segName(seq uint64) string { return fmt.Sprintf("%s%016d", logPrefix, seq) }

// openSegment creates log segment seq (header written and synced) as the
// current one.
func (w *wal) openSegment(seq uint64) error {
	path := filepath.Join(w.dir, segName(seq))
	f, err := w.fs.Create(path, os.O_EXCL)
	if err != nil {
		return fmt.Errorf("stateserver: creating log %s: %w", path, err)
	}
	hdr := make([]byte, 0, fileHeader)
	hdr = append(hdr, logMagic...)
	hdr = binary.LittleEndian.AppendUint64(hdr, seq)
	// A segment whose header is not on disk is not a log: recovery drops it
	// with every record written after the header. So each step must succeed
	// before the segment takes a record.
	_, err = f.Write(hdr)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = w.fs.SyncDir(w.dir)
	}
	if err != nil {
		_ = f.Close() // the failure being returned is what matters
		return fmt.Errorf("stateserver: creating log %s: %w", path, err)
	}
	w.f, w.seq = f, seq
	return nil
}

// rotate closes the current segment (synced by the caller) and starts the
// next one.
func (w *wal) rotate() error {
	f := w.f
	w.f = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("stateserver: closing log %s: %w", f.Name(), err)
	}
	w.sinceSnap.Store(0)
	return w.openSegment(w.seq + 1)
}

// close stops the snapshotter and the flusher (which writes and fsyncs
// what is left) and releases the directory. Call it once no request can
// append any more.
func (w *wal) close() {
	w.closeOnce.Do(func() {
		close(w.quit)
		w.wg.Wait()
		unlockDir(w.lock)
	})
}

// --- snapshots ---

// snapshotter writes a snapshot whenever the flusher asks for one.
func (w *wal) snapshotter() {
	defer w.wg.Done()
	for {
		select {
		case <-w.quit:
			return
		case <-w.snapReq:
			if err := w.snapshot(); err != nil && err != errWALClosed {
				w.fail(err)
			}
			w.snapshotting.Store(false)
		}
	}
}

// snapshot rotates the log and writes every live item to a new snapshot
// that names the fresh segment as the first to replay. Items are read one
// shard at a time under the shard lock; a mutation logged meanwhile is in
// the fresh segment and replays idempotently. The snapshot is written to a
// temporary file, fsynced and renamed; only then are older segments removed.
func (w *wal) snapshot() error {
	start := time.Now()
	w.mu.Lock()
	w.rotateReq = true
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	var seq uint64
	select {
	case seq = <-w.rotated:
	case <-w.quit:
		return errWALClosed
	}
	if seq == 0 {
		return nil // the flusher recorded why
	}
	tmp := filepath.Join(w.dir, snapTmpName)
	f, err := w.fs.Create(tmp, os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("stateserver: creating snapshot %s: %w", tmp, err)
	}
	n, size, err := w.writeSnapshot(f, seq)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.fs.Rename(tmp, filepath.Join(w.dir, snapName))
	}
	if err == nil {
		err = w.fs.SyncDir(w.dir)
	}
	if err != nil {
		// Best effort: the failure is returned, and recovery removes a
		// snapshot.tmp left behind.
		_ = w.fs.Remove(tmp)
		if err == errWALClosed {
			return err
		}
		return fmt.Errorf("stateserver: writing snapshot %s: %w", tmp, err)
	}
	w.fsyncs.Add(1)
	// The snapshot covers the older segments. One not listed or not removed
	// here costs only disk space: the next snapshot, or recovery, removes it.
	segs, _ := listSegments(w.dir)
	for _, s := range segs {
		if s < seq {
			_ = w.fs.Remove(filepath.Join(w.dir, segName(s)))
		}
	}
	w.snapshots.Add(1)
	w.lastSnapAt.Store(time.Now().UnixNano())
	w.lastSnapSize.Store(size)
	w.lastSnapDur.Store(int64(time.Since(start)))
	w.lastSnapItems.Store(n)
	return nil
}

// writeSnapshot writes the header, every live item and the trailer.
func (w *wal) writeSnapshot(f io.Writer, seq uint64) (items, size int64, err error) {
	var b []byte
	b = append(b, snapMagic...)
	b = binary.LittleEndian.AppendUint64(b, seq)
	st := w.st
	for i := range st.shards {
		select {
		case <-w.quit:
			return 0, 0, errWALClosed
		default:
		}
		sh := &st.shards[i]
		sh.mu.Lock()
		now := w.now()
		for k, e := range sh.items {
			if e.timeout != 0 && now > e.expires {
				continue // expired, not yet scavenged
			}
			start := len(b)
			b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, recState)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(k)))
			b = append(b, k...)
			b = appendEntryState(b, w.wallBase, e, true)
			sealFrame(b[start:])
			items++
		}
		sh.mu.Unlock()
		if len(b) > 0 {
			if _, err := f.Write(b); err != nil {
				return 0, 0, err
			}
			size += int64(len(b))
		}
		if cap(b) > snapChunkCap {
			b = nil
		} else {
			b = b[:0]
		}
	}
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, recEnd)
	b = binary.LittleEndian.AppendUint64(b, uint64(items))
	sealFrame(b[start:])
	if _, err := f.Write(b); err != nil {
		return 0, 0, err
	}
	return items, size + int64(len(b)), nil
}

// sealFrame fills in the header of the frame that is all of b.
func sealFrame(b []byte) {
	payload := b[frameHeader:]
	binary.LittleEndian.PutUint32(b, uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(payload, crcTable))
}

// --- recovery ---

// record is one decoded frame payload; key and body alias the read buffer.
type record struct {
	typ     byte
	key     []byte
	exp     int64 // wall clock, 0 = none
	lockAt  int64 // wall clock
	timeout int32
	cookie  int32
	flags   byte
	body    []byte
	count   uint64 // recEnd
}

var errBadRecord = errors.New("malformed record")

func decodeRecord(p []byte, r *record) error {
	if len(p) < 1 {
		return errBadRecord
	}
	r.typ, p = p[0], p[1:]
	if r.typ == recEnd {
		if len(p) != 8 {
			return errBadRecord
		}
		r.count = binary.LittleEndian.Uint64(p)
		return nil
	}
	if len(p) < 4 {
		return errBadRecord
	}
	kl := binary.LittleEndian.Uint32(p)
	p = p[4:]
	if uint64(kl) > uint64(len(p)) {
		return errBadRecord
	}
	r.key, p = p[:kl], p[kl:]
	switch r.typ {
	case recDelete:
		if len(p) != 0 {
			return errBadRecord
		}
	case recTouch:
		if len(p) != 8 {
			return errBadRecord
		}
		r.exp = int64(binary.LittleEndian.Uint64(p))
	case recState:
		if len(p) < 25 {
			return errBadRecord
		}
		r.exp = int64(binary.LittleEndian.Uint64(p))
		r.lockAt = int64(binary.LittleEndian.Uint64(p[8:]))
		r.timeout = int32(binary.LittleEndian.Uint32(p[16:]))
		r.cookie = int32(binary.LittleEndian.Uint32(p[20:]))
		r.flags = p[24]
		p = p[25:]
		r.body = nil
		if r.flags&flagHasBody != 0 {
			if len(p) < 4 {
				return errBadRecord
			}
			bl := binary.LittleEndian.Uint32(p)
			if uint64(bl) != uint64(len(p)-4) {
				return errBadRecord
			}
			r.body = p[4:]
		} else if len(p) != 0 {
			return errBadRecord
		}
	default:
		return errBadRecord
	}
	return nil
}

// frameReader reads frames from a file, tracking the offset of the end of
// the last good frame.
type frameReader struct {
	br  *bufio.Reader
	off int64
	buf []byte
}

// next reads one frame; io.EOF at a clean end, another error for a torn or
// corrupt frame (good stays at the last good frame's end).
func (fr *frameReader) next(r *record) error {
	var h [frameHeader]byte
	if n, err := io.ReadFull(fr.br, h[:]); err != nil {
		if err == io.EOF && n == 0 {
			return io.EOF
		}
		return fmt.Errorf("torn frame header")
	}
	n := binary.LittleEndian.Uint32(h[:])
	if n == 0 || n > maxRecord {
		return fmt.Errorf("frame length %d out of range", n)
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	p := fr.buf[:n]
	if _, err := io.ReadFull(fr.br, p); err != nil {
		return fmt.Errorf("torn frame (%d-byte payload)", n)
	}
	if crc32.Checksum(p, crcTable) != binary.LittleEndian.Uint32(h[4:]) {
		return fmt.Errorf("CRC mismatch")
	}
	if err := decodeRecord(p, r); err != nil {
		return err
	}
	fr.off += frameHeader + int64(n)
	if cap(fr.buf) > maxKeptLog {
		fr.buf = nil
	}
	return nil
}

// recover loads the snapshot, replays the log segments after it (cutting a
// torn tail off the last one), drops expired items and links the rest into
// their expiry buckets. It sets w.seq to the segment to create next.
func (w *wal) recover() error {
	if err := w.fs.Remove(filepath.Join(w.dir, snapTmpName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stateserver: removing an unfinished snapshot: %w (the data directory must be writable)", err)
	}
	var first uint64 = 1
	if f, err := os.Open(filepath.Join(w.dir, snapName)); err == nil {
		seq, err := w.loadSnapshot(f)
		_ = f.Close() // read only
		if err != nil {
			return fmt.Errorf("stateserver: snapshot %s is corrupt: %v; move it away to start from the log alone (sessions in it are lost)", filepath.Join(w.dir, snapName), err)
		}
		first = seq
		w.rec.SnapshotLoaded = true
		if fi, err := os.Stat(filepath.Join(w.dir, snapName)); err == nil {
			w.lastSnapSize.Store(fi.Size())
			w.lastSnapAt.Store(fi.ModTime().UnixNano())
		}
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("stateserver: reading snapshot: %w", err)
	}
	segs, err := listSegments(w.dir)
	if err != nil {
		return fmt.Errorf("stateserver: listing %s: %w", w.dir, err)
	}
	var replay []uint64
	for _, s := range segs {
		if s < first {
			// Covered by the snapshot, never replayed: left behind, it only
			// costs disk space until the next snapshot or recovery.
			_ = w.fs.Remove(filepath.Join(w.dir, segName(s)))
			continue
		}
		replay = append(replay, s)
	}
	if len(replay) > 0 && !w.rec.SnapshotLoaded {
		first = replay[0]
	}
	for i, s := range replay {
		if s != first+uint64(i) {
			return fmt.Errorf("stateserver: log segment %s is missing (found %s); the log cannot be replayed past the gap",
				segName(first+uint64(i)), segName(s))
		}
		removed, err := w.replaySegment(s, i == len(replay)-1)
		if err != nil {
			return err
		}
		w.seq = s + 1
		if removed {
			w.seq = s // a segment whose header never made it to disk: start it again
		} else {
			w.rec.LogSegments++
		}
	}
	if len(replay) == 0 {
		w.seq = first
	}
	w.finishRecovery()
	return nil
}

// loadSnapshot applies a snapshot and returns its first log segment.
func (w *wal) loadSnapshot(f *os.File) (uint64, error) {
	fr := &frameReader{br: bufio.NewReaderSize(f, 1<<20)}
	var h [fileHeader]byte
	if _, err := io.ReadFull(fr.br, h[:]); err != nil || string(h[:8]) != snapMagic {
		return 0, fmt.Errorf("bad header")
	}
	seq := binary.LittleEndian.Uint64(h[8:])
	var r record
	var n uint64
	for {
		if err := fr.next(&r); err != nil {
			if err == io.EOF {
				return 0, fmt.Errorf("no trailer after %d items (incomplete)", n)
			}
			return 0, fmt.Errorf("item %d: %v", n+1, err)
		}
		if r.typ == recEnd {
			if r.count != n {
				return 0, fmt.Errorf("trailer counts %d items, read %d", r.count, n)
			}
			w.rec.SnapshotItems = int64(n)
			return seq, nil
		}
		if r.typ != recState || r.flags&flagHasBody == 0 {
			return 0, fmt.Errorf("item %d: unexpected record type %d", n+1, r.typ)
		}
		w.apply(&r)
		n++
	}
}

// replaySegment applies one log segment; in the last one a bad frame is a
// torn tail: the file is truncated there (removed reports a last segment
// without a valid header, which is deleted).
func (w *wal) replaySegment(seq uint64, last bool) (removed bool, _ error) {
	path := filepath.Join(w.dir, segName(seq))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("stateserver: opening log %s: %w", path, err)
	}
	defer f.Close() // after the truncation below was fsynced, if there was one
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stateserver: %s: %w", path, err)
	}
	fr := &frameReader{br: bufio.NewReaderSize(f, 1<<20), off: fileHeader}
	var h [fileHeader]byte
	var bad error
	if _, err := io.ReadFull(fr.br, h[:]); err != nil || string(h[:8]) != logMagic || binary.LittleEndian.Uint64(h[8:]) != seq {
		bad, fr.off = fmt.Errorf("bad header"), 0
	} else {
		var r record
		for {
			err := fr.next(&r)
			if err == io.EOF {
				break
			}
			if err == nil && r.typ == recEnd {
				err = errBadRecord
			}
			if err != nil {
				bad = err
				break
			}
			w.apply(&r)
			w.rec.LogRecords++
		}
	}
	w.sinceSnap.Add(fr.off)
	if bad == nil {
		return false, nil
	}
	if !last {
		return false, fmt.Errorf("stateserver: log %s is corrupt at offset %d (%v) and is not the last segment; "+
			"restore it, or remove it and every later segment to recover up to that point", path, fr.off, bad)
	}
	w.rec.TornBytes += fi.Size() - fr.off
	if fr.off == 0 {
		_ = f.Close() // nothing was written to it; the remove below is what counts
		if err := w.fs.Remove(path); err != nil {
			return false, fmt.Errorf("stateserver: removing the headerless log %s: %w", path, err)
		}
		return true, nil
	}
	if err := f.Truncate(fr.off); err != nil {
		return false, fmt.Errorf("stateserver: truncating the torn tail of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("stateserver: truncating the torn tail of %s: %w", path, err)
	}
	return false, nil
}

// apply applies one record to the store being recovered (no expiry
// buckets yet; finishRecovery links the survivors).
func (w *wal) apply(r *record) {
	st := w.st
	sh := st.shardFor(r.key)
	e := sh.items[string(r.key)]
	switch r.typ {
	case recDelete:
		if e != nil {
			delete(sh.items, e.key)
		}
	case recTouch:
		if e != nil && e.timeout != 0 {
			e.expires = r.exp - w.wallBase
		}
	case recState:
		if e == nil {
			if r.flags&flagHasBody == 0 {
				return // lock state of an item this log does not hold
			}
			e = &entry{key: string(r.key)}
			sh.items[e.key] = e
		}
		e.timeout = r.timeout
		e.cookie = r.cookie
		e.locked = r.flags&flagLocked != 0
		e.uninit = r.flags&flagUninit != 0
		e.lockAt = r.lockAt - w.wallBase
		e.expires = 0
		if e.timeout != 0 {
			e.expires = r.exp - w.wallBase
		}
		if r.flags&flagHasBody != 0 {
			e.setBody(r.body)
		}
	}
}

// finishRecovery drops items that expired while the server was down and
// links the rest into their expiry buckets.
func (w *wal) finishRecovery() {
	st := w.st
	now := w.now()
	for i := range st.shards {
		sh := &st.shards[i]
		for k, e := range sh.items {
			if e.timeout != 0 && now > e.expires {
				delete(sh.items, k)
				w.rec.Expired++
				continue
			}
			sh.link(st, e)
			sh.active++
		}
		w.rec.Sessions += sh.active
	}
}

// listSegments returns the sequence numbers of the log segments in dir, in
// order.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []uint64
	for _, e := range ents {
		if s, ok := strings.CutPrefix(e.Name(), logPrefix); ok {
			if n, err := strconv.ParseUint(s, 10, 64); err == nil && n > 0 {
				segs = append(segs, n)
			}
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i] < segs[j] })
	return segs, nil
}
