package stateserver

import "runtime/debug"

// ApplyMemoryTuning sets a soft memory limit for the Go runtime
// (debug.SetMemoryLimit) when limit > 0; 0 leaves the runtime default
// (GOMEMLIMIT or none). The setting is process-wide, so only a main package
// (aspstate serve --memory-limit) or a dedicated test process calls it.
//
// Why it matters: 1M sessions with 1 KiB bodies are about 1.15 GiB of live
// heap (≈1234 bytes/session). Filling the store stays near 1.34 GiB RSS with
// the default GC, but request-parsing garbage from sustained traffic lets
// the default GC (GOGC=100) grow the heap towards twice the live data
// (1.6 GiB after 2M further GETs, and rising). With a limit of 1400 MiB the
// peak stayed at 1.37 GiB through fill, rewrite and reads, at little cost
// in throughput (see TestMemory1M).
func ApplyMemoryTuning(limit int64) {
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
}
