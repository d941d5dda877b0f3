package conformance

import (
	"context"
	"fmt"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

// ProbeMinute checks, in a few real seconds, that the server at addr counts
// protocol time at the rate minute says: it locks a fresh item, waits, and
// reads the lock's LockAge (protocol seconds) from a 423. It returns "" when
// the rates agree or the probe cannot tell (no usable LockAge), otherwise a
// sentence naming the minute the target seems to run with.
func ProbeMinute(ctx context.Context, addr string, minute time.Duration) (string, error) {
	c, err := protocol.Dial(ctx, addr, protocol.ConnOptions{})
	if err != nil {
		return "", err
	}
	defer c.Close()
	k := protocol.Target(AppID, newID())
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		c, err := protocol.Dial(cctx, addr, protocol.ConnOptions{})
		if err != nil {
			return
		}
		defer c.Close()
		if r, err := c.Get(cctx, k); err == nil && r.Status != protocol.StatusNotFound {
			_, _ = c.Remove(cctx, k, r.LockCookie)
		}
	}()
	if r, err := c.Set(ctx, k, []byte("aspstate minute probe"), protocol.SetParams{Timeout: 20}); err != nil || r.Status != 200 {
		return "", err
	}
	if r, err := c.GetExclusive(ctx, k); err != nil || r.Status != 200 {
		return "", err
	}
	locked := time.Now()
	// Long enough for whole protocol seconds to tell rates apart by a
	// factor of two either way: 4 protocol seconds, at least 1.5 s.
	w := max(4*minute/60, 1500*time.Millisecond)
	t := time.NewTimer(w)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return "", ctx.Err()
	}
	// A new connection: the server may have closed the idle one.
	c2, err := protocol.Dial(ctx, addr, protocol.ConnOptions{})
	if err != nil {
		return "", err
	}
	defer c2.Close()
	r, err := c2.Get(ctx, k)
	if err != nil {
		return "", err
	}
	held := time.Since(locked)
	if r.Status != protocol.StatusLocked || !r.HasLockAge || r.LockAge < 0 {
		return "", nil // cannot tell; the lock rules will say why
	}
	return judgeMinute(held, r.LockAge, minute), nil
}

// judgeMinute compares a LockAge observed after held real time with what a
// target whose protocol minute is minute would report.
func judgeMinute(held time.Duration, age int64, minute time.Duration) string {
	want := float64(held) / float64(minute/60) // protocol seconds expected
	got := float64(age)
	// Whole seconds truncate: allow one second of slack, then a factor of two.
	if got+1 >= want/2 && got <= 2*want+1 {
		return ""
	}
	if age == 0 {
		return fmt.Sprintf("a lock held %v reported LockAge 0: the target's protocol minute is longer than %v (--minute %v), perhaps the real 1m",
			held.Round(time.Millisecond), (2 * minute).Round(time.Millisecond), minute)
	}
	seems := time.Duration(float64(held) * 60 / got)
	return fmt.Sprintf("a lock held %v reported LockAge %d s: the target's protocol minute is about %v, not %v (--minute)",
		held.Round(time.Millisecond), age, seems.Round(10*time.Millisecond), minute)
}
