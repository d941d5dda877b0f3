package linearize

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Options tune Check.
type Options struct {
	// Config is the model's configuration (expiry, lost-state windows).
	Config
	// SessionTimeout bounds the checker's time on one session (default
	// 10s); a session that runs out counts as unknown, not as a violation.
	SessionTimeout time.Duration
	// Workers is how many sessions are checked at once (default GOMAXPROCS).
	Workers int
	// VisualizationPath, when set, is where the porcupine HTML visualisation
	// of one failing session (the one with the fewest operations) is
	// written. Nothing is written when every session is linearizable.
	VisualizationPath string
	// MaxExamples bounds the explained failures (default 3).
	MaxExamples int
}

// Result is the verdict on a history.
type Result struct {
	// Sessions is the number of session keys checked.
	Sessions int
	// Operations is the number of operations checked; Indeterminate of them
	// had no usable reply.
	Operations    int
	Indeterminate int
	// Illegal is the number of sessions whose history is not linearizable.
	Illegal int
	// Unknown is the number of sessions the checker gave up on (time).
	Unknown int
	// Failing are the keys of illegal sessions, sorted (at most 20).
	Failing []string
	// Examples explain the first failures.
	Examples []string
	// Visualization is the path of the HTML visualisation written, or "".
	Visualization string
	// Smallest is the history of the smallest failing session, one
	// operation a line in call order ("+1.2ms client 0: get-exclusive → 423
	// …"), at most maxHistoryLines; nil when every session passed.
	Smallest []string
	// Elapsed is how long the check took.
	Elapsed time.Duration
}

const maxFailingKeys = 20

// maxHistoryLines bounds Result.Smallest.
const maxHistoryLines = 60

// sessionHistory lists s's operations in call order, one a line.
func sessionHistory(s *session) []string {
	ops := renumberClients(s.ops)
	t0 := ops[0].Call
	var out []string
	for i, op := range ops {
		if i == maxHistoryLines {
			out = append(out, fmt.Sprintf("… %d more operations", len(ops)-i))
			break
		}
		out = append(out, fmt.Sprintf("+%s client %d: %s", time.Duration(op.Call-t0).Round(time.Microsecond), op.ClientId,
			DescribeOperation(op.Input.(Input), op.Output.(Output))))
	}
	return out
}

type session struct {
	key    string
	ops    []porcupine.Operation
	model  porcupine.Model // unpartitioned, configured for this session
	cfg    Config
	result porcupine.CheckResult
}

// sessionModel configures the model for one session: no expiry tracking
// when no item of the session can expire within its history, and its last
// return as the horizon of indeterminate operations.
func sessionModel(cfg Config, ops []porcupine.Operation) (Config, porcupine.Model) {
	if !cfg.expiryObservable(ops) {
		cfg.Minute = 0
	}
	for _, op := range ops {
		if op.Return != Infinity {
			cfg.End = max(cfg.End, op.Return)
		}
	}
	m := NewModel(cfg)
	m.Partition, m.PartitionEvent = nil, nil
	return cfg, m
}

// groupTwins gives indeterminate operations with the same input (but for
// the call time) a Group and their Rank in call order; ops is sorted by
// call. See Input.Group.
func groupTwins(ops []porcupine.Operation) {
	groups := map[Input]int{}
	count := map[int]int{}
	var members [][]int
	for i, op := range ops {
		if !op.Output.(Output).Indeterminate {
			continue
		}
		in := op.Input.(Input)
		in.Call = 0
		g, ok := groups[in]
		if !ok {
			g = len(groups) + 1
			groups[in] = g
			members = append(members, nil)
		}
		members[g-1] = append(members[g-1], i)
		count[g]++
	}
	next := 1
	for g := 1; g <= len(members); g++ {
		if count[g] < 2 {
			continue
		}
		for rank, i := range members[g-1] {
			if rank >= 1<<16-1 {
				break
			}
			in := ops[i].Input.(Input)
			in.Group, in.Rank = next, rank
			ops[i].Input = in
		}
		next++
	}
}

// Check checks every session of history (porcupine Operations with Input
// and Output values) and returns the verdict. It stops early when ctx ends,
// counting the sessions not yet checked as unknown, and returns ctx's error
// beside the partial result.
func Check(ctx context.Context, history []porcupine.Operation, opts Options) (Result, error) {
	start := time.Now()
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 10 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.MaxExamples <= 0 {
		opts.MaxExamples = 3
	}
	for i, op := range history {
		if _, ok := op.Input.(Input); !ok {
			return Result{}, fmt.Errorf("linearize: operation %d has input %T, want linearize.Input", i, op.Input)
		}
		if _, ok := op.Output.(Output); !ok {
			return Result{}, fmt.Errorf("linearize: operation %d has output %T, want linearize.Output", i, op.Output)
		}
	}

	var sessions []*session
	for _, part := range partition(history) {
		s := &session{key: part[0].Input.(Input).Key, ops: renumberClients(part)}
		groupTwins(s.ops)
		s.cfg, s.model = sessionModel(opts.Config, s.ops)
		sessions = append(sessions, s)
	}
	sort.Slice(sessions, func(i, j int) bool { return sessions[i].key < sessions[j].key })

	var res Result
	res.Sessions = len(sessions)
	for _, s := range sessions {
		res.Operations += len(s.ops)
		for _, op := range s.ops {
			if op.Output.(Output).Indeterminate {
				res.Indeterminate++
			}
		}
	}

	work := make(chan *session)
	var wg sync.WaitGroup
	for w := 0; w < opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				s.result = porcupine.CheckOperationsTimeout(s.model, s.ops, opts.SessionTimeout)
			}
		}()
	}
	var ctxErr error
feed:
	for _, s := range sessions {
		select {
		case work <- s:
		case <-ctx.Done():
			ctxErr = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()

	var illegal []*session
	for _, s := range sessions {
		switch s.result {
		case porcupine.Illegal:
			illegal = append(illegal, s)
			if len(res.Failing) < maxFailingKeys {
				res.Failing = append(res.Failing, s.key)
			}
		case porcupine.Ok:
		default: // Unknown, or never checked
			res.Unknown++
		}
	}
	res.Illegal = len(illegal)
	// Explain the smallest failures first: they are the easiest to read.
	sort.SliceStable(illegal, func(i, j int) bool { return len(illegal[i].ops) < len(illegal[j].ops) })
	for i, s := range illegal {
		if i >= opts.MaxExamples || ctx.Err() != nil {
			break
		}
		r, info := porcupine.CheckOperationsVerbose(s.model, s.ops, opts.SessionTimeout)
		if r != porcupine.Illegal {
			res.Examples = append(res.Examples, fmt.Sprintf("session %s: %d operations, not linearizable", s.key, len(s.ops)))
			continue
		}
		res.Examples = append(res.Examples, explain(s.cfg, s, info))
		if i == 0 {
			res.Smallest = sessionHistory(s)
		}
		if i == 0 && opts.VisualizationPath != "" {
			if err := os.MkdirAll(filepath.Dir(opts.VisualizationPath), 0o755); err != nil {
				return res, fmt.Errorf("linearize: visualisation: %w", err)
			}
			if err := porcupine.VisualizePath(s.model, info, opts.VisualizationPath); err != nil {
				return res, fmt.Errorf("linearize: visualisation: %w", err)
			}
			res.Visualization = opts.VisualizationPath
		}
	}
	res.Elapsed = time.Since(start)
	return res, ctxErr
}

// renumberClients gives a session's operations dense client ids (rows of
// the visualisation) in order of first call.
func renumberClients(ops []porcupine.Operation) []porcupine.Operation {
	out := append([]porcupine.Operation(nil), ops...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Call < out[j].Call })
	ids := map[int]int{}
	for i := range out {
		id, ok := ids[out[i].ClientId]
		if !ok {
			id = len(ids)
			ids[out[i].ClientId] = id
		}
		out[i].ClientId = id
	}
	return out
}

// explain describes a failure: the longest linearizable prefix found, the
// states it can leave, and the operations that could come next but fit none.
func explain(cfg Config, s *session, info porcupine.LinearizationInfo) string {
	parts := info.PartialLinearizationsOperations()
	var longest []porcupine.Operation
	if len(parts) > 0 {
		for _, p := range parts[0] {
			if len(p) > len(longest) {
				longest = p
			}
		}
	}
	states := []State{{}}
	for _, op := range longest {
		var next []State
		for _, st := range states {
			for _, ns := range cfg.step(st, op.Input.(Input), op.Output.(Output)) {
				if !containsState(next, ns) {
					next = append(next, ns)
				}
			}
		}
		states = next
	}
	done := map[int64]map[string]int{} // (call, description) multiset of linearized ops
	key := func(op porcupine.Operation) string {
		return DescribeOperation(op.Input.(Input), op.Output.(Output))
	}
	for _, op := range longest {
		if done[op.Call] == nil {
			done[op.Call] = map[string]int{}
		}
		done[op.Call][key(op)]++
	}
	var rest []porcupine.Operation
	for _, op := range s.ops {
		if m := done[op.Call]; m != nil && m[key(op)] > 0 {
			m[key(op)]--
			continue
		}
		rest = append(rest, op)
	}
	// Candidates: operations called before the earliest return of the rest.
	minRet := Infinity
	for _, op := range rest {
		minRet = min(minRet, op.Return)
	}
	t0 := s.ops[0].Call
	var cands []string
	for _, op := range rest {
		if op.Call <= minRet && len(cands) < 4 {
			cands = append(cands, fmt.Sprintf("%s [client %d, +%s]", key(op), op.ClientId,
				time.Duration(op.Call-t0).Round(time.Microsecond)))
		}
	}
	var sd []string
	for _, st := range states {
		sd = append(sd, DescribeState(st))
	}
	last := "the start"
	if len(longest) > 0 {
		last = key(longest[len(longest)-1])
	}
	return fmt.Sprintf("session %s: %d operations, not linearizable: after %d of them (last %s; state %s) none of the next fits: %s",
		s.key, len(s.ops), len(longest), last, strings.Join(sd, " | "), strings.Join(cands, "; "))
}

func containsState(ss []State, s State) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
