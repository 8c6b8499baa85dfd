package storage

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFailStopsOnFullDisk: the counter is written on a tmpfs that is full
// (a new block fails with ENOSPC), and reads back across a reopen.
func TestFailStopsOnFullDisk(t *testing.T) {
	dir := smallTmpfs(t, "256k")
	c, err := OpenFailStops(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Load(); err != nil || n != 0 {
		t.Fatalf("new counter: %d, %v", n, err)
	}
	fillDisk(t, dir)
	for _, n := range []int{1, 2, 3} {
		if err := c.Store(n); err != nil {
			t.Fatalf("store %d on a full disk: %v", n, err)
		}
	}
	c.Close()
	if c, err = OpenFailStops(dir); err != nil {
		t.Fatalf("reopen on a full disk: %v", err)
	}
	defer c.Close()
	if n, err := c.Load(); err != nil || n != 3 {
		t.Fatalf("after reopen: %d, %v; want 3", n, err)
	}
}

// smallTmpfs mounts a tmpfs of size on a temp dir (the tests run as root),
// unmounted when the test ends.
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("the test mounts a tmpfs and needs root (uid %d)", os.Geteuid())
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fillDisk fills dir's file system to the last block, and checks that a
// new block fails with ENOSPC.
func fillDisk(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "ballast"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the disk: %v, want ENOSPC", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "one-more"), buf, 0o600); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a new block on the full disk: %v, want ENOSPC", err)
	}
}

// TestFailStopsUnreadable: a counter that holds no number reads 0.
func TestFailStopsUnreadable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FailStopsFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := OpenFailStops(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.Load(); err != nil || n != 0 {
		t.Fatalf("garbage counter: %d, %v; want 0", n, err)
	}
}
