package iso8583

import "encoding/binary"

// Character checks for Set and Unpack. Digit-only and printable-ASCII fields
// are checked eight bytes at a time (SWAR): they are most of a message's
// bytes (field 48 alone is up to 322 digits) and a byte-by-byte table lookup
// was the largest cost of building a request.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// load8 reads v[i:i+8] little-endian.
func load8(v []byte, i int) uint64 { return binary.LittleEndian.Uint64(v[i:]) }

// digits8 reports whether all 8 bytes of x are '0'..'9': the high nibble is
// 3 and adding 6 to the low nibble does not carry into it.
func digits8(x uint64) bool {
	return x&0xF0F0F0F0F0F0F0F0 == 0x3030303030303030 &&
		(x+0x0606060606060606)&0xF0F0F0F0F0F0F0F0 == 0x3030303030303030
}

// printable8 reports whether all 8 bytes of x are in 0x20..0x7E (ans).
func printable8(x uint64) bool {
	below := (x - 0x20*ones) & ^x & highs        // some byte < 0x20
	above := ((x + (127-0x7E)*ones) | x) & highs // some byte > 0x7E
	return below|above == 0
}

// validChars reports whether every byte of v is allowed by mask (a charClass
// bit); it returns the index of the first bad byte, or -1. Digit and ans
// fields of 8 bytes or more are checked 8 at a time, the tail as an
// overlapping last window.
func validChars(v []byte, mask uint8) int {
	var ok8 func(uint64) bool
	switch mask {
	case 1 << fmtN:
		ok8 = digits8
	case 1 << fmtANS:
		ok8 = printable8
	}
	if ok8 != nil && len(v) >= 8 {
		i := 0
		for ; i+8 <= len(v); i += 8 {
			if !ok8(load8(v, i)) {
				return firstBad(v[i:i+8], mask, i)
			}
		}
		if i < len(v) && !ok8(load8(v, len(v)-8)) {
			return firstBad(v[len(v)-8:], mask, len(v)-8)
		}
		return -1
	}
	return firstBad(v, mask, 0)
}

// firstBad is the byte-by-byte check: the index (plus base) of the first
// byte of v that mask refuses, or -1.
func firstBad(v []byte, mask uint8, base int) int {
	for i, c := range v {
		if charClass[c]&mask == 0 {
			return base + i
		}
	}
	return -1
}

// pack8 packs eight digit values (one per byte, little-endian: the first
// digit in the low byte) into four BCD bytes, first digit in the high nibble
// of the low byte.
func pack8(d uint64) uint32 {
	t := (d<<4 | d>>8) & 0x00FF00FF00FF00FF
	t = (t | t>>8) & 0x0000FFFF0000FFFF
	return uint32(t | t>>16)
}

// spread4 puts each nibble of x in its own byte, most significant first:
// 0x12345678 -> 0x0102030405060708.
func spread4(x uint32) uint64 {
	t := uint64(x)
	t = (t | t<<16) & 0x0000FFFF0000FFFF
	t = (t | t<<8) & 0x00FF00FF00FF00FF
	return (t | t<<4) & 0x0F0F0F0F0F0F0F0F
}
