// Package console is the operator console shared by the stdio console of the
// host simulator and the serial console of the terminal: screens go out as
// ANSI text, keys come in as single bytes (terminal.md, "Console").
package console

import (
	"fmt"
	"io"

	"github.com/posagent/posagent/hal"
)

// renderCap fits a full screen of ASCII; wider runes just grow the slice.
const renderCap = len(clearHome) + hal.MaxLines*(hal.MaxColumns+2)

// clearHome is ED 2 (erase display) then CUP (cursor home), ECMA-48.
const clearHome = "\x1b[2J\x1b[H"

// Render writes s as ESC[2J ESC[H followed by its lines joined with CRLF,
// in one Write call, so a harness reading the stream (or a serial UART
// FIFO) never sees half a screen interleaved with another writer. A screen
// that fails Validate is not written.
func Render(w io.Writer, s hal.Screen) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("render screen: %w", err)
	}
	buf := make([]byte, 0, renderCap)
	buf = append(buf, clearHome...)
	for i, l := range s.Lines {
		if i > 0 {
			buf = append(buf, '\r', '\n')
		}
		buf = append(buf, l...)
	}
	n, err := w.Write(buf)
	if err != nil {
		return fmt.Errorf("render screen: %w", err)
	}
	if n != len(buf) {
		return fmt.Errorf("render screen: %w (%d of %d bytes)", io.ErrShortWrite, n, len(buf))
	}
	return nil
}
