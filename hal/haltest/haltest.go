// Package haltest provides in-memory fakes of every hal port, in the style
// of periph.io's gpiotest: exported fields to inspect, methods to poke
// events in. All fakes are safe for concurrent use; read the exported
// fields while holding the embedded Mutex, or use the accessor methods.
package haltest

import (
	"errors"
	"sync"
	"time"

	"github.com/posagent/posagent/hal"
)

// Display records every screen shown.
type Display struct {
	sync.Mutex
	Screens []hal.Screen
	Err     error // returned by Show when set (the screen is not recorded)
	// Strict makes Show reject a screen that fails Validate, as the real
	// console does.
	Strict bool
}

// Show records s.
func (d *Display) Show(s hal.Screen) error {
	d.Lock()
	defer d.Unlock()
	if d.Err != nil {
		return d.Err
	}
	if d.Strict {
		if err := s.Validate(); err != nil {
			return err
		}
	}
	d.Screens = append(d.Screens, hal.Screen{Lines: append([]string(nil), s.Lines...)})
	return nil
}

// Last returns the last screen shown, or the zero Screen.
func (d *Display) Last() hal.Screen {
	d.Lock()
	defer d.Unlock()
	if len(d.Screens) == 0 {
		return hal.Screen{}
	}
	return d.Screens[len(d.Screens)-1]
}

// All returns a copy of every screen shown so far.
func (d *Display) All() []hal.Screen {
	d.Lock()
	defer d.Unlock()
	return append([]hal.Screen(nil), d.Screens...)
}

// Keypad delivers the keys pushed into it. Make it with NewKeypad, or use
// the zero value, whose channel is created on first use with room for 64 keys.
type Keypad struct {
	once sync.Once
	mu   sync.Mutex
	ch   chan hal.Key
	done bool
}

// NewKeypad returns a Keypad whose channel buffers n keys.
func NewKeypad(n int) *Keypad {
	k := &Keypad{ch: make(chan hal.Key, n)}
	k.once.Do(func() {})
	return k
}

func (k *Keypad) init() {
	k.once.Do(func() { k.ch = make(chan hal.Key, 64) })
}

// Keys implements hal.Keypad.
func (k *Keypad) Keys() <-chan hal.Key {
	k.init()
	return k.ch
}

// Push sends keys in order; it blocks while the buffer is full. Pushing to a
// closed Keypad does nothing.
func (k *Keypad) Push(keys ...hal.Key) {
	k.init()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.done {
		return
	}
	for _, key := range keys {
		k.ch <- key
	}
}

// PushString pushes the keys of s: digits, '\r' or '\n' Enter, 'x' Cancel,
// '\b' Clear; other characters are skipped.
func (k *Keypad) PushString(s string) {
	var keys []hal.Key
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			keys = append(keys, hal.Key(r))
		case r == '\r' || r == '\n':
			keys = append(keys, hal.KeyEnter)
		case r == 'x':
			keys = append(keys, hal.KeyCancel)
		case r == '\b':
			keys = append(keys, hal.KeyClear)
		}
	}
	k.Push(keys...)
}

// Close closes the channel, as EOF on a console does.
func (k *Keypad) Close() {
	k.init()
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.done {
		k.done = true
		close(k.ch)
	}
}

// CardReader delivers swipes. The zero value buffers 16 swipes.
type CardReader struct {
	once sync.Once
	mu   sync.Mutex
	ch   chan hal.CardEvent
}

func (c *CardReader) init() {
	c.once.Do(func() { c.ch = make(chan hal.CardEvent, 16) })
}

// Swipes implements hal.CardReader.
func (c *CardReader) Swipes() <-chan hal.CardEvent {
	c.init()
	return c.ch
}

// Swipe parses line as the reader would (hal.ParseTrack2) and delivers the
// resulting event, which it also returns.
func (c *CardReader) Swipe(line string) hal.CardEvent {
	t, err := hal.ParseTrack2(line)
	ev := hal.CardEvent{Track2: t, Err: err}
	c.Deliver(ev)
	return ev
}

// Deliver sends ev as is.
func (c *CardReader) Deliver(ev hal.CardEvent) {
	c.init()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ch <- ev
}

// Printer records every receipt printed.
type Printer struct {
	sync.Mutex
	Receipts []hal.Receipt
	Err      error // returned by Print when set (the receipt is not recorded)
}

// Print records r.
func (p *Printer) Print(r hal.Receipt) error {
	p.Lock()
	defer p.Unlock()
	if p.Err != nil {
		return p.Err
	}
	p.Receipts = append(p.Receipts, hal.Receipt{Lines: append([]string(nil), r.Lines...)})
	return nil
}

// Last returns the last receipt printed, or the zero Receipt.
func (p *Printer) Last() hal.Receipt {
	p.Lock()
	defer p.Unlock()
	if len(p.Receipts) == 0 {
		return hal.Receipt{}
	}
	return p.Receipts[len(p.Receipts)-1]
}

// Count returns how many receipts were printed.
func (p *Printer) Count() int {
	p.Lock()
	defer p.Unlock()
	return len(p.Receipts)
}

// LED records every state set.
type LED struct {
	sync.Mutex
	State   hal.LEDState
	History []hal.LEDState
	Err     error
}

// SetLED records s.
func (l *LED) SetLED(s hal.LEDState) error {
	l.Lock()
	defer l.Unlock()
	if l.Err != nil {
		return l.Err
	}
	l.State = s
	l.History = append(l.History, s)
	return nil
}

// Get returns the current state.
func (l *LED) Get() hal.LEDState {
	l.Lock()
	defer l.Unlock()
	return l.State
}

// Buzzer records every beep.
type Buzzer struct {
	sync.Mutex
	Beeps []time.Duration
	Err   error
}

// Beep records d.
func (b *Buzzer) Beep(d time.Duration) error {
	b.Lock()
	defer b.Unlock()
	if b.Err != nil {
		return b.Err
	}
	b.Beeps = append(b.Beeps, d)
	return nil
}

// Count returns how many beeps were made.
func (b *Buzzer) Count() int {
	b.Lock()
	defer b.Unlock()
	return len(b.Beeps)
}

// Tamper fires on demand. The zero value buffers 4 events.
type Tamper struct {
	once sync.Once
	ch   chan struct{}
}

func (t *Tamper) init() {
	t.once.Do(func() { t.ch = make(chan struct{}, 4) })
}

// Tampered implements hal.Tamper.
func (t *Tamper) Tampered() <-chan struct{} {
	t.init()
	return t.ch
}

// Fire delivers one tamper event.
func (t *Tamper) Fire() {
	t.init()
	t.ch <- struct{}{}
}

// Rebooter counts reboot requests.
type Rebooter struct {
	sync.Mutex
	Calls int
	Err   error // returned by Reboot (e.g. hal.ErrRebootExit)
}

// Reboot counts the call and returns Err.
func (r *Rebooter) Reboot() error {
	r.Lock()
	defer r.Unlock()
	r.Calls++
	return r.Err
}

// Count returns how many times Reboot was called.
func (r *Rebooter) Count() int {
	r.Lock()
	defer r.Unlock()
	return r.Calls
}

// ErrFake is a ready-made error to set in a fake's Err field.
var ErrFake = errors.New("haltest: injected failure")

// Devices returns a hal.Devices made of fresh fakes, and the fakes.
func Devices() (*hal.Devices, *Fakes) {
	f := &Fakes{
		Display:    &Display{Strict: true},
		Keypad:     &Keypad{},
		CardReader: &CardReader{},
		Printer:    &Printer{},
		LED:        &LED{},
		Buzzer:     &Buzzer{},
		Tamper:     &Tamper{},
		Rebooter:   &Rebooter{},
	}
	return &hal.Devices{
		Display:    f.Display,
		Keypad:     f.Keypad,
		CardReader: f.CardReader,
		Printer:    f.Printer,
		LED:        f.LED,
		Buzzer:     f.Buzzer,
		Tamper:     f.Tamper,
		Rebooter:   f.Rebooter,
	}, f
}

// Fakes is every fake behind a Devices made by Devices.
type Fakes struct {
	Display    *Display
	Keypad     *Keypad
	CardReader *CardReader
	Printer    *Printer
	LED        *LED
	Buzzer     *Buzzer
	Tamper     *Tamper
	Rebooter   *Rebooter
}

var (
	_ hal.Display    = (*Display)(nil)
	_ hal.Keypad     = (*Keypad)(nil)
	_ hal.CardReader = (*CardReader)(nil)
	_ hal.Printer    = (*Printer)(nil)
	_ hal.LED        = (*LED)(nil)
	_ hal.Buzzer     = (*Buzzer)(nil)
	_ hal.Tamper     = (*Tamper)(nil)
	_ hal.Rebooter   = (*Rebooter)(nil)
)
