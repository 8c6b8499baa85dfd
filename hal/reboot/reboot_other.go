//go:build !linux

package reboot

import "errors"

// Reboot is only implemented on Linux, the terminal's OS.
func (Syscall) Reboot() error { return errors.New("reboot(2): not supported on this OS") }
