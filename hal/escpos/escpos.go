// Package escpos prints receipts on an ESC/POS thermal printer (Epson
// ESC/POS command set, as spoken by nearly every POS receipt printer), in
// ASCII or, for Chinese receipts, GB18030 (the encoding of the Chinese
// printers' resident fonts).
package escpos

import (
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/posagent/posagent/hal"
)

// ESC/POS commands used.
var (
	cmdInit     = []byte{0x1B, '@'}       // ESC @: initialize printer (clears modes left by a previous job)
	cmdFeed     = []byte{0x1B, 'd', 4}    // ESC d n: print and feed n lines, so the text clears the cutter
	cmdCut      = []byte{0x1D, 'V', 0x01} // GS V 1: partial cut (one point left uncut, the receipt does not fall)
	cmdKanjiOn  = []byte{0x1C, '&'}       // FS &: Chinese (double-byte) character mode
	cmdKanjiOff = []byte{0x1C, '.'}       // FS .: back to single-byte characters
)

// Encoding is the character encoding of the receipt text
// ([hal] printer_encoding).
type Encoding uint8

// Encodings.
const (
	// ASCII prints printable ASCII; any other character is '?' (the
	// printer's default code page, PC437, does not match UTF-8 anyway).
	ASCII Encoding = iota
	// GB18030 prints Chinese: the text in GB18030, which Chinese printers
	// read in their double-byte mode (and which is ASCII for ASCII).
	GB18030
)

// Config values of [hal] printer_encoding.
const (
	ConfigASCII   = "ascii"
	ConfigGB18030 = "gb18030"
)

// ParseEncoding returns the Encoding of a printer_encoding value.
func ParseEncoding(s string) (Encoding, error) {
	switch s {
	case ConfigASCII:
		return ASCII, nil
	case ConfigGB18030:
		return GB18030, nil
	}
	return ASCII, fmt.Errorf("printer encoding %q: want %q or %q", s, ConfigGB18030, ConfigASCII)
}

// Options say how receipts are encoded.
type Options struct {
	Encoding Encoding
	// ChineseMode sends FS & before a GB18030 receipt and FS . after it,
	// for printers that start in single-byte mode (most Chinese models
	// start in double-byte mode, and take the command as a no-op).
	ChineseMode bool
}

// FromConfig returns the options of [hal] printer_encoding (resolved from
// [ui] lang by the config loader; empty or unknown means ASCII) and
// printer_chinese_mode.
func FromConfig(c hal.Config) Options {
	o := Options{ChineseMode: c.PrinterChineseMode}
	if e, err := ParseEncoding(c.PrinterEncoding); err == nil {
		o.Encoding = e
	}
	return o
}

// Encode returns the bytes of one receipt: ESC @, each line followed by LF,
// a feed, and a partial cut. A control character inside a line becomes
// '?': it would be taken as a printer command.
func Encode(r hal.Receipt, o Options) []byte {
	n := len(cmdInit) + len(cmdFeed) + len(cmdCut) + len(cmdKanjiOn) + len(cmdKanjiOff)
	for _, l := range r.Lines {
		n += 2*len(l) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, cmdInit...)
	chinese := o.Encoding == GB18030 && o.ChineseMode
	if chinese {
		b = append(b, cmdKanjiOn...)
	}
	for _, l := range r.Lines {
		for _, c := range l {
			b = appendRune(b, c, o.Encoding)
		}
		b = append(b, '\n')
	}
	if chinese {
		b = append(b, cmdKanjiOff...)
	}
	b = append(b, cmdFeed...)
	b = append(b, cmdCut...)
	return b
}

// EncodeText returns the bytes of line as the printer's font reads them in
// encoding e, without any command: for a printer simulated by a file.
func EncodeText(line string, e Encoding) []byte {
	b := make([]byte, 0, 2*len(line))
	for _, c := range line {
		b = appendRune(b, c, e)
	}
	return b
}

var gb18030 = simplifiedchinese.GB18030.NewEncoder()

func appendRune(b []byte, c rune, e Encoding) []byte {
	switch {
	case c < 0x20 || c == 0x7F:
		return append(b, '?')
	case c < 0x7F:
		return append(b, byte(c))
	case e == GB18030 && c != utf8.RuneError && !(c >= 0x80 && c < 0xA0): // C1 controls
		var buf [4]byte
		out, err := gb18030.Bytes(utf8.AppendRune(buf[:0], c))
		if err == nil {
			return append(b, out...)
		}
	}
	return append(b, '?')
}

// Printer is a hal.Printer writing ESC/POS to w (a serial port).
type Printer struct {
	mu sync.Mutex
	w  io.Writer
	o  Options
}

var _ hal.Printer = (*Printer)(nil)

// New returns a printer writing to w.
func New(w io.Writer, o Options) *Printer { return &Printer{w: w, o: o} }

// drainer is implemented by go.bug.st/serial ports: Drain waits until the
// UART has sent everything (tcdrain).
type drainer interface{ Drain() error }

// Print writes the receipt in one Write and, on a serial port, waits until
// it has left the UART.
func (p *Printer) Print(r hal.Receipt) error {
	b := Encode(r, p.o)
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
