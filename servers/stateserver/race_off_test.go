//go:build !race

package stateserver

// raceEnabled: the race detector is on (tests scale their load down).
const raceEnabled = false
