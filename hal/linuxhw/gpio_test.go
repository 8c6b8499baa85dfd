package linuxhw

import (
	"log/slog"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/posagent/posagent/hal"
)

var discard = slog.New(slog.DiscardHandler)

func level(p *gpiotest.Pin) gpio.Level {
	p.Lock()
	defer p.Unlock()
	return p.L
}

// waitLevel polls p until it reads want, or fails.
func waitLevel(t *testing.T, p *gpiotest.Pin, want gpio.Level, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if level(p) == want {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("pin %s is %s after %v, want %s", p, level(p), within, want)
}

func TestLED(t *testing.T) {
	p := &gpiotest.Pin{N: "LED", L: gpio.High}
	l := NewLED(p, discard)
	if level(p) != gpio.Low {
		t.Fatal("NewLED does not turn the LED off")
	}
	tests := []struct {
		s    hal.LEDState
		want gpio.Level
	}{
		{hal.LEDGreen, gpio.High},
		{hal.LEDOff, gpio.Low},
		{hal.LEDGreen, gpio.High},
	}
	for _, tt := range tests {
		if err := l.SetLED(tt.s); err != nil {
			t.Fatal(err)
		}
		if got := level(p); got != tt.want {
			t.Fatalf("SetLED(%v): pin %s, want %s", tt.s, got, tt.want)
		}
	}
	// Red is a fast blink: the pin goes low, then high again.
	if err := l.SetLED(hal.LEDRed); err != nil {
		t.Fatal(err)
	}
	waitLevel(t, p, gpio.Low, 10*FastBlink)
	waitLevel(t, p, gpio.High, 10*FastBlink)
	// Setting a steady state stops the blinker for good.
	if err := l.SetLED(hal.LEDOff); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * FastBlink)
	if level(p) != gpio.Low {
		t.Fatal("blinker still running after SetLED(LEDOff)")
	}
	if err := l.SetLED(hal.LEDState(42)); err == nil {
		t.Fatal("unknown state accepted")
	}
	l.SetLED(hal.LEDBlink)
	if err := l.Close(); err != nil || level(p) != gpio.Low {
		t.Fatalf("Close = %v, pin %s; want nil, Low", err, level(p))
	}
}

func TestBuzzer(t *testing.T) {
	p := &gpiotest.Pin{N: "BUZ"}
	b := NewBuzzer(p, discard)
	if err := b.Beep(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if level(p) != gpio.High {
		t.Fatal("Beep did not turn the buzzer on")
	}
	waitLevel(t, p, gpio.Low, time.Second)

	// A longer beep replaces a short one still sounding.
	b.Beep(20 * time.Millisecond)
	b.Beep(300 * time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	if level(p) != gpio.High {
		t.Fatal("the first beep's timer silenced the second beep")
	}
	if err := b.Close(); err != nil || level(p) != gpio.Low {
		t.Fatalf("Close = %v, pin %s", err, level(p))
	}
}

func expectTamper(t *testing.T, tm *Tamper, want int) {
	t.Helper()
	got := 0
	timeout := time.After(10*Debounce + 200*time.Millisecond)
	for {
		select {
		case <-tm.Tampered():
			got++
			if got > want {
				t.Fatalf("tamper fired %d times, want %d", got, want)
			}
		case <-timeout:
			if got != want {
				t.Fatalf("tamper fired %d times, want %d", got, want)
			}
			return
		}
	}
}

func TestTamper(t *testing.T) {
	tests := []struct {
		name  string
		edges []gpio.Level // sent back to back: bounces
		fires int
	}{
		{"falling edge fires", []gpio.Level{gpio.Low}, 1},
		{"bouncing contact fires once", []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low}, 1},
		{"bounce that settles high does not fire", []gpio.Level{gpio.Low, gpio.High}, 0},
		{"rising edge does not fire", []gpio.Level{gpio.High}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &gpiotest.Pin{N: "TAMPER", EdgesChan: make(chan gpio.Level, 16)}
			tm, err := NewTamper(p, discard)
			if err != nil {
				t.Fatal(err)
			}
			defer tm.Close()
			if p.P != gpio.PullUp {
				t.Fatalf("pull %s, want PullUp", p.P)
			}
			for _, e := range tt.edges {
				p.EdgesChan <- e
			}
			expectTamper(t, tm, tt.fires)
		})
	}
}

func TestTamperOncePerEvent(t *testing.T) {
	p := &gpiotest.Pin{N: "TAMPER", EdgesChan: make(chan gpio.Level, 16)}
	tm, err := NewTamper(p, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	p.EdgesChan <- gpio.Low
	expectTamper(t, tm, 1)
	p.EdgesChan <- gpio.Low // still low: the same event
	expectTamper(t, tm, 0)
	p.EdgesChan <- gpio.High // switch closed again
	expectTamper(t, tm, 0)
	p.EdgesChan <- gpio.Low // opened again: a new event
	expectTamper(t, tm, 1)
}

// lowPin is a tamper input already low at start: In does not pull it up
// (an external circuit holds it to ground).
type lowPin struct{ *gpiotest.Pin }

func (p lowPin) In(pull gpio.Pull, edge gpio.Edge) error {
	if err := p.Pin.In(pull, edge); err != nil {
		return err
	}
	return p.Pin.Out(gpio.Low)
}

func TestTamperLowAtStart(t *testing.T) {
	p := lowPin{&gpiotest.Pin{N: "TAMPER", EdgesChan: make(chan gpio.Level, 16)}}
	tm, err := NewTamper(p, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	expectTamper(t, tm, 1)
}

func TestTamperInError(t *testing.T) {
	p := &gpiotest.Pin{N: "TAMPER"} // no EdgesChan: gpiotest refuses edge detection
	if _, err := NewTamper(p, discard); err == nil {
		t.Fatal("NewTamper succeeded on a pin without edge detection")
	}
}

func TestTamperClose(t *testing.T) {
	p := &gpiotest.Pin{N: "TAMPER", EdgesChan: make(chan gpio.Level, 16)}
	tm, err := NewTamper(p, discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- tm.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * edgePoll):
		t.Fatalf("Close did not return within %v", 5*edgePoll)
	}
}
