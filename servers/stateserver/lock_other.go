//go:build !unix && !windows

package stateserver

import "os"

// lockDir opens path; without flock on this platform it does not stop a
// second server from sharing the data directory.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
}

// unlockDir closes a file opened by lockDir.
func unlockDir(f *os.File) {
	if f != nil {
		f.Close()
	}
}
