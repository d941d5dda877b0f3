package loadgen

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// openOwners runs the open model as wrk2 does, each owner following its own
// share of the schedule: a feeder plans the slots a little ahead of the
// clock and deals them out by session (so a session's pages stay in order
// on one owner); the goroutine holding an owner's role sleeps until the
// owner's next slot and runs the page itself. No slot is handed from one
// goroutine to another on its way to the socket, as the dispatcher
// (openDispatcher) hands every one; measured side by side in `make bench`,
// that handoff is not where the open model's extra CPU goes, and owners tie
// up slots behind a slow page that a free worker would take
// (docs/load.md#engines), so the dispatcher stays the default.
//
// A page must not hold up its owner's other slots. One about to wait for
// its emulated execution time or a lock poll hands the role on to a new
// goroutine (parkOwner) and finishes on its own; one still running (a slow
// reply) when the owner's next slot is LateThreshold/2 late does the same
// (overrun). A handoff is refused while Workers pages are in progress: then
// the owner's slots wait, as slots wait for a free worker in the dispatcher,
// and the refusal is counted as a slot that found no worker.
func (r *runner) openOwners(ctx, pageCtx context.Context, cutOff context.CancelFunc) bool {
	n := min(r.cfg.Workers, maxOwners)
	run := &ownersRun{r: r, ctx: ctx, pageCtx: pageCtx, grace: r.cfg.LateThreshold / 2}
	for range n {
		o := &owner{run: run, wake: make(chan struct{}, 1), sl: newShareSleeper(ctx, n)}
		o.over = time.AfterFunc(time.Hour, o.overrun)
		o.over.Stop()
		run.owners = append(run.owners, o)
	}
	run.wg.Add(n)
	for _, o := range run.owners {
		go o.loop()
	}
	interrupted := run.feed()
	r.drain(ctx, &run.wg, interrupted, cutOff)
	for _, o := range run.owners {
		o.over.Stop()
		o.sl.close()
	}
	return interrupted
}

const (
	// maxOwners bounds the owners: enough that a page blocked on a slow
	// reply holds up few slots, few enough that an idle schedule's owners
	// (each with a timerfd, see newShareSleeper) stay cheap. Workers bounds
	// them too.
	maxOwners = 64
	// feedAhead is how far ahead of the clock the feeder deals slots out,
	// and feedEvery how often it does: the owners' queues never run dry
	// while the feeder is on time, so an owner waits only on its own timer.
	feedAhead = 20 * time.Millisecond
	feedEvery = 2 * time.Millisecond
)

// Values of owner.running besides the epoch of the page the role runs.
const (
	ownerIdle    = 0  // the role's goroutine runs no page
	ownerHanding = -1 // the role is being handed to a new goroutine
)

// ownersRun is the state openOwners shares with its owners.
type ownersRun struct {
	r            *runner
	ctx, pageCtx context.Context
	owners       []*owner
	wg           sync.WaitGroup // role goroutines and pages that gave their role up
	inFlight     atomic.Int64   // pages in progress
	grace        time.Duration  // how late the next slot gets before an overrun
}

// owner is one share of the schedule.
type owner struct {
	run *ownersRun

	mu      sync.Mutex
	q       []slot // the owner's slots, in time order, from head on
	head    int
	fed     bool // the feeder has dealt out its last slot
	waiting bool // the role's goroutine waits on wake for a slot
	wake    chan struct{}

	sl    sleeper     // used only by the goroutine holding the role
	over  *time.Timer // overrun: fires when the next slot is grace late (see arm)
	epoch int64       // pages the role has started (under mu)

	running atomic.Int64 // the role's page epoch, ownerIdle or ownerHanding
	armed   atomic.Int64 // the page epoch over was set for
}

// feed deals the schedule's slots out to the owners, feedAhead ahead of the
// clock, then waits until the last slot is due. It returns true when ctx
// ended before that.
func (run *ownersRun) feed() bool {
	r := run.r
	sl := newTimerSleeper(run.ctx)
	defer sl.close()
	finish := func() {
		for _, o := range run.owners {
			o.finish()
		}
	}
	var next slot
	have := false
	var last time.Duration
	for {
		horizon := time.Since(r.start) + feedAhead
		for {
			if !have {
				s, ok := r.src.next()
				if !ok || s.at >= r.cfg.Duration {
					finish()
					return sleepCtx(run.ctx, time.Until(r.start.Add(last))) != nil
				}
				next, have = s, true
			}
			if next.at > horizon {
				break
			}
			run.owners[uint64(next.sess.seq)%uint64(len(run.owners))].push(next)
			last, have = next.at, false
		}
		if sl.sleep(run.ctx, feedEvery) != nil {
			finish()
			return true
		}
	}
}

// push appends s to the owner's queue and wakes the role if it waits.
func (o *owner) push(s slot) {
	o.mu.Lock()
	if o.head > 0 && len(o.q) == cap(o.q) { // reuse the taken slots' room
		n := copy(o.q, o.q[o.head:])
		clear(o.q[n:])
		o.q, o.head = o.q[:n], 0
	}
	if o.head == len(o.q) { // the next slot: the page running may make it late
		if e := o.running.Load(); e > 0 {
			o.arm(e, s.at)
		}
	}
	o.q = append(o.q, s)
	o.unlockWake()
}

// finish tells the owner no slot follows.
func (o *owner) finish() {
	o.mu.Lock()
	o.fed = true
	o.unlockWake()
}

// unlockWake unlocks o.mu and wakes the role if it waits for a slot.
func (o *owner) unlockWake() {
	w := o.waiting
	o.waiting = false
	o.mu.Unlock()
	if w {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

// take removes the owner's next slot and returns it; false when the
// schedule is over for the owner or the run's ctx ended.
func (o *owner) take() (slot, bool) {
	o.mu.Lock()
	for o.head == len(o.q) {
		if o.fed {
			o.mu.Unlock()
			return slot{}, false
		}
		o.waiting = true
		o.mu.Unlock()
		select {
		case <-o.wake:
		case <-o.run.ctx.Done():
			return slot{}, false
		}
		o.mu.Lock()
	}
	s := o.q[o.head]
	o.q[o.head] = slot{}
	o.head++
	if o.head == len(o.q) {
		o.q, o.head = o.q[:0], 0
	}
	o.mu.Unlock()
	return s, true
}

// begin starts the role's next page and returns its epoch.
func (o *owner) begin() int64 {
	o.mu.Lock()
	o.epoch++
	e := o.epoch
	o.running.Store(e)
	if o.head < len(o.q) {
		o.arm(e, o.q[o.head].at)
	}
	o.mu.Unlock()
	return e
}

// arm sets the overrun timer of page e for the owner's next slot, due at
// at. o.mu is held: the role arms it for its page as the page begins, the
// feeder when it queues the next slot while the page runs.
func (o *owner) arm(e int64, at time.Duration) {
	o.armed.Store(e)
	o.over.Reset(time.Until(o.run.r.start.Add(at)) + o.run.grace)
}

// loop is the goroutine holding the owner's role: it sleeps until the next
// slot, runs its page and goes on, until the owner's slots are done, the
// run's ctx ends or the role moved to another goroutine during a page.
func (o *owner) loop() {
	run := o.run
	r := run.r
	defer run.wg.Done()
	for {
		s, ok := o.take()
		if !ok {
			return
		}
		at := r.start.Add(s.at)
		if o.sl.sleep(run.ctx, time.Until(at)) != nil {
			if !time.Now().Before(at) { // due, never started
				r.scheduled.Add(1)
				r.dropped.Add(1)
			}
			return
		}
		r.scheduled.Add(1)
		if run.pageCtx.Err() != nil { // cut off at the end of the drain
			r.dropped.Add(1)
			continue
		}
		e := o.begin()
		run.inFlight.Add(1)
		r.execOwned(run.pageCtx, s, at, time.Now(), o, e)
		run.inFlight.Add(-1)
		if !o.running.CompareAndSwap(e, ownerIdle) {
			// The role moved on during the page: wait until its new
			// goroutine is counted in wg, then end.
			for o.running.Load() == ownerHanding {
				runtime.Gosched()
			}
			return
		}
		o.over.Stop()
	}
}

// overrun is over's callback: the page the role runs is still running when
// the owner's next slot is grace late.
func (o *owner) overrun() {
	if !o.handoff(o.armed.Load()) {
		o.run.r.noWorker.Add(1)
	}
}

// handoff moves the role from its page epoch e to a new goroutine. It
// returns false when Workers pages are in progress (the role stays) and
// true otherwise (also when page e no longer holds the role).
func (o *owner) handoff(e int64) bool {
	run := o.run
	if run.inFlight.Load() >= int64(run.r.cfg.Workers) {
		return o.running.Load() != e
	}
	if !o.running.CompareAndSwap(e, ownerHanding) {
		return true
	}
	run.wg.Add(1)
	o.running.Store(ownerIdle)
	go o.loop()
	return true
}

// parkOwner hands the role of the page's owner on before the page waits
// (its execution time, a lock poll), so the wait holds up none of the
// owner's other slots. A page run by no owner does nothing.
func (p *pageRecord) parkOwner() {
	if p.owner != nil {
		p.owner.handoff(p.ownerEpoch)
		p.owner = nil
	}
}
