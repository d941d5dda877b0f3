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
type preciseSleeper struct {
	f     *os.File
	fd    int
	stop  func() bool
	buf   [8]byte
	short sleeper
	// mean is a moving average of the waits asked for: it tells a busy
	// schedule (short waits on the whole) from an idle one, where a Poisson
	// schedule still asks for many short waits.
	mean time.Duration
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
func newSleeper(ctx context.Context) sleeper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return newTimerSleeper(ctx)
	}
	s := &preciseSleeper{f: os.NewFile(uintptr(fd), "timerfd"), fd: fd, short: newTimerSleeper(ctx)}
	s.stop = context.AfterFunc(ctx, func() { _ = s.f.SetReadDeadline(time.Unix(1, 0)) })
	return s
}

func (s *preciseSleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mean += (max(d, 0) - s.mean) / 8
	if s.mean < preciseFrom || d <= 0 { // (a zero timerfd value would disarm it)
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
	s.stop()
	s.short.close()
	_ = s.f.Close()
}
