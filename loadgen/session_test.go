package loadgen

import (
	"testing"
	"time"
)

// encodeBody is appendBody into a new buffer.
func encodeBody(id string, version uint64, size int) []byte {
	return appendBody(nil, id, version, size)
}

func TestBodyCodecAndChecks(t *testing.T) {
	t.Parallel()
	id := "abcdefghijklmnopqrstuvwx"
	b := encodeBody(id, 7, 500)
	if len(b) != 500 {
		t.Fatalf("body is %d bytes, want 500", len(b))
	}
	gid, v, empty, err := decodeBody(b, 20)
	if err != nil || gid != id || v != 7 || empty {
		t.Fatalf("decode: %q %d %v %v", gid, v, empty, err)
	}
	b[100] ^= 1
	if _, _, _, err := decodeBody(b, 20); err == nil {
		t.Fatal("a flipped byte passed the checksum")
	}
	if _, _, empty, err := decodeBody(emptySessionBody(20), 20); !empty || err != nil {
		t.Fatal("the empty session body is not recognised")
	}

	st := newState(20, time.Minute)
	s := st.newSession(id, "t", 0)
	now := time.Now()
	w1 := s.beginWrite(0, 100)
	s.endWrite(w1, true)
	w2 := s.beginWrite(0, 100)
	s.endWrite(w2, true)
	st.readCheck(s, st.snapshot(s, now), encodeBody(id, w1.version, 100)) // older than acknowledged
	st.readCheck(s, st.snapshot(s, now), encodeBody("someoneelse0000000000000", w2.version, 100))
	st.readCheck(s, st.snapshot(s, now), encodeBody(id, 99, 100)) // never written
	st.readCheck(s, st.snapshot(s, now), []byte("garbage"))
	epoch := st.acquired(s, st.snapshot(s, now), 1)
	st.acquired(s, st.snapshot(s, now), 2) // no release between
	s.touched(now, st)
	st.gone(s, st.snapshot(s, now), now.Add(time.Second)) // 20-minute timeout
	// A 404 to a request sent before the session was known to exist is no
	// violation: the server may have handled it before the create.
	s3 := st.newSession("early000000000000000000", "t", 0)
	early := st.snapshot(s3, now)
	s3.created()
	s3.touched(now.Add(time.Millisecond), st)
	st.gone(s3, early, now.Add(2*time.Millisecond))
	m, _, total := st.snapshotViolations()
	want := map[string]int64{ViolationLostUpdate: 1, ViolationForeignBody: 2, ViolationTornBody: 1, ViolationDoubleLock: 1, ViolationSessionGone: 1}
	for k, n := range want {
		if m[k] != n {
			t.Errorf("%s: %d, want %d (all: %v)", k, m[k], n, m)
		}
	}
	if total != 6 {
		t.Fatalf("total %d, want 6", total)
	}
	// A read that overlapped a DELETE is not judged.
	st2 := newState(20, time.Minute)
	s2 := st2.newSession(id, "t", 0)
	s2.endWrite(s2.beginWrite(epoch, 10), true)
	sn := st2.snapshot(s2, now)
	s2.beginRemove()
	s2.endRemove(true)
	st2.readCheck(s2, sn, emptySessionBody(20))
	if _, _, n := st2.snapshotViolations(); n != 0 || st2.skipped.Load() != 1 {
		t.Fatalf("overlapping DELETE: %d violations, %d skipped; want 0 and 1", n, st2.skipped.Load())
	}
}

// TestLateWritesOfBrokenLocks covers the ways a PUT of a page whose lock
// was broken can land after a newer write and put an older version back
// (a PUT on an unlocked item succeeds whatever its cookie, PROTOCOL.md c.2
// #7; PUTs on two connections have no order). A read that then returns the
// older version is no lost update. The same read after writes that did not
// overlap anything is one.
func TestLateWritesOfBrokenLocks(t *testing.T) {
	t.Parallel()
	id := "brokenwhilewriting000000"
	for _, tc := range []struct {
		name string
		// run plays the writes and returns the version the read returns.
		run       func(st *state, s *session) uint64
		violation bool
	}{
		{"lock broken while the holder's PUT is in flight", func(st *state, s *session) uint64 {
			now := time.Now()
			epochA := st.acquired(s, st.snapshot(s, now), 1)
			a := s.beginWrite(epochA, 100) // A's PUT is on its way
			s.releasing(1)
			s.breaking() // a waiter found A's lock too old; its release lands first
			epochB := st.acquired(s, st.snapshot(s, now), 2)
			b := s.beginWrite(epochB, 100)
			s.endWrite(b, true)
			// A's PUT lands now, after B's: the item holds A's version.
			s.endWrite(a, true)
			return a.version
		}, false},
		{"stale PUT sent before the new holder's, answered first", func(st *state, s *session) uint64 {
			// The trace of a real false report: page A's lock was broken,
			// page B acquired; A sends its stale PUT, then B its PUT; the
			// server handles B's first (unlocking), then A's (200). A's
			// 200 arrives first, then B's.
			now := time.Now()
			epochA := st.acquired(s, st.snapshot(s, now), 1)
			s.breaking()
			epochB := st.acquired(s, st.snapshot(s, now), 2)
			a := s.beginWrite(epochA, 100)
			b := s.beginWrite(epochB, 100)
			s.endWrite(a, true)
			s.endWrite(b, true)
			return a.version
		}, false},
		{"writes one after the other", func(st *state, s *session) uint64 {
			now := time.Now()
			epochA := st.acquired(s, st.snapshot(s, now), 1)
			a := s.beginWrite(epochA, 100)
			s.releasing(1)
			s.endWrite(a, true)
			epochB := st.acquired(s, st.snapshot(s, now), 2)
			b := s.beginWrite(epochB, 100)
			s.endWrite(b, true)
			return a.version
		}, true},
	} {
		st := newState(20, time.Minute)
		s := st.newSession(id, "t", 0)
		v := tc.run(st, s)
		st.readCheck(s, st.snapshot(s, time.Now()), encodeBody(id, v, 100))
		_, ex, n := st.snapshotViolations()
		if tc.violation && n != 1 || !tc.violation && n != 0 {
			t.Errorf("%s: read of version %d: violations %d %v, want %v", tc.name, v, n, ex, tc.violation)
		}
		if s.inflight != 0 || s.writing != 0 {
			t.Errorf("%s: %d stale and %d writes still counted in flight", tc.name, s.inflight, s.writing)
		}
	}
}

// A reply that the server sent before a restart, but that the client handles
// after the restart began, belongs to the old server: a 404 after the restart
// is a lost session, not a session gone before its timeout. A touch sent
// after the restart still makes an early 404 a violation.
func TestTouchBeforeRestartHandledAfterIsNoViolation(t *testing.T) {
	t.Parallel()
	st := newState(20, time.Minute)
	var lost int
	st.onLost = func() { lost++ }
	s := st.newSession("restart00000000000000000", "t", 0)
	s.created()
	sent := time.Now().Add(-10 * time.Millisecond) // sent before the restart began
	st.bumpEpoch()
	st.bumpEpoch()      // the restart is over
	s.touched(sent, st) // the old server's 200, handled only now
	st.gone(s, st.snapshot(s, time.Now()), time.Now())
	if m, _, total := st.snapshotViolations(); total != 0 {
		t.Fatalf("a pre-restart touch made a lost session a violation: %v", m)
	}
	if lost != 1 {
		t.Errorf("sessions lost: %d, want 1", lost)
	}
	// The same session, recreated and touched after the restart, then 404 at once: a violation.
	s.created()
	s.touched(time.Now(), st)
	st.gone(s, st.snapshot(s, time.Now()), time.Now().Add(time.Second))
	if m, _, total := st.snapshotViolations(); total != 1 || m[ViolationSessionGone] != 1 {
		t.Fatalf("violations %v, want one session-gone", m)
	}
}

// TestEncodeBodyFiller pins the body filler to its generator, byte by byte:
// bodies of earlier versions of aspstate must read the same.
func TestEncodeBodyFiller(t *testing.T) {
	t.Parallel()
	id := "abcdefghijklmnopqrstuvwx"
	for _, version := range []uint64{0, 1, 2, 77, 255, 256, 1 << 40} {
		for _, size := range []int{0, bodyOverhead(id), bodyOverhead(id) + 1, 300, 1024, 4096 + 3} {
			b := encodeBody(id, version, size)
			over := bodyOverhead(id)
			fill := b[over-4 : len(b)-4]
			x := byte(version*131 + 7)
			for i := range fill {
				if fill[i] != x {
					t.Fatalf("version %d size %d: filler byte %d is %#x, want %#x", version, size, i, fill[i], x)
				}
				x = x*29 + 11
			}
			if gotID, v, empty, err := decodeBody(b, 20); err != nil || gotID != id || v != version || empty {
				t.Fatalf("version %d size %d: decode %q %d %v %v", version, size, gotID, v, empty, err)
			}
		}
	}
}

func BenchmarkEncodeBody(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		encodeBody("abcdefghijklmnopqrstuvwx", uint64(i), 1024)
	}
}
