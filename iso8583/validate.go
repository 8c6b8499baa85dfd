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
func load8(v []byte, i int) uint64 { return binary.LittleEndian.Uint64(v[i : i+8]) }

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

// Table-driven SWAR character classes for the fast path. Every text class of
// the profile is a union of at most three byte ranges of 7-bit ASCII (the
// second one tested after OR-ing fold, which maps A-Z onto a-z):
//
//	n   '0'-'9'
//	z   '0'-'9', '='           (track 2, CUP)
//	an  '0'-'9', a-z after fold, ' '
//	ans 0x20-0x7E
//
// A byte b < 0x80 is in [lo, hi] when b+(0x80-lo) has its high bit set and
// b+(0x7F-hi) has not; neither sum carries out of the byte. A byte >= 0x80
// is refused by clearing its own high bit in the result, whatever carries it
// caused next door.
type charRanges struct {
	lo1, hi1, lo2, hi2, lo3, hi3, fold uint64
	any                                uint64 // highs for b: every byte allowed
	more                               bool   // ranges 2 and 3 are used (z, an)
}

// zeros8 is eight '0' bytes: valid in every text class, used to fill the
// bytes of a short word that are not part of the value.
const zeros8 = 0x3030303030303030

func rangeAddends(lo, hi byte) (uint64, uint64) {
	if lo > hi { // empty range: equal addends cancel out
		return ones, ones
	}
	return uint64(0x80-lo) * ones, uint64(0x7F-hi) * ones
}

func makeRanges(r1, r2, r3 [2]byte, fold byte) (c charRanges) {
	c.lo1, c.hi1 = rangeAddends(r1[0], r1[1])
	c.lo2, c.hi2 = rangeAddends(r2[0], r2[1])
	c.lo3, c.hi3 = rangeAddends(r3[0], r3[1])
	c.fold = uint64(fold) * ones
	c.more = r2[0] <= r2[1] || r3[0] <= r3[1]
	return c
}

var none = [2]byte{1, 0}

// classOf is indexed by fieldOp; opBytes and opNone are never checked.
var classOf = [...]charRanges{
	opDigits: makeRanges([2]byte{'0', '9'}, none, none, 0),
	opRight:  makeRanges([2]byte{'0', '9'}, none, none, 0),
	opTrack:  makeRanges([2]byte{'0', '9'}, none, [2]byte{'=', '='}, 0),
	opAN:     makeRanges([2]byte{'0', '9'}, [2]byte{'a', 'z'}, [2]byte{' ', ' '}, 0x20),
	opANS:    makeRanges([2]byte{0x20, 0x7E}, none, none, 0),
	opBytes:  {any: highs},
	opNone:   {}, // refuses everything
}

// wordBad returns a non-zero value when some byte of x is outside class c.
// n and ans are one range: the other two are skipped.
func wordBad(x uint64, c *charRanges) uint64 {
	ok := (x + c.lo1) &^ (x + c.hi1)
	if c.more {
		y := x | c.fold
		ok |= (y+c.lo2)&^(y+c.hi2) | (x+c.lo3)&^(x+c.hi3)
	}
	return highs &^ (ok&^x | c.any)
}

// keepTo[n] keeps the low n bytes of a word; fillFrom[n] is '0' in the
// others (n = 0..8).
var keepTo, fillFrom = func() (keep, fill [9]uint64) {
	for n := 0; n <= 8; n++ {
		keep[n] = 1<<(8*n) - 1 // 1<<64 is 0 in Go: keep[8] is all ones
		fill[n] = zeros8 &^ keep[n]
	}
	return keep, fill
}()

// store8 writes x little-endian at v[i:i+8]. Like load8 it slices an
// explicit [i:i+8] window: with the end given, the compiler checks the
// bounds and takes the address without the extra work of an open-ended
// slice.
func store8(v []byte, i int, x uint64) { binary.LittleEndian.PutUint64(v[i:i+8], x) }

// loadShort reads a value of at most 8 bytes into the low bytes of a word
// without reading past it: two overlapping loads, OR-ed (the overlap holds
// the same bytes twice).
func loadShort(v []byte) uint64 {
	n := len(v)
	switch {
	case n >= 4:
		return uint64(binary.LittleEndian.Uint32(v)) | uint64(binary.LittleEndian.Uint32(v[n-4:]))<<(8*(n-4)&63)
	case n >= 2:
		return uint64(binary.LittleEndian.Uint16(v)) | uint64(binary.LittleEndian.Uint16(v[n-2:]))<<(8*(n-2)&63)
	case n == 1:
		return uint64(v[0])
	}
	return 0
}
