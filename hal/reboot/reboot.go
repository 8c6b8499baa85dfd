// Package reboot provides the Rebooter of the [hal] reboot modes:
// "syscall" (sync then reboot(2)), "systemd" (systemd-logind's Reboot over
// D-Bus: an orderly shutdown) and "exit" (hal.ExitRebooter: the daemon
// exits with status 3 and its supervisor restarts it).
package reboot

import (
	"fmt"

	"github.com/posagent/posagent/hal"
)

// New returns the Rebooter for mode (hal.RebootSyscall, hal.RebootSystemd
// or hal.RebootExit).
func New(mode string) (hal.Rebooter, error) {
	switch mode {
	case hal.RebootExit:
		return hal.ExitRebooter{}, nil
	case hal.RebootSyscall:
		return Syscall{}, nil
	case hal.RebootSystemd:
		return Logind{}, nil
	}
	return nil, fmt.Errorf("hal.reboot %q: want %q, %q or %q", mode, hal.RebootSyscall, hal.RebootSystemd, hal.RebootExit)
}

// Syscall reboots the machine: sync(2), then reboot(2) with
// LINUX_REBOOT_CMD_RESTART. It needs CAP_SYS_BOOT; without it Reboot
// returns the error (EPERM) and the daemon stays up.
type Syscall struct{}

var _ hal.Rebooter = Syscall{}
