// Package escpos prints receipts on an ESC/POS thermal printer (Epson
// ESC/POS command set, as spoken by nearly every POS receipt printer).
package escpos

import (
	"fmt"
	"io"
	"sync"

	"github.com/posagent/posagent/hal"
)

// ESC/POS commands used.
var (
	cmdInit = []byte{0x1B, '@'}       // ESC @: initialize printer (clears modes left by a previous job)
	cmdFeed = []byte{0x1B, 'd', 4}    // ESC d n: print and feed n lines, so the text clears the cutter
	cmdCut  = []byte{0x1D, 'V', 0x01} // GS V 1: partial cut (one point left uncut, the receipt does not fall)
)

// Encode returns the bytes of one receipt: ESC @, each line followed by LF,
// a feed, and a partial cut. Bytes that are not printable ASCII become '?':
// a control byte inside a line would be taken as a printer command, and the
// printer's default code page (PC437) does not match UTF-8 anyway.
func Encode(r hal.Receipt) []byte {
	n := len(cmdInit) + len(cmdFeed) + len(cmdCut)
	for _, l := range r.Lines {
		n += len(l) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, cmdInit...)
	for _, l := range r.Lines {
		for _, c := range l {
			if c < 0x20 || c > 0x7E {
				c = '?'
			}
			b = append(b, byte(c))
		}
		b = append(b, '\n')
	}
	b = append(b, cmdFeed...)
	b = append(b, cmdCut...)
	return b
}

// Printer is a hal.Printer writing ESC/POS to w (a serial port).
type Printer struct {
	mu sync.Mutex
	w  io.Writer
}

var _ hal.Printer = (*Printer)(nil)

// New returns a printer writing to w.
func New(w io.Writer) *Printer { return &Printer{w: w} }

// drainer is implemented by go.bug.st/serial ports: Drain waits until the
// UART has sent everything (tcdrain).
type drainer interface{ Drain() error }

// Print writes the receipt in one Write and, on a serial port, waits until
// it has left the UART.
func (p *Printer) Print(r hal.Receipt) error {
	b := Encode(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	n, err := p.w.Write(b)
	if err == nil && n != len(b) {
		err = fmt.Errorf("%w (%d of %d bytes)", io.ErrShortWrite, n, len(b))
	}
	if err != nil {
		return fmt.Errorf("print receipt: %w", err)
	}
	if d, ok := p.w.(drainer); ok {
		if err := d.Drain(); err != nil {
			return fmt.Errorf("print receipt: drain: %w", err)
		}
	}
	return nil
}
