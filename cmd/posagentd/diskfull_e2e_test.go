package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/iso8583/hostsim"
)

// mountTmpfs mounts a small tmpfs (root: make test runs as root on the
// project's machines) and unmounts it when the test ends.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("the disk-full test mounts a %s tmpfs and needs root (uid %d)", size, os.Geteuid())
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}

// moveToTmpfs moves the (stopped) terminal's data_dir onto a new tmpfs of
// size and points its config there; it returns the mount point.
func moveToTmpfs(t *testing.T, h *Term, size string) string {
	t.Helper()
	mnt := filepath.Join(h.Dir, "small")
	mountTmpfs(t, mnt, size)
	if out, err := exec.Command("cp", "-a", h.DataDir, mnt+"/").CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	cfg, err := os.ReadFile(h.Config)
	if err != nil {
		t.Fatal(err)
	}
	h.DataDir = filepath.Join(mnt, filepath.Base(h.DataDir))
	cfg = []byte(strings.Replace(string(cfg), "data_dir = ", "data_dir = \""+h.DataDir+"\"\n#", 1))
	if err := os.WriteFile(h.Config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return mnt
}

func freeKiB(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize) / 1024
}

// fill writes a filler file until keepKiB are left (0: until ENOSPC).
func fill(t *testing.T, dir, name string, keepKiB int64) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for freeKiB(t, dir) > keepKiB {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

// TestDiskFullE2E: the data directory on a 4 MiB tmpfs. Nearly full, a
// sale is refused before anything reaches the host; completely full, a
// settlement either completes or fails stop (STORAGE FAULT, reboot) and
// never wedges; once space returns the terminal settles balanced: the
// host's ledger and the journal agree.
func TestDiskFullE2E(t *testing.T) {
	sim := startAcqSim(t)
	h := NewTerm(t, sim, TermOptions{Timeout: "3s"})
	h.Kill9() // moved to the small disk as it is
	mnt := moveToTmpfs(t, h, "4m")
	h.Restart()

	if s := h.Sale(1000, track2A); !strings.Contains(s, "APPROVED") {
		t.Fatalf("sale on the tmpfs: %q", s)
	}
	h.Keys("\r")
	h.WaitScreen("MAIN MENU", waitTimeout)
	txnsAtHost := func() int {
		ht := h.HostTerminal()
		n := 0
		for _, b := range ht.Batches {
			n += len(b.Transactions)
		}
		return n
	}
	before := txnsAtHost()

	// Nearly full: no new sale or void starts, nothing leaves.
	fill(t, mnt, "filler-1", 200)
	time.Sleep(1500 * time.Millisecond) // the daemon reads the free space every second
	h.Keys("1")
	if s, w := h.WaitAny(waitTimeout, "DISK FULL", "AMOUNT"); w != "DISK FULL" {
		t.Fatalf("sale with %d KiB free: %q, want DISK FULL", freeKiB(t, mnt), s)
	}
	h.Keys("\r")
	h.WaitScreen("MAIN MENU", waitTimeout)
	if n := txnsAtHost(); n != before {
		t.Fatalf("the host got %d transactions while the disk was full, want %d", n, before)
	}

	// Completely full during a settlement: it completes, or it fails stop;
	// it never waits for ever.
	fill(t, mnt, "filler-2", 0)
	h.Keys("3\r")
	s, w := h.WaitAny(waitTimeout, "SETTLED", "STORAGE FAULT", "SETTLE FAILED")
	t.Logf("settlement on a full disk: %s", strings.ReplaceAll(s, "\r\n", " | "))
	switch w {
	case "SETTLED":
		h.Keys("\r")
	case "SETTLE FAILED":
		h.Keys("\r")
	case "STORAGE FAULT":
		h.waitExit()
		if h.exitSt != exitReboot {
			t.Fatalf("after STORAGE FAULT: exit %d, want %d (reboot)", h.exitSt, exitReboot)
		}
	}

	// Space returns: the terminal settles what it owes and the host
	// agrees with the journal (a balanced settlement: flag 1).
	for _, f := range []string{"filler-1", "filler-2"} {
		if err := os.Remove(filepath.Join(mnt, f)); err != nil {
			t.Fatal(err)
		}
	}
	if !h.running() {
		h.Start()
	}
	h.WaitScreen("MAIN MENU", waitTimeout)
	if w != "SETTLED" {
		h.Keys("3\r")
		if s, w := h.WaitAny(waitTimeout, "SETTLED", "SETTLE FAILED", "NOTHING"); w != "SETTLED" {
			t.Fatalf("settlement once space returned: %q", s)
		}
	}
	var settled *hostsim.Batch
	for _, b := range h.HostTerminal().Batches {
		if b.Settlement != nil {
			settled = b
		}
	}
	if settled == nil || settled.Settlement.Flag != "1" || settled.Settlement.Terminal != settled.Settlement.Host {
		t.Fatalf("host settlement %+v: want balanced, terminal totals = host totals", settled)
	}
	if settled.Settlement.Host.DebitCount < 1 {
		t.Fatalf("host settlement %+v: the approved sale is missing", settled.Settlement)
	}
}
