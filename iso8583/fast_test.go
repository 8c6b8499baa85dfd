package iso8583

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// fromFields fills m from semantic strings (hex for 62 and 64).
func fromFields(t testing.TB, m *Message, tpdu [5]byte, header [6]byte, mti string, fields map[int]string) {
	t.Helper()
	m.Reset()
	m.TPDU, m.Header = tpdu, header
	v, err := strconv.ParseUint(mti, 16, 16)
	if err != nil {
		t.Fatalf("MTI %q: %v", mti, err)
	}
	m.MTI = uint16(v)
	for id, s := range fields {
		if isBinaryField(id) {
			raw, err := hexDecode(s)
			if err != nil {
				t.Fatalf("field %d: %v", id, err)
			}
			err = m.Set(id, raw)
			if err != nil {
				t.Fatalf("Set(%d): %v", id, err)
			}
			continue
		}
		if err := m.SetString(id, s); err != nil {
			t.Fatalf("SetString(%d, %q): %v", id, s, err)
		}
	}
}

// toFields returns m's fields as semantic strings (upper-case hex for 62, 64).
func toFields(m *Message) (string, map[int]string) {
	out := make(map[int]string)
	for id := 2; id <= 64; id++ {
		if !m.Has(id) {
			continue
		}
		if isBinaryField(id) {
			out[id] = strings.ToUpper(hexEncode(m.Get(id)))
		} else {
			out[id] = string(m.Get(id))
		}
	}
	return strconv.FormatUint(uint64(m.MTI)|0x10000, 16)[1:], out
}

func TestDataCap(t *testing.T) {
	if dataSize > dataCap {
		t.Fatalf("profile needs %d bytes of field storage, Message.data has %d", dataSize, dataCap)
	}
	// The word loops store whole 8-byte words at offsets 0, 8, 16... of a
	// slot: every slot must start on a multiple of 8 and have room for the
	// last word of its longest value.
	for id := 2; id <= 64; id++ {
		if !InProfile(id) {
			continue
		}
		ws := wire[id]
		room := (int(ws.max) + 7) &^ 7
		if ws.slot%8 != 0 || int(ws.slot)+room > dataCap {
			t.Errorf("field %d: slot at %d, %d bytes, storage %d", id, ws.slot, room, dataCap)
		}
		if id < 64 && InProfile(id+1) && int(wire[id+1].slot) < int(ws.slot)+room {
			t.Errorf("field %d: slot overlaps field %d", id, id+1)
		}
	}
	if off := unsafe.Offsetof(Message{}.data); off%8 != 0 {
		t.Errorf("Message.data at offset %d, not 8-aligned", off)
	}
}

func TestGoldenFast(t *testing.T) {
	var m Message
	buf := make([]byte, MaxFrameSize)
	for _, g := range goldenSets(t) {
		t.Run(strings.TrimSuffix(g.File, ".json"), func(t *testing.T) {
			fromFields(t, &m, g.TPDU, g.Header, g.MTI, g.Fields)
			n, err := m.Pack(buf)
			if err != nil {
				t.Fatalf("Pack: %v", err)
			}
			if !bytes.Equal(buf[:n], g.Frame) {
				t.Fatalf("Pack:\n got %X\nwant %X", buf[:n], g.Frame)
			}
			var d Message
			if err := d.Unpack(g.Frame); err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			mti, fields := toFields(&d)
			if d.TPDU != g.TPDU || d.Header != g.Header || mti != g.MTI {
				t.Errorf("frame: got %X %X %s, want %X %X %s", d.TPDU, d.Header, mti, g.TPDU, g.Header, g.MTI)
			}
			assertFields(t, fields, g.Fields)
			if g.MACBlock != "" {
				block, err := MACBlock(g.Frame)
				if err != nil {
					t.Fatalf("MACBlock: %v", err)
				}
				if got := strings.ToUpper(hexEncode(block)); got != g.MACBlock {
					t.Errorf("MACBlock:\n got %s\nwant %s", got, g.MACBlock)
				}
				if got := string(d.Get(64)); got != g.MACASCII {
					t.Errorf("field 64 = %q, want mac_ascii %q", got, g.MACASCII)
				}
			} else if _, err := MACBlock(g.Frame); err == nil {
				t.Errorf("MACBlock of a frame without 64 succeeded")
			}
			wantPR := byte(0)
			if g.File == "sale-response-signin-again.json" {
				wantPR = SignInAgain
			}
			if got := ProcessingRequirement(d.Header); got != wantPR {
				t.Errorf("ProcessingRequirement = %d, want %d", got, wantPR)
			}
		})
	}
}

func TestSWARHelpers(t *testing.T) {
	if got := spread4(0x12345678); got != 0x0102030405060708 {
		t.Errorf("spread4 = %#x", got)
	}
	if got := pack8(load8([]byte("12345678"), 0) - 0x3030303030303030); got != 0x78563412 {
		t.Errorf("pack8 = %#x", got)
	}
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			b := []byte("01234567")
			b[pos] = byte(c)
			x := load8(b, 0)
			if got, want := digits8(x), allowedCharSlow(fmtN, byte(c)); got != want {
				t.Fatalf("digits8 with %#x at %d = %v, want %v", c, pos, got, want)
			}
			b = []byte("AbC ~!z0")
			b[pos] = byte(c)
			if got, want := printable8(load8(b, 0)), allowedCharSlow(fmtANS, byte(c)); got != want {
				t.Fatalf("printable8 with %#x at %d = %v, want %v", c, pos, got, want)
			}
		}
	}
}
