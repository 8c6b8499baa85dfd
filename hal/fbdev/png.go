package fbdev

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"sync"

	"github.com/posagent/posagent/hal"
)

// PNGFile is a hal.Display that draws each screen as a framebuffer of its
// size would, into a PNG file replaced at every screen (the simulator's
// display_png): for the README, and for people who would rather look at
// the terminal than read its console.
type PNGFile struct {
	mu     sync.Mutex
	path   string
	canvas *Canvas
}

var _ hal.Display = (*PNGFile)(nil)

// NewPNGFile returns a display drawing w x h screens into path.
func NewPNGFile(path string, w, h int) (*PNGFile, error) {
	if w < MinWidth || h < MinHeight {
		return nil, fmt.Errorf("display png %s: %dx%d pixels, the screens need at least %dx%d", path, w, h, MinWidth, MinHeight)
	}
	return &PNGFile{path: path, canvas: NewCanvas(w, h)}, nil
}

// Show draws s and replaces the file (written beside it, then renamed, so
// a viewer never reads half a picture).
func (p *PNGFile) Show(s hal.Screen) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("display png %s: %w", p.path, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	Draw(p.canvas, s)
	var buf bytes.Buffer
	if err := png.Encode(&buf, p.canvas.Image()); err != nil {
		return fmt.Errorf("display png %s: %w", p.path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.path), ".display-*.png")
	if err != nil {
		return fmt.Errorf("display png: %w", err)
	}
	_, err = tmp.Write(buf.Bytes())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("display png %s: %w", p.path, err)
	}
	return nil
}
