package aspnetclient

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

// TestAfterReply is PROTOCOL.md e.1 and e.4 as a table: the 400 exception
// comes first and leaves the version unchecked; the first other reply stores
// its major version and fails below 2; later replies are not checked.
func TestAfterReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		stored     int
		status     int
		version    string
		wantStored int
		wantErr    error
	}{
		{VersionUnchecked, 200, "4.0.30319", 4, nil},
		{VersionUnchecked, 404, "2.0.50727", 2, nil},
		{VersionUnchecked, 423, "10.0", 10, nil},
		{VersionUnchecked, 200, "", 0, ErrNeedV2},               // no header: major 0 (KB 2836759)
		{VersionUnchecked, 200, "1.1.4322", 1, ErrNeedV2},       // .NET 1.1's service
		{VersionUnchecked, 200, "garbage", 0, ErrNeedV2},        // not a number: 0
		{VersionUnchecked, 400, "4.0.30319", -1, ErrBadRequest}, // 400 throws first: still unchecked
		{0, 200, "", 0, nil},                                    // checked once: never again
		{4, 500, "", 4, nil},                                    // other statuses are not errors
		{4, 400, "4.0.30319", 4, ErrBadRequest},
	} {
		got, err := AfterReply(tc.stored, tc.status, tc.version)
		if got != tc.wantStored || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("AfterReply(%d, %d, %q) = %d, %v; want %d, %v", tc.stored, tc.status, tc.version, got, err, tc.wantStored, tc.wantErr)
		}
	}
}

// TestLockAge is PROTOCOL.md e.3 as a table, on the real scale (one
// protocol second = one second) and on a scaled one, where the LockDate
// fallback (real time) is converted to protocol seconds.
func TestLockAge(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.FixedZone("CET", 3600))
	ticksAgo := func(d time.Duration) int64 { return DotNetTicks(now.Add(-d)) }
	for _, tc := range []struct {
		name   string
		rep    protocol.Reply
		second time.Duration
		want   int64
	}{
		{"LockAge in range", protocol.Reply{HasLockAge: true, LockAge: 42, HasLockDate: true, LockDate: ticksAgo(time.Hour)}, time.Second, 42},
		{"LockAge 0", protocol.Reply{HasLockAge: true, LockAge: 0}, time.Second, 0},
		{"LockAge one year: out of range, 0", protocol.Reply{HasLockAge: true, LockAge: MaxLockAgeSeconds, HasLockDate: true, LockDate: ticksAgo(time.Hour)}, time.Second, 0},
		{"negative LockAge: the LockDate fallback", protocol.Reply{HasLockAge: true, LockAge: -1, HasLockDate: true, LockDate: ticksAgo(90 * time.Second)}, time.Second, 90},
		{"no LockAge: the LockDate fallback", protocol.Reply{HasLockDate: true, LockDate: ticksAgo(90 * time.Second)}, time.Second, 90},
		{"LockDate fallback on a 10 ms protocol second", protocol.Reply{HasLockDate: true, LockDate: ticksAgo(900 * time.Millisecond)}, 10 * time.Millisecond, 90},
		{"LockDate in the future: 0", protocol.Reply{HasLockDate: true, LockDate: DotNetTicks(now.Add(time.Hour))}, time.Second, 0},
		{"LockDate 0: 0", protocol.Reply{HasLockDate: true, LockDate: 0}, time.Second, 0},
		{"neither: 0", protocol.Reply{}, time.Second, 0},
	} {
		if got := LockAge(&tc.rep, now, tc.second); got != tc.want {
			t.Errorf("%s: LockAge = %d, want %d", tc.name, got, tc.want)
		}
	}
	if !BreakLock(110, ExecutionTimeoutSeconds) || BreakLock(109, ExecutionTimeoutSeconds) {
		t.Error("BreakLock: a lock is broken from the execution timeout on, not before")
	}
}

// TestReadItem is PROTOCOL.md e.5 as a table.
func TestReadItem(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, tc := range []struct {
		name string
		rep  protocol.Reply
		want Item
	}{
		{"200 with a body: found", protocol.Reply{Status: 200, Body: []byte("s"), LockCookie: 3, ActionFlags: 1},
			Item{Found: true, Body: []byte("s"), LockID: 3, Actions: 1}},
		{"200 with Content-Length 0: no item, cookie ignored", protocol.Reply{Status: 200, LockCookie: 3}, Item{}},
		{"423: locked, with cookie and age", protocol.Reply{Status: 423, LockCookie: 5, HasLockAge: true, LockAge: 7},
			Item{Locked: true, LockID: 5, LockAge: 7}},
		{"404: not found", protocol.Reply{Status: 404}, Item{}},
		{"500: not found", protocol.Reply{Status: 500}, Item{}},
	} {
		got := ReadItem(&tc.rep, now, time.Second)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: ReadItem = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestSessionQueue: the 51st request of a session fails at once; other
// sessions are not affected; leaving frees a place; 0 is unlimited.
func TestSessionQueue(t *testing.T) {
	t.Parallel()
	q := NewSessionQueue(DefaultRequestQueueLimitPerSession)
	var leaves []func()
	for i := 0; i < DefaultRequestQueueLimitPerSession; i++ {
		leave, err := q.Enter("a")
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		leaves = append(leaves, leave)
	}
	if _, err := q.Enter("a"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("request 51: %v, want ErrQueueFull", err)
	}
	if _, err := q.Enter("b"); err != nil {
		t.Fatalf("another session: %v", err)
	}
	leaves[0]()
	leaves[0]() // leaving twice frees one place only
	if _, err := q.Enter("a"); err != nil {
		t.Fatalf("after one left: %v", err)
	}
	if _, err := q.Enter("a"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("full again: %v", err)
	}
	unlimited := NewSessionQueue(0)
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := unlimited.Enter("a"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}
