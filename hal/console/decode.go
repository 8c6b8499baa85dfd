package console

import (
	"time"

	"github.com/posagent/posagent/hal"
)

// EscTimeout is how long a lone ESC waits for the rest of an escape
// sequence. A terminal emulator sends ESC [ A (arrow up) in one burst, well
// under a millisecond apart even at 9600 baud; a person cannot press a
// second key within 30 ms, so an ESC still alone after it is the Cancel key.
const EscTimeout = 30 * time.Millisecond

type decState uint8

const (
	stGround decState = iota
	stEsc             // got ESC
	stCSI             // inside ESC [ ... (ECMA-48 control sequence)
	stSS3             // got ESC O, one final byte follows (VT100 application keys)
)

// Decoder turns console bytes into keys (terminal.md, "Console"):
// '0'-'9'; Enter = CR or LF, with CR LF counted once; Cancel = 'x' or a lone
// ESC; Clear = DEL or BS; escape sequences (arrow and function keys) are
// swallowed; every other byte is ignored.
//
// It is a pure state machine: the caller feeds bytes and, when Pending
// reports true and no byte came for EscTimeout, calls Timeout. The zero
// value is ready to use.
type Decoder struct {
	state   decState
	afterCR bool
}

// Feed decodes b and appends the resulting keys (zero, one or two) to dst.
func (d *Decoder) Feed(dst []hal.Key, b byte) []hal.Key {
	switch d.state {
	case stEsc:
		switch b {
		case '[':
			d.state = stCSI
			return dst
		case 'O':
			d.state = stSS3
			return dst
		}
		// Any other byte: the ESC was alone, it is Cancel; b is a key
		// of its own.
		d.state = stGround
		dst = append(dst, hal.KeyCancel)
	case stCSI:
		switch {
		case b >= 0x20 && b <= 0x3F: // parameter and intermediate bytes
			return dst
		case b >= 0x40 && b <= 0x7E: // final byte ends the sequence
			d.state = stGround
			return dst
		}
		// A control byte aborts the sequence and is decoded as such.
		d.state = stGround
	case stSS3:
		d.state = stGround
		if b >= 0x20 && b <= 0x7E {
			return dst
		}
	}
	return d.ground(dst, b)
}

func (d *Decoder) ground(dst []hal.Key, b byte) []hal.Key {
	afterCR := d.afterCR
	d.afterCR = false
	switch {
	case b >= '0' && b <= '9':
		return append(dst, hal.Key(b))
	case b == '\r':
		d.afterCR = true
		return append(dst, hal.KeyEnter)
	case b == '\n':
		if afterCR { // CR LF is one Enter
			return dst
		}
		return append(dst, hal.KeyEnter)
	case b == 'x':
		return append(dst, hal.KeyCancel)
	case b == 0x7F || b == 0x08:
		return append(dst, hal.KeyClear)
	case b == 0x1B:
		d.state = stEsc
	}
	return dst
}

// Pending reports whether the decoder is inside an escape sequence, where
// silence for EscTimeout changes the meaning of what came before.
func (d *Decoder) Pending() bool { return d.state != stGround }

// Timeout tells the decoder that EscTimeout passed with no new byte: a lone
// ESC becomes Cancel; an unfinished escape sequence is dropped. It is also
// what to call at end of input.
func (d *Decoder) Timeout(dst []hal.Key) []hal.Key {
	st := d.state
	d.state = stGround
	if st == stEsc {
		return append(dst, hal.KeyCancel)
	}
	return dst
}
