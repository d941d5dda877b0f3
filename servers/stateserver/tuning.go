package stateserver

import "runtime/debug"

// ApplyMemoryTuning sets a soft memory limit for the Go runtime
// (debug.SetMemoryLimit) when limit > 0; 0 leaves the runtime default
// (GOMEMLIMIT or none). The setting is process-wide, so only a main package
// (aspstate serve --memory-limit) or a dedicated test process calls it.
//
// Why it matters: the live heap of 1M sessions with 1 KiB bodies is about
// 1.15 GiB (≈1234 bytes/session). Filling the store stays near 1.35 GiB RSS
// with the default GC, but rewriting every session (1 GiB of replaced
// bodies) lets the default GC (GOGC=100) grow the heap to ≈2.2 GiB. A limit
// of 1400 MiB keeps the peak under 1.5 GiB at the cost of more GC work when
// the store is that full (see TestMemory1M).
func ApplyMemoryTuning(limit int64) {
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
}
