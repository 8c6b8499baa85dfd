// Package simhw is the host simulator HAL (hal.Config.Kind == "sim"): the
// terminal's devices mapped onto what a laptop or a CI runner has.
//
//   - Console: stdio (hal.Config.Console == "stdio"), or a serial device or
//     pty path, through the shared hal/console.
//   - Card reader: track-2 lines read from hal.Config.CardReader: a serial
//     device or pty (go.bug.st/serial), a FIFO, or a regular file that is
//     followed like tail -f. Reopened with a backoff after an error.
//   - Printer: receipts appended to the file hal.Config.Printer (see
//     FilePrinter), or ESC/POS when that path is a serial device or pty.
//   - Framebuffer: with display = "fb:PATH", every screen is also drawn
//     on a framebuffer: a device (its geometry from the fbdev ioctls), or
//     a regular file standing in for one, of DisplayGeometry. One that
//     cannot be used is logged (Devices.DisplayFault) and the console
//     goes on alone.
//   - Display PNG: with hal.Config.DisplayPNG, every screen is also drawn as
//     a framebuffer of DisplayPNGSize would show it, into that PNG file.
//   - LED and buzzer: debug log lines.
//   - Tamper: creating the file <data_dir>/TAMPER fires one tamper event;
//     the simulator polls for it every second and removes it once fired.
//   - Rebooter: hal.Config.Reboot, "exit" (hal.ErrRebootExit) or "syscall".
package simhw

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/console"
	"github.com/posagent/posagent/hal/escpos"
	"github.com/posagent/posagent/hal/fbdev"
	"github.com/posagent/posagent/hal/magstripe"
	"github.com/posagent/posagent/hal/reboot"
	"github.com/posagent/posagent/hal/serialport"
)

// TamperFile is the name, inside the data directory, of the file whose
// creation simulates the tamper switch.
const TamperFile = "TAMPER"

// Open opens the simulated devices described by cfg. dataDir is the
// daemon's data_dir (for the tamper trigger file); the simulated devices
// log through log. On error nothing stays open.
func Open(cfg hal.Config, dataDir string, log *slog.Logger) (_ *hal.Devices, err error) {
	if cfg.Kind != hal.KindSim {
		return nil, fmt.Errorf("simhw: hal.kind is %q, want %q", cfg.Kind, hal.KindSim)
	}
	if key, msg := cfg.ValidateDevices(); key != "" {
		return nil, fmt.Errorf("simhw: hal.%s: %s", key, msg)
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

	d.Rebooter, err = reboot.New(cfg.Reboot)
	if err != nil {
		return nil, err
	}

	c, err := openConsole(cfg, log)
	if err != nil {
		return nil, err
	}
	d.OnClose(c.Close)
	d.Keypad = c
	// The console always shows the screens (the simulator's screen is
	// the terminal it runs in); a framebuffer and a PNG show them too.
	shows := teeDisplay{c}
	if path, ok := hal.DevicePath(cfg.Display, hal.PrefixFB); ok {
		fb, err := openFramebuffer(path, cfg.DisplayGeometry)
		if err != nil {
			log.Error("framebuffer unusable; the screens go to the console", slog.String("display", cfg.Display), slog.String("err", err.Error()))
			d.DisplayFault = err
		} else {
			log.Info("framebuffer display", slog.String("display", path), slog.String("geometry", fb.Geometry().String()))
			d.OnClose(fb.Close)
			shows = append(shows, fb)
		}
	}
	if cfg.DisplayPNG != "" {
		w, h, err := hal.ParseSize(cfg.DisplayPNGSize)
		if err != nil {
			return nil, fmt.Errorf("simhw: hal.display_png_size: %w", err)
		}
		p, err := fbdev.NewPNGFile(cfg.DisplayPNG, w, h)
		if err != nil {
			return nil, err
		}
		shows = append(shows, p)
	}
	d.Display = shows
	if len(shows) == 1 {
		d.Display = c
	}

	if cfg.CardReader == "" {
		d.CardReader = hal.IdleCardReader{}
	} else {
		r := magstripe.New(cfg.CardReader, cardOpener(cfg.CardReader), log)
		d.OnClose(r.Close)
		d.CardReader = r
	}

	switch {
	case cfg.Printer == "":
		d.Printer = hal.NoPrinter{}
	case serialport.IsTerminal(cfg.Printer):
		p := serialport.NewLazy(cfg.Printer, hal.DefaultBaud)
		d.OnClose(p.Close)
		d.Printer = escpos.New(p, escpos.FromConfig(cfg))
	default:
		p, err := OpenFilePrinter(cfg.Printer, escpos.FromConfig(cfg).Encoding)
		if err != nil {
			return nil, err
		}
		d.OnClose(p.Close)
		d.Printer = p
	}

	d.LED = LogLED{log}
	d.Buzzer = LogBuzzer{log}
	t := WatchTamperFile(filepath.Join(dataDir, TamperFile), log)
	d.OnClose(t.Close)
	d.Tamper = t
	return d, nil
}

// teeDisplay shows every screen on each of its displays.
type teeDisplay []hal.Display

func (t teeDisplay) Show(s hal.Screen) error {
	var errs []error
	for _, d := range t {
		errs = append(errs, d.Show(s))
	}
	return errors.Join(errs...)
}

// openFramebuffer opens a framebuffer device with its ioctls, or a
// regular file standing in for one with the geometry given
// ("WIDTHxHEIGHTxBITS"), created if missing.
func openFramebuffer(path, geometry string) (*fbdev.Display, error) {
	if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return fbdev.Open(path)
	}
	w, h, bits, err := hal.ParseGeometry(geometry)
	if err != nil {
		return nil, fmt.Errorf("framebuffer %s: %w", path, err)
	}
	return fbdev.OpenFile(path, fbdev.GeometryOf(w, h, bits))
}

func openConsole(cfg hal.Config, log *slog.Logger) (*console.Console, error) {
	if cfg.Console == hal.ConsoleStdio {
		c, err := console.OpenStdio(os.Stdin, os.Stdout, log)
		if err != nil {
			return nil, fmt.Errorf("simhw console: %w", err)
		}
		return c, nil
	}
	p, err := serialport.Open(cfg.Console, cfg.ConsoleBaud)
	if err != nil {
		return nil, fmt.Errorf("simhw console: %w", err)
	}
	return console.New(p, p, p.Close, log), nil
}

// cardOpener opens path as a serial device when it is a terminal (pty or
// UART), else as a FIFO or a regular file.
func cardOpener(path string) magstripe.Opener {
	return func() (io.ReadCloser, error) {
		if serialport.IsTerminal(path) {
			return serialport.Open(path, hal.DefaultBaud)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("card reader %s: %w", path, err)
		}
		if fi.Mode()&os.ModeNamedPipe != 0 {
			// O_RDWR on a FIFO (Linux) neither blocks until a writer
			// comes nor reads EOF when the last writer leaves: every
			// `echo ';...?' > fifo` of a harness is one swipe.
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				return nil, fmt.Errorf("card reader %s: %w", path, err)
			}
			return f, nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("card reader %s: %w", path, err)
		}
		return newTail(f), nil
	}
}
