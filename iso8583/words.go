package iso8583

// Word-at-a-time moves of the fast path. Words are 8 bytes. Message.data
// slots start on a multiple of 8 and are a multiple of 8 long, so whole-word
// stores at offsets 0, 8, 16... of a slot stay inside it, and Pack's loads
// of those words are forwarded from the stores Set made (a load spanning
// several smaller stores, as memmove leaves them, stalls).
//
// The loops of Pack and Unpack are written out in message.go rather than
// called here: a call per field cost more than the work of a short field.

// setWords checks v (longer than 16 bytes) against class c and stores it
// into the slot dst as whole words; when v is refused it returns false and
// dst is untouched. It never reads outside v (Set's input belongs to the
// caller).
func setWords(dst, v []byte, c *charRanges) bool {
	n := len(v)
	tail := load8(v, n-8) // the last 8 bytes, overlapping the last whole word
	bad := wordBad(tail, c)
	for k := 0; k+8 <= n; k += 8 {
		bad |= wordBad(load8(v, k), c)
	}
	if bad != 0 {
		return false
	}
	k := 0
	for ; k+8 <= n; k += 8 {
		store8(dst, k, load8(v, k))
	}
	if rest := n - k; rest > 0 {
		store8(dst, k, tail>>(8*(8-rest)&63))
	}
	return true
}

// Per-format constants of Unpack's BCD check, on nibbles spread one per
// byte: a nibble is bad when nibble+6 carries into bit 4 (it is over 9) and,
// for z, it is not D either ((nibble^D)+0xF carries into bit 4 unless the
// nibble is D). For n, bcdForceN sets that second bit unconditionally.
const (
	bcdAltZ   = 0x0D0D0D0D0D0D0D0D
	bcdForceN = 0x1010101010101010
)

// loadTailBE reads 1 to 3 bytes big-endian into the high bytes of a word:
// the last word of a frame, which must not be read past its end.
func loadTailBE(b []byte) uint32 {
	var w uint32
	for i, c := range b {
		w |= uint32(c) << (24 - 8*i&31)
	}
	return w
}
