package stateserver

import (
	"path/filepath"
	"testing"
)

// A data directory's lock is exclusive: a second lockDir fails until the
// first is released (flock on Unix, LockFileEx on Windows; both hold between
// two opens in one process).
func TestLockDirIsExclusive(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), lockName)
	first, err := lockDir(path)
	if err != nil {
		t.Fatal(err)
	}
	if second, err := lockDir(path); err == nil {
		unlockDir(second)
		unlockDir(first)
		t.Fatal("a second lockDir on a locked data directory succeeded")
	}
	unlockDir(first)
	again, err := lockDir(path)
	if err != nil {
		t.Fatalf("lockDir after unlockDir: %v", err)
	}
	unlockDir(again)
}
