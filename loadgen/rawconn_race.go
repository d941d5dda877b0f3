//go:build race

package loadgen

// raceDetector: this build has the race detector (see wrapRaw).
const raceDetector = true
