package terminal

import (
	"log/slog"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/terminal/i18n"
)

// MinFreeKiB is the free space of the data directory below which no new
// sale or void starts: what is left is kept for what is already owed (a
// reversal to clear, a settlement to finish), each of which needs a few
// pages of the stores.
const MinFreeKiB = 512

// DiskFree tells the machine the free space of the data directory; the
// shell sends it before Boot (so the boot decision knows it), then
// whenever it changes.
type DiskFree struct{ KiB int64 }

func (DiskFree) isEvent() {}

func (m *Machine) onDiskFree(kib int64) {
	low := kib < MinFreeKiB
	if m.diskKnown && low == m.diskLow {
		return
	}
	first := !m.diskKnown
	m.diskKnown, m.diskLow = true, low
	switch {
	case first && !low:
		m.log(slog.LevelInfo, "data directory free space", slog.Int64("free_kib", kib))
	case low:
		m.log(slog.LevelWarn, "data directory nearly full: no new sale or void", slog.Int64("free_kib", kib))
	default:
		m.log(slog.LevelInfo, "data directory has room again", slog.Int64("free_kib", kib))
		if m.holding {
			m.releaseHold("the data directory has room again")
		}
	}
}

// diskFull refuses a new sale or void, before anything is written or
// sent, when the data directory is nearly full.
func (m *Machine) diskFull(title string) bool {
	if !m.diskLow {
		return false
	}
	m.showResult(title, m.t(i18n.DiskFull), m.t(i18n.SettleCall))
	return true
}

// The storage hold: a disk that stays full must not make the terminal
// reboot at every attempt. A write that fails stops the terminal and the
// next boot rebuilds the state from disk (failStop); but when that boot
// owes work (a reversal, a settlement, an unbind, an interrupted
// activation) and the write it needs failed the time before, doing it
// again at once only fails again: a reboot loop that re-sends the same
// reversal to the host every half minute while the screen flickers. So
// the boot holds instead: it shows ERROR / STORAGE FULL (or STORAGE FAULT)
// / CALL SERVICE and waits, with nothing in memory ahead of the disk,
// until the disk has room again or HoldRetry has passed; then it does the
// owed work as a boot would. A retry that fails again fails stop (and the
// next boot holds again): one reboot per HoldRetry at most. A pending
// reversal is still sent at every boot, hold or not (acquirer.md): it
// needs no write to leave, and the cardholder's funds should not wait for
// the disk.

// MaxFailStops is the number of fail-stops in a row after which a boot
// holds whatever the disk meter says (a store that fails without a full
// disk: worn flash, an I/O error), and whatever is owed (an inbox command
// whose write fails is not the core's to see).
const MaxFailStops = 3

// HoldRetry is how long a held terminal waits before it tries the owed
// work again on its own.
const HoldRetry = 10 * time.Minute

// StableAfter is how long a terminal must run with nothing owed and no
// fail-stop before the count of fail-stops in a row starts again from
// zero (a piece of money work written clears it at once:
// clearFailStops).
const StableAfter = time.Minute

// PutFailStops asks the shell to record N, the count of fail-stops in a
// row. It is written when a write has just failed, often because the
// disk is full, so the shell keeps it outside the stores in space
// reserved while there was room. A failure to record it is logged, not
// fatal: the count only decides whether the next boot waits.
type PutFailStops struct{ N int }

func (PutFailStops) isEffect() {}

// Holding reports that the terminal waits on the storage hold: the shell
// leaves the inbox alone meanwhile (answering a command needs a write).
func (m *Machine) Holding() bool { return m.holding }

// owesWork reports whether a boot has work to do that writes: a pending
// reversal, a settlement to resume, an unbind to go on with, an
// interrupted activation to erase.
func (m *Machine) owesWork() bool {
	return m.st.Incomplete || m.st.Intent != nil ||
		(m.st.Lifecycle == Active && (m.st.Reversal != nil || m.st.Settling != 0))
}

// mustHold is the boot's decision: hold after MaxFailStops fail-stops in
// a row, or after one when work is owed and the disk is still nearly full.
func mustHold(failStops int, diskLow, owed bool) bool {
	return failStops >= MaxFailStops || (failStops > 0 && diskLow && owed)
}

func (m *Machine) hold() {
	m.holding = true
	m.views = []view{m.rootView()}
	m.alarm = m.now.Add(HoldRetry)
	m.onAlarm = func(m *Machine) { m.releaseHold("retry") }
	m.log(slog.LevelError, "storage hold: the owed work waits for room on the data directory",
		slog.Int("fail_stops", m.st.FailStops), slog.Bool("disk_low", m.diskLow), slog.Time("retry_at", m.alarm))
	if rv := m.st.Reversal; rv != nil && m.st.Merchant.TID != "" {
		m.reverseUnrecorded(*rv)
	}
}

// reverseUnrecorded sends the pending reversal from the hold. Its image is
// on disk, so sending it writes nothing; its answer is not recorded (that
// is the write the disk refused): the reversal stays pending, and is sent
// again and cleared once the hold is released (any 0410 clears it; the
// host answers a repeated reversal the same).
func (m *Machine) reverseUnrecorded(rv Reversal) {
	req := Request{Kind: MsgReversal, STAN: rv.Txn.STAN, Batch: rv.Txn.Batch, Txn: rv.Txn, Reason: rv.Reason, Auth: rv.Auth}
	m.exchange(req, func(m *Machine, r AcquirerReply) {
		if r.Err != nil || r.Resp.Undecodable || r.Resp.STAN != rv.Txn.STAN {
			m.log(slog.LevelWarn, "storage hold: reversal not answered", slog.String("stan", rv.Txn.STAN.String()), errAttr(r.Err))
			return
		}
		m.log(slog.LevelInfo, "storage hold: reversal answered by the host, recorded once the disk has room",
			slog.String("stan", rv.Txn.STAN.String()), slog.String("code", r.Resp.RespCode))
	})
}

// releaseHold does what the boot held back. Nothing changed in memory
// meanwhile, so it is the boot's work exactly.
func (m *Machine) releaseHold(why string) {
	m.holding = false
	m.alarm, m.onAlarm = time.Time{}, nil
	m.stableFrom = m.now // a release is a boot for the count: it is the same work again
	m.log(slog.LevelInfo, "storage hold released", slog.String("why", why))
	m.views = []view{m.rootView()}
	m.resumeOwed()
}

// forgiveFailStops clears the count once the terminal has run StableAfter
// since boot (or the hold's release) with nothing owed: the fail-stops
// before were not a loop.
func (m *Machine) forgiveFailStops() {
	if m.st.FailStops == 0 || m.holding || m.owesWork() || !m.linkIdle() || m.now.Sub(m.stableFrom) < StableAfter {
		return
	}
	m.clearFailStops("running without a fault")
}

// clearFailStops starts the count again from zero. It is called just
// after the write that ends a piece of money work (a transaction's answer
// committed, a reversal cleared, a batch closed, an unbind written), so
// the shell runs it only when that write succeeded: the store took the
// money work, the fail-stops before were not a loop.
func (m *Machine) clearFailStops(why string) {
	if m.st.FailStops == 0 {
		return
	}
	m.log(slog.LevelInfo, "fail-stop count cleared", slog.String("why", why), slog.Int("was", m.st.FailStops))
	m.st.FailStops = 0
	m.emit(PutFailStops{N: 0})
}

// holdView is the root screen of the storage hold. Keys are ignored: the
// cashier can do nothing about it; service frees space, and the terminal
// goes on by itself.
type holdView struct{}

func (holdView) render(m *Machine) hal.Screen {
	what := i18n.StorageFault
	if m.diskLow {
		what = i18n.StorageFull
	}
	l := []string{m.t(i18n.Error), m.t(what), m.t(i18n.CallService), ""}
	switch {
	case m.st.Intent != nil:
		l = append(l, m.t(i18n.UnbindWaiting))
	case m.st.Reversal != nil:
		l = append(l, m.t(i18n.ReversalWaiting))
	case m.st.Settling != 0:
		l = append(l, m.t(i18n.SettlementWaiting))
	}
	if !m.alarm.IsZero() {
		l = append(l, m.lang.F(i18n.RetryAt, m.alarm.In(m.now.Location()).Format("15:04")))
	}
	return lines(l...)
}

func (holdView) key(*Machine, hal.Key) {}
