package stateserver

import (
	"bytes"
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/aspstate/aspstate/protocol"
)

// The store tests drive the store with a synthetic clock so expiry edges are
// exact. One protocol minute is 60 s of nanoseconds here (minute = 60e9),
// so one protocol second is 1e9 and a bucket is 20e9.

const (
	tMin = int64(time.Minute)
	tSec = int64(time.Second)
)

func newTestStore() *store { return newStore(time.Minute) }

var noCookie cookieArg

func TestStoreExpiryEdge(t *testing.T) {
	st := newTestStore()
	st.put([]byte("k"), []byte("v"), 1, 0, noCookie, 0)
	if r := st.get([]byte("k"), getPlain, noCookie, tMin, nil); r.status != 200 { // now == expiresAt: still there
		t.Fatalf("at expiry instant: %d, want 200", r.status)
	}
	// The GET above slid the expiry to 2 min.
	if r := st.head([]byte("k"), 2*tMin); r.status != 200 {
		t.Fatalf("at slid expiry: %d, want 200", r.status)
	}
	if r := st.head([]byte("k"), 3*tMin+1); r.status != 404 {
		t.Fatalf("1 ns after slid expiry: %d, want 404", r.status)
	}
	a, total, _, timedOut := st.sessionCounts()
	if a != 0 || total != 1 || timedOut != 1 {
		t.Fatalf("counts active=%d total=%d timedOut=%d, want 0 1 1", a, total, timedOut)
	}
}

func TestStoreRearmNeedsOneProtocolSecond(t *testing.T) {
	st := newTestStore()
	st.put([]byte("k"), []byte(""), 1, 0, noCookie, 0) // expires at 60 s
	st.head([]byte("k"), tSec-1)                       // would move the expiry by < 1 s: not re-armed
	if r := st.head([]byte("k"), tMin+1); r.status != 404 {
		t.Fatalf("expiry moved by a sub-second lookup: %d, want 404", r.status)
	}
	st.put([]byte("j"), []byte(""), 1, 0, noCookie, 0)
	st.head([]byte("j"), tSec) // moves it by exactly 1 s: re-armed to 61 s
	if r := st.head([]byte("j"), tMin+1); r.status != 200 {
		t.Fatalf("expiry not moved by a 1 s lookup: %d, want 200", r.status)
	}
}

func TestStoreSlidesOnEveryVerbAndOutcome(t *testing.T) {
	// Each lookup at 50 s slides a 1-minute item to 110 s, whatever the
	// verb and outcome; at 100 s it must still be there.
	lookups := map[string]func(st *store){
		"GET 200":          func(st *store) { st.get([]byte("k"), getPlain, noCookie, 50*tSec, nil) },
		"GET 423":          func(st *store) { st.get([]byte("k"), getPlain, noCookie, 50*tSec, nil) },
		"acquire 423":      func(st *store) { st.get([]byte("k"), getAcquire, noCookie, 50*tSec, nil) },
		"release 400":      func(st *store) { st.get([]byte("k"), getRelease, noCookie, 50*tSec, nil) },
		"PUT 423":          func(st *store) { st.put([]byte("k"), []byte(""), 1, 0, noCookie, 50*tSec) },
		"PUT 400 cookie":   func(st *store) { st.put([]byte("k"), []byte(""), 1, 0, cookieArg{present: true}, 50*tSec) },
		"PUT noop flags 1": func(st *store) { st.put([]byte("k"), []byte(""), 1, 1, noCookie, 50*tSec) },
		"DELETE 423":       func(st *store) { st.remove([]byte("k"), noCookie, 50*tSec) },
		"DELETE 400":       func(st *store) { st.remove([]byte("k"), cookieArg{present: true}, 50*tSec) },
		"HEAD on locked":   func(st *store) { st.head([]byte("k"), 50*tSec) },
	}
	for name, lookup := range lookups {
		t.Run(name, func(t *testing.T) {
			st := newTestStore()
			st.put([]byte("k"), []byte("x"), 1, 0, noCookie, 0)
			if name != "GET 200" {
				st.get([]byte("k"), getAcquire, noCookie, 0, nil)
			}
			lookup(st)
			if r := st.head([]byte("k"), 100*tSec); r.status != 200 {
				t.Fatalf("item gone at 100 s after a lookup at 50 s: %d", r.status)
			}
		})
	}
}

func TestStoreTimeoutZeroNeverExpires(t *testing.T) {
	st := newTestStore()
	st.put([]byte("k"), []byte("x"), 0, 0, noCookie, 0)
	far := int64(protocol.MaxTimeout) * tMin * 2
	if n := st.scavenge(far); n != 0 {
		t.Fatalf("scavenger removed %d items with Timeout 0", n)
	}
	r := st.get([]byte("k"), getPlain, noCookie, far, nil)
	if r.status != 200 || r.timeout != 0 {
		t.Fatalf("Timeout 0 item: status %d timeout %d, want 200 0", r.status, r.timeout)
	}
}

func TestStoreScavengerTouchesOnlyDueBuckets(t *testing.T) {
	st := newTestStore()
	for i := 0; i < 100; i++ {
		st.put([]byte(fmt.Sprint("short", i)), nil, 1, 0, noCookie, 0) // expire at 60 s: bucket 3
		st.put([]byte(fmt.Sprint("long", i)), nil, 20, 0, noCookie, 0) // expire at 20 min
	}
	if n := st.scavenge(60 * tSec); n != 0 { // bucket 3 ends at 80 s: not due
		t.Fatalf("scavenged %d before the bucket ended", n)
	}
	// At 70 s the short items are expired (invisible) though not yet scavenged.
	if r := st.head([]byte("short0"), 70*tSec); r.status != 404 {
		t.Fatalf("expired item visible before scavenging: %d", r.status)
	}
	if n := st.scavenge(80 * tSec); n != 99 {
		t.Fatalf("scavenged %d at 80 s, want the 99 remaining short items", n)
	}
	active, total, _, timedOut := st.sessionCounts()
	if active != 100 || total != 200 || timedOut != 100 {
		t.Fatalf("active=%d total=%d timedOut=%d, want 100 200 100", active, total, timedOut)
	}
	if n := st.scavenge(20*tMin + 20*tSec); n != 100 {
		t.Fatalf("scavenged %d long items, want 100", n)
	}
	for i := range st.shards {
		if len(st.shards[i].buckets) != 0 || len(st.shards[i].items) != 0 {
			t.Fatalf("shard %d keeps %d buckets %d items after everything expired", i, len(st.shards[i].buckets), len(st.shards[i].items))
		}
	}
}

func TestStoreSlideMovesBucket(t *testing.T) {
	st := newTestStore()
	st.put([]byte("k"), []byte(""), 1, 0, noCookie, 0)
	for now := int64(0); now <= 10*tMin; now += 30 * tSec { // touched every 30 s for 10 minutes
		st.head([]byte("k"), now)
		st.scavenge(now)
	}
	if r := st.head([]byte("k"), 10*tMin+30*tSec); r.status != 200 {
		t.Fatalf("item kept alive by lookups was scavenged: %d", r.status)
	}
	sh := st.shardFor([]byte("k"))
	if len(sh.buckets) != 1 {
		t.Fatalf("item linked into %d buckets, want 1", len(sh.buckets))
	}
}

func TestStoreCookieWrapsLikeInt32(t *testing.T) {
	st := newTestStore()
	st.put([]byte("k"), []byte(""), 20, 0, noCookie, 0)
	st.put([]byte("k"), []byte(""), 21, 0, cookieArg{present: true, valid: true, value: 1<<31 - 1}, 0) // counter = MaxInt32
	r := st.get([]byte("k"), getAcquire, noCookie, 0, nil)
	if r.status != 200 || r.cookie != -1<<31 {
		t.Fatalf("acquire after MaxInt32: status %d cookie %d, want 200 %d", r.status, r.cookie, int32(-1<<31))
	}
}

// TestEntryIsCompact guards the memory budget (1M sessions × 1 KiB in
// 1.5 GiB): an entry must stay in the 80-byte size class.
func TestEntryIsCompact(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n > 80 {
		t.Fatalf("entry is %d bytes; keep it ≤ 80 (see TestMemory1M)", n)
	}
}

func TestStoreRewritesBodyInPlace(t *testing.T) {
	st := newTestStore()
	k := []byte("k")
	a, b := bytes.Repeat([]byte("a"), 1024), bytes.Repeat([]byte("b"), 1000)
	st.put(k, a, 20, 0, noCookie, 0)
	got := st.get(k, getPlain, noCookie, 0, nil).body
	e := st.shardFor(k).items["k"]
	ptr := e.bodyPtr
	if n := testing.AllocsPerRun(50, func() { st.put(k, b, 20, 0, noCookie, 0) }); n != 0 {
		t.Fatalf("rewriting a body of similar size allocates %v times", n)
	}
	if e.bodyPtr != ptr {
		t.Fatal("similar-size body not rewritten in place")
	}
	if !bytes.Equal(got, a) {
		t.Fatal("a body copied out earlier changed when the item was rewritten")
	}
	if r := st.get(k, getPlain, noCookie, 0, got); !bytes.Equal(r.body, b) {
		t.Fatalf("body after rewrite: %q", r.body)
	}
	st.put(k, []byte("tiny"), 20, 0, noCookie, 0) // would waste most of the buffer: reallocated
	if e.bodyPtr == ptr || e.bodyCap > 64 {
		t.Fatalf("a tiny body kept the %d-byte buffer", e.bodyCap)
	}
	st.put(k, nil, 20, 0, noCookie, 0)
	if r := st.get(k, getPlain, noCookie, 0, nil); r.status != 200 || len(r.body) != 0 {
		t.Fatalf("empty body: %d %q", r.status, r.body)
	}
	st.put(k, a, 20, 0, noCookie, 0)
	if r := st.get(k, getPlain, noCookie, 0, nil); !bytes.Equal(r.body, a) {
		t.Fatal("body after growing again")
	}
}
