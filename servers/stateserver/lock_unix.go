//go:build unix

package stateserver

import (
	"os"
	"syscall"
)

// lockDir takes an exclusive, non-blocking flock on path (created if
// missing), so that two servers never share a data directory. The lock
// goes with the process, also on kill -9.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close() // the lock error is the one to report
		return nil, err
	}
	return f, nil
}

// unlockDir releases a lock taken by lockDir.
func unlockDir(f *os.File) {
	if f != nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) // closing the file releases the lock too
		_ = f.Close()                                   // the LOCK file holds no data
	}
}
