package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/posagent/posagent/internal/durable"
)

// FailStopsFile is the file under data_dir that counts fail-stops in a row.
const FailStopsFile = "failstops"

// failStopsBlock is the size of the file: one block, written whole.
const failStopsBlock = 4096

// FailStops keeps the count of fail-stops in a row: reboots the terminal
// core asked for because a write failed (terminal.MaxFailStops). It lives
// outside the bbolt stores because it is written just after one of their
// writes failed, most often on a full disk: the file is made one block
// long while there is room (OpenFailStops), and every count is written
// over that block in place, which allocates nothing (tmpfs, ext4, vfat do
// not need free space to overwrite allocated blocks).
type FailStops struct{ f *os.File }

// OpenFailStops opens the counter under dataDir, making it (count 0) if it
// is missing or short. Making it needs a block of free space; the daemon
// goes on without a counter when that fails.
func OpenFailStops(dataDir string) (*FailStops, error) {
	path := filepath.Join(dataDir, FailStopsFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("fail-stop counter: %w", err)
	}
	c := &FailStops{f: f}
	fi, err := f.Stat()
	if err == nil && fi.Size() < failStopsBlock {
		n, _ := c.Load() // a short file from a cut: keep what it says
		if err = c.Store(n); err == nil {
			err = durable.SyncDir(dataDir)
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fail-stop counter %s: %w", path, err)
	}
	return c, nil
}

// Load reads the count; a file that does not hold one reads 0 (the count
// only decides whether a boot waits).
func (c *FailStops) Load() (int, error) {
	buf := make([]byte, failStopsBlock)
	n, err := c.f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read fail-stop counter: %w", err)
	}
	line, _, _ := bytes.Cut(buf[:n], []byte("\n"))
	v, err := strconv.Atoi(string(line))
	if err != nil || v < 0 {
		return 0, nil
	}
	return v, nil
}

// Store writes the count over the block and fsyncs it.
func (c *FailStops) Store(n int) error {
	buf := make([]byte, failStopsBlock)
	copy(buf, strconv.Itoa(max(n, 0))+"\n")
	if _, err := c.f.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("write fail-stop counter: %w", err)
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("sync fail-stop counter: %w", err)
	}
	return nil
}

// Close closes the file.
func (c *FailStops) Close() error { return c.f.Close() }
