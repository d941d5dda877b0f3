//go:build !linux

package loadgen

import "context"

// newSleeper returns the dispatcher's sleeper: Go timers off Linux.
func newSleeper(ctx context.Context) sleeper { return newTimerSleeper(ctx) }
