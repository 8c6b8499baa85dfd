package iso8583

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// Message is one acquirer message for the fast path: the codec the terminal
// puts on the wire. It owns fixed storage for every field of the profile, so
// Set, Pack and Unpack allocate nothing. The zero value is an empty message.
//
// MTI holds the four digits as BCD, readable in hex: 0x0200 is "0200", the
// two bytes sent on the wire.
//
// Field values are semantic, as in the golden testdata: ASCII digits for n,
// digits and '=' for track 2 (z), the exact characters for an/ans (padding
// included: Set does not pad, a fixed field must have its exact length), raw
// bytes for the b fields 62 and 64.
type Message struct {
	TPDU   [5]byte
	Header [6]byte
	MTI    uint16

	present uint64        // wire bitmap: field id is bit 64-id
	data    [dataCap]byte // field id lives at data[slotOff[id]:][:profile[id].max]; 8-aligned after present
	length  [65]uint16    // semantic length of each present field
}

// Reset empties the message, keeping TPDU and Header.
func (m *Message) Reset() {
	m.MTI = 0
	m.present = 0
}

// Has reports whether field id is present.
func (m *Message) Has(id int) bool {
	return id >= 2 && id <= 64 && m.present&bit(id) != 0
}

// Fields returns the wire bitmap of the present fields (field id is bit
// 64-id); with Has it lets callers check a message's field set cheaply.
func (m *Message) Fields() uint64 { return m.present }

// Get returns the semantic value of field id, or nil if it is absent. The
// slice points into m: it is valid until the next Set of that field, Unpack
// or Reset, and must not be modified.
func (m *Message) Get(id int) []byte {
	if id < 2 || id > 64 || m.present&(1<<63>>((id-1)&63)) == 0 {
		return nil
	}
	off := int(slotOff[id])
	return m.data[off : off+int(m.length[id])]
}

// Unset removes field id.
func (m *Message) Unset(id int) {
	if id >= 2 && id <= 64 {
		m.present &^= bit(id)
	}
}

// Set stores field id after checking it against the profile: its length
// (exact for fixed fields, at most the maximum for LL/LLL ones) and its
// characters (digits for n, digits and '=' for z, letters/digits/space for
// an, printable ASCII for ans, anything for b).
func (m *Message) Set(id int, v []byte) error { return m.set(id, v) }

// SetString is Set for a string, without allocating: the string's bytes are
// only read, and copied into m.
func (m *Message) SetString(id int, v string) error {
	return m.set(id, unsafe.Slice(unsafe.StringData(v), len(v)))
}

func (m *Message) set(id int, v []byte) error {
	if uint(id) >= uint(len(wire)) {
		return setFail(id, v)
	}
	ws := &wire[id]
	n := len(v)
	// One window test covers both length rules: exact for fixed fields
	// (min = max), at most max for LL/LLL ones (min = 0). Outside the
	// profile, no length but 65535 fits and no character does.
	if uint(n-int(ws.min)) > uint(ws.span) {
		return setFail(id, v)
	}
	// Checked and stored a word at a time (words.go). Values of up to 16
	// bytes, most of them, are handled here: a call to setWords would cost
	// more than the rest of a short Set.
	c := &classOf[ws.op]
	off := int(ws.slot)
	switch {
	case n <= 8:
		// Most fields: one word, read without going past v.
		x := loadShort(v)
		if wordBad(x|fillFrom[n], c) != 0 {
			return setFail(id, v)
		}
		store8(m.data[:], off, x)
	case n <= 16:
		// Two words, the second overlapping the first; it is stored
		// shifted down so that its bytes land at 8..n.
		x0, x1 := load8(v, 0), load8(v, n-8)
		if wordBad(x0, c)|wordBad(x1, c) != 0 {
			return setFail(id, v)
		}
		store8(m.data[:], off, x0)
		store8(m.data[:], off+8, x1>>(8*(16-n)&63))
	default:
		if !setWords(m.data[off:], v, c) {
			return setFail(id, v)
		}
	}
	m.length[id] = uint16(n)
	m.present |= 1 << 63 >> ((id - 1) & 63) // bit(id); id is 2..64 here
	return nil
}

//go:noinline
func setErr(id int, err error) error { return &FieldError{Field: id, Offset: -1, Err: err} }

// SetUint stores v in the fixed n field id as zero-padded digits (e.g. STAN
// 7 -> "000007", amount 12345 fen -> "000000012345").
func (m *Message) SetUint(id int, v uint64) error {
	if !InProfile(id) {
		return setErr(id, ErrUnknownField)
	}
	fs := &profile[id]
	if fs.format != fmtN || fs.prefix != fixed {
		return setErr(id, ErrFieldLength)
	}
	off := int(slotOff[id])
	dst := m.data[off : off+fs.max]
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
	if v != 0 {
		return setErr(id, ErrFieldLength)
	}
	m.length[id] = uint16(fs.max)
	m.present |= bit(id)
	return nil
}

// Uint returns the digits of n field id as a number; ok is false when the
// field is absent, not numeric, or longer than 19 digits.
func (m *Message) Uint(id int) (v uint64, ok bool) {
	b := m.Get(id)
	if b == nil || profile[id].format != fmtN || len(b) > 19 {
		return 0, false
	}
	for _, c := range b {
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// Pack writes the whole frame (2-byte length, TPDU, header, MTI, bitmap,
// fields in ascending order) into dst and returns its size. A dst of
// MaxFrameSize bytes is always enough. Up to 7 bytes of dst past the
// returned size may be overwritten (fields are moved in 8-byte words).
//
// The fast loop runs when dst can hold the largest frame of the profile: it
// then needs no room check per field. A smaller dst, or a bad MTI, goes
// through packSlow, which checks every field and reports what ran out; so
// do right-aligned odd n fields (none in this profile), to keep calls out
// of the loop.
func (m *Message) Pack(dst []byte) (int, error) {
	if len(dst) < maxPacked+packSlack || !validBCD16(m.MTI) || m.present&rightMask != 0 {
		return m.packSlow(dst)
	}
	*(*[5]byte)(dst[offTPDU:]) = m.TPDU
	*(*[6]byte)(dst[offHeader:]) = m.Header
	binary.BigEndian.PutUint16(dst[offMTI:], m.MTI)
	binary.BigEndian.PutUint64(dst[offBitmap:], m.present)
	p := offFields
	// Bit-reversed, field id is trailing zeros + 1, lowest id first.
	for r := bits.Reverse64(m.present); r != 0; r &= r - 1 {
		id := bits.TrailingZeros64(r) + 1
		ws := &wire[id]
		n := int(m.length[id])
		switch ws.prefix {
		case prefLL:
			dst[p] = byte(lenBCD[n&1023])
			p++
		case prefLLL:
			binary.BigEndian.PutUint16(dst[p:], lenBCD[n&1023])
			p += 2
		}
		off := int(ws.slot)
		switch ws.op {
		case opDigits, opTrack:
			// Left-aligned packed BCD, eight characters (four bytes) at a
			// time. The low nibble of '0'..'9' is the digit and that of '='
			// is D, the track-2 separator (CUP z), so one mask gives every
			// nibble; the bytes past the value are cleared, which makes the
			// pad nibble of an odd length 0.
			end := p + (n+1)/2
			for o, d := off, n; d > 0; p, o, d = p+4, o+8, d-8 {
				x := load8(m.data[:], o) & 0x0F0F0F0F0F0F0F0F & keepTo[min(d, 8)]
				binary.LittleEndian.PutUint32(dst[p:p+4], pack8(x))
			}
			p = end
		default: // an, ans, b: the bytes as they are, a word at a time
			end := p + n
			for o := off; p < end; p, o = p+8, o+8 {
				store8(dst, p, load8(m.data[:], o))
			}
			p = end
		}
	}
	if p-2 > MaxFrame { // not with this profile (maxPacked is under it)
		return m.packSlow(dst)
	}
	binary.BigEndian.PutUint16(dst, uint16(p-2))
	return p, nil
}

func validBCD16(v uint16) bool {
	return v&0xF <= 9 && v>>4&0xF <= 9 && v>>8&0xF <= 9 && v>>12 <= 9
}

// Unpack decodes a whole frame (2-byte length included) into m. It is
// strict: the length must match the frame exactly and be at most MaxFrame,
// only the primary bitmap and fields of the profile may appear, BCD nibbles
// must be digits (or D in track 2), pad nibbles must be 0, lengths must not
// exceed the field maximum, characters must fit an/ans, and nothing may
// follow the last field. Errors are *FieldError naming field and offset. On
// error m holds no fields.
func (m *Message) Unpack(frame []byte) error {
	if m.unpackFast(frame) {
		return nil
	}
	// The fast loop only says "bad"; the precise decoder says where.
	return m.unpackSlow(frame)
}

// unpackFast decodes frame into m and reports whether it is valid. It
// checks everything unpackSlow does, a word at a time, without saying what
// is wrong; m holds no fields when it returns false.
func (m *Message) unpackFast(frame []byte) bool {
	m.present = 0
	if len(frame) < offFields || len(frame) > MaxFrameSize ||
		int(binary.BigEndian.Uint16(frame)) != len(frame)-2 {
		return false
	}
	mti := binary.BigEndian.Uint16(frame[offMTI:])
	bm := binary.BigEndian.Uint64(frame[offBitmap:])
	// profileMask has neither bit 1 (secondary bitmap) nor any field
	// outside the profile. Right-aligned odd n fields (none in this
	// profile) are left to unpackSlow: a call in this loop would make the
	// compiler keep its variables on the stack.
	if !validBCD16(mti) || bm&^profileMask != 0 || bm&rightMask != 0 {
		return false
	}
	p := offFields
	for r := bits.Reverse64(bm); r != 0; r &= r - 1 {
		id := bits.TrailingZeros64(r) + 1
		ws := &wire[id]
		n := int(ws.max)
		switch ws.prefix {
		case prefLL:
			if p >= len(frame) {
				return false
			}
			b := frame[p]
			n = int(b>>4)*10 + int(b&0xF)
			// A high nibble over 9 gives n >= 100, over every LL maximum.
			if b&0xF > 9 || n > int(ws.max) {
				return false
			}
			p++
		case prefLLL:
			if len(frame)-p < 2 {
				return false
			}
			b0, b1 := frame[p], frame[p+1]
			// b0 <= 9 also refuses a non-zero pad nibble.
			if b0 > 9 || b1&0xF > 9 || b1>>4 > 9 {
				return false
			}
			n = int(b0)*100 + int(b1>>4)*10 + int(b1&0xF)
			if n > int(ws.max) {
				return false
			}
			p += 2
		}
		off := int(ws.slot)
		m.length[id] = uint16(n)
		switch ws.op {
		case opDigits, opTrack:
			// Left-aligned packed BCD. Every nibble must be a digit (or D in
			// z), the pad nibble of an odd length 0; eight characters are
			// stored at a time, at offsets that are multiples of 8 inside
			// the slot.
			end := p + (n+1)/2
			if end > len(frame) {
				return false
			}
			// q walks the frame, o the slot, d counts the digits left:
			// few live values, so the loop stays in registers.
			q, o, d := p, off, n
			var bad uint64
			// Sixteen digits (eight bytes, inside the field) at a time while
			// as many are left: no pad nibble, nothing to mask.
			for ; d >= 16; q, o, d = q+8, o+16, d-16 {
				x := binary.BigEndian.Uint64(frame[q : q+8])
				hi, lo := spread4(uint32(x>>32)), spread4(uint32(x))
				bad |= ((hi+0x0606060606060606)&((hi^ws.alt)+0x0F0F0F0F0F0F0F0F|ws.force) |
					(lo+0x0606060606060606)&((lo^ws.alt)+0x0F0F0F0F0F0F0F0F|ws.force)) & 0x1010101010101010
				binary.BigEndian.PutUint64(m.data[o:o+8], hi|zeros8)
				binary.BigEndian.PutUint64(m.data[o+8:o+16], lo|zeros8)
			}
			// The rest, up to 15 digits, four bytes at a time.
			for ; d > 0; q, o, d = q+4, o+8, d-8 {
				var w uint32
				if len(frame)-q >= 4 {
					// May run into the next field: masked off below.
					w = binary.BigEndian.Uint32(frame[q : q+4])
				} else { // the frame's last bytes: not read past its end
					w = loadTailBE(frame[q:end])
				}
				t := spread4(w)
				if d < 8 {
					if d&1 == 1 { // the pad nibble of an odd length
						bad |= t >> (8 * (7 - d) & 63) & 0xF
					}
					t &= ^uint64(0) << (8 * (8 - d) & 63)
				}
				bad |= (t + 0x0606060606060606) & ((t ^ ws.alt) + 0x0F0F0F0F0F0F0F0F | ws.force) & 0x1010101010101010
				binary.BigEndian.PutUint64(m.data[o:o+8], t|zeros8)
			}
			if bad != 0 {
				return false
			}
			p = end
		default: // an, ans, b: checked (b allows every byte) and moved a word at a time
			if n > len(frame)-p {
				return false
			}
			c := &classOf[ws.op]
			var bad uint64
			for k := 0; k < n; k += 8 {
				var x uint64
				if q := p + k; len(frame)-q >= 8 {
					x = load8(frame, q)
				} else { // the frame's last bytes: not read past its end
					x = loadShort(frame[q:])
				}
				// Past the value, and past the field in the frame: '0',
				// which every class allows.
				rest := min(n-k, 8)
				x = x&keepTo[rest] | fillFrom[rest]
				bad |= wordBad(x, c)
				store8(m.data[:], off+k, x)
			}
			if bad != 0 {
				return false
			}
			p += n
		}
	}
	if p != len(frame) {
		return false
	}
	m.TPDU = [5]byte(frame[offTPDU:])
	m.Header = [6]byte(frame[offHeader:])
	m.MTI, m.present = mti, bm
	return true
}

// MACBlock returns the bytes the CUP MAC covers: from the MTI to the end of
// the last field before 64 (frame[13:len-8]), with bit 64 set in the bitmap.
// The slice aliases frame. frame is a whole frame, length included.
func MACBlock(frame []byte) ([]byte, error) {
	if len(frame) < offFields+8 {
		return nil, fieldErr(0, len(frame), ErrShortFrame)
	}
	if int(binary.BigEndian.Uint16(frame)) != len(frame)-2 {
		return nil, fieldErr(0, 0, ErrLengthMismatch)
	}
	if frame[offBitmap+7]&1 == 0 {
		return nil, fieldErr(64, offBitmap, ErrNoMAC)
	}
	return frame[offMTI : len(frame)-8], nil
}

// PutMAC writes the 8 MAC bytes into field 64, the last 8 bytes of a frame
// packed with a placeholder 64 (e.g. eight zero bytes): pack, compute the MAC
// over MACBlock, then PutMAC.
func PutMAC(frame []byte, mac []byte) error {
	if len(mac) != 8 {
		return fieldErr(64, -1, ErrFieldLength)
	}
	if _, err := MACBlock(frame); err != nil {
		return err
	}
	copy(frame[len(frame)-8:], mac)
	return nil
}

// ProcessingRequirement is the host's processing requirement: the low nibble
// of header byte 2 (CUP). 3 means "sign in again before the next financial
// message".
func ProcessingRequirement(header [6]byte) byte { return header[2] & 0x0F }

// SignInAgain is the ProcessingRequirement value asking for a new sign-in.
const SignInAgain = 3
