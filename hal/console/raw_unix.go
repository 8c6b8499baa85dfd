//go:build linux || darwin || freebsd || openbsd || netbsd

package console

import (
	"errors"

	"golang.org/x/sys/unix"
)

// makeRaw puts the terminal fd in raw mode and returns the function that
// restores it. If fd is not a terminal it changes nothing.
func makeRaw(fd int) (restore func() error, err error) {
	old, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		return func() error { return nil }, nil // a pipe or a file
	}
	if err != nil {
		return nil, err
	}
	raw := *old
	// cfmakeraw(3), less ISIG (see OpenStdio).
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, ioctlSetTermios, &raw); err != nil {
		return nil, err
	}
	saved := *old
	return func() error { return unix.IoctlSetTermios(fd, ioctlSetTermios, &saved) }, nil
}
