package loadgen

import (
	"context"
	"fmt"
	"os"
)

// The open model's engines: how the schedule's slots reach the goroutines
// that run their pages. Both run the same pages (pageRunner) and measure
// them the same way, from the intended start.
const (
	// EngineDispatcher is one dispatcher goroutine following the whole
	// schedule and handing every slot to a worker goroutine
	// (openDispatcher). The default.
	EngineDispatcher = "dispatcher"
	// EngineOwners partitions the schedule by session among owner
	// goroutines, each sleeping until its own next slot and running the
	// page itself (openOwners).
	EngineOwners = "owners"
)

// EngineEnv names the environment variable that selects the open model's
// engine: EngineDispatcher (the default) or EngineOwners. It is internal:
// `make bench` runs both to compare them in one run (docs/load.md#engines
// says why both are kept).
const EngineEnv = "ASPSTATE_OPEN_ENGINE"

// openEngine returns the engine EngineEnv selects.
func openEngine() (string, error) {
	switch e := os.Getenv(EngineEnv); e {
	case "", EngineDispatcher:
		return EngineDispatcher, nil
	case EngineOwners:
		return e, nil
	default:
		return "", fmt.Errorf("%s=%q: want %s or %s (or unset)", EngineEnv, e, EngineOwners, EngineDispatcher)
	}
}

// open runs the open model with the run's engine; true when ctx ended it
// before the schedule did.
func (r *runner) open(ctx, pageCtx context.Context, cutOff context.CancelFunc) bool {
	if r.engine == EngineOwners {
		return r.openOwners(ctx, pageCtx, cutOff)
	}
	return r.openDispatcher(ctx, pageCtx, cutOff)
}
