package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/protocol/aspnetclient"
	"github.com/aspstate/aspstate/scenarios"
)

// clientTimers are the client's timers after time scaling.
type clientTimers struct {
	timeout       int32         // session timeout, minutes (sent in PUTs)
	execTimeout   time.Duration // real time a request may wait for a lock
	execTimeoutPS int64         // the same in protocol seconds, compared with LockAge
	second        time.Duration // real duration of a protocol second (the LockDate fallback)
	poll          time.Duration // lock poll interval
	pollDelta     time.Duration // skip a poll this soon after the previous one
}

// pageRunner runs pages as SessionStateModule does (PROTOCOL.md e.1–e.5).
type pageRunner struct {
	st     *state
	web    []*webServer
	timers clientTimers
	maxLen int64
	// queue is aspnet:RequestQueueLimitPerSession, keyed by web server and
	// session (nil: unlimited).
	queue *aspnetclient.SessionQueue
}

// run executes one page request and fills rec.
func (r *pageRunner) run(ctx context.Context, s slot, rec *pageRecord) {
	pc := r.web[s.webServer].parts[s.sess.partition]
	leave, err := r.queue.Enter(strconv.Itoa(s.webServer) + " " + s.sess.target)
	if err != nil {
		rec.errKind = ErrQueueFull
		return
	}
	defer leave()
	switch s.kind {
	case scenarios.PageSessionless:
		err = r.sessionless(ctx, pc, s, rec)
	case scenarios.PageReadOnly:
		err = r.readOnly(ctx, pc, s, rec)
	default:
		err = r.writable(ctx, pc, s, rec)
	}
	if err != nil {
		var pe *pageError
		if errors.As(err, &pe) {
			rec.errKind = pe.kind
		} else {
			rec.errKind = ErrOther
		}
		if ctx.Err() != nil {
			rec.errKind = ErrCanceled
		}
	}
}

// sessionless: a page without session state whose request carries the
// session cookie sends a HEAD (ResetTimeout). 404 is ignored.
func (r *pageRunner) sessionless(ctx context.Context, pc *partClient, s slot, rec *pageRecord) error {
	sent := time.Now()
	sn := r.st.snapshot(s.sess, sent)
	rep, err := pc.call(ctx, rec, opIn(protocol.OpResetTimeout, s.sess.target), sent, func(ctx context.Context, c *protocol.Conn) (*protocol.Reply, error) {
		return c.ResetTimeout(ctx, s.sess.target)
	})
	if err != nil {
		return err
	}
	switch rep.Status {
	case protocol.StatusOK:
		s.sess.touched(sent, r.st)
	case protocol.StatusNotFound:
		r.st.gone(s.sess, sn, time.Now())
	}
	return nil
}

// readOnly: EnableSessionState="ReadOnly" sends a plain GET, polling while
// the session is locked; nothing is written or released at the end. A
// missing session becomes a new in-memory session, which a read-only page
// never writes.
func (r *pageRunner) readOnly(ctx context.Context, pc *partClient, s slot, rec *pageRecord) error {
	var w lockWaiter
	for {
		sent := time.Now()
		sn := r.st.snapshot(s.sess, sent)
		rep, err := pc.call(ctx, rec, opIn(protocol.OpGet, s.sess.target), sent, func(ctx context.Context, c *protocol.Conn) (*protocol.Reply, error) {
			return c.Get(ctx, s.sess.target)
		})
		if err != nil {
			return err
		}
		switch rep.Status {
		case protocol.StatusOK:
			s.sess.touched(sent, r.st)
			w.done(rec)
			if len(rep.Body) > 0 { // 200 with an empty body is "no item" (e.5)
				r.st.readCheck(s.sess, sn, rep.Body)
			}
			return nil
		case protocol.StatusLocked:
			s.sess.touched(sent, r.st)
			if err := r.waitLock(ctx, pc, s, rec, &w, rep); err != nil {
				return err
			}
		default:
			if rep.Status == protocol.StatusNotFound {
				r.st.gone(s.sess, sn, time.Now())
			}
			w.done(rec)
			return nil
		}
	}
}

// writable: GetExclusive, creating the session when missing, polling while
// locked; then the page runs for its execution time and ends with a PUT
// (modified), a release (unmodified) or a DELETE (abandoned).
func (r *pageRunner) writable(ctx context.Context, pc *partClient, s slot, rec *pageRecord) error {
	var w lockWaiter
	sess := s.sess
	created := false
	rec.acquire = true
	var cookie int32
	var epoch uint64
	for {
		sent := time.Now()
		sn := r.st.snapshot(sess, sent)
		rep, err := pc.call(ctx, rec, opIn(protocol.OpGetExclusive, sess.target), sent, func(ctx context.Context, c *protocol.Conn) (*protocol.Reply, error) {
			return c.GetExclusive(ctx, sess.target)
		})
		if err != nil {
			return err
		}
		if rep.Status == protocol.StatusLocked {
			sess.touched(sent, r.st)
			if err := r.waitLock(ctx, pc, s, rec, &w, rep); err != nil {
				return err
			}
			continue
		}
		if rep.Status == protocol.StatusOK && len(rep.Body) > 0 {
			sess.touched(sent, r.st)
			w.done(rec)
			epoch = r.st.acquired(sess, sn, rec.id)
			r.st.readCheck(sess, sn, rep.Body)
			cookie = rep.LockCookie
			break
		}
		// 404, any other status, or 200 with an empty body (e.5): no item.
		// The client creates an uninitialized item and acquires again.
		if rep.Status == protocol.StatusNotFound {
			r.st.gone(sess, sn, time.Now())
		}
		if created {
			w.done(rec)
			return &pageError{kind: ErrCreateFailed, err: errors.New("the session was missing right after it was created")}
		}
		created = true
		csent := time.Now()
		cbody := emptySessionBody(r.timers.timeout)
		cparams := protocol.SetParams{Timeout: r.timers.timeout, ExtraFlags: protocol.ExtraFlagUninitialized}
		crep, err := pc.call(ctx, rec, opSet(sess.target, cbody, cparams), csent, func(ctx context.Context, c *protocol.Conn) (*protocol.Reply, error) {
			return c.Set(ctx, sess.target, cbody, cparams)
		})
		if err != nil {
			return err
		}
		if crep.Status == protocol.StatusOK {
			sess.touched(csent, r.st)
			sess.created()
		}
	}

	rec.execPlanned = s.exec
	execStart := time.Now()
	err := sleepCtx(ctx, s.exec)
	rec.exec = time.Since(execStart)
	if err != nil {
		return &pageError{kind: ErrCanceled, err: err}
	}

	switch s.kind {
	case scenarios.PageModify:
		sess.releasing(rec.id)
		rep, sent, err := r.put(ctx, pc, rec, s, epoch, cookie)
		if err != nil {
			return err
		}
		ok := rep.Status == protocol.StatusOK
		if ok || rep.Status == protocol.StatusLocked {
			sess.touched(sent, r.st)
		}
		if rep.Status == protocol.StatusLocked {
			// Our lock was broken and taken: the client ignores the 423 and
			// the write is lost silently (e.1).
			rec.lostWrite = true
		}
	case scenarios.PageAbandon:
		sess.releasing(rec.id)
		sess.beginRemove()
		rep, err := pc.call(ctx, rec, opCookie(protocol.OpRemove, sess.target, cookie), time.Now(), func(ctx context.Context, c *protocol.Conn) (*protocol.Reply, error) {
			return c.Remove(ctx, sess.target, cookie)
		})
		sess.endRemove(err == nil && rep.Status == protocol.StatusOK)
		if err != nil {
			return err
		}
	default: // read-unchanged
		sess.releasing(rec.id)
		sent := time.Now()
		rep, err := pc.call(ctx, rec, opCookie(protocol.OpReleaseExclusive, sess.target, cookie), sent, func(ctx context.Context, c *protocol.Conn) (*protocol.Reply, error) {
			return c.ReleaseExclusive(ctx, sess.target, cookie)
		})
		if err != nil {
			return err
		}
		if rep.Status == protocol.StatusOK || rep.Status == protocol.StatusLocked {
			sess.touched(sent, r.st)
		}
	}
	return nil
}

// lockWaiter tracks one page's wait for a lock.
type lockWaiter struct {
	start    time.Time // first 423
	lastDone time.Time // when the last poll completed
	broken   map[int32]bool
}

// done closes the wait when the page got past the lock.
func (w *lockWaiter) done(rec *pageRecord) {
	if !w.start.IsZero() {
		rec.lockWait = time.Since(w.start)
		w.start = time.Time{}
	}
}

// waitLock handles a 423: force-release when the lock is older than the
// execution timeout (e.3), give up when this request has waited longer than
// the execution timeout (e.2), else wait for the next poll tick.
func (r *pageRunner) waitLock(ctx context.Context, pc *partClient, s slot, rec *pageRecord, w *lockWaiter, rep *protocol.Reply) error {
	now := time.Now()
	rec.locked++
	if w.start.IsZero() {
		w.start = now
		rec.waited = true
	}
	w.lastDone = now
	if aspnetclient.BreakLock(aspnetclient.LockAge(rep, now, r.timers.second), r.timers.execTimeoutPS) && !w.broken[rep.LockCookie] {
		if w.broken == nil {
			w.broken = map[int32]bool{}
		}
		w.broken[rep.LockCookie] = true
		s.sess.breaking()
		rec.forced++
		_, err := pc.call(ctx, rec, opCookie(protocol.OpReleaseExclusive, s.sess.target, rep.LockCookie), time.Now(), func(ctx context.Context, c *protocol.Conn) (*protocol.Reply, error) {
			return c.ReleaseExclusive(ctx, s.sess.target, rep.LockCookie)
		})
		if err != nil {
			return err
		}
	}
	if time.Since(w.start) >= r.timers.execTimeout {
		rec.gaveUp = true
		w.done(rec)
		return &pageError{kind: ErrLockTimeout, err: errors.New("request timed out waiting for the session lock")}
	}
	// Poll on a fixed tick from the first 423; skip a tick that comes less
	// than pollDelta after the previous poll completed.
	for {
		k := time.Since(w.start)/r.timers.poll + 1
		next := w.start.Add(k * r.timers.poll)
		if err := sleepCtx(ctx, time.Until(next)); err != nil {
			return &pageError{kind: ErrCanceled, err: err}
		}
		if time.Since(w.lastDone) >= r.timers.pollDelta {
			break
		}
	}
	rec.polls++
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// seed creates s's session with its first body in one PUT with LockCookie 0,
// the request the client sends for a newly created item (PROTOCOL.md e.1; an
// absent item is inserted, c.2 row 9). Steady starts (Config.SteadyStart)
// seed the sessions a running farm holds this way.
func (r *pageRunner) seed(ctx context.Context, s slot, rec *pageRecord) error {
	rep, sent, err := r.put(ctx, r.web[s.webServer].parts[s.sess.partition], rec, s, 0, 0)
	if err != nil {
		return err
	}
	if rep.Status != protocol.StatusOK {
		return fmt.Errorf("PUT of a new session answered %d", rep.Status)
	}
	s.sess.touched(sent, r.st)
	return nil
}

// put writes the next version of s's session (its first body, or the last
// one grown by s.growth) with cookie, as a page that acquired the lock at
// epoch, and records the write's outcome for the checks. It returns the
// reply and when the PUT was sent.
func (r *pageRunner) put(ctx context.Context, pc *partClient, rec *pageRecord, s slot, epoch uint64, cookie int32) (*protocol.Reply, time.Time, error) {
	sess := s.sess
	size := sess.nextSize(s.size, s.growth, r.maxLen)
	w := sess.beginWrite(epoch, size)
	body := appendBody(rec.out, sess.id, w.version, size)
	rec.out = body
	sent := time.Now()
	params := protocol.SetParams{Timeout: r.timers.timeout, LockCookie: cookie}
	rep, err := pc.call(ctx, rec, opSet(sess.target, body, params), sent, func(ctx context.Context, c *protocol.Conn) (*protocol.Reply, error) {
		return c.Set(ctx, sess.target, body, params)
	})
	sess.endWrite(w, err == nil && rep.Status == protocol.StatusOK)
	return rep, sent, err
}
