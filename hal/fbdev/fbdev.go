// Package fbdev is the operator display on a Linux framebuffer
// (display = "fb:/dev/fb0", spec/terminal.md "Devices"): the geometry and
// pixel format come from the fbdev ioctls, each screen is drawn with the
// embedded bitmap fonts (package font) into a one-bit canvas, packed into
// the framebuffer's format in a back buffer and copied with a single
// pwrite, so the panel never shows half a screen.
//
// Formats: 1 bit per pixel (monochrome, leftmost pixel in the most
// significant bit), 16, 24 and 32 bits per pixel true colour. Anything else
// is refused with an error wrapping ErrUnsupported.
package fbdev

import (
	"fmt"
	"os"
	"sync"

	"github.com/posagent/posagent/hal"
)

// Display is a hal.Display on a framebuffer device (or a regular file
// standing in for one in tests).
type Display struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	g      Geometry
	canvas *Canvas
	back   []byte
}

var _ hal.Display = (*Display)(nil)

// Open opens the framebuffer device at path and reads its geometry with
// the fbdev ioctls.
func Open(path string) (*Display, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("framebuffer: %w", err)
	}
	g, err := readGeometry(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("framebuffer %s: %w", path, err)
	}
	d, err := newDisplay(f, path, g)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// OpenFile opens path (a regular file in tests, a device whose geometry is
// known) as a framebuffer of geometry g, without the ioctls, which fail on
// a regular file. The file is created if missing.
func OpenFile(path string, g Geometry) (*Display, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("framebuffer: %w", err)
	}
	d, err := newDisplay(f, path, g)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

func newDisplay(f *os.File, path string, g Geometry) (*Display, error) {
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("framebuffer %s (%s): %w", path, g, err)
	}
	return &Display{f: f, path: path, g: g, canvas: NewCanvas(g.Width, g.Height), back: make([]byte, g.size())}, nil
}

// Geometry returns the framebuffer's geometry.
func (d *Display) Geometry() Geometry { return d.g }

// Show draws s into the back buffer and copies it to the framebuffer with
// one pwrite. A screen that fails Validate is not drawn.
func (d *Display) Show(s hal.Screen) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("framebuffer %s: %w", d.path, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return fmt.Errorf("framebuffer %s: closed", d.path)
	}
	Draw(d.canvas, s)
	d.g.Pack(d.canvas, d.back)
	n, err := d.f.WriteAt(d.back, d.g.offset())
	if err != nil {
		return fmt.Errorf("framebuffer %s: %w", d.path, err)
	}
	if n != len(d.back) {
		return fmt.Errorf("framebuffer %s: wrote %d of %d bytes", d.path, n, len(d.back))
	}
	return nil
}

// Close closes the device; the panel keeps the last screen.
func (d *Display) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}
