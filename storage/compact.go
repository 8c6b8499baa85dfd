package storage

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/posagent/posagent/internal/durable"
	bolt "go.etcd.io/bbolt"
)

// CompactIdentity rewrites the identity store at path into a fresh file
// holding only its live records, and puts it in place of the old one. The
// store keeps commands, acks and events only until they are acted on or
// delivered, but bbolt leaves freed pages as they were: after an unbind
// they may still hold a provision command's parameters or an old ack. The
// daemon compacts before a reboot so that no file under data_dir keeps
// them. The store must be closed. A power cut at any point leaves the old
// file or the new one, both complete.
func CompactIdentity(path string) error {
	src, err := openBolt("identity", path)
	if err != nil {
		return err
	}
	defer guard(src.Close)
	tmp := path + ".compact"
	_ = os.Remove(tmp) // a leftover of an earlier cut
	dst, err := bolt.Open(tmp, fileMode, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("compact identity store %s: %w", path, err)
	}
	err = guard(func() error { return bolt.Compact(dst, src, 1<<20) })
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = durable.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compact identity store %s: %w", path, err)
	}
	return nil
}
