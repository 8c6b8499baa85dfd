package fbdev

import (
	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/fbdev/font"
)

// Canvas is a one-bit picture of the display: Pix[y*W+x] is 1 for ink, 0
// for paper. Screens are drawn here, then packed into the framebuffer's
// pixel format in one go (Format.Pack), so the panel never shows half a
// screen.
type Canvas struct {
	W, H int
	Pix  []uint8
}

// NewCanvas returns a blank (all paper) canvas.
func NewCanvas(w, h int) *Canvas { return &Canvas{W: w, H: h, Pix: make([]uint8, w*h)} }

// At reports whether (x, y) is ink.
func (c *Canvas) At(x, y int) bool { return c.Pix[y*c.W+x] != 0 }

func (c *Canvas) set(x, y int, ink bool) {
	if x < 0 || y < 0 || x >= c.W || y >= c.H {
		return
	}
	var v uint8
	if ink {
		v = 1
	}
	c.Pix[y*c.W+x] = v
}

func (c *Canvas) clear() { clear(c.Pix) }

func (c *Canvas) fill(x0, y0, w, h int, ink bool) {
	for y := y0; y < y0+h; y++ {
		for x := x0; x < x0+w; x++ {
			c.set(x, y, ink)
		}
	}
}

// The smallest panel the screens fit: 21 columns of the 6-pixel cell of
// the small face, 8 lines of 8 pixels (a 128x64 POS LCD).
const (
	MinWidth  = hal.MaxColumns * smallCell
	MinHeight = hal.MaxLines * font.SmallHeight
)

const (
	smallCell = font.SmallWidth + 1 // one pixel between characters
	// A panel at least this big draws Unifont (8x16 per column) at an
	// integer scale; a smaller one the small face, with shrunk ideographs.
	unifontGridW = hal.MaxColumns * font.HalfWidth
	unifontGridH = hal.MaxLines * font.UnifontHeight
	// Shrunk ideographs: two small cells wide, at most 12 rows high (taller
	// than the 8-row ASCII line), at least 8 (past that they are mush).
	cjkSmallW    = 2 * smallCell
	cjkSmallMaxH = 12
	cjkSmallMinH = 8
	// A blank line of a stacked layout shrinks to this before the
	// ideographs do.
	blankMinH = 3
)

// layout is how one screen goes on one panel: its lines placed in rows.
type layout struct {
	scale  int // Unifont scale; 0 = the small face
	cell   int // pixels per column
	margin int // left margin, centring the 21-column grid
	cjkH   int // height of shrunk ideographs (small face only)
	rows   []row
}

// row is one band of the panel: usually one line, two menu items side by
// side when a small panel is short of rows (see pairItems).
type row struct {
	top, height int
	parts       []part
}

// part is a line drawn from column col of its row.
type part struct {
	text string
	col  int
}

// plan lays s out on a w x h panel. The scale follows the panel, not the
// screen, so every screen of a terminal uses the same letters: Unifont
// scaled by the largest integer that fits the 21x8 grid, or, on a panel
// smaller than 168x128, the small face with Unifont's ideographs shrunk.
// Rows sit on a uniform pitch of h/8 when they fit it (so words do not
// move between screens). On a small panel whose Chinese lines are taller
// than the pitch, rows are stacked; when they do not fit, blank lines
// shrink, then short menu items go two to a row, then the ideographs
// shrink, row by row down to 8 pixels.
func plan(s hal.Screen, w, h int) layout {
	l := layout{}
	single := make([]row, len(s.Lines))
	for i, line := range s.Lines {
		single[i] = row{parts: []part{{text: line}}}
	}
	l.rows = single
	if sc := min(w/unifontGridW, h/unifontGridH); sc >= 1 {
		l.scale, l.cell = sc, font.HalfWidth*sc
		for i := range l.rows {
			l.rows[i].height = font.UnifontHeight * sc
		}
	} else {
		l.cell = smallCell
		l.cjkH = cjkSmallMaxH
		paired := pairItems(s.Lines)
	ladder:
		for ; ; l.cjkH-- {
			for _, rows := range [][]row{single, paired} {
				for _, blank := range []int{font.SmallHeight, blankMinH} {
					if stack(rows, l.cjkH, blank) <= h {
						l.rows = rows
						break ladder
					}
				}
			}
			if l.cjkH == cjkSmallMinH {
				l.rows = paired // at the floor the screen is cut at the bottom
				stack(l.rows, l.cjkH, blankMinH)
				break
			}
		}
	}
	l.margin = max(0, (w-hal.MaxColumns*l.cell)/2)
	pitch := h / hal.MaxLines
	uniform := true
	for _, r := range l.rows {
		if r.height > pitch {
			uniform = false
		}
	}
	y := 0
	for i := range l.rows {
		if uniform {
			l.rows[i].height = pitch
		}
		l.rows[i].top = y
		y += l.rows[i].height
	}
	return l
}

// stack sets the height of each row of the small face and returns the
// total.
func stack(rows []row, cjkH, blank int) int {
	total := 0
	for i := range rows {
		ht := 0
		for _, p := range rows[i].parts {
			ht = max(ht, lineHeight(p.text, cjkH, blank))
		}
		rows[i].height = ht
		total += ht
	}
	return total
}

// pairItems puts consecutive menu items ("<digit> <word>") of at most half
// a line two to a row, the second from column 11: 1 消费 | 2 交易管理.
func pairItems(lines []string) []row {
	const half = hal.MaxColumns / 2
	item := func(s string) bool {
		return len(s) > 2 && s[0] >= '0' && s[0] <= '9' && s[1] == ' ' && hal.Width(s) <= half
	}
	var rows []row
	for i := 0; i < len(lines); i++ {
		r := row{parts: []part{{text: lines[i]}}}
		if i > 0 && item(lines[i]) && i+1 < len(lines) && item(lines[i+1]) {
			r.parts = append(r.parts, part{text: lines[i+1], col: half + 1})
			i++
		}
		rows = append(rows, r)
	}
	return rows
}

// lineHeight is the height of one line of the small face.
func lineHeight(line string, cjkH, blank int) int {
	if line == "" {
		return blank
	}
	for _, r := range line {
		if hal.RuneWidth(r) == 2 {
			return cjkH
		}
	}
	return font.SmallHeight
}

// Draw renders s on c: the first line (the screen's title or status word)
// inverted across the panel, as a title bar, the others ink on paper.
func Draw(c *Canvas, s hal.Screen) {
	c.clear()
	l := plan(s, c.W, c.H)
	for i, r := range l.rows {
		top, ht := r.top, r.height
		if top >= c.H {
			break
		}
		ht = min(ht, c.H-top)
		title := i == 0
		if title {
			c.fill(0, top, c.W, ht, true)
		}
		for _, p := range r.parts {
			x := l.margin + p.col*l.cell
			for _, ch := range p.text {
				cols := hal.RuneWidth(ch)
				g := l.glyph(ch, cols)
				y := top + (ht-g.H*max(l.scale, 1))/2
				drawGlyph(c, g, x, y, max(l.scale, 1), !title, top, top+ht)
				x += cols * l.cell
			}
		}
	}
}

// glyph returns the bitmap of r for the layout; a character without one is
// an empty box, so a gap in the font shows instead of vanishing.
func (l layout) glyph(r rune, cols int) font.Glyph {
	if l.scale > 0 {
		if g, ok := font.Unifont(r); ok {
			return g
		}
		return box(cols*font.HalfWidth, font.UnifontHeight)
	}
	if cols == 1 {
		if g, ok := font.Small(r); ok {
			return g
		}
		if g, ok := font.Unifont(r); ok && g.W == font.HalfWidth { // Latin-1 and the like
			return font.Shrink(g, font.SmallWidth, font.SmallHeight)
		}
		return box(font.SmallWidth, font.SmallHeight-1)
	}
	if g, ok := font.Unifont(r); ok {
		return shrunk(r, g, cjkSmallW, l.cjkH)
	}
	return box(cjkSmallW-1, l.cjkH)
}

func box(w, h int) font.Glyph {
	stride := (w + 7) / 8
	g := font.Glyph{W: w, H: h, Bits: make([]byte, stride*h)}
	for y := range h {
		for x := range w {
			if y == 0 || y == h-1 || x == 0 || x == w-1 {
				g.Bits[y*stride+x/8] |= 0x80 >> (x % 8)
			}
		}
	}
	return g
}

// drawGlyph draws g at (x, y) scaled by sc, ink as ink (or as paper on the
// title bar), clipped to the line's band [y0, y1).
func drawGlyph(c *Canvas, g font.Glyph, x, y, sc int, ink bool, y0, y1 int) {
	for gy := range g.H {
		for gx := range g.W {
			if !g.At(gx, gy) {
				continue
			}
			for dy := range sc {
				py := y + gy*sc + dy
				if py < y0 || py >= y1 {
					continue
				}
				for dx := range sc {
					c.set(x+gx*sc+dx, py, ink)
				}
			}
		}
	}
}
