package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aspstate/aspstate/protocol/aspnetclient"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// Config is one load run: settings only. The CLI fills it; Run records it
// in the result and returns what it measured there (results.Run), never in
// the Config.
type Config struct {
	// Scenario is the web-farm pattern (defaults applied, validated).
	Scenario *scenarios.Scenario
	// Targets are the state servers; partition p of the scenario goes to
	// Targets[p % len(Targets)], dialled at its current Addr (a restarted
	// target may move). The faults of the timeline use the targets'
	// optional capabilities, found by type assertion: target.Pauser,
	// target.Restarter, target.Killer (see CheckFaultCapabilities).
	Targets []target.Target
	// Rate, when > 0, replaces the scenario's mean page rate: the rate shape
	// is scaled so its mean is Rate (not allowed with a population model).
	Rate float64
	// Duration, when > 0, replaces the scenario's duration.
	Duration time.Duration
	// Minute is the protocol minute of the target (time scale); 0 = 1m.
	// Client timers in protocol units follow it (see the package doc).
	Minute time.Duration
	// ClosedLoop selects closed-loop saturation: Connections users send
	// pages back to back. Its throughput is not an offered rate.
	ClosedLoop bool
	// Connections is the number of closed-loop users (default 16).
	Connections int
	// Workers bounds the pages in progress at once in open mode (default
	// 1024); a slot that finds none free waits in a queue and is counted.
	Workers int
	// LateThreshold is the start delay above which a slot counts as late
	// (default 1ms).
	LateThreshold time.Duration
	// Interval is the length of one time-series point and .hlog interval
	// (default 1s).
	Interval time.Duration
	// Drain is how long pages in progress may finish after the schedule
	// ends (default the network timeout); after it they are cut off.
	Drain time.Duration
	// Seed makes the plan reproducible (default 1): arrivals, session
	// lengths, page kinds and sizes. Session ids are not part of it: they
	// are random in every run, so a run never meets an earlier run's items.
	Seed uint64
	// Harness names the build, for the result.
	Harness results.Harness
	// Linearizability records every protocol operation of the run and
	// checks each session's history for linearizability after it; the
	// verdict is the result's Linearizability. The check runs under Run's
	// ctx: a run whose ctx ended (Ctrl-C, an abort) keeps the partial
	// verdict of an interrupted check.
	Linearizability bool
	// LinearizabilityHTML, when set, is where the porcupine visualisation of
	// one failing session is written.
	LinearizabilityHTML string
	// FaultProxy routes every connection through an in-process fault proxy
	// (toxiproxy); it is on whenever the fault timeline has a network fault
	// (latency, blackhole, reset-connections).
	FaultProxy bool
	// Shard, when set, runs shard Index of Count: its share of the farm's
	// web servers and of the rate (see Shard).
	Shard Shard
	// StartAt, when set, is when the schedule starts (every shard of a run
	// gets the same); zero starts at once.
	StartAt time.Time
	// SteadyStart starts the open model from a farm's steady state instead
	// of an empty store: before the schedule, the sessions a farm running at
	// the schedule's starting rate holds mid-life (rate × mean think time;
	// a population: one per user) are written, one PUT each, unmeasured.
	// A cold start (the default) measures a farm whose store was just
	// emptied: for the first think times most pages find no session and
	// create one (up to four requests instead of two), a surge that near
	// capacity builds a backlog the rest of a short run pays for. Ignored
	// in closed-loop mode.
	SteadyStart bool
	// SourceAddrs, when set, gives every emulated web server its own local
	// address: web server i (0-based, farm-wide) binds its connections to
	// SourceAddrs[i], so a capture of the state server's port shows a farm
	// of distinct clients (distinct 127.0.0.x on loopback). It needs at
	// least one address per web server (ParseSourceAddrs reads a range or a
	// prefix). Empty: the system picks the address, as before.
	SourceAddrs []netip.Addr
	// Pages, when set, replaces the scenario's schedule as the source of
	// the open model's pages (aspstate load --trace); the scenario still
	// gives the farm (web servers, apps, partitions) and the client's
	// timers. Seeds are the source's sessions that existed before it
	// began: written first, unmeasured, as SteadyStart writes its sessions.
	// SourceOptions are added to the result's options (what the source is).
	Pages         PageSource
	Seeds         []SourcePage
	SourceOptions map[string]string

	// Hooks: functions the run calls. They observe or replace plumbing and
	// are not part of the result.

	// Progress, when set, is called once per interval from one goroutine.
	Progress func(Progress)
	// Log, when set, receives setup messages (the steady start's seeding).
	Log io.Writer
	// Dial overrides how connections are made (tests); the pool wraps
	// what it returns in a protocol.Conn.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// Progress is a snapshot for live display.
type Progress struct {
	Elapsed, Total time.Duration
	ClosedLoop     bool
	Rate           float64 // pages per second over the last interval
	P99            time.Duration
	Pages, Errors  int64
	LockWaits      int64 // 423 replies so far
	Violations     int64
	// Planned is how many pages the schedule holds over the whole run (0
	// without a fixed schedule: population and closed-loop runs).
	Planned int64
	// Failed is the pages so far that ended with an error.
	Failed int64
	// Logs are the interval's histograms, the entries the .hlog files get.
	// They belong to the run: read them, do not keep or change them.
	Logs []results.LogEntry
}

// DefaultConfig returns the defaults for the optional fields.
func DefaultConfig() Config {
	return Config{Connections: 16, Workers: 1024, LateThreshold: time.Millisecond,
		Interval: time.Second, Seed: 1, Minute: time.Minute}
}

// Validate reports every problem of c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Scenario == nil {
		errs = append(errs, errors.New("no scenario"))
	} else if err := c.Scenario.Validate(); err != nil {
		errs = append(errs, err)
	} else if c.Rate > 0 && c.Scenario.Users.Population > 0 && !c.ClosedLoop {
		errs = append(errs, fmt.Errorf("scenario %s uses a population of %d users, whose rate follows from think time; drop --rate", c.Scenario.Name, c.Scenario.Users.Population))
	}
	if len(c.Targets) == 0 {
		errs = append(errs, errors.New("no target"))
	} else if c.Scenario != nil {
		if err := CheckFaultCapabilities(c.Scenario.Faults, c.Targets); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || c.Rate > scenarios.MaxPagesPerSecond {
		errs = append(errs, fmt.Errorf("rate %v: want 0 (the scenario's) or a positive number of pages per second up to %d", c.Rate, scenarios.MaxPagesPerSecond))
	}
	errs = append(errs, c.validateSourceAddrs()...)
	errs = append(errs, c.validateSource()...)
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration %s: must not be negative", c.Duration))
	}
	if c.Minute < 0 || (c.Minute > 0 && c.Minute < 60*time.Millisecond) {
		errs = append(errs, fmt.Errorf("minute %s: want at least 60ms (one protocol second = 1ms)", c.Minute))
	}
	for name, v := range map[string]int{"connections": c.Connections, "workers": c.Workers} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must not be negative", name, v))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.Connections == 0 {
		c.Connections = d.Connections
	}
	if c.Workers == 0 {
		c.Workers = d.Workers
	}
	if c.LateThreshold == 0 {
		c.LateThreshold = d.LateThreshold
	}
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	if c.Minute == 0 {
		c.Minute = d.Minute
	}
	if c.Duration == 0 {
		c.Duration = c.Scenario.Duration.D()
	}
	if c.Drain == 0 {
		c.Drain = c.Scenario.Client.NetworkTimeout.D()
	}
}

// scaledRate returns the scenario's rate with its mean set to want.
func scaledRate(r scenarios.Rate, d time.Duration, want float64) (scenarios.Rate, error) {
	s, err := NewSchedule(r, d, 1)
	if err != nil {
		return r, err
	}
	f := want / s.MeanRate()
	r.PagesPerSecond *= f
	r.From *= f
	r.To *= f
	r.Steps = append([]scenarios.Step(nil), r.Steps...)
	for i := range r.Steps {
		r.Steps[i].PagesPerSecond *= f
	}
	return r, nil
}

// scale converts a client timer in real ASP.NET time to the run's time scale.
func scale(d, minute time.Duration) time.Duration {
	return time.Duration(float64(d) * float64(minute) / float64(time.Minute))
}

// Run runs the load described by cfg until its schedule ends or ctx is
// done, and returns the result. An ended ctx is not an error: the result is
// marked interrupted. The error is for a configuration that cannot run.
func Run(ctx context.Context, cfg Config) (*results.Run, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fill()
	if err := cfg.applyShard(); err != nil {
		return nil, err
	}
	nf, err := startFaultProxies(cfg)
	if err != nil {
		return nil, err
	}
	defer nf.close()
	var hist *History
	if cfg.Linearizability {
		hist = NewHistory(0)
	}
	sc := cfg.Scenario
	rate := sc.Rate
	if cfg.Rate > 0 && !cfg.ClosedLoop {
		var err error
		if rate, err = scaledRate(rate, cfg.Duration, cfg.Rate); err != nil {
			return nil, err
		}
	}
	var sched *Schedule
	if sc.Users.Population == 0 && !cfg.ClosedLoop {
		var err error
		if sched, err = NewSchedule(rate, cfg.Duration, cfg.Seed); err != nil {
			return nil, err
		}
	}
	cl := sc.Client
	poll := max(scale(cl.LockPollInterval.D(), cfg.Minute), 2*time.Millisecond)
	timers := clientTimers{
		timeout:       int32(cl.SessionTimeout),
		execTimeout:   scale(cl.ExecutionTimeout.D(), cfg.Minute),
		execTimeoutPS: int64(cl.ExecutionTimeout.D() / time.Second),
		second:        scale(time.Second, cfg.Minute),
		poll:          poll,
		pollDelta:     poll / 2,
	}
	st := newState(timers.timeout, cfg.Minute)
	addr := func(i int) func() string { return func() string { return nf.addr(cfg.Targets, i) } }
	web := make([]*webServer, sc.Farm.WebServers)
	var pools []*pool
	for w := range web {
		web[w] = &webServer{}
		for p := 0; p < sc.Farm.Partitions; p++ {
			pl := newPool(addr(p%len(cfg.Targets)), cl.IdleTimeout.D(), cfg.webDial(w))
			pools = append(pools, pl)
			pc := newPartClient(pl, !cl.DisableVersionCheck, cl.NetworkTimeout.D())
			pc.hist = hist
			web[w].parts = append(web[w].parts, pc)
		}
	}
	defer func() {
		for _, p := range pools {
			p.close()
		}
	}()
	pr := &pageRunner{st: st, web: web, timers: timers, maxLen: sc.Session.MaxBytes,
		queue: aspnetclient.NewSessionQueue(sc.Client.RequestQueueLimitPerSession)}
	// Session ids are random per run, as the real client's 120 random bits
	// are: ids derived from the seed came back in every run with that seed,
	// and a server that still held the previous run's items under them
	// answered with bodies this run never wrote.
	idKey, err := runIDKey()
	if err != nil {
		return nil, err
	}
	pl := newPlanner(sc, sched, cfg.Duration, cfg.Seed, st, idKey)
	var seeded *seedReport
	var src slotSource = pl
	if cfg.Pages != nil {
		sp := newSourcePlanner(cfg.Pages, pl)
		src = sp
		if len(cfg.Seeds) > 0 {
			rep := pr.seedSessions(ctx, sp.seeds(cfg.Seeds), cfg.Workers, cfg.Log)
			seeded = &rep
		}
	} else if cfg.SteadyStart && !cfg.ClosedLoop {
		rate0 := 0.0
		if sched != nil {
			rate0 = sched.StartRate()
		}
		rep := pr.seedSessions(ctx, pl.steady(rate0), cfg.Workers, cfg.Log)
		seeded = &rep
	}
	// Start a little ahead so the first slots are not late because of setup
	// (or at StartAt, with the other shards).
	start, err := startTime(ctx, cfg.StartAt)
	if err != nil {
		return nil, err
	}

	r := &runner{cfg: cfg, pr: pr, st: st, pl: pl, src: src, start: start, web: web,
		recs: make(chan *pageRecord, recordQueue), col: newCollector(start, cfg.LateThreshold, cfg.ClosedLoop),
		fl: &faultLog{}, nf: nf, hist: hist, seeded: seeded, info: targetInfo(cfg.Targets)}
	if sched != nil {
		r.planned = int64(math.Round(sched.MeanRate() * cfg.Duration.Seconds()))
	}
	st.onLost = r.fl.sessionLost
	// Pages get their own context: the run's end (or ctx) stops new pages at
	// once, and cuts in-progress pages off only after the drain time.
	pageCtx, cutOff := context.WithCancel(context.WithoutCancel(ctx))
	defer cutOff()
	colDone := make(chan struct{})
	go func() { r.collect(ctx); close(colDone) }()
	faultsDone := r.startFaults(ctx)

	var interrupted bool
	cpu := startCPU()
	if cfg.ClosedLoop {
		interrupted = r.closedLoop(ctx, pageCtx, cutOff)
	} else {
		interrupted = r.open(ctx, pageCtx, cutOff)
	}
	end := time.Now()
	close(r.recs)
	<-colDone
	<-faultsDone
	used := cpu.stop()
	run, err := r.result(interrupted, end, rate, sched)
	if err != nil {
		return nil, err
	}
	run.Generator = used
	if hist != nil {
		// A run ended by ctx keeps the partial verdict of an interrupted check.
		lin, err := hist.Check(ctx, CheckOptions{Minute: cfg.Minute, Visualization: cfg.LinearizabilityHTML})
		if err != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("linearizability check: %w", err)
		}
		run.Linearizability = lin
	}
	return run, nil
}

// cpuMeter measures the CPU the process uses over a stretch of time.
type cpuMeter struct {
	at           time.Time
	user, system time.Duration
	ok           bool
}

func startCPU() cpuMeter {
	u, s, ok := processCPU()
	return cpuMeter{at: time.Now(), user: u, system: s, ok: ok}
}

// stop returns what was used since startCPU, nil where it cannot tell.
func (m cpuMeter) stop() *results.Generator {
	u, s, ok := processCPU()
	if !ok || !m.ok {
		return nil
	}
	return &results.Generator{CPUUser: results.Duration(u - m.user), CPUSystem: results.Duration(s - m.system),
		Wall: results.Duration(time.Since(m.at))}
}

// runner is the state of one run.
type runner struct {
	cfg   Config
	pr    *pageRunner
	st    *state
	pl    *planner
	src   slotSource // the open model's slots: pl, or a PageSource
	start time.Time
	web   []*webServer
	recs  chan *pageRecord
	col   *collector

	pageID                       atomic.Int64
	scheduled, dropped, noWorker atomic.Int64
	fl                           *faultLog        // fault events
	nf                           *netFaults       // fault proxies, nil without
	hist                         *History         // operations for the linearizability check, nil without
	info                         []results.Target // the targets as the run began
	seeded                       *seedReport      // steady start, nil for a cold one
	planned                      int64            // pages the schedule holds, 0 without one
}

// exec runs one page that was due at intended and started at start, hands
// its record to the collector and returns when it ended.
func (r *runner) exec(ctx context.Context, s slot, intended, start time.Time) time.Time {
	rec := newPageRecord()
	rec.id, rec.kind, rec.intended, rec.start = r.pageID.Add(1), string(s.kind), intended, start
	r.pr.run(ctx, s, rec)
	end := time.Now()
	rec.end = end
	r.recs <- rec
	return end
}

// job is a slot handed to a worker.
type job struct {
	s        slot
	intended time.Time
}

// queueLimit bounds the slots waiting for a worker in open mode; past it
// slots are dropped and counted.
const queueLimit = 100000

// open runs the open model: one dispatcher follows the plan in real time
// and hands slots to workers; it never waits for a reply.
func (r *runner) open(ctx, pageCtx context.Context, cutOff context.CancelFunc) bool {
	jobs := make(chan job, queueLimit)
	var idle, spawned atomic.Int64
	var stopping atomic.Bool
	var wg sync.WaitGroup
	worker := func() {
		defer wg.Done()
		for j := range jobs {
			idle.Add(-1)
			if stopping.Load() || pageCtx.Err() != nil {
				// Interrupted, or cut off at the end of the drain: a slot
				// still queued was never started.
				r.dropped.Add(1)
			} else {
				r.exec(pageCtx, j.s, j.intended, time.Now())
			}
			idle.Add(1)
		}
	}
	interrupted := false
	sl := newSleeper(ctx)
	defer sl.close()
	for {
		s, ok := r.src.next()
		if !ok || s.at >= r.cfg.Duration {
			break
		}
		at := r.start.Add(s.at)
		if sl.sleep(ctx, time.Until(at)) != nil {
			interrupted = true
			break
		}
		r.scheduled.Add(1)
		if idle.Load() <= 0 {
			if spawned.Load() < int64(r.cfg.Workers) {
				spawned.Add(1)
				idle.Add(1)
				wg.Add(1)
				go worker()
			} else {
				r.noWorker.Add(1)
			}
		}
		select {
		case jobs <- job{s: s, intended: at}:
		default:
			r.dropped.Add(1)
		}
	}
	if interrupted {
		stopping.Store(true) // queued slots are dropped, not started
	}
	close(jobs)
	r.drain(ctx, &wg, interrupted, cutOff)
	return interrupted
}

// drain waits for the pages in progress, cutting them off after the drain
// time (or at once after a second when interrupted).
func (r *runner) drain(ctx context.Context, wg *sync.WaitGroup, interrupted bool, cutOff context.CancelFunc) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	grace := r.cfg.Drain
	if interrupted {
		grace = min(grace, time.Second)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	case <-ctx.Done():
		if !interrupted {
			select {
			case <-done:
				return
			case <-time.After(time.Second):
			}
		}
	}
	cutOff()
	<-done
}

// closedLoop runs Connections users back to back for the duration. This is
// closed-loop saturation: every page waits for the previous one, so the
// throughput measures the system's capacity, not an offered rate.
//
// The drain (and its cut-off of pageCtx) starts only when the duration is
// over or ctx ends, as in open mode: started with the users, it cut every
// page off one drain time (the network timeout) into the run. A user stops
// when the run ends, ctx ends or pageCtx is cut off, so it never loops on
// pages that cannot run.
func (r *runner) closedLoop(ctx, pageCtx context.Context, cutOff context.CancelFunc) bool {
	var mu sync.Mutex
	var wg sync.WaitGroup
	if err := sleepCtx(ctx, time.Until(r.start)); err != nil { // the start is 20ms ahead of setup, for both modes
		return true
	}
	end := r.start.Add(r.cfg.Duration)
	for i := 0; i < r.cfg.Connections; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := &plannedSession{}
			// A user starts the next page as the last one ends: one clock
			// read serves both.
			now := time.Now()
			for ctx.Err() == nil && pageCtx.Err() == nil && now.Before(end) {
				mu.Lock()
				s := r.pl.nextClosed(u)
				mu.Unlock()
				r.scheduled.Add(1)
				now = r.exec(pageCtx, s, now, now)
			}
		}()
	}
	interrupted := sleepCtx(ctx, time.Until(end)) != nil
	r.drain(ctx, &wg, interrupted, cutOff)
	return interrupted
}

// collect feeds records to the collector and closes intervals on time.
func (r *runner) collect(ctx context.Context) {
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	// The collector looks at the record queue on its own clock rather than
	// waiting on it: a send to a buffered channel nobody waits on wakes no
	// goroutine, so a page costs its worker no context switch (at 30k
	// pages/s a wake per page was a tenth of the generator's CPU).
	poll := time.NewTicker(collectPoll)
	defer poll.Stop()
	total := r.cfg.Duration
	logsSeen := 0 // log entries already handed to Progress
	// drain adds every queued record; false once the queue is closed and empty.
	drain := func() bool {
		for {
			select {
			case rec, ok := <-r.recs:
				if !ok {
					return false
				}
				r.col.add(rec)
				r.fl.page(rec)
				rec.free()
			default:
				return true
			}
		}
	}
	for {
		select {
		case <-poll.C:
			if !drain() {
				r.col.flush(time.Now())
				return
			}
		case now := <-tick.C:
			open := drain()
			r.col.flush(now)
			if !open {
				return
			}
			if r.cfg.Progress != nil {
				iv := r.col.intervals[len(r.col.intervals)-1]
				logs := r.col.logs[logsSeen:]
				logsSeen = len(r.col.logs)
				_, _, nv := r.st.snapshotViolations()
				var errs int64
				for _, n := range r.col.errors {
					errs += n
				}
				r.cfg.Progress(Progress{Elapsed: now.Sub(r.start), Total: total, ClosedLoop: r.cfg.ClosedLoop,
					Rate: iv.Throughput, P99: time.Duration(iv.P99), Pages: r.col.completed, Errors: errs,
					LockWaits: r.col.locked, Violations: nv, Planned: r.planned, Failed: r.col.failed, Logs: logs})
			}
		}
	}
}

// collectPoll is how often the collector takes the queued page records, and
// recordQueue how many the queue holds: ample for 2 ms at any rate one
// generator reaches (a full queue only makes workers wait, nothing is lost).
const (
	collectPoll = 2 * time.Millisecond
	recordQueue = 1 << 16
)

// startFaults runs the scenario's fault timeline in At order (see
// applyFault); every fault becomes an event of the result.
func (r *runner) startFaults(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	faults := r.cfg.Scenario.SortedFaults()
	if len(faults) == 0 || r.cfg.ClosedLoop {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		end := r.start.Add(r.cfg.Duration)
		var wg sync.WaitGroup
		for i, f := range faults {
			at := r.start.Add(f.At.D())
			if !at.Before(end) || sleepCtx(ctx, time.Until(at)) != nil || time.Now().After(end) {
				for _, g := range faults[i:] {
					r.fl.end(r.fl.begin(g, r.shardName(), nil), results.FaultSkipped, "the run ended before it")
				}
				break
			}
			r.applyFault(ctx, f, &wg)
		}
		wg.Wait()
	}()
	return done
}

// faultTargets maps a fault's partition (1-based, 0 = all) onto targets.
func (r *runner) faultTargets(f scenarios.Fault) []int { return FaultTargets(f, len(r.cfg.Targets)) }

// FaultTargets returns the indices of the n targets (partitions) fault f
// hits: the one its partition parameter names, else all.
func FaultTargets(f scenarios.Fault, n int) []int {
	if p := f.Params.Partition; p > 0 {
		return []int{(p - 1) % n}
	}
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// targetInfo describes the targets for a result.
func targetInfo(ts []target.Target) []results.Target {
	out := make([]results.Target, 0, len(ts))
	for _, t := range ts {
		in := t.Info()
		out = append(out, results.Target{Spec: in.Spec, Kind: in.Kind, Addr: in.Addr, Description: in.Description})
	}
	return out
}

// result assembles the results.Run.
func (r *runner) result(interrupted bool, end time.Time, rate scenarios.Rate, sched *Schedule) (*results.Run, error) {
	c := r.col
	if c.err != nil {
		return nil, c.err
	}
	cfg := r.cfg
	sc := cfg.Scenario.Clone()
	sc.Rate = rate
	mode, shape, intendedRate := results.ModeOpen, ShapeName(rate), 0.0
	switch {
	case cfg.ClosedLoop:
		mode, shape = results.ModeClosedLoop, "closed-loop"
	case sched != nil:
		intendedRate = sched.MeanRate()
	default:
		// A population's intended rate is N / mean think time.
		shape, intendedRate = "population", cfg.Scenario.PagesPerSecondAt(0)
	}
	opts := map[string]string{
		"seed": strconv.FormatUint(cfg.Seed, 10), "workers": strconv.Itoa(cfg.Workers),
		"queue_limit": strconv.Itoa(queueLimit), "interval": cfg.Interval.String(), "drain": cfg.Drain.String(),
		"poll_interval": r.pr.timers.poll.String(), "exec_timeout_real": r.pr.timers.execTimeout.String(),
		"go_maxprocs": strconv.Itoa(runtime.GOMAXPROCS(0)),
	}
	if cfg.ClosedLoop {
		opts["connections"] = strconv.Itoa(cfg.Connections)
	} else {
		opts["start"] = "cold"
		if r.seeded != nil {
			opts["start"] = "steady"
		}
	}
	for k, v := range cfg.SourceOptions {
		opts[k] = v
	}
	if len(cfg.SourceAddrs) > 0 {
		var used []string
		for w := range r.web {
			used = append(used, cfg.webSource(w).String())
		}
		opts["source_addrs"] = strings.Join(used, ",")
	}
	if cfg.Shard.Count > 0 {
		opts["start_at"] = r.start.UTC().Format(time.RFC3339Nano)
	}
	run := &results.Run{
		Schema:  results.Schema,
		Harness: cfg.Harness,
		Start:   r.start.UTC(),
		End:     end.UTC(),
		Config: results.Config{
			Mode: mode, Shape: shape, Rate: intendedRate, Duration: results.Duration(cfg.Duration),
			Minute: results.Duration(cfg.Minute), ScenarioName: sc.Name, Scenario: sc,
			Options: opts, Targets: r.info, Shard: r.shardName(),
		},
		Interrupted: interrupted,
		Faults:      r.fl.result(len(cfg.Scenario.Faults) > 0 && !cfg.ClosedLoop, r.nf),
		Errors:      c.errors,
		Intervals:   c.intervals,
		Logs:        c.logs,
	}
	if r.seeded != nil {
		run.Seeding = &results.Seeding{Sessions: r.seeded.seeded, Detail: r.seeded.String()}
	}
	if sp, ok := r.src.(*sourcePlanner); ok && sp.err != nil {
		run.Failure = "the page source stopped: " + sp.err.Error()
	}
	if run.Harness.Go == "" {
		run.Harness.Go = runtime.Version()
	}
	var err error
	if run.Ops, err = c.stats("op."); err != nil {
		return nil, err
	}
	if run.Pages, err = c.stats("page."); err != nil {
		return nil, err
	}
	if run.PageState, err = c.stats(results.PageStateTagPrefix); err != nil {
		return nil, err
	}
	wait, err := results.NewLatency(c.lockWait)
	if err != nil {
		return nil, err
	}
	if c.timerLag.TotalCount() > 0 {
		lag, err := results.NewLatency(c.timerLag)
		if err != nil {
			return nil, err
		}
		run.Machine = &results.Machine{TimerLag: lag}
	}
	run.Locks = results.Locks{Acquires: c.acquires, Waited: c.waited, Locked: c.locked, Polls: c.polls,
		MaxPollsPerAcquire: c.maxPolls, ForcedBreaks: c.forced, WaitTimeouts: c.gaveUp, Wait: wait,
		LostWritesAfterLockBreak: c.lostWrites}
	if c.acquires > 0 {
		run.Locks.PollsPerAcquire = float64(c.polls) / float64(c.acquires)
	}
	viol, examples, total := r.st.snapshotViolations()
	run.Correctness = results.Correctness{Checks: r.st.checks.Load(), Violations: viol, Examples: examples, Total: total,
		SkippedChecks: r.st.skipped.Load()}
	window := end.Sub(r.start)
	if planned := cfg.Duration; !interrupted && window < planned {
		window = planned
	}
	if !c.lastEnd.IsZero() && c.lastEnd.Sub(r.start) < window && !interrupted {
		window = max(c.lastEnd.Sub(r.start), cfg.Duration)
	}
	run.Rate = results.Rate{
		Intended: intendedRate, Scheduled: r.scheduled.Load(), Started: c.started, Completed: c.completed, CutOff: c.cutOff,
		Dropped: r.dropped.Load(), NoWorker: r.noWorker.Load(), Late: c.late,
		LateThreshold: results.Duration(cfg.LateThreshold), MaxLateness: results.Duration(c.maxLateness),
		Window: results.Duration(window),
	}
	if window > 0 {
		run.Rate.Achieved = float64(c.completed) / window.Seconds()
		if cfg.ClosedLoop {
			// A saturation figure counts served pages only: a page that
			// failed (often at once) says nothing about capacity.
			run.Rate.Achieved = float64(c.completed-c.failed) / window.Seconds()
		}
	}
	if intendedRate > 0 && sched != nil {
		run.Rate.Intended = float64(r.scheduled.Load()) / cfg.Duration.Seconds()
		if interrupted {
			run.Rate.Intended = float64(r.scheduled.Load()) / window.Seconds()
		}
	}
	return run, nil
}
