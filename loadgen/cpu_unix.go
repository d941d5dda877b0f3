//go:build unix

package loadgen

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time this process has used, in user and in
// system mode.
func processCPU() (user, system time.Duration, ok bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0, false
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), true
}
