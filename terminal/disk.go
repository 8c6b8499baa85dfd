package terminal

import "log/slog"

// MinFreeKiB is the free space of the data directory below which no new
// sale or void starts: what is left is kept for what is already owed (a
// reversal to clear, a settlement to finish), each of which needs a few
// pages of the stores.
const MinFreeKiB = 512

// DiskFree tells the machine the free space of the data directory; the
// shell sends it at boot and whenever it changes.
type DiskFree struct{ KiB int64 }

func (DiskFree) isEvent() {}

func (m *Machine) onDiskFree(kib int64) {
	low := kib < MinFreeKiB
	if m.diskKnown && low == m.diskLow {
		return
	}
	m.diskKnown, m.diskLow = true, low
	if low {
		m.log(slog.LevelWarn, "data directory nearly full: no new sale or void", slog.Int64("free_kib", kib))
	} else {
		m.log(slog.LevelInfo, "data directory has room again", slog.Int64("free_kib", kib))
	}
}

// diskFull refuses a new sale or void, before anything is written or
// sent, when the data directory is nearly full.
func (m *Machine) diskFull(title string) bool {
	if !m.diskLow {
		return false
	}
	m.showResult(title, "DISK FULL", "SETTLE, CALL SERVICE")
	return true
}
