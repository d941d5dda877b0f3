package loadgen

import (
	"context"
	"testing"
	"time"
)

// TestSleeper checks the dispatcher's sleeper (a timerfd on Linux) for what
// it must do, not for how precisely: it waits at least the duration, short
// and long; a non-positive duration returns at once; the context's end
// interrupts a sleep and every later one.
func TestSleeper(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sl := newSleeper(ctx)
	defer sl.close()
	for _, d := range []time.Duration{50 * time.Microsecond, 2 * time.Millisecond, 30 * time.Millisecond} {
		start := time.Now()
		if err := sl.sleep(ctx, d); err != nil {
			t.Fatalf("sleep(%v): %v", d, err)
		}
		if el := time.Since(start); el < d {
			t.Errorf("sleep(%v) returned after %v", d, el)
		}
	}
	if err := sl.sleep(ctx, 0); err != nil {
		t.Fatalf("sleep(0): %v", err)
	}
	if err := sl.sleep(ctx, -time.Second); err != nil {
		t.Fatalf("sleep(-1s): %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- sl.sleep(ctx, time.Hour) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("interrupted sleep: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not interrupt the sleep")
	}
	if err := sl.sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("sleep after the end: %v, want context.Canceled", err)
	}
}
