package testwait

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestUntilSeesTheConditionComeTrue(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	if err := Until(t.Context(), func() bool { return n.Load() == 3 }); err != nil {
		t.Fatal(err)
	}
}

func TestUntilEndsWithTheContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := errors.New("the test gave up")
	checks := 0
	err := Until(ctx, func() bool {
		checks++
		if checks == 3 {
			cancel(cause)
		}
		return false
	})
	if !errors.Is(err, cause) || checks < 4 {
		t.Fatalf("Until = %v after %d checks; want the context's cause after a last check", err, checks)
	}
}

func TestUntilChecksOnceMoreWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	var ready atomic.Bool
	err := Until(ctx, func() bool {
		if ready.Load() {
			return true
		}
		ready.Store(true)
		cancel() // the condition holds by the time the wait sees the end
		return false
	})
	if err != nil {
		t.Fatalf("Until = %v; want nil, the condition held at the last check", err)
	}
}

// TestForFailsNamingTheCondition runs For in a test whose context has
// ended: it must fail t, naming the condition.
func TestForFailsNamingTheCondition(t *testing.T) {
	t.Parallel()
	ft := &fakeT{TB: t, ctx: canceled()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		For(ft, "the moon", func() bool { return false })
	}()
	<-done
	if !strings.Contains(ft.msg, "the moon") {
		t.Fatalf("For failed with %q; want a message naming the condition", ft.msg)
	}
	start := time.Now()
	For(t, "a condition already true", func() bool { return true })
	if time.Since(start) > time.Second {
		t.Fatal("a true condition was not seen at once")
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// fakeT records a Fatalf and ends the goroutine as t.Fatalf does.
type fakeT struct {
	testing.TB
	ctx context.Context
	msg string
}

func (f *fakeT) Context() context.Context { return f.ctx }
func (f *fakeT) Helper()                  {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
