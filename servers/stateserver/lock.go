package stateserver

import "os"

// lockDir opens path (created if missing) and takes an exclusive,
// non-blocking lock on it (lockFile: flock on Unix, LockFileEx on Windows),
// so that two servers never share a data directory. The lock goes with the
// process, also when it is killed.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		_ = f.Close() // the lock error is the one to report
		return nil, err
	}
	return f, nil
}

// unlockDir releases a lock taken by lockDir.
func unlockDir(f *os.File) {
	if f != nil {
		unlockFile(f)
		_ = f.Close() // the LOCK file holds no data
	}
}
