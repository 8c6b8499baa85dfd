package linuxhw

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/posagent/posagent/hal"
)

// Blink half-periods of the single-colour status LED: the board has one LED
// pin, so the LEDState values are patterns on it.
const (
	SlowBlink = 500 * time.Millisecond // hal.LEDBlink: busy, waiting
	FastBlink = 125 * time.Millisecond // hal.LEDRed: tampered or a fault
)

// LED drives an active-high status LED on one GPIO output: LEDOff low,
// LEDGreen steady high, LEDBlink a slow blink, LEDRed a fast blink.
type LED struct {
	pin  gpio.PinOut
	mu   sync.Mutex
	stop chan struct{} // closes to stop the current blinker
	wg   sync.WaitGroup
}

var _ hal.LED = (*LED)(nil)

// NewLED returns the LED on pin, initially off.
func NewLED(pin gpio.PinOut, log *slog.Logger) *LED {
	l := &LED{pin: pin}
	if err := pin.Out(gpio.Low); err != nil {
		log.Warn("LED init", "pin", pin, "err", err)
	}
	return l
}

// SetLED implements hal.LED.
func (l *LED) SetLED(s hal.LEDState) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopBlink()
	switch s {
	case hal.LEDOff:
		return l.out(gpio.Low)
	case hal.LEDGreen:
		return l.out(gpio.High)
	case hal.LEDBlink:
		return l.blink(SlowBlink)
	case hal.LEDRed:
		return l.blink(FastBlink)
	}
	return fmt.Errorf("set LED: unknown state %v", s)
}

func (l *LED) out(v gpio.Level) error {
	if err := l.pin.Out(v); err != nil {
		return fmt.Errorf("set LED %s: %w", l.pin, err)
	}
	return nil
}

func (l *LED) stopBlink() {
	if l.stop != nil {
		close(l.stop)
		l.wg.Wait()
		l.stop = nil
	}
}

func (l *LED) blink(half time.Duration) error {
	if err := l.out(gpio.High); err != nil {
		return err
	}
	stop := make(chan struct{})
	l.stop = stop
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(half)
		defer t.Stop()
		v := gpio.High
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				v = !v
				_ = l.pin.Out(v) // an error here was already seen by SetLED
			}
		}
	}()
	return nil
}

// Close stops blinking and turns the LED off.
func (l *LED) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopBlink()
	return l.out(gpio.Low)
}

// Buzzer drives an active-high buzzer (with its own oscillator) on one GPIO
// output.
type Buzzer struct {
	pin   gpio.PinOut
	mu    sync.Mutex
	timer *time.Timer
}

var _ hal.Buzzer = (*Buzzer)(nil)

// NewBuzzer returns the buzzer on pin, initially silent.
func NewBuzzer(pin gpio.PinOut, log *slog.Logger) *Buzzer {
	if err := pin.Out(gpio.Low); err != nil {
		log.Warn("buzzer init", "pin", pin, "err", err)
	}
	return &Buzzer{pin: pin}
}

// Beep sounds the buzzer for d and returns at once; a new beep replaces one
// still sounding.
func (b *Buzzer) Beep(d time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.timer != nil {
		b.timer.Stop()
	}
	if err := b.pin.Out(gpio.High); err != nil {
		return fmt.Errorf("beep %s: %w", b.pin, err)
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.timer == t { // not replaced by a newer beep
			_ = b.pin.Out(gpio.Low)
			b.timer = nil
		}
	})
	b.timer = t
	return nil
}

// Close silences the buzzer.
func (b *Buzzer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	return b.pin.Out(gpio.Low)
}

// Debounce is how long the tamper input must stay quiet after an edge
// before its level is believed: a mechanical case switch bounces for a few
// milliseconds.
var Debounce = 20 * time.Millisecond

// edgePoll bounds each wait for an edge, so Close is noticed.
var edgePoll = 200 * time.Millisecond

// Tamper watches an active-low tamper input (the case switch or the tamper
// output of the security supervisor pulls it to ground; the internal
// pull-up holds it high otherwise). It fires once when the debounced level
// goes from high to low, and once at start if the input is already low
// (opened while powered off); it fires again only after the input has gone
// back high.
type Tamper struct {
	pin  gpio.PinIn
	log  *slog.Logger
	ch   chan struct{}
	done chan struct{}
	exit chan struct{}
	once sync.Once
}

var _ hal.Tamper = (*Tamper)(nil)

// NewTamper configures pin as an input with pull-up and edge detection and
// starts watching it.
func NewTamper(pin gpio.PinIn, log *slog.Logger) (*Tamper, error) {
	if err := pin.In(gpio.PullUp, gpio.BothEdges); err != nil {
		return nil, fmt.Errorf("tamper input %s: %w", pin, err)
	}
	t := &Tamper{pin: pin, log: log, ch: make(chan struct{}, 1), done: make(chan struct{}), exit: make(chan struct{})}
	go t.run()
	return t, nil
}

// Tampered implements hal.Tamper.
func (t *Tamper) Tampered() <-chan struct{} { return t.ch }

// Close stops watching (within edgePoll).
func (t *Tamper) Close() error {
	t.once.Do(func() {
		close(t.done)
		<-t.exit
	})
	return nil
}

func (t *Tamper) run() {
	defer close(t.exit)
	last := gpio.High
	check := func() {
		l := t.pin.Read()
		if l == gpio.Low && last == gpio.High {
			t.log.Warn("tamper input active", "pin", t.pin)
			select {
			case t.ch <- struct{}{}:
			default: // an event is already waiting to be read
			}
		}
		last = l
	}
	check()
	for {
		select {
		case <-t.done:
			return
		default:
		}
		if !t.pin.WaitForEdge(edgePoll) {
			continue
		}
		// Let the contact settle: swallow the bounces, then read.
		for t.pin.WaitForEdge(Debounce) {
			select {
			case <-t.done:
				return
			default:
			}
		}
		check()
	}
}
