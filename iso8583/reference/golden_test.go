package reference

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/posagent/posagent/iso8583"
	goldenpkg "github.com/posagent/posagent/iso8583/internal/golden"
)

type golden = goldenpkg.Message

func goldenSets(t testing.TB) []golden { return goldenpkg.All(t) }

func TestGoldenReference(t *testing.T) {
	for _, g := range goldenSets(t) {
		t.Run(strings.TrimSuffix(g.File, ".json"), func(t *testing.T) {
			frame, err := Pack(g.TPDU, g.Header, g.MTI, g.Fields)
			if err != nil {
				t.Fatalf("Pack: %v", err)
			}
			if !bytes.Equal(frame, g.Frame) {
				t.Fatalf("Pack:\n got %X\nwant %X", frame, g.Frame)
			}
			tpdu, header, mti, fields, err := Unpack(g.Frame)
			if err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			if tpdu != g.TPDU || header != g.Header || mti != g.MTI {
				t.Errorf("frame: got %X %X %s, want %X %X %s", tpdu, header, mti, g.TPDU, g.Header, g.MTI)
			}
			assertFields(t, fields, g.Fields)
		})
	}
}

func assertFields(t *testing.T, got, want map[int]string) {
	t.Helper()
	for id, w := range want {
		if g, ok := got[id]; !ok || g != w {
			t.Errorf("field %d: got %q (present %v), want %q", id, g, ok, w)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("field %d: unexpected %q", id, g)
		}
	}
}

// TestProfileMatchesReference checks that the fast path's table and the
// moov-io spec name the same fields with the same maximum lengths.
func TestProfileMatchesReference(t *testing.T) {
	for id := 2; id <= 128; id++ {
		f, inRef := Spec.Fields[id]
		if inRef != iso8583.InProfile(id) {
			t.Errorf("field %d: in moov-io spec %v, in fast-path table %v", id, inRef, iso8583.InProfile(id))
			continue
		}
		if inRef && f.Spec().Length != iso8583.FieldMax(id) {
			t.Errorf("field %d: moov-io length %d, table max %d", id, f.Spec().Length, iso8583.FieldMax(id))
		}
	}
}

// TestReferenceRefusesBadFrames: the reference is as strict as the fast
// path on the faults of badframes_test.go in package iso8583.
func TestReferenceRefusesBadFrames(t *testing.T) {
	var void []byte
	for _, g := range goldenSets(t) {
		if g.File == "void-request.json" {
			void = g.Frame
		}
	}
	if void == nil {
		t.Fatal("no void-request golden")
	}
	fixLen := func(f []byte) []byte {
		binary.BigEndian.PutUint16(f, uint16(len(f)-2))
		return f
	}
	clone := func() []byte { return append([]byte(nil), void...) }
	for name, frame := range map[string][]byte{
		"short":            void[:20],
		"length mismatch":  append(clone(), 0),
		"over 2048":        fixLen(append(clone(), make([]byte, 2100)...)),
		"truncated field":  fixLen(clone()[:len(void)-3]),
		"bad BCD nibble":   func() []byte { f := clone(); f[13+2+8] = 0xAB; return f }(), // first byte of field 2's prefix
		"secondary bitmap": func() []byte { f := clone(); f[15] |= 0x80; return f }(),
		"unknown field":    func() []byte { f := clone(); f[15] |= 0x40; return f }(), // field 2 → also field 2; set bit of field 5
	} {
		if name == "unknown field" {
			frame[15] &^= 0x40
			frame[15] |= 0x08 // field 5: not in the profile
		}
		if _, _, _, _, err := Unpack(frame); err == nil {
			t.Errorf("%s: accepted", name)
		}
		var m iso8583.Message
		if err := m.Unpack(frame); err == nil {
			t.Errorf("%s: fast path accepted", name)
		}
	}
}
