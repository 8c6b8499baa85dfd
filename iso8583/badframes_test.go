package iso8583

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func goldenFrame(t *testing.T, file string) []byte {
	t.Helper()
	for _, g := range goldenSets(t) {
		if g.File == file {
			return append([]byte(nil), g.Frame...)
		}
	}
	t.Fatalf("no golden %s", file)
	return nil
}

// fixLen makes the length prefix agree with the frame after a mutation.
func fixLen(f []byte) []byte {
	binary.BigEndian.PutUint16(f, uint16(len(f)-2))
	return f
}

func TestUnpackBadFrames(t *testing.T) {
	// Offsets in void-request.json: 2@23 (LL) 3@34 4@37 11@43 14@46 22@48
	// 25@50 37@51 38@63 41@69 42@77 49@92 60@95 (LLL) 61@104 63@112 64@117;
	// sale-request.json: 35@51 (LL, data from 52).
	void := "void-request.json"
	sale := "sale-request.json"
	tests := []struct {
		name   string
		file   string
		mutate func([]byte) []byte
		field  int
		offset int
		err    error
	}{
		{"empty", void, func(f []byte) []byte { return f[:0] }, 0, 0, ErrShortFrame},
		{"one byte", void, func(f []byte) []byte { return f[:1] }, 0, 0, ErrShortFrame},
		{"no bitmap", void, func(f []byte) []byte { return fixLen(f[:20]) }, 0, 20, ErrShortFrame},
		{"length one too many", void, func(f []byte) []byte { f[1]++; return f }, 0, 0, ErrLengthMismatch},
		{"length one too few", void, func(f []byte) []byte { f[1]--; return f }, 0, 0, ErrLengthMismatch},
		{"over 2048", void, func(f []byte) []byte { return fixLen(append(f, make([]byte, MaxFrame)...)) }, 0, 0, ErrFrameTooLong},
		{"length FFFF", void, func(f []byte) []byte { f[0], f[1] = 0xFF, 0xFF; return f }, 0, 0, ErrFrameTooLong},
		{"bad MTI nibble", void, func(f []byte) []byte { f[14] = 0x0A; return f }, 0, 13, ErrBadBCD},
		{"secondary bitmap", void, func(f []byte) []byte { f[15] |= 0x80; return f }, 1, 15, ErrSecondaryBitmap},
		{"field 5 not in profile", void, func(f []byte) []byte { f[15] |= 0x08; return f }, 5, 15, ErrUnknownField},
		{"bit 64 without a MAC", "settlement-request.json", func(f []byte) []byte { f[22] |= 0x01; return f }, 64, 99, ErrTruncated},
		{"LL not BCD", void, func(f []byte) []byte { f[23] = 0x1A; return f }, 2, 23, ErrBadBCD},
		{"LL over maximum", void, func(f []byte) []byte { f[23] = 0x20; return f }, 2, 23, ErrLengthOverMax},
		{"PAN pad nibble", void, func(f []byte) []byte { f[33] = 0x3F; return f }, 2, 33, ErrBadPad},
		{"amount bad nibble", void, func(f []byte) []byte { f[38] = 0x0C; return f }, 4, 38, ErrBadBCD},
		{"field 22 pad nibble", void, func(f []byte) []byte { f[49] = 0x11; return f }, 22, 49, ErrBadPad},
		{"RRN control char", void, func(f []byte) []byte { f[55] = 0x01; return f }, 37, 55, ErrBadChar},
		{"TID high byte", void, func(f []byte) []byte { f[70] = 0xB0; return f }, 41, 70, ErrBadChar},
		{"LLL over maximum", void, func(f []byte) []byte { f[95], f[96] = 0x00, 0x18; return f }, 60, 95, ErrLengthOverMax},
		{"LLL pad nibble", void, func(f []byte) []byte { f[95] = 0x10; return f }, 60, 95, ErrBadPad},
		{"LLL not BCD", void, func(f []byte) []byte { f[96] = 0x1F; return f }, 60, 95, ErrBadBCD},
		{"truncated field 63", void, func(f []byte) []byte { return fixLen(f[:116]) }, 63, 114, ErrTruncated},
		{"truncated LLL prefix", void, func(f []byte) []byte { return fixLen(f[:113]) }, 63, 112, ErrTruncated},
		{"truncated field 64", void, func(f []byte) []byte { return fixLen(f[:120]) }, 64, 117, ErrTruncated},
		{"trailing byte", void, func(f []byte) []byte { return fixLen(append(f, 0)) }, 0, 125, ErrTrailingBytes},
		{"track 2 nibble E", sale, func(f []byte) []byte { f[60] = 0xE2; return f }, 35, 60, ErrBadBCD},
		{"track 2 pad nibble", sale, func(f []byte) []byte { f[70] = 0x01; return f }, 35, 70, ErrBadPad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := tt.mutate(goldenFrame(t, tt.file))
			var m Message
			err := m.Unpack(frame)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Unpack error = %v, want a *FieldError", err)
			}
			if !errors.Is(err, tt.err) || fe.Field != tt.field || fe.Offset != tt.offset {
				t.Fatalf("Unpack error = %v (field %d offset %d), want %v at field %d offset %d", err, fe.Field, fe.Offset, tt.err, tt.field, tt.offset)
			}
			if !strings.Contains(err.Error(), "offset ") {
				t.Errorf("error %q does not name the offset", err)
			}
			if tt.field > 1 && !strings.Contains(err.Error(), "field ") {
				t.Errorf("error %q does not name the field", err)
			}
			if m.Fields() != 0 {
				t.Errorf("failed Unpack left fields %064b", m.Fields())
			}
		})
	}
}

func TestSetValidation(t *testing.T) {
	tests := []struct {
		id  int
		v   string
		err error
	}{
		{1, "x", ErrUnknownField},
		{5, "000000", ErrUnknownField},
		{65, "", ErrUnknownField},
		{3, "00000", ErrFieldLength},
		{3, "0000000", ErrFieldLength},
		{3, "00000A", ErrBadChar},
		{2, "12345678901234567890", ErrFieldLength},
		{2, "1234=", ErrBadChar},
		{35, "6222=2512X", ErrBadChar},
		{37, "25112100010", ErrFieldLength},
		{37, "25112100010-", ErrBadChar},
		{41, "1234567\x7f", ErrBadChar},
		{44, strings.Repeat("A", 26), ErrFieldLength},
		{48, strings.Repeat("0", 323), ErrFieldLength},
		{63, "01\t", ErrBadChar},
		{64, "1234567", ErrFieldLength},
		{62, strings.Repeat("x", 513), ErrFieldLength},
	}
	for _, tt := range tests {
		var m Message
		err := m.SetString(tt.id, tt.v)
		if !errors.Is(err, tt.err) {
			t.Errorf("SetString(%d, %q) = %v, want %v", tt.id, tt.v, err, tt.err)
		}
		if m.Has(tt.id) {
			t.Errorf("SetString(%d, %q) failed but the field is present", tt.id, tt.v)
		}
	}
	// Values at the limits are accepted.
	var m Message
	for _, ok := range []struct {
		id int
		v  string
	}{{2, ""}, {2, "1234567890123456789"}, {35, "=="}, {44, "01020000   48020000   "}, {63, "~ !"}, {62, ""}, {64, "\x00\xff\x00\xff\x00\xff\x00\xff"}} {
		if err := m.SetString(ok.id, ok.v); err != nil {
			t.Errorf("SetString(%d, %q) = %v", ok.id, ok.v, err)
		}
		if got := string(m.Get(ok.id)); got != ok.v || m.Get(ok.id) == nil {
			t.Errorf("Get(%d) = %q, want %q", ok.id, got, ok.v)
		}
	}
}

func TestUintHelpers(t *testing.T) {
	var m Message
	if err := m.SetUint(11, 7); err != nil {
		t.Fatal(err)
	}
	if got := string(m.Get(11)); got != "000007" {
		t.Errorf("SetUint(11, 7) = %q", got)
	}
	if err := m.SetUint(4, 12345); err != nil || string(m.Get(4)) != "000000012345" {
		t.Errorf("SetUint(4) = %q, %v", m.Get(4), err)
	}
	if v, ok := m.Uint(4); !ok || v != 12345 {
		t.Errorf("Uint(4) = %d, %v", v, ok)
	}
	if err := m.SetUint(11, 1000000); !errors.Is(err, ErrFieldLength) {
		t.Errorf("SetUint(11, 1000000) = %v, want ErrFieldLength", err)
	}
	if err := m.SetUint(2, 1); !errors.Is(err, ErrFieldLength) {
		t.Errorf("SetUint on LLVAR field 2 = %v, want an error", err)
	}
	if _, ok := m.Uint(37); ok {
		t.Errorf("Uint of absent field succeeded")
	}
}

func TestPackErrors(t *testing.T) {
	var m Message
	m.MTI = 0x0200
	if err := m.SetString(63, strings.Repeat("x", 163)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Pack(make([]byte, 40)); !errors.Is(err, ErrBufferTooSmall) {
		t.Errorf("Pack into 40 bytes = %v, want ErrBufferTooSmall", err)
	}
	m.MTI = 0x020A
	if _, err := m.Pack(make([]byte, MaxFrameSize)); !errors.Is(err, ErrBadMTI) {
		t.Errorf("Pack with MTI 020A = %v, want ErrBadMTI", err)
	}
}

func TestMACHelpers(t *testing.T) {
	frame := goldenFrame(t, "void-request.json")
	mac := []byte("ABCDEF01")
	if err := PutMAC(frame, mac); err != nil {
		t.Fatal(err)
	}
	if got := string(frame[len(frame)-8:]); got != "ABCDEF01" {
		t.Errorf("PutMAC wrote %q", got)
	}
	noMAC := goldenFrame(t, "settlement-request.json")
	if err := PutMAC(noMAC, mac); !errors.Is(err, ErrNoMAC) {
		t.Errorf("PutMAC on a frame without 64 = %v, want ErrNoMAC", err)
	}
	if _, err := MACBlock(frame[:10]); !errors.Is(err, ErrShortFrame) {
		t.Errorf("MACBlock(short) = %v", err)
	}
}
