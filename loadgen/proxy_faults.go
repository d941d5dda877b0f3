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
	"github.com/aspstate/aspstate/servers/target"
)

// isNetworkFault reports whether kind needs the fault proxy.
func isNetworkFault(k scenarios.FaultKind) bool {
	return k == scenarios.FaultLatency || k == scenarios.FaultBlackhole || k == scenarios.FaultResetConnections
}

// netFaults is the in-process fault proxy in front of every target.
type netFaults struct {
	proxies []*faultproxy.Proxy
	targets []target.Target // upstream of proxies[i]: targets[i].Addr()
}

// startFaultProxies puts a fault proxy in front of every target when
// cfg.FaultProxy is set or the fault timeline has a network fault. It
// returns nil when no proxy is needed; the run dials through addr.
func startFaultProxies(cfg Config) (*netFaults, error) {
	need := cfg.FaultProxy
	for _, f := range cfg.Scenario.Faults {
		need = need || isNetworkFault(f.Kind)
	}
	if !need || cfg.ClosedLoop && !cfg.FaultProxy {
		return nil, nil
	}
	nf := &netFaults{targets: cfg.Targets}
	for i, t := range cfg.Targets {
		p, err := faultproxy.Start(t.Addr())
		if err != nil {
			nf.close()
			return nil, fmt.Errorf("target %d: %w", i, err)
		}
		nf.proxies = append(nf.proxies, p)
	}
	return nf, nil
}

// addr is where the run dials target i of ts: its fault proxy when there
// is one (nf != nil), else the target's current address.
func (nf *netFaults) addr(ts []target.Target, i int) string {
	if nf == nil {
		return ts[i].Addr()
	}
	return nf.proxies[i].Addr()
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
	return nf.proxies[i].SetUpstream(nf.targets[i].Addr())
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
	case !anyProcessControl(r.cfg.Targets):
		r.fl.end(ev, results.FaultSkipped, "the target has no fault control (tcp:// targets cannot be paused or restarted from here)")
	case f.Kind == scenarios.FaultPause:
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.pause(ctx, f, targets, ev)
		}()
	case f.Kind == scenarios.FaultRestart || f.Kind == scenarios.FaultKill:
		r.restart(ctx, f, targets, ev)
	default:
		r.fl.end(ev, results.FaultSkipped, "unknown fault kind")
	}
}

// pause pauses the targets for the fault's duration, then resumes them
// (those it paused, when pausing one failed).
func (r *runner) pause(ctx context.Context, f scenarios.Fault, targets []int, ev *results.FaultEvent) {
	var paused []target.Pauser
	var err error
	for _, t := range targets {
		p, ok := r.cfg.Targets[t].(target.Pauser)
		if !ok {
			err = fmt.Errorf("target %d cannot be paused", t+1)
			break
		}
		if err = p.Pause(ctx); err != nil {
			break
		}
		paused = append(paused, p)
	}
	if err == nil {
		_ = sleepCtx(ctx, f.Duration.D())
	}
	var errs []error
	for _, p := range paused {
		errs = append(errs, p.Resume(context.WithoutCancel(ctx)))
	}
	switch rerr := errors.Join(errs...); {
	case err != nil:
		r.fl.end(ev, results.FaultFailed, "pause: "+err.Error())
	case rerr != nil:
		r.fl.end(ev, results.FaultFailed, "resume: "+rerr.Error())
	default:
		r.fl.end(ev, results.FaultApplied, fmt.Sprintf("paused for %s, connections kept open", f.Duration))
	}
}

// restart restarts the targets (a kill fault: kills them hard where they
// can be killed, else restarts them) and drops every pooled connection.
func (r *runner) restart(ctx context.Context, f scenarios.Fault, targets []int, ev *results.FaultEvent) {
	lostFrom := time.Now()
	r.st.bumpEpoch()
	how := "stopped and started again"
	if f.Kind == scenarios.FaultKill {
		how = "killed and started again"
	}
	var errs []error
	for _, t := range targets {
		var err error
		k, canKill := r.cfg.Targets[t].(target.Killer)
		rs, canRestart := r.cfg.Targets[t].(target.Restarter)
		switch {
		case f.Kind == scenarios.FaultKill && canKill:
			err = k.Kill(ctx)
		case canRestart:
			if f.Kind == scenarios.FaultKill {
				how = "applied as a restart: the target cannot be killed"
			}
			err = rs.Restart(ctx)
		default:
			err = fmt.Errorf("target %d cannot be restarted", t+1)
		}
		if err == nil {
			err = r.nf.follow(t)
		}
		errs = append(errs, err)
	}
	r.st.bumpEpoch()
	r.hist.LostState(lostFrom, time.Now()) // sessions may vanish once in the check
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
