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

		SecureElement: SESoft,
	}
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
	return errors.Join(errs...)
}
