//go:build !unix && !windows

package stateserver

import "os"

// lockFile does nothing: without flock or LockFileEx on this platform a
// second server is not stopped from sharing the data directory.
func lockFile(f *os.File) error { return nil }

// unlockFile does nothing.
func unlockFile(f *os.File) {}
