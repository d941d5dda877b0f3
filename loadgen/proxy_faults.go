package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aspstate/aspstate/loadgen/faultproxy"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
)

// FaultKiller is an optional capability of FaultHooks: kill target i hard
// (SIGKILL, docker kill) and start it again. Without it a kill fault is
// applied as a restart, and its event says so.
type FaultKiller interface {
	Kill(ctx context.Context, i int) error
}

// isNetworkFault reports whether kind needs the fault proxy.
func isNetworkFault(k scenarios.FaultKind) bool {
	return k == scenarios.FaultLatency || k == scenarios.FaultBlackhole || k == scenarios.FaultResetConnections
}

// netFaults is the in-process fault proxy in front of every target.
type netFaults struct {
	proxies  []*faultproxy.Proxy
	upstream func(i int) string // the target's own address
}

// startFaultProxies puts a fault proxy in front of every target when
// cfg.FaultProxy is set or the fault timeline has a network fault, and
// points cfg.Addr at the proxies. It returns nil when no proxy is needed.
func startFaultProxies(cfg *Config) (*netFaults, error) {
	need := cfg.FaultProxy
	for _, f := range cfg.Scenario.Faults {
		need = need || isNetworkFault(f.Kind)
	}
	if !need || cfg.ClosedLoop && !cfg.FaultProxy {
		return nil, nil
	}
	orig := cfg.Addr
	targets := cfg.Targets
	nf := &netFaults{upstream: func(i int) string {
		if orig != nil {
			return orig(i)
		}
		return targets[i]
	}}
	for i := range cfg.Targets {
		p, err := faultproxy.Start(nf.upstream(i))
		if err != nil {
			nf.close()
			return nil, fmt.Errorf("target %d: %w", i, err)
		}
		nf.proxies = append(nf.proxies, p)
	}
	cfg.Addr = func(i int) string { return nf.proxies[i].Addr() }
	return nf, nil
}

func (nf *netFaults) close() {
	if nf == nil {
		return
	}
	for _, p := range nf.proxies {
		p.Close()
	}
}

// follow points proxy i at target i's current address (after a restart).
func (nf *netFaults) follow(i int) error {
	if nf == nil {
		return nil
	}
	return nf.proxies[i].SetUpstream(nf.upstream(i))
}

// faultLog records the fault events of a run and what the load saw of
// them. Workers, the fault goroutines and the collector use it.
type faultLog struct {
	mu     sync.Mutex
	events []*results.FaultEvent
	lost   int64
}

// begin records a fault that starts now.
func (l *faultLog) begin(f scenarios.Fault, shard string, targets []int) *results.FaultEvent {
	e := &results.FaultEvent{At: results.Duration(f.At), Kind: string(f.Kind), Start: time.Now(), Shard: shard,
		Targets: targets, Errors: map[string]int64{}}
	if f.Kind == scenarios.FaultRecycle {
		e.WebServer = f.Params.WebServer
		e.Targets = []int{}
	}
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	return e
}

// end closes e now with status and detail.
func (l *faultLog) end(e *results.FaultEvent, status, detail string) {
	l.mu.Lock()
	e.End = time.Now()
	e.Status, e.Detail = status, detail
	l.mu.Unlock()
}

// page counts a failed page against every fault it overlapped.
func (l *faultLog) page(rec *pageRecord) {
	if rec.errKind == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Status == results.FaultSkipped {
			continue
		}
		if rec.end.Before(e.Start) || (!e.End.IsZero() && rec.start.After(e.End)) {
			continue
		}
		e.Errors[rec.errKind]++
	}
}

// sessionLost counts a session lost to the latest restart or kill (a 404
// after another fault, such as a black hole that may have eaten the reply to
// a DELETE, is not counted).
func (l *faultLog) sessionLost() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.events) - 1; i >= 0; i-- {
		if k := scenarios.FaultKind(l.events[i].Kind); k == scenarios.FaultRestart || k == scenarios.FaultKill {
			l.events[i].SessionsLost++
			l.lost++
			return
		}
	}
}

// result returns the fault block of the run; nil without a fault timeline.
func (l *faultLog) result(timeline bool, nf *netFaults) *results.Faults {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !timeline && len(l.events) == 0 && nf == nil {
		return nil
	}
	f := &results.Faults{SessionsLost: l.lost, Events: []results.FaultEvent{}}
	if nf != nil {
		f.Proxy = faultproxy.Name
	}
	for _, e := range l.events {
		c := *e
		c.Errors = make(map[string]int64, len(e.Errors))
		for k, v := range e.Errors {
			c.Errors[k] = v
		}
		if c.End.IsZero() { // still going at the end (interrupted)
			c.End = time.Now()
		}
		f.Events = append(f.Events, c)
	}
	sort.SliceStable(f.Events, func(i, j int) bool { return f.Events[i].Start.Before(f.Events[j].Start) })
	return f
}

// shardName is "I/N" in a sharded run, else "".
func (r *runner) shardName() string {
	if r.cfg.Shard.Count == 0 {
		return ""
	}
	return r.cfg.Shard.String()
}

// applyFault carries out one fault of the timeline. Faults that last
// (pause, latency, blackhole) run in their own goroutine under wg.
func (r *runner) applyFault(ctx context.Context, f scenarios.Fault, wg *sync.WaitGroup) {
	targets := r.faultTargets(f)
	ev := r.fl.begin(f, r.shardName(), targets)
	switch {
	case f.Kind == scenarios.FaultRecycle:
		if w := f.Params.WebServer - 1; w >= 0 && w < len(r.web) {
			for _, pc := range r.web[w].parts {
				pc.reset()
			}
		}
		r.fl.end(ev, results.FaultApplied, fmt.Sprintf("web server %d: pooled connections dropped, version check armed again", f.Params.WebServer))
	case isNetworkFault(f.Kind):
		r.networkFault(ctx, f, targets, ev, wg)
	case r.cfg.Faults == nil:
		r.fl.end(ev, results.FaultSkipped, "the target has no fault control (tcp:// targets cannot be paused or restarted from here)")
	case f.Kind == scenarios.FaultPause:
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, t := range targets {
				if err := r.cfg.Faults.Pause(ctx, t); err != nil {
					r.fl.end(ev, results.FaultFailed, "pause: "+err.Error())
					return
				}
			}
			_ = sleepCtx(ctx, f.Duration.D())
			var errs []error
			for _, t := range targets {
				errs = append(errs, r.cfg.Faults.Resume(context.WithoutCancel(ctx), t))
			}
			if err := errors.Join(errs...); err != nil {
				r.fl.end(ev, results.FaultFailed, "resume: "+err.Error())
				return
			}
			r.fl.end(ev, results.FaultApplied, fmt.Sprintf("paused for %s, connections kept open", f.Duration))
		}()
	case f.Kind == scenarios.FaultRestart || f.Kind == scenarios.FaultKill:
		lostFrom := time.Now()
		r.st.bumpEpoch()
		how := "stopped and started again"
		killer, canKill := r.cfg.Faults.(FaultKiller)
		if f.Kind == scenarios.FaultKill {
			how = "killed and started again"
			if !canKill {
				how = "applied as a restart: the target cannot be killed"
			}
		}
		var errs []error
		for _, t := range targets {
			var err error
			if f.Kind == scenarios.FaultKill && canKill {
				err = killer.Kill(ctx, t)
			} else {
				err = r.cfg.Faults.Restart(ctx, t)
			}
			if err == nil {
				err = r.nf.follow(t)
			}
			errs = append(errs, err)
		}
		r.st.bumpEpoch()
		r.cfg.History.LostState(lostFrom, time.Now()) // sessions may vanish once in the check
		for _, w := range r.web {
			for _, pc := range w.parts {
				pc.pool.drop()
			}
		}
		if err := errors.Join(errs...); err != nil {
			r.fl.end(ev, results.FaultFailed, err.Error())
		} else {
			r.fl.end(ev, results.FaultApplied, how)
		}
	default:
		r.fl.end(ev, results.FaultSkipped, "unknown fault kind")
	}
}

// networkFault applies latency, blackhole or reset-connections through the
// fault proxy of each target.
func (r *runner) networkFault(ctx context.Context, f scenarios.Fault, targets []int, ev *results.FaultEvent, wg *sync.WaitGroup) {
	if r.nf == nil {
		r.fl.end(ev, results.FaultSkipped, "no fault proxy in front of the targets")
		return
	}
	if f.Kind == scenarios.FaultResetConnections {
		r.st.bumpEpoch() // replies in flight are lost
		var errs []error
		for _, t := range targets {
			errs = append(errs, r.nf.proxies[t].ResetConnections())
		}
		if err := errors.Join(errs...); err != nil {
			r.fl.end(ev, results.FaultFailed, err.Error())
			return
		}
		r.fl.end(ev, results.FaultApplied, "every open connection through the proxy closed on both sides")
		return
	}
	var removes []func() error
	var err error
	for _, t := range targets {
		var rm func() error
		if f.Kind == scenarios.FaultLatency {
			rm, err = r.nf.proxies[t].Latency(f.Params.Delay.D(), f.Params.Jitter.D())
		} else {
			rm, err = r.nf.proxies[t].Blackhole()
		}
		if err != nil {
			break
		}
		removes = append(removes, rm)
	}
	undo := func() error {
		var errs []error
		for _, rm := range removes {
			errs = append(errs, rm())
		}
		return errors.Join(errs...)
	}
	if err != nil {
		_ = undo()
		r.fl.end(ev, results.FaultFailed, err.Error())
		return
	}
	if f.Kind == scenarios.FaultBlackhole {
		// Replies may be lost after the server acted on a request.
		r.st.bumpEpoch()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = sleepCtx(ctx, f.Duration.D())
		if err := undo(); err != nil {
			r.fl.end(ev, results.FaultFailed, "removing the toxic: "+err.Error())
			return
		}
		if f.Kind == scenarios.FaultBlackhole {
			r.st.bumpEpoch()
			r.fl.end(ev, results.FaultApplied, fmt.Sprintf("every byte dropped both ways for %s; the connections held were closed at the end", f.Duration))
			return
		}
		r.fl.end(ev, results.FaultApplied, fmt.Sprintf("%s ± %s added each way for %s", f.Params.Delay, f.Params.Jitter, f.Duration))
	}()
}
