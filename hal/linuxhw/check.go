package linuxhw

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/posagent/posagent/hal"
)

// CheckDevices reports every configured device path that does not exist
// and every pin name periph does not know, without opening anything
// (`posagentd check-config` on the terminal itself). Only kind "linux"
// names devices; the simulator's paths are made at run time.
func CheckDevices(cfg hal.Config) error {
	if cfg.Kind != hal.KindLinux {
		return nil
	}
	var errs []string
	printer := cfg.Printer
	if p, ok := hal.DevicePath(printer, hal.PrefixUSBLP); ok {
		printer = p
	}
	devices := []struct{ key, path string }{
		{"console", cfg.Console}, {"card_reader", cfg.CardReader}, {"printer", printer},
	}
	if p, ok := hal.DevicePath(cfg.Display, hal.PrefixFB); ok {
		devices = append(devices, struct{ key, path string }{"display", p})
	}
	if p, ok := hal.DevicePath(cfg.Keypad, hal.PrefixEvdev); ok {
		devices = append(devices, struct{ key, path string }{"keypad", p})
	}
	for _, d := range devices {
		if d.path == "" || d.path == hal.ConsoleStdio {
			continue
		}
		if _, err := os.Stat(d.path); err != nil {
			errs = append(errs, fmt.Sprintf("hal.%s %q: %v", d.key, d.path, err))
		}
	}
	if _, _, _, err := openGPIO(cfg); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) == 0 {
		return nil
	}
	// One line: check-config's error is one line on stderr.
	return errors.New(strings.Join(errs, "; "))
}
