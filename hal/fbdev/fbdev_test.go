package fbdev

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/terminal/i18n"
)

var update = flag.Bool("update", false, "rewrite the golden PNGs in testdata/")

// screens are laid out as the core shows them (spec/terminal.md), words
// from the catalog.
func screens() map[string]hal.Screen {
	en, zh := i18n.EN, i18n.ZhCN
	menu := func(l i18n.Lang) hal.Screen {
		return hal.Screen{Lines: []string{l.T(i18n.MainMenu), "1 " + l.T(i18n.Sale), "2 " + l.T(i18n.TxnMgmt),
			"3 " + l.T(i18n.Settlement), "4 " + l.T(i18n.SignIn), "5 " + l.T(i18n.Technician)}}
	}
	void := func(l i18n.Lang) hal.Screen {
		return hal.Screen{Lines: []string{l.T(i18n.VoidConfirm), l.T(i18n.AmountLabel) + " 12.34", "622588******1234",
			l.T(i18n.VoucherLabel) + " 000042", "", l.T(i18n.EnterToAccept)}}
	}
	approved := func(l i18n.Lang) hal.Screen {
		return hal.Screen{Lines: []string{l.T(i18n.Sale), l.T(i18n.Approved), l.T(i18n.VoucherLabel) + " 000042",
			l.T(i18n.AmountLabel) + " 12.34", l.T(i18n.AuthLabel) + " 123456"}}
	}
	settle := func(l i18n.Lang) hal.Screen {
		return hal.Screen{Lines: []string{l.T(i18n.SettleBatch), l.T(i18n.BatchLabel) + " 000001",
			fmt.Sprintf("%s %3d %s", l.T(i18n.Sale), 3, "36.00"), fmt.Sprintf("%s %3d %s", l.T(i18n.Void), 1, "12.34"),
			l.T(i18n.NetLabel) + " 23.66", "", l.T(i18n.EnterToSettle)}}
	}
	// A device problem goes on the last line of every screen, after a
	// blank line (terminal/devices.go): here the APPROVED of a sale whose
	// receipt waits for paper.
	paperOut := func(l i18n.Lang) hal.Screen {
		s := approved(l)
		s.Lines = append(s.Lines, "", l.T(i18n.PaperOut))
		return s
	}
	return map[string]hal.Screen{
		"paper-out": paperOut(en), "paper-out-zh": paperOut(zh),
		"main-menu": menu(en), "main-menu-zh": menu(zh),
		"void-confirm": void(en), "void-confirm-zh": void(zh),
		"approved": approved(en), "approved-zh": approved(zh),
		"settle": settle(en), "settle-zh": settle(zh),
	}
}

// show renders s into a regular file standing in for /dev/fb0 and returns
// what the panel shows, decoded from the file.
func show(t *testing.T, g Geometry, s hal.Screen) image.Image {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fb0")
	d, err := OpenFile(path, g)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Show(s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := g.offset() + int64(g.size()); int64(len(b)) != want {
		t.Fatalf("framebuffer file is %d bytes, want %d", len(b), want)
	}
	return g.Decode(b[g.offset():])
}

// TestGolden compares the framebuffer screens with testdata/*.png (go test
// -run TestGolden -update rewrites them; look at them before committing).
func TestGolden(t *testing.T) {
	for _, g := range []Geometry{Mono128x64, RGB565x320x240} {
		for name, s := range screens() {
			file := filepath.Join("testdata", fmt.Sprintf("%s-%dx%d.png", name, g.Width, g.Height))
			t.Run(filepath.Base(file), func(t *testing.T) {
				got := show(t, g, s)
				if *update {
					var buf bytes.Buffer
					if err := png.Encode(&buf, got); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				f, err := os.Open(file)
				if err != nil {
					t.Fatalf("%v (run go test -run TestGolden -update)", err)
				}
				defer f.Close()
				want, err := png.Decode(f)
				if err != nil {
					t.Fatal(err)
				}
				if x, y, ok := samePicture(got, want); !ok {
					t.Fatalf("%s differs from the golden at (%d,%d); rerun with -update and look at it", file, x, y)
				}
			})
		}
	}
}

func samePicture(a, b image.Image) (int, int, bool) {
	if a.Bounds() != b.Bounds() {
		return -1, -1, false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				return x, y, false
			}
		}
	}
	return 0, 0, true
}

// TestFormatsShowTheSame: every supported pixel format shows the same
// picture (16 and 32 bits per pixel, 24, both mono polarities, a BGR
// panel, a visible area panned into a bigger virtual screen).
func TestFormatsShowTheSame(t *testing.T) {
	s := screens()["void-confirm-zh"]
	ref := show(t, RGB565x320x240, s)
	bgr := XRGB8888x320x240
	bgr.Red, bgr.Blue = bgr.Blue, bgr.Red
	rgb24 := Geometry{Width: 320, Height: 240, BitsPerPixel: 24, LineLength: 960, Visual: VisualTrueColor,
		Red: Bitfield{16, 8}, Green: Bitfield{8, 8}, Blue: Bitfield{0, 8}}
	panned := XRGB8888x320x240
	panned.LineLength, panned.XOffset, panned.YOffset = 2048, 100, 240 // a double-buffered 512x480 virtual screen
	for _, g := range []Geometry{XRGB8888x320x240, bgr, rgb24, panned} {
		if x, y, ok := samePicture(show(t, g, s), ref); !ok {
			t.Errorf("%s: differs from RGB565 at (%d,%d)", g, x, y)
		}
	}
	mono := show(t, Mono128x64, s)
	mono10 := Mono128x64
	mono10.Visual = VisualMono10
	if x, y, ok := samePicture(show(t, mono10, s), mono); !ok {
		t.Errorf("MONO10 differs from MONO01 at (%d,%d)", x, y)
	}
}

// TestOneWriteAtTheVisibleArea: bytes outside the visible area (before the
// panned offset) are left alone; the visible lines are written whole.
func TestOneWriteAtTheVisibleArea(t *testing.T) {
	g := XRGB8888x320x240
	g.YOffset = 240
	path := filepath.Join(t.TempDir(), "fb0")
	front := bytes.Repeat([]byte{0xAB}, int(g.offset()))
	if err := os.WriteFile(path, front, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := OpenFile(path, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Show(screens()["approved"]); err != nil {
		t.Fatal(err)
	}
	d.Close()
	b, _ := os.ReadFile(path)
	if !bytes.Equal(b[:len(front)], front) {
		t.Fatal("Show wrote before the visible area")
	}
	if len(b) != len(front)+g.size() {
		t.Fatalf("file is %d bytes, want %d", len(b), len(front)+g.size())
	}
	if err := d.Show(screens()["approved"]); err == nil {
		t.Fatal("Show after Close succeeded")
	}
}

func TestUnsupported(t *testing.T) {
	pseudo := Geometry{Width: 320, Height: 240, BitsPerPixel: 8, LineLength: 320, Visual: 3}
	tiny := Mono128x64
	tiny.Width, tiny.Height, tiny.LineLength = 96, 32, 12
	planar := Mono128x64
	planar.Type = 1
	short := RGB565x320x240
	short.LineLength = 320
	mono16 := RGB565x320x240
	mono16.Visual = VisualMono01
	for want, g := range map[string]Geometry{
		"8 bits per pixel":  pseudo,
		"96x32 pixels":      tiny,
		"type 1":            planar,
		"line length 320":   short,
		"16 bits per pixel": mono16,
	} {
		_, err := OpenFile(filepath.Join(t.TempDir(), "fb0"), g)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrUnsupported naming %q", g, err, want)
		}
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Open of a missing device succeeded")
	}
	// A regular file answers the fbdev ioctls with ENOTTY.
	f := filepath.Join(t.TempDir(), "regular")
	os.WriteFile(f, make([]byte, 1024), 0o644)
	if _, err := Open(f); err == nil || !strings.Contains(err.Error(), "FBIOGET_VSCREENINFO") {
		t.Errorf("Open of a regular file: %v", err)
	}
}

// TestIoctlLayouts: the kernel structs as Go sees them, on this ABI (the
// ARMv7 run of this test checks the 32-bit one).
func TestIoctlLayouts(t *testing.T) {
	if n := unsafe.Sizeof(fbVarScreenInfo{}); n != 160 {
		t.Errorf("fb_var_screeninfo is %d bytes, want 160", n)
	}
	want := uintptr(68)
	if unsafe.Sizeof(uintptr(0)) == 8 {
		want = 80
	}
	if n := unsafe.Sizeof(fbFixScreenInfo{}); n != want {
		t.Errorf("fb_fix_screeninfo is %d bytes, want %d", n, want)
	}
	wantOff := uintptr(44) // after the pan steps, aligned
	if unsafe.Sizeof(uintptr(0)) == 8 {
		wantOff = 48
	}
	if off := unsafe.Offsetof(fbFixScreenInfo{}.LineLength); off != wantOff {
		t.Errorf("line_length at %d", off)
	}
}

// TestSmallPanelFitsChinese: on a 128x64 panel every line of a 7-line
// zh-CN screen is drawn (the last one has ink), the title bar is inverted,
// and a screen of ASCII keeps the 8-pixel pitch.
func TestSmallPanelFitsChinese(t *testing.T) {
	s := screens()["settle-zh"]
	c := NewCanvas(128, 64)
	Draw(c, s)
	l := plan(s, 128, 64)
	last := l.rows[len(l.rows)-1]
	if len(l.rows) != len(s.Lines) || last.top+last.height > 64 {
		t.Fatalf("%d rows, last at %d+%d, past the panel", len(l.rows), last.top, last.height)
	}
	if l.cjkH < cjkSmallMinH || l.cjkH > cjkSmallMaxH {
		t.Fatalf("ideographs %d rows high", l.cjkH)
	}
	if !inkIn(c, last.top, last.top+last.height) {
		t.Fatal("the last line has no ink")
	}
	// The zh-CN main menu keeps 12-pixel ideographs with its items two to
	// a row.
	menu := plan(screens()["main-menu-zh"], 128, 64)
	if menu.cjkH != cjkSmallMaxH || len(menu.rows) != 4 || len(menu.rows[1].parts) != 2 || menu.rows[1].parts[1].col != 11 {
		t.Fatalf("zh-CN main menu at 128x64: %+v", menu)
	}
	if !c.At(0, 0) || !c.At(127, 0) {
		t.Fatal("the title bar is not inverted")
	}
	en := plan(screens()["main-menu"], 128, 64)
	for i, r := range en.rows {
		if r.top != i*8 || len(r.parts) != 1 {
			t.Fatalf("ASCII line %d at y=%d in %d parts, want %d in 1", i, r.top, len(r.parts), i*8)
		}
	}
	big := plan(screens()["main-menu-zh"], 320, 240)
	if big.scale != 1 || len(big.rows) != 6 || big.rows[5].top != 5*30 {
		t.Fatalf("320x240: scale %d, %+v", big.scale, big.rows)
	}
	if huge := plan(screens()["main-menu"], 800, 480); huge.scale != 3 {
		t.Fatalf("800x480: scale %d, want 3", huge.scale)
	}
}

func inkIn(c *Canvas, y0, y1 int) bool {
	for y := y0; y < y1; y++ {
		for x := range c.W {
			if c.At(x, y) {
				return true
			}
		}
	}
	return false
}

// TestMissingGlyphIsABox: a character outside the font shows as a box,
// never as nothing.
func TestMissingGlyphIsABox(t *testing.T) {
	for _, g := range []Geometry{Mono128x64, RGB565x320x240} {
		c := NewCanvas(g.Width, g.Height)
		Draw(c, hal.Screen{Lines: []string{"", "鑫"}})
		r := plan(hal.Screen{Lines: []string{"", "鑫"}}, g.Width, g.Height).rows[1]
		if !inkIn(c, r.top, r.top+r.height) {
			t.Errorf("%dx%d: missing glyph drew nothing", g.Width, g.Height)
		}
	}
}

func TestShowRefusesInvalidScreen(t *testing.T) {
	d, err := OpenFile(filepath.Join(t.TempDir(), "fb0"), Mono128x64)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Show(hal.Screen{Lines: []string{strings.Repeat("中", 11)}}); err == nil {
		t.Fatal("a 22-column line was drawn")
	}
}

// TestPNGFile: the simulator's PNG shows what the framebuffer shows.
func TestPNGFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "screen.png")
	p, err := NewPNGFile(path, 320, 240)
	if err != nil {
		t.Fatal(err)
	}
	s := screens()["main-menu-zh"]
	if err := p.Show(s); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if x, y, ok := samePicture(got, show(t, RGB565x320x240, s)); !ok {
		t.Fatalf("PNG differs from the framebuffer at (%d,%d)", x, y)
	}
	if _, err := NewPNGFile(path, 100, 50); err == nil {
		t.Fatal("a 100x50 PNG display was accepted")
	}
	if MinWidth != hal.MinPanelWidth || MinHeight != hal.MinPanelHeight {
		t.Fatalf("fbdev minimum %dx%d, hal says %dx%d", MinWidth, MinHeight, hal.MinPanelWidth, hal.MinPanelHeight)
	}
}
