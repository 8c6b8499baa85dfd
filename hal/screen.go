package hal

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// The operator display is a 128x64 POS LCD: 8 lines of 21 columns of a 6x8
// font (terminal.md, "Console"). A CJK character takes two columns
// (terminal.md, "Language"): see Width.
const (
	MaxLines   = 8
	MaxColumns = 21
)

// Screen is one full screen of the operator display. Each line is at most
// MaxColumns columns (Width) of printable text; there are at most MaxLines
// lines.
type Screen struct {
	Lines []string
}

// Fit builds a Screen from lines, cutting every line to MaxColumns columns,
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
		if n := Width(l); n > MaxColumns {
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

// RuneWidth is the number of display columns r takes: 2 for an East Asian
// wide or fullwidth character (CJK ideographs, fullwidth punctuation), 1
// for anything else. East Asian ambiguous characters count 1: the screens
// are Western-context terminals, and the fonts draw them narrow.
func RuneWidth(r rune) int {
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

// Width is the number of display columns s takes (RuneWidth of each rune).
func Width(s string) int {
	n := 0
	for _, r := range s {
		n += RuneWidth(r)
	}
	return n
}

// Truncate cuts line to at most width columns, never in the middle of a
// wide character.
func Truncate(line string, width int) string {
	if width <= 0 {
		return ""
	}
	n := 0
	for i, r := range line {
		w := RuneWidth(r)
		if n+w > width {
			return line[:i]
		}
		n += w
	}
	return line
}

// Wrap breaks text into lines of at most width columns, at spaces where it
// can and inside a word wider than width where it must (a 24-character
// serial number goes on two lines; Chinese text has no spaces and breaks
// between any two characters). It never returns an empty slice for
// non-empty text.
func Wrap(text string, width int) []string {
	if width <= 0 {
		return nil
	}
	var lines []string
	var cur strings.Builder
	curW := 0
	flush := func() {
		lines = append(lines, cur.String())
		cur.Reset()
		curW = 0
	}
	for _, word := range strings.Fields(sanitize(text)) {
		w := Width(word)
		if curW > 0 && curW+1+w <= width {
			cur.WriteByte(' ')
			cur.WriteString(word)
			curW += 1 + w
			continue
		}
		if curW > 0 {
			flush()
		}
		for w > width {
			head := Truncate(word, width)
			if head == "" { // a wide rune in a 1-column width
				_, n := utf8.DecodeRuneInString(word)
				head = word[:n]
			}
			lines = append(lines, head)
			word = word[len(head):]
			w = Width(word)
		}
		cur.WriteString(word)
		curW = w
	}
	if curW > 0 {
		flush()
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
