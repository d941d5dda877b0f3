//go:build unix

package trace

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) the process has used, so that
// the benchmark can report throughput per core on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
