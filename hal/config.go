package hal

import (
	"errors"
	"fmt"
	"strings"
)

// Config is the [hal] section of the daemon config (terminal.md, "Config").
// The daemon's TOML loader fills it; the zero value of a field means "use
// the default" only through DefaultConfig, so start from that.
type Config struct {
	Kind        string `toml:"kind"`         // "linux" or "sim"
	Console     string `toml:"console"`      // serial device path, or "stdio"
	ConsoleBaud int    `toml:"console_baud"` // serial console speed; 8N1
	CardReader  string `toml:"card_reader"`  // serial device, or with kind "sim" a pty/FIFO/file path
	Printer     string `toml:"printer"`      // serial device, or with kind "sim" a file path
	LEDPin      string `toml:"led_pin"`      // periph pin name, "" = absent
	BuzzerPin   string `toml:"buzzer_pin"`   // periph pin name, "" = absent
	TamperPin   string `toml:"tamper_pin"`   // periph pin name, "" = absent
	Reboot      string `toml:"reboot"`       // "syscall", "systemd" or "exit"
	// SecureElement names the secure element: "soft" (the software one,
	// hal/sesim, keys in files under data_dir/se) is the only one built
	// in; a terminal's hardware SE gets a name of its own.
	SecureElement string `toml:"secure_element"`

	// Operator display and keypad: the console above, or separate Linux
	// devices (spec/terminal.md "Devices").
	Display string `toml:"display"` // "console" or "fb:/dev/fbN"
	Keypad  string `toml:"keypad"`  // "console" or "evdev:/dev/input/eventN"
	// PrinterEncoding is "gb18030" or "ascii"; empty = by [ui] lang (the
	// daemon's config loader fills it in).
	PrinterEncoding string `toml:"printer_encoding"`
	// PrinterChineseMode sends FS & (Chinese character mode) around GB18030
	// receipts, for printers that start in single-byte mode.
	PrinterChineseMode bool `toml:"printer_chinese_mode"`
	// DisplayPNG (kind "sim"): draw every screen as the framebuffer would,
	// into this PNG file, replaced at each screen, at DisplayPNGSize
	// ("WxH") pixels.
	DisplayPNG     string `toml:"display_png"`
	DisplayPNGSize string `toml:"display_png_size"`
	// DisplayGeometry (kind "sim"): with display = "fb:PATH" and PATH a
	// regular file standing in for /dev/fb0 (the ioctls fail on a file),
	// its geometry, "WIDTHxHEIGHTxBITS" (1, 16, 24 or 32 bits per pixel).
	// A real framebuffer device reports its own.
	DisplayGeometry string `toml:"display_geometry"`
}

// Config values with a meaning of their own.
const (
	KindLinux     = "linux"
	KindSim       = "sim"
	ConsoleStdio  = "stdio"
	RebootSyscall = "syscall"
	RebootSystemd = "systemd" // systemd-logind's Reboot over D-Bus (hal/reboot.Logind)
	RebootExit    = "exit"
	SESoft        = "soft"

	DeviceConsole = "console" // display and keypad: the console
	PrefixFB      = "fb:"     // display = "fb:/dev/fb0"
	PrefixEvdev   = "evdev:"  // keypad = "evdev:/dev/input/event0"
	PrefixUSBLP   = "usblp:"  // printer = "usblp:/dev/usb/lp0"

	DefaultDisplayPNGSize  = "320x240"
	DefaultDisplayGeometry = "320x240x16"

	DefaultBaud = 115200
)

// DefaultConfig returns the defaults of terminal.md.
func DefaultConfig() Config {
	return Config{
		Kind:        KindLinux,
		Console:     "/dev/ttyS1",
		ConsoleBaud: DefaultBaud,
		CardReader:  "/dev/ttyS2",
		Printer:     "/dev/ttyS3",
		Reboot:      RebootSyscall,

		SecureElement:      SESoft,
		Display:            DeviceConsole,
		Keypad:             DeviceConsole,
		PrinterChineseMode: true,
		DisplayPNGSize:     DefaultDisplayPNGSize,
		DisplayGeometry:    DefaultDisplayGeometry,
	}
}

// DevicePath returns the path of a "<prefix><path>" device value such as
// "fb:/dev/fb0", and false when value has another form.
func DevicePath(value, prefix string) (string, bool) {
	p, ok := strings.CutPrefix(value, prefix)
	return p, ok && p != ""
}

// ParseSize reads a "WxH" size in pixels.
func ParseSize(s string) (w, h int, err error) {
	if _, err := fmt.Sscanf(s, "%dx%d", &w, &h); err != nil || fmt.Sprintf("%dx%d", w, h) != s || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("size %q: want WIDTHxHEIGHT in pixels, such as %q", s, DefaultDisplayPNGSize)
	}
	return w, h, nil
}

// ParseGeometry reads a "WxHxBITS" framebuffer geometry: a size in pixels
// and 1, 16, 24 or 32 bits per pixel.
func ParseGeometry(s string) (w, h, bits int, err error) {
	if _, err := fmt.Sscanf(s, "%dx%dx%d", &w, &h, &bits); err != nil || fmt.Sprintf("%dx%dx%d", w, h, bits) != s || w <= 0 || h <= 0 {
		return 0, 0, 0, fmt.Errorf("geometry %q: want WIDTHxHEIGHTxBITS, such as %q", s, DefaultDisplayGeometry)
	}
	switch bits {
	case 1, 16, 24, 32:
	default:
		return 0, 0, 0, fmt.Errorf("geometry %q: %d bits per pixel, want 1, 16, 24 or 32", s, bits)
	}
	return w, h, bits, nil
}

// Validate reports every problem of c at once, prefixed with the TOML key.
func (c Config) Validate() error {
	var errs []error
	switch c.Kind {
	case KindLinux, KindSim:
	default:
		errs = append(errs, fmt.Errorf("hal.kind %q: want %q or %q", c.Kind, KindLinux, KindSim))
	}
	if strings.TrimSpace(c.Console) == "" {
		errs = append(errs, errors.New(`hal.console is empty: want a device path or "stdio"`))
	}
	if c.ConsoleBaud <= 0 {
		errs = append(errs, fmt.Errorf("hal.console_baud %d: want a positive speed such as %d", c.ConsoleBaud, DefaultBaud))
	}
	switch c.Reboot {
	case RebootSyscall, RebootSystemd, RebootExit:
	default:
		errs = append(errs, fmt.Errorf("hal.reboot %q: want %q, %q or %q", c.Reboot, RebootSyscall, RebootSystemd, RebootExit))
	}
	if c.SecureElement != SESoft {
		errs = append(errs, fmt.Errorf("hal.secure_element %q: want %q", c.SecureElement, SESoft))
	}
	if key, msg := c.ValidateDevices(); key != "" {
		errs = append(errs, fmt.Errorf("hal.%s: %s", key, msg))
	}
	return errors.Join(errs...)
}

// The smallest panel a display_png may have: 21 columns of 6 pixels, 8
// lines of 8 (a 128x64 LCD; hal/fbdev draws nothing smaller).
const (
	MinPanelWidth  = MaxColumns * 6
	MinPanelHeight = MaxLines * 8
)

// ValidateDevices checks the keys of spec/terminal.md "Devices" and the
// simulator's display_png: it returns the first bad key (without "hal.")
// and what is wrong with it, or "" when all are good.
func (c Config) ValidateDevices() (key, msg string) {
	abs := func(p string) bool { return strings.HasPrefix(p, "/") }
	if c.Display != DeviceConsole {
		p, ok := DevicePath(c.Display, PrefixFB)
		if !ok || !abs(p) {
			return "display", fmt.Sprintf("%q: want %q or %q", c.Display, DeviceConsole, PrefixFB+"/dev/fb0")
		}
	}
	if w, h, _, err := ParseGeometry(c.DisplayGeometry); err != nil {
		return "display_geometry", err.Error()
	} else if w < MinPanelWidth || h < MinPanelHeight {
		return "display_geometry", fmt.Sprintf("%q: the screens need at least %dx%d", c.DisplayGeometry, MinPanelWidth, MinPanelHeight)
	}
	if c.DisplayGeometry != DefaultDisplayGeometry && c.Kind != KindSim {
		return "display_geometry", fmt.Sprintf("needs kind = %q: a framebuffer device reports its own geometry", KindSim)
	}
	if c.Keypad != DeviceConsole {
		p, ok := DevicePath(c.Keypad, PrefixEvdev)
		if !ok || !abs(p) {
			return "keypad", fmt.Sprintf("%q: want %q or %q", c.Keypad, DeviceConsole, PrefixEvdev+"/dev/input/event0")
		}
		if c.Kind != KindLinux {
			return "keypad", fmt.Sprintf("%q needs kind = %q", c.Keypad, KindLinux)
		}
	}
	if p, ok := strings.CutPrefix(c.Printer, PrefixUSBLP); ok {
		if !abs(p) {
			return "printer", fmt.Sprintf("%q: want %q", c.Printer, PrefixUSBLP+"/dev/usb/lp0")
		}
		if c.Kind != KindLinux {
			return "printer", fmt.Sprintf("%q needs kind = %q", c.Printer, KindLinux)
		}
	}
	switch c.PrinterEncoding {
	case "", "gb18030", "ascii":
	default:
		return "printer_encoding", fmt.Sprintf("%q: want \"gb18030\" or \"ascii\" (or empty: by ui.lang)", c.PrinterEncoding)
	}
	if c.DisplayPNG != "" && c.Kind != KindSim {
		return "display_png", fmt.Sprintf("needs kind = %q", KindSim)
	}
	w, h, err := ParseSize(c.DisplayPNGSize)
	if err != nil {
		return "display_png_size", err.Error()
	}
	if w < MinPanelWidth || h < MinPanelHeight {
		return "display_png_size", fmt.Sprintf("%q: the screens need at least %dx%d", c.DisplayPNGSize, MinPanelWidth, MinPanelHeight)
	}
	return "", ""
}
