package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/aspstate/aspstate/loadgen"
)

// progress shows a run's progress: on a terminal one live line (a
// progressbar: elapsed and ETA, rate, p99, pages, errors); elsewhere (a
// pipe, a CI log) a plain line every five intervals.
type progress struct {
	w   io.Writer
	tty bool
	bar *progressbar.ProgressBar
	n   int
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w) && os.Getenv("CI") == ""}
}

// isTerminal tells whether w is a terminal.
func isTerminal(w io.Writer) bool {
	if lw, ok := w.(*lockedWriter); ok {
		w = lw.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressText is one progress report for people.
func progressText(p loadgen.Progress) string {
	rateLabel := "rate"
	if p.ClosedLoop {
		rateLabel = "saturation"
	}
	line := fmt.Sprintf("%s %.0f/s  p99 %s  pages %d  errors %d  lock waits %d",
		rateLabel, p.Rate, p.P99.Round(10*time.Microsecond), p.Pages, p.Errors, p.LockWaits)
	if p.Violations > 0 {
		line += fmt.Sprintf("  VIOLATIONS %d", p.Violations)
	}
	return line
}

// update is a loadgen.Config.Progress hook.
func (p *progress) update(x loadgen.Progress) {
	if !p.tty {
		if p.n%5 == 0 {
			fmt.Fprintf(p.w, "%s/%s  %s\n", x.Elapsed.Round(time.Second), x.Total, progressText(x))
		}
		p.n++
		return
	}
	total := max(int64(x.Total/time.Millisecond), 1)
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetWidth(20), progressbar.OptionSetElapsedTime(false), progressbar.OptionSetPredictTime(false),
			progressbar.OptionShowDescriptionAtLineEnd(), progressbar.OptionClearOnFinish())
	}
	if p.bar.GetMax64() != total {
		p.bar.ChangeMax64(total)
	}
	// Elapsed and ETA from the run's own clock: the schedule, not the bar's guess.
	eta := max(x.Total-x.Elapsed, 0)
	p.bar.Describe(fmt.Sprintf("%s/%s ETA %s  %s", x.Elapsed.Round(time.Second), x.Total, eta.Round(time.Second), progressText(x)))
	_ = p.bar.Set64(min(int64(x.Elapsed/time.Millisecond), total))
}

// finish ends the live line.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}
