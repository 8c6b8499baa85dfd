package terminal

import (
	"strings"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/terminal/i18n"
)

// Device problems (spec/terminal.md "Devices"; issue "Bad input"): the
// shell reports them as they start and end, and while one lasts every
// screen says so on its last line, under whatever the flow shows. Nothing
// about a transaction depends on them: a sale whose receipt waits for
// paper is approved and journaled all the same, and prints when paper is
// back (the printer adapter keeps it). The adapter that saw the problem
// logs it; the core only shows it.

// PrinterStatus reports the printer's state: PaperOut while the paper
// sensor says the roll is out (hal.ErrPaperOut, hal.PrinterPaperOut),
// Offline while the device cannot be opened or written (unplugged,
// switched off: hal.PrinterOffline). Receipts wait in the printer either
// way. Unreadable: the printer answers the paper sensor's request with
// something that is not a status (hal.PrinterUnreadable); receipts print,
// but a roll running out would go unnoticed, so the screen says so.
type PrinterStatus struct{ PaperOut, Offline, Unreadable bool }

// KeypadStatus reports the keypad device gone (Missing) or back.
type KeypadStatus struct{ Missing bool }

// DisplayStatus reports that the configured display could not be used
// (Fault): the screens go to the console instead, which says so.
type DisplayStatus struct{ Fault bool }

func (PrinterStatus) isEvent() {}
func (KeypadStatus) isEvent()  {}
func (DisplayStatus) isEvent() {}

type deviceProblems struct {
	paperOut, printerOffline, printerUnreadable, keypadMissing, displayFault bool
}

// words are the problems' words, the most urgent first.
func (d deviceProblems) words(m *Machine) []string {
	var w []string
	if d.paperOut {
		w = append(w, m.t(i18n.PaperOut))
	}
	if d.printerOffline {
		w = append(w, m.t(i18n.PrinterFault))
	}
	if d.printerUnreadable {
		w = append(w, m.t(i18n.PrinterNoStatus))
	}
	if d.keypadMissing {
		w = append(w, m.t(i18n.KeypadMissing))
	}
	if d.displayFault {
		w = append(w, m.t(i18n.DisplayFault))
	}
	return w
}

// onScreen puts the problems on the last line of s: after a blank line
// when there is room, else instead of the screen's own last line. The
// words go on one line as far as it holds them, most urgent first.
func (d deviceProblems) onScreen(m *Machine, s hal.Screen) hal.Screen {
	words := d.words(m)
	if len(words) == 0 {
		return s
	}
	line := words[0]
	for _, w := range words[1:] {
		if hal.Width(line)+1+hal.Width(w) > Cols {
			break
		}
		line += " " + w
	}
	l := append([]string(nil), s.Lines...)
	for len(l) > 0 && strings.TrimSpace(l[len(l)-1]) == "" {
		l = l[:len(l)-1]
	}
	switch {
	case len(l) <= Rows-2:
		l = append(l, "", line)
	case len(l) == Rows-1:
		l = append(l, line)
	default:
		l = append(l[:Rows-1], line)
	}
	return lines(l...)
}
