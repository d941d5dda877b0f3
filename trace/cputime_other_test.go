//go:build !unix

package trace

import "time"

// cpuTime is unknown here: the benchmark then reports wall-clock MB/s only.
func cpuTime() time.Duration { return 0 }
