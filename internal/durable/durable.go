// Package durable holds the two file operations that survive a power cut,
// shared by the stores, the software secure element and HQ's state files.
package durable

import (
	"os"
	"path/filepath"
)

// SyncDir fsyncs a directory so that a create, rename or unlink in it is
// durable (POSIX leaves directory entries to the directory's own fsync).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

// WriteFile replaces path with data atomically: a temp file in the same
// directory, written and fsynced with the mode, renamed over path, then
// the directory fsynced. After a power cut path holds the old content or
// the new, never a mix.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // after a successful rename there is nothing left to remove
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	return SyncDir(dir)
}
