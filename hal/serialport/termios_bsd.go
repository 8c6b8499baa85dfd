//go:build darwin || freebsd || openbsd || netbsd

package serialport

import "golang.org/x/sys/unix"

const ioctlGetTermios = unix.TIOCGETA
