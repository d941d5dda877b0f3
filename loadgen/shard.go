package loadgen

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
)

// Shard is one of Count load generators that together run one farm, for
// load beyond one machine. Shard I (1-based) emulates the web servers w
// (0-based) with w % Count == I-1 and takes their share of the load: the
// rate, the user population or the closed-loop users, in proportion to its
// web servers (1/Count when Count divides the number of web servers). The
// shards of one run share a start time (Config.StartAt); their results
// merge into one with results.Merge (`aspstate merge`).
//
// Faults of the timeline: the ones on the state server (restart, kill,
// pause) are applied by shard 1 only, since the shards share the server;
// network faults by every shard, each through its own fault proxy; a
// recycle by the shard that runs that web server. Each shard has its own
// seed (the seed plus a constant per shard), so Poisson arrivals and
// session plans are independent.
type Shard struct {
	Index, Count int
}

// ParseShard parses "I/N" (1 <= I <= N).
func ParseShard(s string) (Shard, error) {
	i, n, err := results.ParseShard(s)
	if err != nil {
		return Shard{}, err
	}
	return Shard{Index: i, Count: n}, nil
}

// String returns "I/N".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// webServers returns the number of web servers shard s runs of w, and the
// number of the earlier shards.
func (s Shard) webServers(w int) (mine, before int) {
	for x := 0; x < w; x++ {
		switch {
		case x%s.Count == s.Index-1:
			mine++
		case x%s.Count < s.Index-1:
			before++
		}
	}
	return mine, before
}

// split returns this shard's part of total when it is spread in proportion
// to web servers: the parts of all shards add up to total exactly.
func split(total, before, mine, all int) int {
	cum := func(k int) int { return int(math.Round(float64(total) * float64(k) / float64(all))) }
	return cum(before+mine) - cum(before)
}

// applyShard turns c into its shard's part of the run (see Shard).
func (c *Config) applyShard() error {
	s := c.Shard
	if s.Count == 0 {
		return nil
	}
	if s.Index < 1 || s.Index > s.Count {
		return fmt.Errorf("shard %s: want I/N with 1 <= I <= N", s)
	}
	sc := c.Scenario.Clone()
	w := sc.Farm.WebServers
	if w < s.Count {
		return fmt.Errorf("shard %s: scenario %s has %d web servers and each shard needs at least one; use at most %d shards or a farm with more web servers",
			s, sc.Name, w, w)
	}
	mine, before := s.webServers(w)
	share := float64(mine) / float64(w)
	sc.Farm.WebServers = mine
	switch {
	case c.ClosedLoop:
		c.Connections = max(1, split(c.Connections, before, mine, w))
	case sc.Users.Population > 0:
		sc.Users.Population = split(sc.Users.Population, before, mine, w)
		if sc.Users.Population < 1 {
			return fmt.Errorf("shard %s: a population of %d users leaves none to this shard; use fewer shards", s, c.Scenario.Users.Population)
		}
	case c.Rate > 0:
		c.Rate *= share
	default:
		r := &sc.Rate
		r.PagesPerSecond *= share
		r.From *= share
		r.To *= share
		for i := range r.Steps {
			r.Steps[i].PagesPerSecond *= share
		}
	}
	c.Seed += uint64(s.Index-1) * 0x9E3779B97F4A7C15
	var faults []scenarios.Fault
	for _, f := range sc.Faults {
		switch {
		case f.Kind == scenarios.FaultRecycle:
			if x := f.Params.WebServer - 1; x%s.Count == s.Index-1 {
				f.Params.WebServer = x/s.Count + 1
				faults = append(faults, f)
			}
		case isNetworkFault(f.Kind) || s.Index == 1:
			faults = append(faults, f)
		}
	}
	sc.Faults = faults
	if err := sc.Validate(); err != nil {
		return fmt.Errorf("shard %s: %w", s, err)
	}
	c.Scenario = sc
	return nil
}

// startTime returns when the schedule starts: 20ms from now (so the first
// slots are not late because of setup), or at, waiting until just before
// it so the interval ticks line up with the other shards'. A start more
// than a second in the past is an error: every slot would start late.
func startTime(ctx context.Context, at time.Time) (time.Time, error) {
	const ahead = 20 * time.Millisecond
	if at.IsZero() {
		return time.Now().Add(ahead), nil
	}
	if late := time.Since(at); late > time.Second {
		return time.Time{}, fmt.Errorf("start time %s passed %s ago: give a time far enough ahead for every shard to be running (e.g. 30s from now)",
			at.UTC().Format(time.RFC3339Nano), late.Round(time.Millisecond))
	}
	_ = sleepCtx(ctx, time.Until(at)-ahead) // an ended ctx shows as an interrupted run
	return at, nil
}
