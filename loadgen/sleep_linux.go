//go:build linux

package loadgen

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// preciseSleeper sleeps on a timerfd: the kernel's high-resolution timer,
// waited for through the runtime's network poller. Go's own timers fire
// up to a millisecond late when the process is idle (the poller's wait has
// millisecond resolution), which made a fifth of the slots of a 2000 pages/s
// schedule more than 1 ms late; a timerfd wakes the poller on time.
// The timerfd is made on the first wait that needs it, so sleepers of a
// busy schedule hold no file descriptor.
type preciseSleeper struct {
	ctx   context.Context
	f     *os.File // nil until the first precise wait
	fd    int
	stop  func() bool
	buf   [8]byte
	short sleeper
	// from is the mean wait from which the timerfd serves (see preciseFrom).
	from time.Duration
	// mean is a moving average of the waits asked for: it tells a busy
	// schedule (short waits on the whole) from an idle one, where a Poisson
	// schedule still asks for many short waits.
	mean   time.Duration
	failed bool // no timerfd could be made: Go timers only
}

// preciseFrom: the timerfd serves the waits while the mean wait is at least
// this. Shorter mean waits come at rates where the process is busy, and a
// busy runtime checks its timers at every scheduling point, so a Go timer is
// on time there and costs no system calls (the timerfd costs three per wait,
// about 7 us of generator CPU per request at 10000 pages/s). The mean, not
// each wait: at 455 pages/s one Poisson gap in nine is under 250 us, and a
// Go timer in an idle process fires up to a millisecond late.
const preciseFrom = 250 * time.Microsecond

// newSleeper returns the dispatcher's sleeper: a timerfd on Linux, Go timers
// if one cannot be made. ctx's end interrupts a sleep.
func newSleeper(ctx context.Context) sleeper { return newShareSleeper(ctx, 1) }

// newShareSleeper returns the sleeper of one of n schedule owners that
// share the schedule evenly (see openOwners): the process is busy when the
// schedule's mean wait is under preciseFrom, which is when an owner's mean
// wait is under n × preciseFrom.
func newShareSleeper(ctx context.Context, n int) sleeper {
	return &preciseSleeper{ctx: ctx, short: newTimerSleeper(ctx), from: time.Duration(max(n, 1)) * preciseFrom}
}

// open makes the timerfd; false when it cannot.
func (s *preciseSleeper) open() bool {
	if s.f != nil || s.failed {
		return s.f != nil
	}
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		s.failed = true
		return false
	}
	s.f, s.fd = os.NewFile(uintptr(fd), "timerfd"), fd
	f := s.f
	s.stop = context.AfterFunc(s.ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	return true
}

func (s *preciseSleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mean += (max(d, 0) - s.mean) / 8
	if s.mean < s.from || d <= 0 || !s.open() { // (a zero timerfd value would disarm it)
		return s.short.sleep(ctx, d)
	}
	at := time.Now().Add(d)
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(s.fd, 0, &spec, nil); err != nil {
		return s.short.sleep(ctx, d)
	}
	if _, err := s.f.Read(s.buf[:]); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.short.sleep(ctx, time.Until(at)) // not expected: the rest on a Go timer
	}
	return nil
}

func (s *preciseSleeper) close() {
	s.short.close()
	if s.f != nil {
		s.stop()
		_ = s.f.Close()
	}
}
