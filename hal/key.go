package hal

import "fmt"

// Key is one key of the terminal keypad.
//
// The digit keys are their ASCII digits, so Key('7') == Key7 and a digit key
// converts to its character with byte(k).
type Key byte

// The keys of the numeric POS keypad (terminal.md, "Console").
const (
	Key0      Key = '0'
	Key1      Key = '1'
	Key2      Key = '2'
	Key3      Key = '3'
	Key4      Key = '4'
	Key5      Key = '5'
	Key6      Key = '6'
	Key7      Key = '7'
	Key8      Key = '8'
	Key9      Key = '9'
	KeyEnter  Key = 0x0D // the console sends CR or LF
	KeyCancel Key = 0x1B // the console sends 'x' or a lone ESC
	KeyClear  Key = 0x7F // the console sends DEL or BS
)

// IsDigit reports whether k is one of Key0..Key9.
func (k Key) IsDigit() bool { return k >= Key0 && k <= Key9 }

// Digit returns the value 0..9 of a digit key, or -1 for any other key.
func (k Key) Digit() int {
	if !k.IsDigit() {
		return -1
	}
	return int(k - Key0)
}

// String returns "0".."9", "ENTER", "CANCEL", "CLEAR", or "Key(0xNN)".
func (k Key) String() string {
	switch {
	case k.IsDigit():
		return string(rune(k))
	case k == KeyEnter:
		return "ENTER"
	case k == KeyCancel:
		return "CANCEL"
	case k == KeyClear:
		return "CLEAR"
	}
	return fmt.Sprintf("Key(%#02x)", byte(k))
}

// Keypad delivers key presses. The channel is fed by the adapter's reader
// goroutine; it is closed when the input ends for good (EOF on stdin, the
// adapter closed). A closed keypad is not an error for the daemon: it keeps
// serving remote commands without a keypad.
type Keypad interface {
	Keys() <-chan Key
}

// KeypadMonitor is implemented by keypads on a device that can go away
// and come back (hal/evdev: a USB keypad unplugged, a driver reloaded).
// The channel delivers false when the device is gone (or missing at
// start) and true when it is back; it keeps the latest change only.
type KeypadMonitor interface {
	KeypadPresent() <-chan bool
}
