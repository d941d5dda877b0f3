package stateserver

import (
	"io"
	"os"
)

// walFS is the file system under the log: the operations the log writer
// and the snapshotter use to make records durable. The OS implementation
// (osFS) is the default; tests substitute one that fails a chosen write,
// fsync or rename to show that the server then acknowledges nothing that
// may not survive. Recovery reads and truncates through the os package
// directly: it runs before the server answers anything.
type walFS interface {
	// Create opens path for writing, creating it with mode 0644; flag adds
	// os.O_EXCL (a file that must be new) or os.O_TRUNC (one to overwrite).
	Create(path string, flag int) (walFile, error)
	Rename(from, to string) error
	Remove(path string) error
	// SyncDir fsyncs directory dir, so that names created, renamed or
	// removed in it are durable.
	SyncDir(dir string) error
}

// walFile is a file the log writes: a segment or a snapshot being written.
type walFile interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

// osFS is walFS on the operating system's files.
type osFS struct{}

func (osFS) Create(path string, flag int) (walFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|flag, 0o644)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) Rename(from, to string) error { return os.Rename(from, to) }

func (osFS) Remove(path string) error { return os.Remove(path) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
