//go:build !unix

package loadgen

import "time"

// processCPU cannot tell on this platform.
func processCPU() (user, system time.Duration, ok bool) { return 0, 0, false }
