// Package linuxhw is the HAL of the terminal hardware (hal.Config.Kind ==
// "linux"): the console, the card reader and the printer on serial ports
// through go.bug.st/serial (8N1, no flow control), the LED, the buzzer and
// the tamper switch on GPIO pins through periph.io. An empty pin name means
// the board lacks that part: its port is a no-op.
package linuxhw

import (
	"fmt"
	"io"
	"os"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/console"
	"github.com/posagent/posagent/hal/escpos"
	"github.com/posagent/posagent/hal/magstripe"
	"github.com/posagent/posagent/hal/reboot"
	"github.com/posagent/posagent/hal/serialport"
)

// PeripheralBaud is the speed of the card reader and printer ports: the
// [hal] config has a speed for the console only.
const PeripheralBaud = hal.DefaultBaud

// Open opens the devices described by cfg. On error nothing stays open.
func Open(cfg hal.Config) (_ *hal.Devices, err error) {
	if cfg.Kind != hal.KindLinux {
		return nil, fmt.Errorf("linuxhw: hal.kind is %q, want %q", cfg.Kind, hal.KindLinux)
	}
	if cfg.ConsoleBaud <= 0 {
		cfg.ConsoleBaud = hal.DefaultBaud
	}
	d := &hal.Devices{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()

	if d.Rebooter, err = reboot.New(cfg.Reboot); err != nil {
		return nil, err
	}

	var c *console.Console
	if cfg.Console == hal.ConsoleStdio {
		c, err = console.OpenStdio(os.Stdin, os.Stdout)
	} else {
		var p io.ReadWriteCloser
		p, err = serialport.Open(cfg.Console, cfg.ConsoleBaud)
		if err == nil {
			c = console.New(p, p, p.Close)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("linuxhw console: %w", err)
	}
	d.OnClose(c.Close)
	d.Display, d.Keypad = c, c

	if cfg.CardReader == "" {
		d.CardReader = hal.IdleCardReader{}
	} else {
		path := cfg.CardReader
		r := magstripe.New(path, func() (io.ReadCloser, error) {
			return serialport.Open(path, PeripheralBaud)
		})
		d.OnClose(r.Close)
		d.CardReader = r
	}

	if cfg.Printer == "" {
		d.Printer = hal.NoPrinter{}
	} else {
		// Opened at the first receipt and after a failure: a printer
		// switched off at boot must not stop the terminal.
		p := serialport.NewLazy(cfg.Printer, PeripheralBaud)
		d.OnClose(p.Close)
		d.Printer = escpos.New(p, escpos.Options{})
	}

	led, buzzer, tamper, err := openGPIO(cfg)
	if err != nil {
		return nil, err
	}
	d.LED, d.Buzzer, d.Tamper = hal.NopLED{}, hal.NopBuzzer{}, hal.NopTamper{}
	if led != nil {
		l := NewLED(led)
		d.OnClose(l.Close)
		d.LED = l
	}
	if buzzer != nil {
		b := NewBuzzer(buzzer)
		d.OnClose(b.Close)
		d.Buzzer = b
	}
	if tamper != nil {
		t, err := NewTamper(tamper)
		if err != nil {
			return nil, err
		}
		d.OnClose(t.Close)
		d.Tamper = t
	}
	return d, nil
}

// openGPIO looks the configured pins up; a nil pin is an absent part.
// periph's host drivers are only loaded when a pin is configured, so a
// board (or a CI runner) without GPIO does not need them.
func openGPIO(cfg hal.Config) (led, buzzer, tamper gpio.PinIO, err error) {
	if cfg.LEDPin == "" && cfg.BuzzerPin == "" && cfg.TamperPin == "" {
		return nil, nil, nil, nil
	}
	if _, err := host.Init(); err != nil {
		return nil, nil, nil, fmt.Errorf("linuxhw: periph host init: %w", err)
	}
	byName := func(key, name string) (gpio.PinIO, error) {
		if name == "" {
			return nil, nil
		}
		p := gpioreg.ByName(name)
		if p == nil {
			return nil, fmt.Errorf("linuxhw: hal.%s %q: no such GPIO pin", key, name)
		}
		return p, nil
	}
	if led, err = byName("led_pin", cfg.LEDPin); err != nil {
		return nil, nil, nil, err
	}
	if buzzer, err = byName("buzzer_pin", cfg.BuzzerPin); err != nil {
		return nil, nil, nil, err
	}
	if tamper, err = byName("tamper_pin", cfg.TamperPin); err != nil {
		return nil, nil, nil, err
	}
	return led, buzzer, tamper, nil
}
