package terminal

import (
	"log/slog"
	"time"

	"github.com/posagent/posagent/hal"
)

// Event is an input to the state machine. The shell turns everything that
// happens outside (a key, a swipe, an answer from the acquirer, a verified
// MQTT command, the passing of time) into one of these and feeds it to
// Machine.Step from its single event loop.
type Event interface{ isEvent() }

// Boot is the first event after the machine is built from the stores.
type Boot struct{}

// KeyPressed is one key from the keypad.
type KeyPressed struct{ Key hal.Key }

// CardSwiped is one swipe; Err is set when the reader could not read it.
type CardSwiped struct {
	Card hal.Track2
	Err  error
}

// Tick tells the machine that time has passed (the shell sends one every
// second); timeouts are deadlines compared with the time given to Step.
type Tick struct{}

// PersistFailed reports that a write could not be made: a Persist, or the
// outbox write of a SendAck or PublishEvent. The shell executes no effect
// after it, so nothing that depends on it happened. The machine fails
// stop: it shows why, asks for a Reboot and decides nothing more; the
// next boot rebuilds its state from the stores.
type PersistFailed struct{ Err error }

// TamperDetected is the tamper input firing.
type TamperDetected struct{}

func (Boot) isEvent()           {}
func (KeyPressed) isEvent()     {}
func (CardSwiped) isEvent()     {}
func (Tick) isEvent()           {}
func (PersistFailed) isEvent()  {}
func (TamperDetected) isEvent() {}

// Effect is something the machine asks the shell to do. The shell executes
// a Step's effects in order and stops at the first Persist that fails, so
// "persist, then send" in the list means exactly that on the wire.
type Effect interface{ isEffect() }

// Show puts a screen on the display.
type Show struct{ Screen hal.Screen }

// Print prints a receipt. PANs in it are already masked.
type Print struct{ Receipt hal.Receipt }

// Persist writes ops durably (fsynced) before any later effect runs. Ops
// for the merchant store are written in one transaction, ops for the
// identity store in another.
type Persist struct{ Ops []Op }

// PublishStatus asks the shell to publish the retained MQTT status.
type PublishStatus struct{ Status Status }

// SetLED sets the status LED.
type SetLED struct{ State hal.LEDState }

// Beep sounds the buzzer.
type Beep struct{ For time.Duration }

// Log asks the shell to write a log line: the core has no logger of its
// own, so a transcript shows what would be logged. Attrs never carry a
// clear PAN (PAN's LogValue masks it).
type Log struct {
	Level slog.Level
	Msg   string
	Attrs []slog.Attr
}

// Reboot asks the HAL to reboot (or, with reboot = "exit", the daemon to
// exit with status 3).
type Reboot struct{}

func (Show) isEffect()          {}
func (Print) isEffect()         {}
func (Persist) isEffect()       {}
func (PublishStatus) isEffect() {}
func (SetLED) isEffect()        {}
func (Beep) isEffect()          {}
func (Log) isEffect()           {}
func (Reboot) isEffect()        {}

// Status is the retained status the terminal publishes (spec/remote.md
// §Status payload); the shell adds serial, version, online and time.
type Status struct {
	State           Lifecycle
	TID             string
	BatchNo         BatchNo
	BatchCount      int
	ClockTrusted    bool
	PendingReversal bool
}

// Op is one durable write. The shell maps each to the stores.
type Op interface{ isOp() }

// PutPwdLock stores the supervisor password failure counter and lock.
type PutPwdLock struct{ Lock PwdLock }

// PutSupervisorPwd stores a new supervisor password hash.
type PutSupervisorPwd struct{ Hash string }

// PutTechPwdLock stores the technician password failure counter and lock
// (identity store).
type PutTechPwdLock struct{ Lock PwdLock }

func (PutPwdLock) isOp()       {}
func (PutSupervisorPwd) isOp() {}
func (PutTechPwdLock) isOp()   {}

// PwdLock is a password lockout (spec/terminal.md: three wrong passwords
// in a row lock the password, even the right one, for 5 minutes, counted
// from the third; it survives a restart). The supervisor and the
// technician password each have one.
type PwdLock struct {
	Fails       int
	LockedUntil time.Time
}

// PutTxn writes a journal record (merchant store).
type PutTxn struct{ Txn Txn }

// PutCounters writes the STAN and batch number (merchant store).
type PutCounters struct{ Counters Counters }

// PutReversal fills the reversal slot (merchant store).
type PutReversal struct{ Reversal Reversal }

// ClearReversal empties the reversal slot (merchant store).
type ClearReversal struct{}

// DeleteBatch drops a closed batch's journal (merchant store).
type DeleteBatch struct{ Batch BatchNo }

func (PutTxn) isOp()        {}
func (PutCounters) isOp()   {}
func (PutReversal) isOp()   {}
func (ClearReversal) isOp() {}
func (DeleteBatch) isOp()   {}

// PutSettling marks a settlement of Batch in progress (merchant store).
type PutSettling struct{ Batch BatchNo }

// ClearSettling removes the settlement-in-progress marker (merchant store).
type ClearSettling struct{}

func (PutSettling) isOp()   {}
func (ClearSettling) isOp() {}
