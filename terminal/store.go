package terminal

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Store is the durable side of the machine: what Load returns is what a
// reboot would find, and Apply makes ops durable (fsynced) or returns an
// error. Two methods, like tailscale's ipn.StateStore: the daemon's
// bbolt adapter (storage/termstore) and MemStore implement it, and one
// test suite (terminal/storetest) runs against both.
type Store interface {
	// Load returns the facts on disk; Resolve (called by New) works out
	// the lifecycle from them.
	Load() (State, error)
	// Apply writes ops in order. The ops of one store (identity or
	// merchant) go in one transaction.
	Apply(ops []Op) error
}

// Resolve is the boot decision, in one place: it works out the lifecycle
// from the loaded facts. Tampered beats an unbind in progress, which beats
// active; merchant parameters without a settlement-card binding (and no
// unbind) are an activation a power cut stopped, erased at boot.
func Resolve(st State) State {
	active := st.Merchant.TID != ""
	st.Incomplete = false
	if active && st.Binding == nil && st.Intent == nil {
		active, st.Incomplete = false, true
	}
	switch {
	case st.Tampered:
		st.Lifecycle = Tampered
	case st.Intent != nil:
		st.Lifecycle = Unbinding
	case active:
		st.Lifecycle = Active
	default:
		st.Lifecycle = Unactivated
	}
	if active && st.Counters.Batch == 0 {
		st.Counters.Batch = 1
	}
	if active && !st.WorkingKeys {
		st.NeedSignIn = true
	}
	return st
}

// Identity-store ops beside the intent and the tamper flag.

// PutTIDCounters keeps a TID's counters with the identity (identity
// store), written before the merchant store that holds them is erased.
// Key is TIDKey's: the identity store outlives the wipe and must not name
// the merchant in clear.
type PutTIDCounters struct {
	Key      string
	Counters Counters
}

// TIDKey names a TID's counters in the identity store: a hash salted with
// the serial, as the settlement-card binding hashes its PAN, so a wiped
// terminal's files do not spell the TID it served (a TID is no secret: a
// numeric one can be found by trying them all; this keeps it from being
// read, not from being guessed).
func TIDKey(serial, tid string) string {
	h := sha256.Sum256([]byte("posagent/tid-counters/v1\x00" + serial + "\x00" + tid))
	return hex.EncodeToString(h[:16])
}

// PutTimeFloor raises the persisted time floor (identity store).
type PutTimeFloor struct{ At time.Time }

func (PutTIDCounters) isOp() {}
func (PutTimeFloor) isOp()   {}

// IsIdentityOp reports whether op belongs to the identity store (never
// wiped); every other op belongs to the merchant store.
func IsIdentityOp(op Op) bool {
	switch op.(type) {
	case PutPwdLock, PutTechPwdLock, PutSupervisorPwd, PutIntent, ClearIntentOp, SetTampered, PutTIDCounters, PutTimeFloor,
		PutUpdate, ClearUpdateOp:
		return true
	}
	return false
}
