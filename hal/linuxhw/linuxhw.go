// Package linuxhw is the HAL of the terminal hardware (hal.Config.Kind ==
// "linux"): the console, the card reader and a serial printer on serial
// ports through go.bug.st/serial (8N1, no flow control), the LED, the
// buzzer and the tamper switch on GPIO pins through periph.io. An empty pin
// name means the board lacks that part: its port is a no-op.
//
// The display and the keypad are the console, or separate Linux devices
// (spec/terminal.md "Devices"): a framebuffer (hal/fbdev) and an input
// device (hal/evdev). The printer is serial ESC/POS or a USB printer-class
// device (hal/usblp).
package linuxhw

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/console"
	"github.com/posagent/posagent/hal/escpos"
	"github.com/posagent/posagent/hal/evdev"
	"github.com/posagent/posagent/hal/fbdev"
	"github.com/posagent/posagent/hal/magstripe"
	"github.com/posagent/posagent/hal/reboot"
	"github.com/posagent/posagent/hal/serialport"
	"github.com/posagent/posagent/hal/usblp"
)

// PeripheralBaud is the speed of the card reader and printer ports: the
// [hal] config has a speed for the console only.
const PeripheralBaud = hal.DefaultBaud

// Open opens the devices described by cfg; the adapters log through log.
// On error nothing stays open. A framebuffer that cannot be used is not an
// error: it is logged, and the screens go to the console.
func Open(cfg hal.Config, log *slog.Logger) (_ *hal.Devices, err error) {
	if cfg.Kind != hal.KindLinux {
		return nil, fmt.Errorf("linuxhw: hal.kind is %q, want %q", cfg.Kind, hal.KindLinux)
	}
	if key, msg := cfg.ValidateDevices(); key != "" {
		return nil, fmt.Errorf("linuxhw: hal.%s: %s", key, msg)
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

	var fb *fbdev.Display
	if path, ok := hal.DevicePath(cfg.Display, hal.PrefixFB); ok {
		fb, err = fbdev.Open(path)
		if err != nil {
			log.Error("framebuffer unusable; the screens go to the console", slog.String("display", cfg.Display), slog.String("err", err.Error()))
			d.DisplayFault, err = err, nil
		} else {
			log.Info("framebuffer display", slog.String("display", path), slog.String("geometry", fb.Geometry().String()))
			d.OnClose(fb.Close)
			d.Display = fb
		}
	}
	if fb == nil || cfg.Keypad == hal.DeviceConsole {
		c, err := openConsole(cfg, log)
		if err != nil {
			return nil, err
		}
		d.OnClose(c.Close)
		if fb == nil {
			d.Display = c
		}
		if cfg.Keypad == hal.DeviceConsole {
			d.Keypad = c
		}
	}
	if path, ok := hal.DevicePath(cfg.Keypad, hal.PrefixEvdev); ok {
		k := evdev.Open(path, log)
		d.OnClose(k.Close)
		d.Keypad = k
	}

	if cfg.CardReader == "" {
		d.CardReader = hal.IdleCardReader{}
	} else {
		path := cfg.CardReader
		r := magstripe.New(path, func() (io.ReadCloser, error) {
			return serialport.Open(path, PeripheralBaud)
		}, log)
		d.OnClose(r.Close)
		d.CardReader = r
	}

	if d.Printer, err = openPrinter(d, cfg, log); err != nil {
		return nil, err
	}

	led, buzzer, tamper, err := openGPIO(cfg)
	if err != nil {
		return nil, err
	}
	d.LED, d.Buzzer, d.Tamper = hal.NopLED{}, hal.NopBuzzer{}, hal.NopTamper{}
	if led != nil {
		l := NewLED(led, log)
		d.OnClose(l.Close)
		d.LED = l
	}
	if buzzer != nil {
		b := NewBuzzer(buzzer, log)
		d.OnClose(b.Close)
		d.Buzzer = b
	}
	if tamper != nil {
		t, err := NewTamper(tamper, log)
		if err != nil {
			return nil, err
		}
		d.OnClose(t.Close)
		d.Tamper = t
	}
	return d, nil
}

func openConsole(cfg hal.Config, log *slog.Logger) (*console.Console, error) {
	if cfg.Console == hal.ConsoleStdio {
		c, err := console.OpenStdio(os.Stdin, os.Stdout, log)
		if err != nil {
			return nil, fmt.Errorf("linuxhw console: %w", err)
		}
		return c, nil
	}
	p, err := serialport.Open(cfg.Console, cfg.ConsoleBaud)
	if err != nil {
		return nil, fmt.Errorf("linuxhw console: %w", err)
	}
	return console.New(p, p, p.Close, log), nil
}

func openPrinter(d *hal.Devices, cfg hal.Config, log *slog.Logger) (hal.Printer, error) {
	if cfg.Printer == "" {
		return hal.NoPrinter{}, nil
	}
	if path, ok := hal.DevicePath(cfg.Printer, hal.PrefixUSBLP); ok {
		p := usblp.Open(path, usblp.Options{ESCPOS: escpos.FromConfig(cfg)}, log)
		d.OnClose(p.Close)
		return p, nil
	}
	// Opened at the first receipt and after a failure: a printer
	// switched off at boot must not stop the terminal.
	p := serialport.NewLazy(cfg.Printer, PeripheralBaud)
	d.OnClose(p.Close)
	return escpos.New(p, escpos.FromConfig(cfg)), nil
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
