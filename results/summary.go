package results

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary writes the human summary of r: what ran, the rate, latency per page
// and per operation (corrected beside uncorrected), lock metrics, errors and
// correctness violations.
func Summary(w io.Writer, r *Run) {
	c := r.Config
	fmt.Fprintf(w, "aspstate load: scenario %s, %s mode", c.ScenarioName, c.Mode)
	switch c.Mode {
	case ModeCapture:
		fmt.Fprintf(w, " (a real server's traffic over %s; latency is the server's, no pages)", time.Duration(c.Duration))
	case ModeOpen:
		fmt.Fprintf(w, ", %s schedule at %.1f/s for %s", c.Shape, c.Rate, time.Duration(c.Duration))
	default:
		fmt.Fprintf(w, " for %s (throughput below is a saturation figure, not an offered rate)", time.Duration(c.Duration))
	}
	fmt.Fprintln(w)
	for i, t := range c.Targets {
		fmt.Fprintf(w, "target %d: %s (%s)\n", i, t.Addr, t.Description)
	}
	if c.Minute != 0 && time.Duration(c.Minute) != time.Minute {
		fmt.Fprintf(w, "time scale: one protocol minute = %s\n", time.Duration(c.Minute))
	}
	if r.Interrupted {
		fmt.Fprintln(w, "INTERRUPTED: the run was stopped before the end of its schedule")
	}
	if r.Failure != "" {
		fmt.Fprintf(w, "FAILED: %s\n", r.Failure)
	}
	for _, o := range r.Objectives {
		verdict := "PASS"
		if !o.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "threshold %s  %s  (measured %s)\n", verdict, o.Text, o.Value)
	}
	rt := r.Rate
	if c.Mode == ModeOpen {
		fmt.Fprintf(w, "rate: intended %.1f/s, achieved %.1f/s over %s; %d scheduled, %d started, %d completed, %d dropped\n",
			rt.Intended, rt.Achieved, time.Duration(rt.Window).Round(time.Millisecond), rt.Scheduled, rt.Started, rt.Completed, rt.Dropped)
		if rt.CutOff > 0 {
			fmt.Fprintf(w, "cut off: %d pages in flight when the run stopped (not counted as completed or failed)\n", rt.CutOff)
		}
		fmt.Fprintf(w, "schedule: %d slots late (> %s), %d found no free worker, worst start delay %s\n",
			rt.Late, time.Duration(rt.LateThreshold), rt.NoWorker, time.Duration(rt.MaxLateness).Round(time.Microsecond))
	} else if c.Mode == ModeClosedLoop {
		var failed int64
		for _, p := range r.Pages {
			for _, n := range p.Errors {
				failed += n
			}
		}
		fmt.Fprintf(w, "saturation throughput: %.1f pages/s (closed loop) over %s; %d completed", rt.Achieved,
			time.Duration(rt.Window).Round(time.Millisecond), rt.Completed)
		if failed > 0 {
			fmt.Fprintf(w, ", %d of them failed (not counted in the throughput)", failed)
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency (ms)\tcount\terrors\tp50\tp90\tp99\tp99.9\tmax\tuncorr p99\tuncorr p99.9\tuncorr max\t")
	row := func(name string, s *Stats) {
		var errs int64
		for _, n := range s.Errors {
			errs += n
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, s.Count, errs,
			ms(s.Corrected.P50), ms(s.Corrected.P90), ms(s.Corrected.P99), ms(s.Corrected.P999), ms(s.Corrected.Max),
			ms(s.Uncorrected.P99), ms(s.Uncorrected.P999), ms(s.Uncorrected.Max))
	}
	for _, k := range sortedKeys(r.Pages) {
		row("page "+k, r.Pages[k])
	}
	for _, k := range sortedKeys(r.PageState) {
		row("page-state "+k, r.PageState[k])
	}
	for _, k := range sortedKeys(r.Ops) {
		row("op "+k, r.Ops[k])
	}
	tw.Flush()

	statuses := map[string]int64{}
	for _, s := range r.Ops {
		for k, n := range s.Statuses {
			statuses[k] += n
		}
	}
	fmt.Fprintf(w, "\nstatuses: %s\n", counts(statuses))
	fmt.Fprintf(w, "errors: %s\n", counts(r.Errors))
	l := r.Locks
	fmt.Fprintf(w, "locks: %d acquires, %d waited, %d 423 replies, %d polls (%.3f per acquire, max %d), %d forced breaks, %d gave up; wait p50 %s p99 %s max %s ms\n",
		l.Acquires, l.Waited, l.Locked, l.Polls, l.PollsPerAcquire, l.MaxPollsPerAcquire, l.ForcedBreaks, l.WaitTimeouts,
		ms(l.Wait.P50), ms(l.Wait.P99), ms(l.Wait.Max))
	cr := r.Correctness
	if cr.Total == 0 {
		fmt.Fprintf(w, "correctness: OK (%d checks, no violations)\n", cr.Checks)
	} else {
		fmt.Fprintf(w, "correctness: %d VIOLATIONS in %d checks: %s\n", cr.Total, cr.Checks, counts(cr.Violations))
		for _, e := range cr.Examples {
			fmt.Fprintf(w, "  - %s\n", e)
		}
	}
	if g := r.Generator; g != nil && g.Wall > 0 {
		cpu := time.Duration(g.CPUUser + g.CPUSystem)
		who := "load generator"
		for _, t := range r.Config.Targets {
			if t.Kind == "inproc" {
				who = "load generator and its in-process server"
			}
		}
		fmt.Fprintf(w, "%s: %s CPU (%s user, %s system) over %s, %.0f%% of one core\n", who,
			cpu.Round(time.Millisecond), time.Duration(g.CPUUser).Round(time.Millisecond),
			time.Duration(g.CPUSystem).Round(time.Millisecond), time.Duration(g.Wall).Round(time.Millisecond),
			100*cpu.Seconds()/time.Duration(g.Wall).Seconds())
	}
	linearizabilitySummary(w, r.Linearizability)
	faultSummary(w, r)
}

// linearizabilitySummary prints the verdict of the linearizability check,
// when the run had one.
func linearizabilitySummary(w io.Writer, l *Linearizability) {
	if l == nil {
		return
	}
	verdict := "OK"
	if l.Violations > 0 {
		verdict = fmt.Sprintf("%d VIOLATIONS", l.Violations)
	}
	fmt.Fprintf(w, "linearizability: %s (%d sessions, %d operations, %d indeterminate, %d unknown, %d skipped; %s, checked in %s)\n",
		verdict, l.Sessions, l.Operations, l.Indeterminate, l.Unknown, l.SkippedSessions, l.Checker,
		time.Duration(l.CheckTime).Round(time.Millisecond))
	for _, e := range l.Examples {
		fmt.Fprintf(w, "  - %s\n", e)
	}
	if l.Visualization != "" {
		fmt.Fprintf(w, "  visualisation: %s\n", l.Visualization)
	}
}

func ms(ns int64) string {
	return fmt.Sprintf("%.3f", float64(ns)/1e6)
}

func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
