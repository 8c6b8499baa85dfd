package reboot

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Reboot syncs the filesystems, since reboot(2) does not, then restarts.
// On success it does not return.
func (Syscall) Reboot() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		return fmt.Errorf("reboot(2): %w", err)
	}
	return nil
}
