package results

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Fault statuses.
const (
	FaultApplied = "applied"
	FaultSkipped = "skipped"
	FaultFailed  = "failed"
)

// faultSummary writes the fault block of a summary: one line per event with
// its offsets from the run start, then the sessions lost.
func faultSummary(w io.Writer, r *Run) {
	f := r.Faults
	if f == nil {
		return
	}
	via := ""
	if f.Proxy != "" {
		via = " (network faults through " + f.Proxy + ")"
	}
	fmt.Fprintf(w, "faults: %d, %d sessions lost%s\n", len(f.Events), f.SessionsLost, via)
	t0 := r.Start
	for _, e := range f.Events {
		var b strings.Builder
		fmt.Fprintf(&b, "  %s@%s %s", e.Kind, time.Duration(e.At), e.Status)
		if e.Shard != "" {
			fmt.Fprintf(&b, " (shard %s)", e.Shard)
		}
		if !e.Start.IsZero() && !t0.IsZero() {
			fmt.Fprintf(&b, " %s → %s", e.Start.Sub(t0).Round(time.Millisecond), e.End.Sub(t0).Round(time.Millisecond))
		}
		if e.Detail != "" {
			fmt.Fprintf(&b, ": %s", e.Detail)
		}
		fmt.Fprintf(&b, "; errors %s", counts(e.Errors))
		if e.SessionsLost > 0 {
			fmt.Fprintf(&b, "; %d sessions lost", e.SessionsLost)
		}
		fmt.Fprintln(w, b.String())
	}
}
