package font

import (
	"slices"
	"testing"

	"github.com/posagent/posagent/terminal/i18n"
)

func TestEmbeddedFonts(t *testing.T) {
	if err := Err(); err != nil {
		t.Fatal(err)
	}
	for r := rune(0x20); r <= 0x7E; r++ {
		g, ok := Small(r)
		if !ok || g.W != SmallWidth || g.H != SmallHeight {
			t.Errorf("small face: %q missing or %dx%d", r, g.W, g.H)
		}
		u, ok := Unifont(r)
		if !ok || u.W != HalfWidth || u.H != UnifontHeight {
			t.Errorf("unifont: %q missing or %dx%d", r, u.W, u.H)
		}
	}
	if g, ok := Unifont('撤'); !ok || g.W != FullWidth {
		t.Errorf("unifont 撤: %v %d", ok, g.W)
	}
	// 'A' of the small face: apex at the top, a bar on row 4.
	a, _ := Small('A')
	if a.At(0, 0) || !a.At(1, 0) || !a.At(0, 4) || !a.At(4, 4) || !a.At(2, 4) || a.At(2, 7) {
		t.Error("small 'A' is not drawn as expected")
	}
}

// TestCatalogCovered: every character of every catalog word has a glyph.
// When it fails, run `make font` (go run ./hal/fbdev/internal/fontgen).
func TestCatalogCovered(t *testing.T) {
	if m := Missing(i18n.Text()...); len(m) > 0 {
		t.Fatalf("the font subset lacks %q: run make font", string(m))
	}
}

// TestCoverageCatchesNewWord: a word with a character the subset lacks is
// reported, so TestCatalogCovered fails the day such a word enters the
// catalog.
func TestCoverageCatchesNewWord(t *testing.T) {
	words := append(i18n.Text(), "鑫源茶馆 OK", "余额不足")
	got := Missing(words...)
	want := []rune{'茶', '源', '馆', '鑫'}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Missing = %q, want %q", string(got), string(want))
	}
}

// TestSubsetIsCurrent: the committed subset is exactly what the generator
// makes of the catalog today: nothing missing, nothing left over.
func TestSubsetIsCurrent(t *testing.T) {
	if got, want := Runes(), Wanted(); !slices.Equal(got, want) {
		t.Fatalf("subset has %d runes, the catalog needs %d: run make font", len(got), len(want))
	}
}

func TestParseHexErrors(t *testing.T) {
	for _, s := range []string{"0041", "zz:00", "0041:0g", "0041:00"} {
		if _, err := ParseHex(s); err == nil {
			t.Errorf("ParseHex(%q) = nil error", s)
		}
	}
	if _, err := parseArt("41\n#####\n", 5, 8); err == nil {
		t.Error("parseArt accepted a short glyph")
	}
}

func TestShrink(t *testing.T) {
	full := Glyph{W: 16, H: 16, Bits: make([]byte, 32)}
	for i := range full.Bits {
		full.Bits[i] = 0xFF
	}
	s := Shrink(full, 12, 10)
	for y := range 10 {
		for x := range 12 {
			if !s.At(x, y) {
				t.Fatalf("shrunk solid glyph has paper at %d,%d", x, y)
			}
		}
	}
	g, _ := Unifont('主')
	s = Shrink(g, 12, 12)
	ink := 0
	for y := range 12 {
		for x := range 12 {
			if s.At(x, y) {
				ink++
			}
		}
	}
	if ink < 20 || ink > 80 {
		t.Fatalf("shrunk 主 has %d ink pixels", ink)
	}
}
