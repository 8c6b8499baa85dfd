package hal

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The operator display is a 128x64 POS LCD: 8 lines of 21 columns of a 6x8
// font (terminal.md, "Console").
const (
	MaxLines   = 8
	MaxColumns = 21
)

// Screen is one full screen of the operator display. Each line is at most
// MaxColumns runes of printable text; there are at most MaxLines lines.
type Screen struct {
	Lines []string
}

// Fit builds a Screen from lines, cutting every line to MaxColumns runes,
// dropping lines past MaxLines and replacing control characters by spaces,
// so the result always passes Validate.
func Fit(lines ...string) Screen {
	if len(lines) > MaxLines {
		lines = lines[:MaxLines]
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = Truncate(sanitize(l), MaxColumns)
	}
	return Screen{Lines: out}
}

// Validate reports the first reason s cannot be shown: too many lines, a
// line too long, or a control character (it would corrupt the escape
// sequences of the console stream).
func (s Screen) Validate() error {
	if len(s.Lines) > MaxLines {
		return fmt.Errorf("screen has %d lines, the display has %d", len(s.Lines), MaxLines)
	}
	for i, l := range s.Lines {
		if !utf8.ValidString(l) {
			return fmt.Errorf("screen line %d is not valid UTF-8", i+1)
		}
		if n := utf8.RuneCountInString(l); n > MaxColumns {
			return fmt.Errorf("screen line %d has %d columns, the display has %d: %q", i+1, n, MaxColumns, l)
		}
		if j := strings.IndexFunc(l, unicode.IsControl); j >= 0 {
			return fmt.Errorf("screen line %d has control character %q at byte %d", i+1, l[j], j)
		}
	}
	return nil
}

// String returns the lines joined by newlines (for logs and test failures).
func (s Screen) String() string { return strings.Join(s.Lines, "\n") }

// Contains reports whether any line of s contains substr. Harnesses wait for
// CAPS words (terminal.md); this is the same check for Go tests.
func (s Screen) Contains(substr string) bool {
	for _, l := range s.Lines {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

// Truncate cuts line to at most width runes.
func Truncate(line string, width int) string {
	if width <= 0 {
		return ""
	}
	n := 0
	for i := range line {
		if n == width {
			return line[:i]
		}
		n++
	}
	return line
}

// Wrap breaks text into lines of at most width runes, at spaces where it
// can and inside a word longer than width where it must (a 24-character
// serial number goes on two lines). It never returns an empty slice for
// non-empty text.
func Wrap(text string, width int) []string {
	if width <= 0 {
		return nil
	}
	var lines []string
	var cur []rune
	for _, word := range strings.Fields(sanitize(text)) {
		w := []rune(word)
		if len(cur) > 0 && len(cur)+1+len(w) <= width {
			cur = append(cur, ' ')
			cur = append(cur, w...)
			continue
		}
		if len(cur) > 0 {
			lines = append(lines, string(cur))
			cur = cur[:0]
		}
		for len(w) > width {
			lines = append(lines, string(w[:width]))
			w = w[width:]
		}
		cur = append(cur, w...)
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	return lines
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
}

// Display shows a whole screen, replacing the previous one.
type Display interface {
	Show(Screen) error
}
