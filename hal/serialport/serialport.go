// Package serialport opens the terminal's serial devices (console, card
// reader, printer) through go.bug.st/serial.
package serialport

import (
	"fmt"
	"os"
	"sync"

	"go.bug.st/serial"
	"golang.org/x/sys/unix"
)

// Open opens path at baud, 8N1, no flow control (the console, the card
// reader and the printer of the terminal all run 8N1 without RTS/CTS).
func Open(path string, baud int) (serial.Port, error) {
	p, err := serial.Open(path, &serial.Mode{
		BaudRate: baud,
		DataBits: 8,
		Parity:   serial.NoParity,
		StopBits: serial.OneStopBit,
	})
	if err != nil {
		return nil, fmt.Errorf("open serial %s at %d baud: %w", path, baud, err)
	}
	return p, nil
}

// IsTerminal reports whether path is a terminal device (a UART, a USB
// serial adapter, a pty), as opposed to a FIFO or a regular file.
func IsTerminal(path string) bool {
	// Only character devices are probed: opening a FIFO, even briefly,
	// would count as a reader and could swallow a writer's bytes.
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	_, err = unix.IoctlGetTermios(fd, ioctlGetTermios)
	return err == nil
}

// Lazy is a serial port opened on first use and reopened after a write
// error, for an output device (the printer) that may be off or unplugged
// when the daemon starts. It implements io.Writer, Drain and Close.
type Lazy struct {
	mu   sync.Mutex
	path string
	baud int
	port serial.Port
}

// NewLazy returns a Lazy port for path at baud; nothing is opened yet.
func NewLazy(path string, baud int) *Lazy { return &Lazy{path: path, baud: baud} }

// Write opens the port if needed and writes p; after an error the port is
// closed, to be opened again by the next Write.
func (l *Lazy) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.port == nil {
		port, err := Open(l.path, l.baud)
		if err != nil {
			return 0, err
		}
		l.port = port
	}
	n, err := l.port.Write(p)
	if err != nil {
		l.port.Close()
		l.port = nil
		return n, fmt.Errorf("write serial %s: %w", l.path, err)
	}
	return n, nil
}

// Drain waits until everything written has left the UART (tcdrain).
func (l *Lazy) Drain() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.port == nil {
		return nil
	}
	if err := l.port.Drain(); err != nil {
		l.port.Close()
		l.port = nil
		return fmt.Errorf("drain serial %s: %w", l.path, err)
	}
	return nil
}

// Close closes the port if open.
func (l *Lazy) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.port == nil {
		return nil
	}
	err := l.port.Close()
	l.port = nil
	return err
}
