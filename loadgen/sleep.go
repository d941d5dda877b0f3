package loadgen

import (
	"context"
	"time"
)

// sleeper is how the open model's dispatcher waits for the next slot.
type sleeper interface {
	// sleep waits d, or until ctx ends (then it returns ctx's error).
	sleep(ctx context.Context, d time.Duration) error
	close()
}

// timerSleeper waits with one reused Go timer.
type timerSleeper struct{ t *time.Timer }

func newTimerSleeper(context.Context) sleeper {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &timerSleeper{t: t}
}

func (s *timerSleeper) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	s.t.Reset(d)
	select {
	case <-s.t.C:
		return nil
	case <-ctx.Done():
		s.t.Stop()
		return ctx.Err()
	}
}

func (s *timerSleeper) close() { s.t.Stop() }
