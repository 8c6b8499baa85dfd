package terminal

import (
	"strings"
	"time"

	"github.com/posagent/posagent/hal"
)

// Screen geometry of the 128×64 POS LCD (spec/terminal.md §Console).
const (
	Cols = 21
	Rows = 8
)

// view is one screen of the menu engine: it renders itself and handles
// keys. Flows are short chains of views.
type view interface {
	render(m *Machine) hal.Screen
	key(m *Machine, k hal.Key)
}

// deadliner is a view that does something when its time is up.
type deadliner interface {
	deadline() time.Time
	expire(m *Machine)
}

// cardTaker is a view that waits for a swipe.
type cardTaker interface {
	card(m *Machine, c hal.Track2, err error)
}

func lines(l ...string) hal.Screen { return hal.Screen{Lines: l} }

// fit cuts a screen to the display: a line longer than Cols would wrap on
// the LCD and push the rest of the screen off.
func fit(s hal.Screen) hal.Screen { return hal.Fit(s.Lines...) }

// wrap splits s into lines of at most Cols characters.
func wrap(s string) []string { return hal.Wrap(s, Cols) }

// menuItem is one numbered entry of a menu; the digit is its key.
type menuItem struct {
	key   hal.Key
	label string
	run   func(m *Machine)
}

// menuView is a numbered menu. Cancel goes back to the parent menu; on the
// root it does nothing.
type menuView struct {
	title string
	items []menuItem
}

func (v *menuView) render(*Machine) hal.Screen {
	s := []string{v.title}
	for _, it := range v.items {
		s = append(s, string(rune(it.key))+" "+it.label)
	}
	return lines(s...)
}

func (v *menuView) key(m *Machine, k hal.Key) {
	if k == hal.KeyCancel {
		m.pop()
		return
	}
	for _, it := range v.items {
		if it.key == k {
			it.run(m)
			return
		}
	}
}

// entryView reads digits ending with Enter: amounts, passwords, voucher
// numbers, times, codes. Clear deletes the last digit; Cancel leaves the
// flow with nothing sent.
type entryView struct {
	title  string // e.g. "SALE"
	prompt string // the CAPS word a harness waits for, e.g. "AMOUNT"
	secret bool   // echo '*'
	min    int    // digits needed before Enter is accepted
	max    int
	amount bool   // show the digits (fen) as yuan 0.00
	note   string // a line under the entry, e.g. "WRONG PWD"
	digits []byte
	enter  func(m *Machine, digits string)
}

func (v *entryView) render(*Machine) hal.Screen {
	var shown string
	switch {
	case v.secret:
		shown = strings.Repeat("*", len(v.digits))
	case v.amount:
		var a Amount
		for _, d := range v.digits {
			a = a*10 + Amount(d-'0')
		}
		shown = a.String()
	default:
		shown = string(v.digits)
	}
	s := []string{}
	if v.title != "" {
		s = append(s, v.title)
	}
	s = append(s, v.prompt, pad(shown))
	if v.note != "" {
		s = append(s, "", v.note)
	}
	return lines(s...)
}

// pad right-aligns an entry, as POS terminals do for amounts and codes.
func pad(s string) string {
	if len(s) >= Cols {
		return s
	}
	return strings.Repeat(" ", Cols-len(s)) + s
}

func (v *entryView) key(m *Machine, k hal.Key) {
	switch {
	case k == hal.KeyCancel:
		m.cancelFlow()
	case k == hal.KeyClear:
		if n := len(v.digits); n > 0 {
			v.digits = v.digits[:n-1]
		}
	case k == hal.KeyEnter:
		if len(v.digits) < v.min {
			m.emit(Beep{For: 100 * time.Millisecond})
			return
		}
		d := string(v.digits)
		v.digits = v.digits[:0]
		v.note = ""
		v.enter(m, d)
	case k.IsDigit():
		if v.amount && len(v.digits) == 0 && k == hal.Key0 {
			return // no leading zeros in an amount
		}
		if len(v.digits) < v.max {
			v.digits = append(v.digits, byte(k))
			v.note = ""
		}
	}
}

// resultView shows a result (APPROVED, DECLINED …, an error) and returns to
// the menu the flow started from on any key or after its deadline.
type resultView struct {
	lines []string
	back  int // stack depth to return to
	until time.Time
	then  func(m *Machine) // instead of returning to back
}

func (v *resultView) render(*Machine) hal.Screen { return lines(v.lines...) }
func (v *resultView) key(m *Machine, _ hal.Key)  { v.expire(m) }
func (v *resultView) deadline() time.Time        { return v.until }
func (v *resultView) expire(m *Machine) {
	if v.then != nil {
		v.then(m)
		return
	}
	m.popTo(v.back)
}

// infoView is a screen that waits for something other than a key
// (PROCESSING, WAITING FOR HQ). Keys are ignored: the request is already
// on its way and cannot be called back.
type infoView struct{ lines []string }

func (v *infoView) render(*Machine) hal.Screen { return lines(v.lines...) }
func (v *infoView) key(*Machine, hal.Key)      {}
