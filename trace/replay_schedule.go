package trace

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"io"
	"os"
	"time"

	"github.com/aspstate/aspstate/scenarios"
)

// The replay's schedule is streamed: LoadReplay writes every replayable page
// as a fixed-size record to a temporary file in the order the page builder
// gives them (as each page ends), with the reader's clock at that moment;
// every pass over the schedule (a copy's or a loop's stream) reads the file
// back through a reorder heap that holds only the pages of the last lag
// (the longest a page waited to be given, about the longest page), so the
// memory a replay needs is bounded by the pages in flight, not by the
// capture's size.

// rec is one replayable page of the schedule.
type rec struct {
	start, end, emit int64 // Unix ns: the page's start and end, the reader's clock when it was given
	exec             int64 // ns
	sess             uint64
	size             int32 // a modify page's body size
	kind             uint8
	app, web, part   uint16 // first-seen indices (app remapped by Replay.appOf)
	seq              int64  // position in the file: ties keep it
}

const recSize = 8*5 + 4 + 1 + 2*3

var kindCodes = []scenarios.PageKind{scenarios.PageModify, scenarios.PageReadOnly, scenarios.PageReadUnchanged, scenarios.PageSessionless, scenarios.PageAbandon}

func kindCode(k scenarios.PageKind) uint8 {
	for i, c := range kindCodes {
		if c == k {
			return uint8(i)
		}
	}
	return uint8(len(kindCodes))
}

func (r *rec) marshal(b *[recSize]byte) {
	binary.LittleEndian.PutUint64(b[0:], uint64(r.start))
	binary.LittleEndian.PutUint64(b[8:], uint64(r.end))
	binary.LittleEndian.PutUint64(b[16:], uint64(r.emit))
	binary.LittleEndian.PutUint64(b[24:], uint64(r.exec))
	binary.LittleEndian.PutUint64(b[32:], r.sess)
	binary.LittleEndian.PutUint32(b[40:], uint32(r.size))
	b[44] = r.kind
	binary.LittleEndian.PutUint16(b[45:], r.app)
	binary.LittleEndian.PutUint16(b[47:], r.web)
	binary.LittleEndian.PutUint16(b[49:], r.part)
}

func (r *rec) unmarshal(b *[recSize]byte) {
	r.start = int64(binary.LittleEndian.Uint64(b[0:]))
	r.end = int64(binary.LittleEndian.Uint64(b[8:]))
	r.emit = int64(binary.LittleEndian.Uint64(b[16:]))
	r.exec = int64(binary.LittleEndian.Uint64(b[24:]))
	r.sess = binary.LittleEndian.Uint64(b[32:])
	r.size = int32(binary.LittleEndian.Uint32(b[40:]))
	r.kind = b[44]
	r.app = binary.LittleEndian.Uint16(b[45:])
	r.web = binary.LittleEndian.Uint16(b[47:])
	r.part = binary.LittleEndian.Uint16(b[49:])
}

func (r *rec) pageKind() scenarios.PageKind { return kindCodes[r.kind] }

// sessHash names a session in the schedule.
func sessHash(k SessionKey) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(k.App))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(k.ID))
	return h.Sum64()
}

// schedule is the temporary file of records.
type schedule struct {
	f     *os.File
	w     *bufio.Writer
	n     int64
	lag   int64 // the most a page was given after its start, ns
	clock int64
	named bool // the file still has a name to remove on Close
}

func newSchedule() (*schedule, error) {
	f, err := os.CreateTemp("", "aspstate-replay-*.sched")
	if err != nil {
		return nil, err
	}
	s := &schedule{f: f, w: bufio.NewWriterSize(f, 64<<10), named: true}
	if os.Remove(f.Name()) == nil {
		s.named = false // unlinked: the space goes with the last handle
	}
	return s, nil
}

func (s *schedule) add(r *rec) error {
	s.clock = max(s.clock, r.emit)
	r.emit = s.clock
	s.lag = max(s.lag, r.emit-r.start)
	var b [recSize]byte
	r.marshal(&b)
	_, err := s.w.Write(b[:])
	s.n++
	return err
}

func (s *schedule) close() error {
	if s == nil || s.f == nil {
		return nil
	}
	err := s.f.Close()
	if s.named {
		err = errors.Join(err, os.Remove(s.f.Name()))
	}
	s.f = nil
	return err
}

// raw reads the records in file order.
type raw struct {
	br  *bufio.Reader
	seq int64
}

func (s *schedule) raw() *raw {
	return &raw{br: bufio.NewReaderSize(io.NewSectionReader(s.f, 0, s.n*recSize), 16<<10)}
}

func (rr *raw) next(r *rec) bool {
	var b [recSize]byte
	if _, err := io.ReadFull(rr.br, b[:]); err != nil {
		return false
	}
	r.unmarshal(&b)
	r.seq = rr.seq
	rr.seq++
	return true
}

// each calls f with every record, in file order.
func (s *schedule) each(f func(*rec)) {
	rr := s.raw()
	var r rec
	for rr.next(&r) {
		f(&r)
	}
}

// ordered reads the records in start order, holding only the last lag's.
type ordered struct {
	raw      *raw
	lag      int64
	lastEmit int64
	eof      bool
	h        recHeap
}

func (s *schedule) ordered() *ordered { return &ordered{raw: s.raw(), lag: s.lag} }

// peek returns the next record in start order without taking it.
func (o *ordered) peek() (*rec, bool) {
	for !o.eof && (len(o.h) == 0 || o.h[0].start >= o.lastEmit-o.lag) {
		var r rec
		if !o.raw.next(&r) {
			o.eof = true
			break
		}
		o.lastEmit = r.emit
		heap.Push(&o.h, r)
	}
	if len(o.h) == 0 {
		return nil, false
	}
	return &o.h[0], true
}

func (o *ordered) pop() { heap.Pop(&o.h) }

type recHeap []rec

func (h recHeap) Len() int { return len(h) }
func (h recHeap) Less(i, j int) bool {
	return h[i].start < h[j].start || (h[i].start == h[j].start && h[i].seq < h[j].seq)
}
func (h recHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *recHeap) Push(x any)   { *h = append(*h, x.(rec)) }
func (h *recHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}

// at is when a record starts in a stream at speed.
func (r *Replay) recAt(x *rec, speed float64, shift time.Duration) time.Duration {
	return time.Duration(float64(x.start-r.First.UnixNano())/speed) + shift
}
