// Package testwait is the tests' one way to wait for something to happen:
// poll a condition until it holds, not sleep for a guessed time. The wait's
// deadline comes from the test, not from how fast the condition comes on an
// idle machine: a test on a busy machine waits as long as it must, up to
// Limit; one whose condition never comes fails then (or when the test's
// context ends, or shortly before the test binary's deadline), naming what
// it waited for, and leaves the binary's time to the tests after it.
//
// Only tests import it.
package testwait

import (
	"context"
	"testing"
	"time"
)

// deadliner is the part of *testing.T that knows the binary's deadline.
type deadliner interface {
	Deadline() (time.Time, bool)
}

// margin is how long before the test binary's deadline a wait gives up, so
// that the failure names the condition instead of the binary panicking.
const margin = 5 * time.Second

// maxPoll is the longest pause between two checks of a condition.
const maxPoll = 20 * time.Millisecond

// Limit bounds one wait of For: far beyond what any condition of the tests
// needs on the busiest machine (seconds at most), so reaching it means the
// condition will not come.
const Limit = time.Minute

// For polls cond until it returns true. It fails t (t.Fatalf, so call it
// from the test's goroutine) naming what, the thing waited for, when Limit
// passes, t's context ends or the test binary's deadline is near.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(Limit)
	if d, ok := t.(deadliner); ok {
		if binEnd, ok := d.Deadline(); ok && binEnd.Add(-margin).Before(end) {
			end = binEnd.Add(-margin)
		}
	}
	ctx, cancel := context.WithDeadline(t.Context(), end)
	defer cancel()
	start := time.Now()
	if err := Until(ctx, cond); err != nil {
		t.Fatalf("gave up waiting for %s after %s: %v", what, time.Since(start).Round(time.Millisecond), err)
	}
}

// Until polls cond until it returns true (nil) or ctx ends (ctx's error,
// after a last check). It checks at once, then backs off from 1ms to 20ms
// between checks: quick conditions are seen quickly, slow ones cost little.
func Until(ctx context.Context, cond func() bool) error {
	pause := time.Millisecond
	t := time.NewTimer(pause)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			if cond() {
				return nil
			}
			return context.Cause(ctx)
		case <-t.C:
		}
		pause = min(2*pause, maxPoll)
		t.Reset(pause)
	}
	return nil
}
