//go:build !race

package rawio

// raceDetector: this build has the race detector (see Wrap).
const raceDetector = false
