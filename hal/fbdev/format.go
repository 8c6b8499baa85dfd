package fbdev

import (
	"errors"
	"fmt"
	"image"
	"image/color"
)

// Visuals and types of linux/fb.h that the display handles.
const (
	TypePackedPixels = 0 // FB_TYPE_PACKED_PIXELS

	VisualMono01    = 0 // FB_VISUAL_MONO01: 1 = black, 0 = white
	VisualMono10    = 1 // FB_VISUAL_MONO10: 1 = white, 0 = black
	VisualTrueColor = 2 // FB_VISUAL_TRUECOLOR
	VisualDirect    = 4 // FB_VISUAL_DIRECTCOLOR (an identity ramp, as drivers set it up)
)

// Bitfield is one colour channel of a true-colour pixel (struct
// fb_bitfield): Length bits at Offset from the pixel's least significant
// bit.
type Bitfield struct {
	Offset, Length uint32
}

// Geometry is what the display needs to know of a framebuffer, as the
// fbdev ioctls report it (FBIOGET_VSCREENINFO, FBIOGET_FSCREENINFO), or as
// a test gives it for a regular file standing in for /dev/fb0.
type Geometry struct {
	Width, Height    int // visible resolution (xres, yres)
	XOffset, YOffset int // the visible area in the virtual screen
	BitsPerPixel     int
	LineLength       int // bytes per line of the virtual screen (fix.line_length)
	Type             uint32
	Visual           uint32
	Red, Green, Blue Bitfield
}

// Common geometries, for tests and the simulator.
var (
	// Mono128x64 is a 128x64 monochrome LCD, 1 bit per pixel.
	Mono128x64 = Geometry{Width: 128, Height: 64, BitsPerPixel: 1, LineLength: 16, Visual: VisualMono01}
	// RGB565x320x240 is a 320x240 colour TFT, 16 bits per pixel.
	RGB565x320x240 = Geometry{Width: 320, Height: 240, BitsPerPixel: 16, LineLength: 640, Visual: VisualTrueColor,
		Red: Bitfield{11, 5}, Green: Bitfield{5, 6}, Blue: Bitfield{0, 5}}
	// XRGB8888x320x240 is a 320x240 colour TFT, 32 bits per pixel.
	XRGB8888x320x240 = Geometry{Width: 320, Height: 240, BitsPerPixel: 32, LineLength: 1280, Visual: VisualTrueColor,
		Red: Bitfield{16, 8}, Green: Bitfield{8, 8}, Blue: Bitfield{0, 8}}
)

// GeometryOf is the usual geometry of a w x h framebuffer of bits per
// pixel (1: mono, 16: RGB565, 24: RGB888, 32: XRGB8888), with no padding
// at the end of the lines: what a regular file standing in for /dev/fb0
// holds (the simulator's display_geometry).
func GeometryOf(w, h, bits int) Geometry {
	g := Geometry{Width: w, Height: h, BitsPerPixel: bits, LineLength: (w*bits + 7) / 8, Visual: VisualTrueColor}
	switch bits {
	case 1:
		g.Visual = VisualMono01
	case 16:
		g.Red, g.Green, g.Blue = Bitfield{11, 5}, Bitfield{5, 6}, Bitfield{0, 5}
	default:
		g.Red, g.Green, g.Blue = Bitfield{16, 8}, Bitfield{8, 8}, Bitfield{0, 8}
	}
	return g
}

// ErrUnsupported is wrapped by the error of a framebuffer the display
// cannot draw on.
var ErrUnsupported = errors.New("unsupported framebuffer")

// Validate reports why the display cannot draw on g, wrapping
// ErrUnsupported.
func (g Geometry) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, a...))
	}
	if g.Type != TypePackedPixels {
		return bad("type %d, want packed pixels (0)", g.Type)
	}
	switch g.BitsPerPixel {
	case 1:
		if g.Visual != VisualMono01 && g.Visual != VisualMono10 {
			return bad("1 bit per pixel with visual %d, want monochrome (0 or 1)", g.Visual)
		}
	case 16, 24, 32:
		if g.Visual != VisualTrueColor && g.Visual != VisualDirect {
			return bad("%d bits per pixel with visual %d, want true colour (2) or direct colour (4)", g.BitsPerPixel, g.Visual)
		}
		for _, f := range []Bitfield{g.Red, g.Green, g.Blue} {
			if f.Length == 0 || f.Length > 8 || int(f.Offset+f.Length) > g.BitsPerPixel {
				return bad("colour channel at bit %d, %d bits long, in a %d-bit pixel", f.Offset, f.Length, g.BitsPerPixel)
			}
		}
	default:
		return bad("%d bits per pixel (visual %d), want 1, 16, 24 or 32", g.BitsPerPixel, g.Visual)
	}
	if g.Width < MinWidth || g.Height < MinHeight {
		return bad("%dx%d pixels, the screens need at least %dx%d", g.Width, g.Height, MinWidth, MinHeight)
	}
	if g.XOffset < 0 || g.YOffset < 0 || g.LineLength*8 < (g.XOffset+g.Width)*g.BitsPerPixel {
		return bad("line length %d bytes is short for %d pixels of %d bits at x offset %d", g.LineLength, g.Width, g.BitsPerPixel, g.XOffset)
	}
	if g.BitsPerPixel == 1 && g.XOffset%8 != 0 {
		return bad("x offset %d of a 1-bit framebuffer is not byte aligned", g.XOffset)
	}
	return nil
}

// String describes g for logs: "320x240 16bpp truecolor r5@11 g6@5 b5@0".
func (g Geometry) String() string {
	if g.BitsPerPixel == 1 {
		return fmt.Sprintf("%dx%d 1bpp mono visual %d", g.Width, g.Height, g.Visual)
	}
	return fmt.Sprintf("%dx%d %dbpp visual %d r%d@%d g%d@%d b%d@%d", g.Width, g.Height, g.BitsPerPixel, g.Visual,
		g.Red.Length, g.Red.Offset, g.Green.Length, g.Green.Offset, g.Blue.Length, g.Blue.Offset)
}

// Ink and paper of a colour panel: near-black on white, as a mono LCD.
var (
	Ink   = color.RGBA{0x10, 0x10, 0x10, 0xFF}
	Paper = color.RGBA{0xFF, 0xFF, 0xFF, 0xFF}
)

// offset is where the first visible line starts in the framebuffer
// memory; the visible area starts XOffset pixels into each line.
func (g Geometry) offset() int64 { return int64(g.YOffset) * int64(g.LineLength) }

// size is the bytes written per screen: the visible lines, whole.
func (g Geometry) size() int { return g.Height * g.LineLength }

// pixel returns the packed value of a colour.
func (g Geometry) pixel(c color.RGBA) uint32 {
	ch := func(v uint8, f Bitfield) uint32 { return uint32(v) >> (8 - f.Length) << f.Offset }
	return ch(c.R, g.Red) | ch(c.G, g.Green) | ch(c.B, g.Blue)
}

// Pack writes c into dst, a buffer of size() bytes laid out as the
// framebuffer from the first visible line. Multi-byte pixels are
// little-endian, the byte order of the ARM and x86 terminals.
func (g Geometry) Pack(c *Canvas, dst []byte) {
	x0 := g.XOffset * g.BitsPerPixel / 8 // bytes into a line
	switch g.BitsPerPixel {
	case 1:
		black := g.Visual == VisualMono01 // the value of an ink bit
		for y := range c.H {
			row := dst[y*g.LineLength+x0:]
			for i := range (c.W + 7) / 8 {
				var b byte
				for bit := range 8 {
					x := i*8 + bit
					ink := x < c.W && c.At(x, y) // paper past the edge
					if ink == black {
						b |= 0x80 >> bit // the leftmost pixel is the most significant bit
					}
				}
				row[i] = b
			}
		}
	default:
		bpp := g.BitsPerPixel / 8
		ink, paper := g.pixel(Ink), g.pixel(Paper)
		for y := range c.H {
			row := dst[y*g.LineLength+x0:]
			for x := range c.W {
				v := paper
				if c.At(x, y) {
					v = ink
				}
				p := row[x*bpp : x*bpp+bpp]
				for i := range p {
					p[i] = byte(v >> (8 * i))
				}
			}
		}
	}
}

// Decode reads the visible area of a framebuffer image, from its first
// visible line (as Pack wrote it), back into a picture: what the panel shows. Tests compare it with golden
// PNGs.
func (g Geometry) Decode(src []byte) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, g.Width, g.Height))
	x0 := g.XOffset * g.BitsPerPixel / 8
	for y := range g.Height {
		row := src[y*g.LineLength+x0:]
		for x := range g.Width {
			var c color.RGBA
			switch g.BitsPerPixel {
			case 1:
				on := row[x/8]&(0x80>>(x%8)) != 0
				if on == (g.Visual == VisualMono01) {
					c = color.RGBA{0, 0, 0, 0xFF}
				} else {
					c = color.RGBA{0xFF, 0xFF, 0xFF, 0xFF}
				}
			default:
				bpp := g.BitsPerPixel / 8
				var v uint32
				for i := range bpp {
					v |= uint32(row[x*bpp+i]) << (8 * i)
				}
				ch := func(f Bitfield) uint8 {
					full := uint32(1)<<f.Length - 1
					return uint8((v >> f.Offset & full) * 255 / full)
				}
				c = color.RGBA{ch(g.Red), ch(g.Green), ch(g.Blue), 0xFF}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// Image returns the canvas as a picture in the ink and paper colours (the
// simulator's PNG).
func (c *Canvas) Image() image.Image {
	img := image.NewPaletted(image.Rect(0, 0, c.W, c.H), color.Palette{Paper, Ink})
	copy(img.Pix, c.Pix) // Stride == W for a fresh Paletted
	return img
}
