// Package results owns the result of one load run: the versioned result.json
// format (Run), the HdrHistogram interval logs (.hlog) and the human summary
// written beside it, and reading them back.
//
// A result directory holds:
//
//	result.json       the Run, deterministic JSON (sorted keys, stable order)
//	corrected.hlog    interval histograms, latency from the intended start
//	uncorrected.hlog  interval histograms, latency from the actual send
//	summary.txt       the text Summary prints
//
// Latencies are recorded in nanoseconds everywhere (histograms, percentiles,
// logs), so the .hlog "max" column, which the HdrHistogram log writer divides
// by 1e6, is in milliseconds as every HdrHistogram tool expects.
//
// The format is designed for later report, compare and plan commands: every
// histogram is stored encoded (hdrhistogram-go Encode, base64) so percentiles
// can be recomputed and runs merged without the raw samples.
package results

import (
	"errors"
	"fmt"
	"sort"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/aspstate/aspstate/scenarios"
)

// Schema is the value of Run.Schema for this version of the format.
// Version 2 stores the scenario typed and the run's outcomes as fields
// (Correctness.SkippedChecks, Locks.LostWritesAfterLockBreak, Seeding,
// Merged, Config.Shard, a page source's error in Failure) where version 1
// kept them in Config.Options.
const Schema = "aspstate/result/v2"

// SchemaV1 is the first version of the format; Unmarshal still reads it.
const SchemaV1 = "aspstate/result/v1"

// Run modes.
const (
	// ModeOpen is the open model: arrivals follow a fixed schedule that never
	// waits for replies; latency is measured from the intended start.
	ModeOpen = "open"
	// ModeClosedLoop is closed-loop saturation: N connections send back to
	// back. Its throughput is a saturation figure, never an offered rate, and
	// its latencies have no intended start (corrected = uncorrected).
	ModeClosedLoop = "closed-loop-saturation"
	// ModeCapture is a capture of a real server's traffic (aspstate trace
	// inspect --out): no schedule and no pages; Ops hold the server's own
	// latency (last request byte to first reply byte), corrected equal to
	// uncorrected, and Intervals count exchanges.
	ModeCapture = "capture"
)

// PageStateTagPrefix starts the .hlog tag of a page kind's state time
// ("page-state.modify"); page latency is "page.KIND", operations "op.NAME".
const PageStateTagPrefix = "page-state."

// Histogram geometry shared by every recorder and reader: 1 µs to 1 hour in
// nanoseconds, 3 significant digits.
const (
	HistLowest  int64 = 1000
	HistHighest int64 = int64(time.Hour)
	HistDigits        = 3
)

// NewHistogram returns an empty latency histogram (nanoseconds) with the
// shared geometry.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(HistLowest, HistHighest, HistDigits)
}

// Run is one load run: its configuration, what was measured, and what went
// wrong. JSON field names are listed in sorted order so the encoding is
// stable and diffs cleanly.
type Run struct {
	// Config is the full configuration the run used.
	Config Config `json:"config"`
	// Correctness holds the session-correctness violations found.
	Correctness Correctness `json:"correctness"`
	// End is when the run stopped (UTC).
	End time.Time `json:"end"`
	// Errors counts failed protocol calls by kind over the whole run.
	Errors map[string]int64 `json:"errors"`
	// Failure is why the run stopped early, "" when it did not.
	Failure string `json:"failure,omitempty"`
	// Faults are the faults applied during the run and what the load saw of
	// them; absent when the run had no fault timeline.
	Faults *Faults `json:"faults,omitempty"`
	// Generator is the CPU the load generator's process used over the run
	// (an in-process target's server included); absent where the platform
	// cannot tell.
	Generator *Generator `json:"generator,omitempty"`
	// Harness names the build of aspstate that produced the run.
	Harness Harness `json:"harness"`
	// Interrupted reports that the run was stopped (Ctrl-C) before its end.
	Interrupted bool `json:"interrupted"`
	// Intervals is the per-interval time series, in time order.
	Intervals []Interval `json:"intervals"`
	// Linearizability is the verdict of the linearizability check of the
	// per-session histories (aspstate load --check-linearizability).
	Linearizability *Linearizability `json:"linearizability,omitempty"`
	// Locks holds the lock metrics.
	Locks Locks `json:"locks"`
	// Machine is what the run saw of the machine it ran on; absent in
	// results written before it was recorded.
	Machine *Machine `json:"machine,omitempty"`
	// Merged describes the results this one merges (aspstate merge); absent
	// for a run of one load generator.
	Merged *Merged `json:"merged,omitempty"`
	// Objectives are the thresholds the run was held to (aspstate load
	// --threshold) and their outcome at its end; absent when none were set.
	Objectives []Objective `json:"objectives,omitempty"`
	// Ops holds statistics per protocol operation, keyed by protocol.Op.String().
	Ops map[string]*Stats `json:"ops"`
	// Pages holds statistics per page type (end to end, lock waits included).
	Pages map[string]*Stats `json:"pages"`
	// PageState holds statistics per page type of the page's state time:
	// its latency less its emulated execution time, i.e. the time the page
	// spent in state-server calls and lock waits (and, corrected, its start
	// delay). This is the server's share of a page. Absent in results
	// written before it was recorded.
	PageState map[string]*Stats `json:"page_state,omitempty"`
	// Rate compares the intended and the achieved rate.
	Rate Rate `json:"rate"`
	// Schema is the format version, Schema for this package.
	Schema string `json:"schema"`
	// Seeding is what a steady start wrote before the schedule; absent for
	// a cold start.
	Seeding *Seeding `json:"seeding,omitempty"`
	// Start is when the schedule began (UTC).
	Start time.Time `json:"start"`

	// Logs are the interval histograms written to the .hlog files. They are
	// not part of result.json; Read fills them from the .hlog files.
	Logs []LogEntry `json:"-"`
}

// Seeding is the steady start of an open-model run: the sessions written,
// unmeasured, before the schedule began.
type Seeding struct {
	// Sessions is how many sessions were written (summed over merged runs).
	Sessions int64 `json:"sessions"`
	// Detail says how the seeding went (writes, failures, time taken).
	Detail string `json:"detail"`
}

// Merged describes a merged result.
type Merged struct {
	// Results is how many results were merged.
	Results int `json:"results"`
	// Shards are the shards merged ("I/N", sorted); empty when the merged
	// runs were not shards.
	Shards []string `json:"shards,omitempty"`
	// StartSkew is how much later than the first the last run started.
	StartSkew Duration `json:"start_skew"`
}

// Objective is one threshold a run was held to and its outcome.
type Objective struct {
	// Text is the threshold as written ("page-state p99 < 50ms").
	Text string `json:"text"`
	// Pass reports that it held.
	Pass bool `json:"pass"`
	// Value is what was measured, with its unit ("12.345ms", "0.01%"), or
	// why nothing was ("no samples").
	Value string `json:"value"`
	// Aborted marks the threshold that stopped the run early
	// (--abort-on-fail).
	Aborted bool `json:"aborted,omitempty"`
}

// Faults is the fault block of a run.
type Faults struct {
	// Events are the faults of the timeline in the order they began, applied
	// or not.
	Events []FaultEvent `json:"events"`
	// Proxy names the in-process network fault proxy the load went through
	// ("" when it went straight to the targets).
	Proxy string `json:"proxy"`
	// SessionsLost counts sessions this run had written that a target no
	// longer held after a restart or kill: the first 404 for a session last
	// answered before the fault.
	SessionsLost int64 `json:"sessions_lost"`
}

// FaultEvent is one fault as it happened.
type FaultEvent struct {
	// At is the planned offset from the start of the run.
	At Duration `json:"at"`
	// Detail says how the fault was applied, or why it was not.
	Detail string `json:"detail"`
	// End is when the fault was over (the target answered again, the
	// toxic was removed); equal to Start for an instantaneous fault.
	End time.Time `json:"end"`
	// Errors counts, by kind, the errors of pages in progress at some time
	// between Start and End.
	Errors map[string]int64 `json:"errors"`
	// Kind is the fault kind (restart, kill, pause, latency, blackhole,
	// reset-connections, recycle).
	Kind string `json:"kind"`
	// SessionsLost counts the sessions lost to this fault (restart, kill).
	SessionsLost int64 `json:"sessions_lost"`
	// Shard is the load-generator shard that applied it ("I/N"), "" unsharded.
	Shard string `json:"shard,omitempty"`
	// Start is when the fault began.
	Start time.Time `json:"start"`
	// Status is applied, skipped or failed.
	Status string `json:"status"`
	// Targets are the indexes of the targets it hit (Config.Targets order);
	// empty for recycle.
	Targets []int `json:"targets"`
	// WebServer is the 1-based web server a recycle hit (0 otherwise).
	WebServer int `json:"web_server,omitempty"`
}

// Machine is the state of the machine over a run, as the load generator saw
// it: compare's yardstick for telling a slower build from a busier machine.
type Machine struct {
	// TimerLag is how late the timers of the emulated page executions fired
	// (slept − planned, per page that ran one): the scheduling delay every
	// thread on the machine, the server's included, suffered.
	TimerLag Latency `json:"timer_lag"`
}

// Generator is what the load generator process used over a run.
type Generator struct {
	// CPUUser and CPUSystem are the generator process's CPU time from just
	// before its schedule began to the end of its drain (what it spent on
	// the run, without start-up and without writing the results).
	CPUUser   Duration `json:"cpu_user"`
	CPUSystem Duration `json:"cpu_system"`
	// Wall is the time they were measured over.
	Wall Duration `json:"wall"`
}

// Harness identifies the build that produced a run.
type Harness struct {
	Go       string `json:"go"`
	Revision string `json:"revision"`
	Version  string `json:"version"`
}

// Config is everything that shaped the run.
type Config struct {
	// Duration is the planned length of the schedule.
	Duration Duration `json:"duration"`
	// Minute is the protocol minute used by the target and the client (time scale).
	Minute Duration `json:"minute"`
	// Mode is ModeOpen, ModeClosedLoop or ModeCapture.
	Mode string `json:"mode"`
	// Options holds further settings of the load generator (client emulation
	// knobs, worker counts, seed), name to value, for the record. The
	// run's outcomes are fields of Run, not options.
	Options map[string]string `json:"options"`
	// Rate is the intended mean rate in page requests per second (open mode);
	// 0 in closed-loop mode.
	Rate float64 `json:"rate"`
	// Scenario is the scenario as run (a shard's share of the farm in a
	// shard's result); nil for a capture.
	Scenario *scenarios.Scenario `json:"scenario"`
	// ScenarioName is the scenario's name.
	ScenarioName string `json:"scenario_name"`
	// Shape is the arrival schedule: constant, ramp, steps, poisson or closed-loop.
	Shape string `json:"shape"`
	// Shard is the load-generator shard the run was ("I/N", aspstate load
	// --shard); "" for an unsharded or merged run.
	Shard string `json:"shard,omitempty"`
	// Targets are the state servers (partitions), in partition order.
	Targets []Target `json:"targets"`
}

// Target describes one state server the run used (same fields as target.Info).
type Target struct {
	Addr        string `json:"addr"`
	Description string `json:"description"`
	Kind        string `json:"kind"`
	Spec        string `json:"spec"`
}

// Duration is a time.Duration that encodes as a Go duration string ("1m30s").
type Duration time.Duration

// MarshalText encodes d like time.Duration.String.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// Stats are the figures of one operation or page type.
type Stats struct {
	// Count is how many completed (with a reply or an error).
	Count int64 `json:"count"`
	// Corrected is the latency from the intended start (coordinated omission
	// corrected); for an operation, its own latency plus the page's start delay.
	Corrected Latency `json:"corrected"`
	// Errors counts failures by kind: timeout, refused, reset, protocol, other
	// (and for pages, the client-visible failures such as need-v2-state-server).
	Errors map[string]int64 `json:"errors"`
	// Statuses counts replies by status code ("200", "423", …).
	Statuses map[string]int64 `json:"statuses"`
	// Uncorrected is the latency from the actual send.
	Uncorrected Latency `json:"uncorrected"`
}

// Latency summarises one histogram (nanoseconds) and carries it encoded.
type Latency struct {
	// Histogram is the hdrhistogram-go Encode output (V2 compressed, which
	// is already base64 text); "" when empty.
	Histogram string `json:"histogram"`
	Max       int64  `json:"max_ns"`
	Mean      int64  `json:"mean_ns"`
	P50       int64  `json:"p50_ns"`
	P90       int64  `json:"p90_ns"`
	P99       int64  `json:"p99_ns"`
	P999      int64  `json:"p99_9_ns"`
}

// Locks are the lock metrics of a run.
type Locks struct {
	// Acquires is how many exclusive acquires the pages attempted (one per
	// writable page, however many polls it took).
	Acquires int64 `json:"acquires"`
	// ForcedBreaks is how many locks the client broke (release with the 423's
	// cookie after LockAge reached the execution timeout).
	ForcedBreaks int64 `json:"forced_breaks"`
	// Locked is how many 423 replies were received.
	Locked int64 `json:"locked_replies"`
	// LostWritesAfterLockBreak counts the writes lost because the page's
	// lock was broken and taken meanwhile: the server answered 423, which
	// the client ignores (PROTOCOL.md e.1).
	LostWritesAfterLockBreak int64 `json:"lost_writes_after_lock_break"`
	// MaxPollsPerAcquire is the most polls one acquire needed.
	MaxPollsPerAcquire int64 `json:"max_polls_per_acquire"`
	// Polls is how many re-polls were sent after a 423.
	Polls int64 `json:"polls"`
	// PollsPerAcquire is Polls / Acquires.
	PollsPerAcquire float64 `json:"polls_per_acquire"`
	// Waited is how many acquires had to wait (saw at least one 423).
	Waited int64 `json:"waited"`
	// Wait is the time spent waiting for locks, per acquire that waited.
	Wait Latency `json:"wait"`
	// WaitTimeouts is how many page requests gave up waiting (execution timeout).
	WaitTimeouts int64 `json:"wait_timeouts"`
}

// Correctness holds the session-correctness violations of a run.
type Correctness struct {
	// Checks is how many body and lock checks were made.
	Checks int64 `json:"checks"`
	// Examples are the first few violations, described.
	Examples []string `json:"examples"`
	// SkippedChecks counts the body checks left out because the session
	// was not stable (a fault or an unanswered request may have changed it).
	SkippedChecks int64 `json:"skipped_checks"`
	// Total is the sum of Violations.
	Total int64 `json:"total"`
	// Violations counts violations by kind (see the loadgen package).
	Violations map[string]int64 `json:"violations"`
}

// Linearizability is the verdict of checking every session's history of
// protocol operations against a sequential model of PROTOCOL.md c.1–c.4
// (package loadgen/linearize).
type Linearizability struct {
	// Checker names the checker and its version.
	Checker string `json:"checker"`
	// CheckTime is how long the check took.
	CheckTime Duration `json:"check_time"`
	// Examples explain the first violations.
	Examples []string `json:"examples"`
	// Failing are the keys of the first sessions that are not linearizable.
	Failing []string `json:"failing"`
	// Indeterminate counts operations without a usable reply (timeout,
	// network error): any outcome is accepted for them.
	Indeterminate int64 `json:"indeterminate"`
	// Operations counts the operations checked.
	Operations int64 `json:"operations"`
	// Sessions counts the session keys checked.
	Sessions int64 `json:"sessions"`
	// SkippedSessions counts sessions left out because the history reached
	// its size bound before they ended.
	SkippedSessions int64 `json:"skipped_sessions"`
	// Unknown counts sessions the checker gave up on (time bound).
	Unknown int64 `json:"unknown"`
	// Violations counts sessions whose history is not linearizable.
	Violations int64 `json:"violations"`
	// SmallestHistory is the smallest failing session's history, one
	// operation a line in call order; absent when none failed.
	SmallestHistory []string `json:"smallest_history,omitempty"`
	// Visualization is the path of the porcupine HTML visualisation of one
	// failing session, "" when none failed.
	Visualization string `json:"visualization"`
}

// Rate compares the schedule with what happened.
type Rate struct {
	// Achieved is Completed per second over the measured window (open mode)
	// or the saturation throughput (closed-loop mode): the pages served
	// without error per second; failed pages are left out.
	Achieved float64 `json:"achieved_per_s"`
	// Completed is how many page requests finished.
	Completed int64 `json:"completed"`
	// CutOff is how many pages were still in flight when the run was
	// stopped (Ctrl-C, an abort, the end of the drain): neither completed
	// nor failed, they are in no latency and no error count.
	CutOff int64 `json:"cut_off,omitempty"`
	// Dropped is how many slots were never started (queue full or run ended).
	Dropped int64 `json:"dropped"`
	// Intended is Scheduled per second of the planned duration (0 in closed-loop mode).
	Intended float64 `json:"intended_per_s"`
	// Late is how many slots started more than LateThreshold after their intended time.
	Late int64 `json:"late"`
	// LateThreshold is the lateness above which a slot counts as late.
	LateThreshold Duration `json:"late_threshold"`
	// MaxLateness is the largest start delay seen.
	MaxLateness Duration `json:"max_lateness"`
	// NoWorker is how many slots found no free worker and had to queue.
	NoWorker int64 `json:"no_worker"`
	// Scheduled is how many slots the schedule held (up to the stop).
	Scheduled int64 `json:"scheduled"`
	// Started is how many slots were started.
	Started int64 `json:"started"`
	// Window is the measured window Achieved is computed over.
	Window Duration `json:"window"`
}

// Interval is one point of the time series.
type Interval struct {
	// Elapsed is the end of the interval, from the run start.
	Elapsed Duration `json:"elapsed"`
	// Errors is failed operations and pages in the interval.
	Errors int64 `json:"errors"`
	// LockWaits is 423 replies received in the interval.
	LockWaits int64 `json:"lock_waits"`
	// Late is slots that started late in the interval.
	Late int64 `json:"late"`
	// Ops is protocol operations completed in the interval.
	Ops int64 `json:"ops"`
	// P99 is the 99th percentile corrected page latency in the interval.
	P99 int64 `json:"p99_ns"`
	// P99Uncorrected is the same from the actual send.
	P99Uncorrected int64 `json:"p99_uncorrected_ns"`
	// Pages is page requests completed in the interval.
	Pages int64 `json:"pages"`
	// Throughput is Pages per second of the interval; in closed-loop mode
	// (a saturation figure) the pages that failed are left out.
	Throughput float64 `json:"throughput_per_s"`
}

// LogEntry is one interval histogram of an .hlog file. The histogram is kept
// encoded (a few hundred bytes instead of tens of kilobytes) because a run
// holds one per tag per interval.
type LogEntry struct {
	// Corrected selects corrected.hlog (true) or uncorrected.hlog.
	Corrected bool
	// Tag is "op.NAME", "page.KIND" or "page-state.KIND".
	Tag string
	// Start and End bound the interval.
	Start, End time.Time
	// Histogram is the interval's histogram (nanoseconds), hdrhistogram-go
	// Encode output.
	Histogram string
}

// NewLogEntry encodes h as one interval of the corrected or uncorrected log.
func NewLogEntry(corrected bool, tag string, start, end time.Time, h *hdrhistogram.Histogram) (LogEntry, error) {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return LogEntry{}, fmt.Errorf("encode interval histogram %s: %w", tag, err)
	}
	return LogEntry{Corrected: corrected, Tag: tag, Start: start, End: end, Histogram: string(b)}, nil
}

// Decode returns the entry's histogram.
func (e LogEntry) Decode() (*hdrhistogram.Histogram, error) {
	return Latency{Histogram: e.Histogram}.Decode()
}

// NewLatency summarises h (nanoseconds) and encodes it.
func NewLatency(h *hdrhistogram.Histogram) (Latency, error) {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}, nil
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return Latency{}, fmt.Errorf("encode histogram: %w", err)
	}
	return Latency{
		Histogram: string(b),
		Max:       h.Max(),
		Mean:      int64(h.Mean()),
		P50:       h.ValueAtQuantile(50),
		P90:       h.ValueAtQuantile(90),
		P99:       h.ValueAtQuantile(99),
		P999:      h.ValueAtQuantile(99.9),
	}, nil
}

// Decode returns the histogram l carries (an empty one when l has none).
func (l Latency) Decode() (*hdrhistogram.Histogram, error) {
	if l.Histogram == "" {
		return NewHistogram(), nil
	}
	h, err := hdrhistogram.Decode([]byte(l.Histogram))
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	return h, nil
}

// MergeLatency merges the histograms of ls into one Latency.
func MergeLatency(ls ...Latency) (Latency, error) {
	sum := NewHistogram()
	for _, l := range ls {
		h, err := l.Decode()
		if err != nil {
			return Latency{}, err
		}
		if dropped := sum.Merge(h); dropped > 0 {
			return Latency{}, fmt.Errorf("merge histograms: %d values out of range", dropped)
		}
	}
	return NewLatency(sum)
}

// Validate checks that r is a result this package can write and a report can
// read: known schema and mode, times in order, histograms decodable.
func (r *Run) Validate() error {
	var errs []error
	if r.Schema != Schema {
		errs = append(errs, fmt.Errorf("schema is %q, want %q", r.Schema, Schema))
	}
	if r.Config.Mode != ModeOpen && r.Config.Mode != ModeClosedLoop && r.Config.Mode != ModeCapture {
		errs = append(errs, fmt.Errorf("config.mode is %q, want %q, %q or %q", r.Config.Mode, ModeOpen, ModeClosedLoop, ModeCapture))
	}
	if !r.End.IsZero() && r.End.Before(r.Start) {
		errs = append(errs, fmt.Errorf("end %s is before start %s", r.End, r.Start))
	}
	check := func(what string, m map[string]*Stats) {
		for _, k := range sortedKeys(m) {
			s := m[k]
			if s == nil {
				errs = append(errs, fmt.Errorf("%s %q is null", what, k))
				continue
			}
			for _, l := range []Latency{s.Corrected, s.Uncorrected} {
				if _, err := l.Decode(); err != nil {
					errs = append(errs, fmt.Errorf("%s %q: %w", what, k, err))
				}
			}
		}
	}
	check("ops", r.Ops)
	check("pages", r.Pages)
	check("page_state", r.PageState)
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
