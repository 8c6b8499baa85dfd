package iso8583

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// The fast loops (message.go, words.go, validate.go) must accept exactly
// what the precise path (slowpath.go, charClass) accepts and give the same
// values. These tests pin that down piece by piece; FuzzUnpack checks it on
// whole frames.

// textOps lists the field ops with a character class and the format whose
// charClass bit they must agree with (b: every byte).
var textOps = []struct {
	name string
	op   fieldOp
	f    format
}{
	{"n", opDigits, fmtN},
	{"n-right", opRight, fmtN},
	{"z", opTrack, fmtZ},
	{"an", opAN, fmtAN},
	{"ans", opANS, fmtANS},
	{"b", opBytes, fmtB},
}

func TestWordBadMatchesCharClass(t *testing.T) {
	for _, tc := range textOps {
		t.Run(tc.name, func(t *testing.T) {
			c := &classOf[tc.op]
			// One byte of every value at every position among good ones.
			for v := 0; v < 256; v++ {
				for pos := 0; pos < 8; pos++ {
					w := []byte("01234567")
					w[pos] = byte(v)
					got := wordBad(binary.LittleEndian.Uint64(w), c) == 0
					if want := allowedCharSlow(tc.f, byte(v)); got != want {
						t.Fatalf("byte %#x at %d: accepted %v, want %v", v, pos, got, want)
					}
				}
			}
			// Random words, mostly of bytes near the class edges, so that
			// carries between neighbouring bytes get their chance.
			edges := []byte{0x00, 0x1F, 0x20, 0x21, 0x2F, 0x30, 0x39, 0x3A, 0x3C, 0x3D, 0x3E, 0x40, 0x41, 0x5A, 0x5B, 0x60, 0x61, 0x7A, 0x7B, 0x7E, 0x7F, 0x80, 0xB0, 0xE1, 0xFF}
			r := rand.New(rand.NewPCG(uint64(tc.op), 7))
			for i := 0; i < 200000; i++ {
				var w [8]byte
				want := true
				for j := range w {
					if r.IntN(3) == 0 {
						w[j] = byte(r.UintN(256))
					} else {
						w[j] = edges[r.IntN(len(edges))]
					}
					want = want && allowedCharSlow(tc.f, w[j])
				}
				if got := wordBad(binary.LittleEndian.Uint64(w[:]), c) == 0; got != want {
					t.Fatalf("word % X: accepted %v, want %v", w, got, want)
				}
			}
		})
	}
	if wordBad(zeros8, &classOf[opNone]) == 0 {
		t.Errorf("the class of a field outside the profile accepts '0'")
	}
}

func TestLoadShortAndTail(t *testing.T) {
	src := []byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
	for n := 0; n <= 8; n++ {
		var want [8]byte
		copy(want[:], src[:n])
		if got := loadShort(src[:n:n]); got != binary.LittleEndian.Uint64(want[:]) {
			t.Errorf("loadShort(%d bytes) = %#x, want %#x", n, got, binary.LittleEndian.Uint64(want[:]))
		}
	}
	for n := 1; n <= 3; n++ {
		var want [4]byte
		copy(want[:], src[:n])
		if got := loadTailBE(src[:n:n]); got != binary.BigEndian.Uint32(want[:]) {
			t.Errorf("loadTailBE(%d bytes) = %#x, want %#x", n, got, binary.BigEndian.Uint32(want[:]))
		}
	}
	for n := 0; n < 1000; n++ {
		if got, want := lenBCD[n], uint16(n/100<<8|n/10%10<<4|n%10); got != want {
			t.Fatalf("lenBCD[%d] = %#x, want %#x", n, got, want)
		}
	}
}

// setReference is Set's contract written plainly: the error it must give.
func setReference(id int, v []byte) error {
	if !InProfile(id) {
		return ErrUnknownField
	}
	fs := profile[id]
	if len(v) > fs.max || fs.prefix == fixed && len(v) != fs.max {
		return ErrFieldLength
	}
	if fs.format != fmtB && firstBad(v, 1<<fs.format, 0) >= 0 {
		return ErrBadChar
	}
	return nil
}

// TestSetMatchesReference sets random values, good and bad, into every id
// of -1..66 and checks the error, that a refused value leaves the message as
// it was, and that an accepted one reads back.
func TestSetMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(60, 61))
	alphabet := []byte("0123456789=ABCDEFZ az~\x00\x1f\x7f\x80\xff !:@[`{")
	var m Message
	for i := 0; i < 60000; i++ {
		id := r.IntN(68) - 1
		var v []byte
		if InProfile(id) && r.IntN(2) == 0 {
			v = []byte(randomValue(r, id))
			if isBinaryField(id) {
				v, _ = hexDecode(string(v))
			}
			if len(v) > 0 && r.IntN(3) == 0 {
				v[r.IntN(len(v))] = alphabet[r.IntN(len(alphabet))]
			}
		} else {
			v = make([]byte, r.IntN(40))
			for j := range v {
				v[j] = alphabet[r.IntN(len(alphabet))]
			}
		}
		var before []byte
		had := m.Has(id)
		if had {
			before = bytes.Clone(m.Get(id))
		}
		err := m.Set(id, v)
		want := setReference(id, v)
		if !errors.Is(err, want) || (err == nil) != (want == nil) {
			t.Fatalf("Set(%d, %q) = %v, want %v", id, v, err, want)
		}
		switch {
		case err == nil:
			if !m.Has(id) || !bytes.Equal(m.Get(id), v) {
				t.Fatalf("Set(%d, %q) reads back %q", id, v, m.Get(id))
			}
		case m.Has(id) != had || !bytes.Equal(m.Get(id), before):
			t.Fatalf("refused Set(%d, %q) changed the field: %q -> %q", id, v, before, m.Get(id))
		}
		if r.IntN(50) == 0 {
			m.Reset()
		}
	}
}

// TestPackFastMatchesSlow packs random messages with the fast loop (a large
// buffer) and with packSlow: same bytes.
func TestPackFastMatchesSlow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 8583))
	var m Message
	fast := make([]byte, MaxFrameSize)
	slow := make([]byte, MaxFrameSize)
	if maxPacked+packSlack > MaxFrameSize || maxPacked-2 > MaxFrame {
		t.Fatalf("largest frame %d (+%d slack) does not fit MaxFrameSize %d", maxPacked, packSlack, MaxFrameSize)
	}
	for i := 0; i < 3000; i++ {
		tpdu, header, mti, fields := randomMessage(r, r.IntN(len(messageTypes)))
		fromFields(t, &m, tpdu, header, mti, fields)
		n, err := m.Pack(fast)
		if err != nil {
			t.Fatalf("Pack: %v", err)
		}
		ns, err := m.packSlow(slow)
		if err != nil || !bytes.Equal(fast[:n], slow[:ns]) {
			t.Fatalf("fast and slow Pack differ (%v)\nfast %X\nslow %X", err, fast[:n], slow[:ns])
		}
		// A buffer of the exact size goes through packSlow too.
		exact := make([]byte, n)
		if ne, err := m.Pack(exact); err != nil || ne != n || !bytes.Equal(exact, fast[:n]) {
			t.Fatalf("Pack into %d bytes: %d, %v", n, ne, err)
		}
	}
}

// checkUnpackAgree decodes frame with the fast loop and with unpackSlow and
// fails when they disagree on acceptance or on any value.
func checkUnpackAgree(t *testing.T, frame []byte) bool {
	t.Helper()
	var f, s Message
	okFast := f.unpackFast(frame)
	errSlow := s.unpackSlow(frame)
	if okFast != (errSlow == nil) {
		t.Fatalf("fast accepts %v, slow says %v\nframe %X", okFast, errSlow, frame)
	}
	if !okFast {
		if f.Fields() != 0 {
			t.Fatalf("refused frame left fields %#x", f.Fields())
		}
		return false
	}
	if f.TPDU != s.TPDU || f.Header != s.Header || f.MTI != s.MTI || f.Fields() != s.Fields() {
		t.Fatalf("frame head differs\nframe %X", frame)
	}
	for id := 2; id <= 64; id++ {
		if !bytes.Equal(f.Get(id), s.Get(id)) {
			t.Fatalf("field %d: fast %q slow %q\nframe %X", id, f.Get(id), s.Get(id), frame)
		}
	}
	return true
}

// TestUnpackFastMatchesSlow mutates golden and random frames (a byte
// changed, cut, grown, a bitmap bit flipped) and checks both decoders agree.
func TestUnpackFastMatchesSlow(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var frames [][]byte
	for _, g := range goldenSets(t) {
		frames = append(frames, g.Frame)
	}
	var m Message
	buf := make([]byte, MaxFrameSize)
	for i := 0; i < 300; i++ {
		tpdu, header, mti, fields := randomMessage(r, r.IntN(len(messageTypes)))
		fromFields(t, &m, tpdu, header, mti, fields)
		n, err := m.Pack(buf)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, bytes.Clone(buf[:n]))
	}
	accepted, refused := 0, 0
	for _, frame := range frames {
		if !checkUnpackAgree(t, frame) {
			t.Fatalf("a valid frame is refused: %X", frame)
		}
		for j := 0; j < 60; j++ {
			f := bytes.Clone(frame)
			switch j % 5 {
			case 0: // one byte changed after the bitmap
				i := offFields + r.IntN(len(f)-offFields)
				f[i] ^= byte(1 + r.IntN(255))
			case 1: // one nibble changed (stays plausible BCD more often)
				i := offFields + r.IntN(len(f)-offFields)
				f[i] ^= byte(1+r.IntN(15)) << (4 * r.IntN(2))
			case 2: // cut, length fixed
				f = fixLen(f[:offFields+r.IntN(len(f)-offFields)])
			case 3: // grown, length fixed
				f = fixLen(append(f, byte(r.UintN(256))))
			case 4: // a bitmap bit flipped
				f[offBitmap+r.IntN(8)] ^= 1 << r.IntN(8)
			}
			if checkUnpackAgree(t, f) {
				accepted++
			} else {
				refused++
			}
		}
	}
	if accepted == 0 || refused == 0 {
		t.Errorf("mutations: %d accepted, %d refused; want some of each", accepted, refused)
	}
}
