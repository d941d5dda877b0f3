package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aspstate/aspstate/conformance"
)

// timingRules returns the timing rules this run selects when they should run
// apart: with a protocol minute of SlowMinute or more, each waits minutes,
// so each runs in its own child process against the same started target,
// all at once and beside the other rules. Every timing rule uses fresh
// sessions, so they do not disturb each other. A child of such a run (or a
// fast minute) runs everything in one process.
func timingRules(o conformOptions, minute time.Duration) []conformance.RuleInfo {
	if o.child || minute < conformance.SlowMinute {
		return nil
	}
	sel := conformance.Config{Levels: o.levels, Rules: o.rules}
	var out []conformance.RuleInfo
	for _, r := range conformance.Catalogue() {
		if r.Timing && sel.Selects(r) {
			out = append(out, r)
		}
	}
	return out
}

// withoutTiming adds "!timing" to a label filter.
func withoutTiming(filter string) string {
	if strings.TrimSpace(filter) == "" {
		return "!" + conformance.LabelTiming
	}
	return "(" + filter + ") && !" + conformance.LabelTiming
}

// lockedWriter serialises lines written by several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// timingRun is the timing rules running in child processes.
type timingRun struct {
	wg      sync.WaitGroup
	mu      sync.Mutex
	started time.Time
	running map[string]conformance.RuleInfo
	reports []*conformance.RunReport
	errs    []string
}

// startTiming starts one child per timing rule against addr (a tcp target
// the children share) and, when stdout is a terminal, prints every running
// rule's progress every 15 s until they are done.
func startTiming(ctx context.Context, o conformOptions, addr string, minute time.Duration, rules []conformance.RuleInfo, stdout io.Writer) (*timingRun, error) {
	exe, prefix, err := conformSelf()
	if err != nil {
		return nil, fmt.Errorf("cannot re-run myself for the timing rules: %w", err)
	}
	dir, err := os.MkdirTemp("", "aspstate-conform-timing-")
	if err != nil {
		return nil, err
	}
	t := &timingRun{started: time.Now(), running: map[string]conformance.RuleInfo{}}
	co := o
	co.raw.minute = minute.String()
	co.raw.rules = ""
	for _, r := range rules {
		t.running[r.ID] = r
		out := filepath.Join(dir, r.ID+".json")
		args := childArgs(co, prefix, "tcp://"+addr, out)
		args = append(args, "--rules", r.ID)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			code, msg := runConformChild(ctx, exe, args, "", stdout)
			t.mu.Lock()
			defer t.mu.Unlock()
			delete(t.running, r.ID)
			if code != 0 && code != 1 && code != exitInterrupted {
				t.errs = append(t.errs, fmt.Sprintf("timing rule %s: %s", r.ID, msg))
				return
			}
			m, err := conformance.ReadMatrix(out)
			if err != nil || len(m.Reports) != 1 {
				t.errs = append(t.errs, fmt.Sprintf("timing rule %s: reading its report: %v", r.ID, err))
				return
			}
			t.reports = append(t.reports, m.Reports[0])
		}()
	}
	done := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(done)
		os.RemoveAll(dir)
	}()
	if isTerminal(stdout) {
		go t.progress(stdout, minute, done)
	}
	return t, nil
}

// progress prints, every 15 s, one line naming each running timing rule
// with the time it has waited and the time it waits in all.
func (t *timingRun) progress(w io.Writer, minute time.Duration, done <-chan struct{}) {
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		ids := make([]string, 0, len(t.running))
		for id := range t.running {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		el := time.Since(t.started).Round(time.Second)
		parts := make([]string, len(ids))
		for i, id := range ids {
			parts[i] = fmt.Sprintf("%s %v of ~%v", id, el, time.Duration(t.running[id].Minutes*float64(minute)).Round(time.Second))
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "…    waiting on the protocol clock: %s\n", strings.Join(parts, ", "))
		}
		t.mu.Unlock()
	}
}

// wait waits for every child and merges their reports into rep.
func (t *timingRun) wait(rep *conformance.RunReport) error {
	t.wg.Wait()
	for _, r := range t.reports {
		rep.Merge(r)
	}
	if len(t.errs) > 0 {
		return fmt.Errorf("%s", strings.Join(t.errs, "; "))
	}
	return nil
}
