package hal

import (
	"errors"
	"fmt"
	"time"
)

// Receipt is a printed receipt, one text line per entry. The caller masks
// PANs (MaskPAN) before building it: the printer prints what it is given.
type Receipt struct {
	Lines []string
}

// Printer prints one receipt; it returns when the receipt is handed to the
// device (written and flushed), or with the reason it could not be.
type Printer interface {
	Print(Receipt) error
}

// LEDState is what the status LED shows.
type LEDState uint8

// LED states. Green: ready; Red: tampered or a fault; Blink: busy or waiting
// (activation, unbind).
const (
	LEDOff LEDState = iota
	LEDGreen
	LEDRed
	LEDBlink
)

func (s LEDState) String() string {
	switch s {
	case LEDOff:
		return "off"
	case LEDGreen:
		return "green"
	case LEDRed:
		return "red"
	case LEDBlink:
		return "blink"
	}
	return fmt.Sprintf("LEDState(%d)", uint8(s))
}

// LED is the status LED.
type LED interface {
	SetLED(LEDState) error
}

// Buzzer beeps for d. Beep may return before the beep ends.
type Buzzer interface {
	Beep(d time.Duration) error
}

// Tamper delivers one value per tamper event (case opened, mesh cut). The
// channel is closed when the device is closed.
type Tamper interface {
	Tampered() <-chan struct{}
}

// Rebooter restarts the terminal.
type Rebooter interface {
	Reboot() error
}

// ErrRebootExit is returned by a Rebooter in mode "exit": the HAL does not
// end the process itself; the daemon, seeing errors.Is(err, ErrRebootExit),
// closes its stores and exits with status 3 (terminal.md, "CLI"), and its
// supervisor starts it again.
var ErrRebootExit = errors.New("reboot requested: exit with status 3")

// ExitRebooter is the Rebooter of reboot mode "exit".
type ExitRebooter struct{}

// Reboot returns ErrRebootExit.
func (ExitRebooter) Reboot() error { return ErrRebootExit }

var _ Rebooter = ExitRebooter{}

// NopLED is the LED of a terminal without one.
type NopLED struct{}

// SetLED does nothing.
func (NopLED) SetLED(LEDState) error { return nil }

// NopBuzzer is the buzzer of a terminal without one.
type NopBuzzer struct{}

// Beep does nothing.
func (NopBuzzer) Beep(time.Duration) error { return nil }

// NopTamper is the tamper input of a terminal without one: its channel is
// nil, so it never fires (a select case on it never runs).
type NopTamper struct{}

// Tampered returns a nil channel.
func (NopTamper) Tampered() <-chan struct{} { return nil }

var (
	_ LED    = NopLED{}
	_ Buzzer = NopBuzzer{}
	_ Tamper = NopTamper{}
)

// ErrNoPrinter is returned by NoPrinter: the config names no printer.
var ErrNoPrinter = errors.New("no printer configured")

// NoPrinter is the printer of a terminal configured without one: Print
// fails with ErrNoPrinter, so the cashier is told no receipt came out.
type NoPrinter struct{}

// Print returns ErrNoPrinter.
func (NoPrinter) Print(Receipt) error { return ErrNoPrinter }

// IdleCardReader is the card reader of a terminal configured without one:
// its channel is nil, so no swipe ever comes.
type IdleCardReader struct{}

// Swipes returns a nil channel.
func (IdleCardReader) Swipes() <-chan CardEvent { return nil }

var (
	_ Printer    = NoPrinter{}
	_ CardReader = IdleCardReader{}
)

// ErrPaperOut is returned by a printer that reads its paper sensor and
// queues receipts (hal/usblp) when it is out of paper: the receipt is kept
// and prints once paper is back; the screen can say PAPER OUT meanwhile.
var ErrPaperOut = errors.New("printer out of paper")

// PrinterStatus is the state of a printer that reads it.
type PrinterStatus uint8

// Printer states. PrinterUnknown: the printer does not answer status
// requests (printing goes on regardless). PrinterUnreadable: it answers
// them with something that is not a status (another command set, a
// garbled line): printing goes on, but nobody would know the paper ran
// out, so the screen says so.
const (
	PrinterUnknown PrinterStatus = iota
	PrinterReady
	PrinterPaperOut
	PrinterOffline // the device is gone (unplugged, switched off)
	PrinterUnreadable
)

func (s PrinterStatus) String() string {
	switch s {
	case PrinterUnknown:
		return "unknown"
	case PrinterReady:
		return "ready"
	case PrinterPaperOut:
		return "paper out"
	case PrinterOffline:
		return "offline"
	case PrinterUnreadable:
		return "status unreadable"
	}
	return fmt.Sprintf("PrinterStatus(%d)", uint8(s))
}

// PrinterMonitor is implemented by printers that report their status as
// it changes. The channel keeps the latest change only: a reader that
// falls behind sees the current state, not the history.
type PrinterMonitor interface {
	PrinterStatus() <-chan PrinterStatus
}
