package loadgen

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// seedWorkers bounds the seeding's concurrency (also by Config.Workers).
const seedWorkers = 64

// seedReport is what a steady start's seeding did.
type seedReport struct {
	sessions int           // sessions planned
	seeded   int64         // sessions written
	failed   int64         // seeds that failed (their sessions start cold)
	took     time.Duration // how long seeding took
	firstErr error
}

// seedSessions writes the steady start's sessions before the schedule, with
// at most workers PUTs in flight. Seeds are not measured; a seed that fails
// leaves its session to be created by its first page, as in a cold start.
func (r *pageRunner) seedSessions(ctx context.Context, seeds []slot, workers int, log io.Writer) seedReport {
	rep := seedReport{sessions: len(seeds)}
	if len(seeds) == 0 {
		return rep
	}
	if log != nil {
		fmt.Fprintf(log, "steady start: seeding %d sessions…\n", len(seeds))
	}
	t0 := time.Now()
	var next, seeded, failed atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < min(workers, seedWorkers, len(seeds)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rec pageRecord
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(seeds)) {
					return
				}
				rec.reset()
				rec.id, rec.kind = -1-i, string(seeds[i].kind)
				if err := r.seed(ctx, seeds[i], &rec); err != nil {
					failed.Add(1)
					once.Do(func() { rep.firstErr = err })
				} else {
					seeded.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	rep.seeded, rep.failed = seeded.Load(), failed.Load()
	rep.took = time.Since(t0)
	if log != nil {
		fmt.Fprintf(log, "steady start: %s\n", rep)
	}
	return rep
}

// String describes the seeding for people and for the result's options.
func (s seedReport) String() string {
	msg := fmt.Sprintf("%d of %d sessions seeded in %s", s.seeded, s.sessions, s.took.Round(time.Millisecond))
	if s.failed > 0 {
		msg += fmt.Sprintf(", %d failed (first: %v); those sessions start cold", s.failed, s.firstErr)
	}
	return msg
}
