package fbdev

import (
	"sync"

	"github.com/posagent/posagent/hal/fbdev/font"
)

// shrunkCache keeps the ideographs shrunk for a small panel: a screen
// draws the same few dozen again and again.
var shrunkCache sync.Map // shrunkKey -> font.Glyph

type shrunkKey struct {
	r    rune
	w, h int
}

func shrunk(r rune, g font.Glyph, w, h int) font.Glyph {
	k := shrunkKey{r, w, h}
	if v, ok := shrunkCache.Load(k); ok {
		return v.(font.Glyph)
	}
	s := font.Shrink(g, w, h)
	shrunkCache.Store(k, s)
	return s
}
