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
	length  [65]uint16    // semantic length of each present field
	data    [dataCap]byte // field id lives at data[slotOff[id]:][:profile[id].max]
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
	if !m.Has(id) {
		return nil
	}
	return m.data[wire[id].slot:][:m.length[id]]
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
	// One window test covers both length rules: exact for fixed fields
	// (min = max), at most max for LL/LLL ones (min = 0).
	if ws.op == opNone || uint(len(v)-int(ws.min)) > uint(ws.max-ws.min) ||
		ws.op != opBytes && !charsOK(v, &classOf[ws.op]) {
		return setFail(id, v)
	}
	copy(m.data[ws.slot:], v)
	m.length[id] = uint16(len(v))
	m.present |= bit(id)
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
// MaxFrameSize bytes is always enough. Bytes of dst past the returned size
// may be overwritten (scratch of the 4-byte stores).
//
// The fast loop runs when dst can hold the largest frame of the profile: it
// then needs no room check per field. A smaller dst, or a bad MTI, goes
// through packSlow, which checks every field and reports what ran out.
func (m *Message) Pack(dst []byte) (int, error) {
	if len(dst) < maxPacked+packSlack || !validBCD16(m.MTI) {
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
			dst[p] = byte(n/10<<4 | n%10)
			p++
		case prefLLL:
			dst[p] = byte(n / 100)
			dst[p+1] = byte(n/10%10<<4 | n%10)
			p += 2
		}
		// src runs past the field into Message.data's slack: the loads
		// below read whole words and mask off what is not the value.
		src := m.data[ws.slot:]
		switch ws.op {
		case opDigits, opTrack:
			// Left-aligned packed BCD, eight characters (four bytes) at a
			// time. The low nibble of '0'..'9' is the digit and that of '='
			// is D, the track-2 separator (CUP z), so one mask gives every
			// nibble; the bytes past the value are cleared, which makes the
			// pad nibble of an odd length 0.
			for k := 0; k < n; k += 8 {
				x := load8(src, k) & 0x0F0F0F0F0F0F0F0F
				if rest := n - k; rest < 8 {
					x &= 1<<((8*rest)&63) - 1
				}
				binary.LittleEndian.PutUint32(dst[p+k/2:], pack8(x))
			}
			p += (n + 1) / 2
		case opRight:
			size := int(ws.fixed)
			packDigits(dst[p:p+size], src[:n], 1)
			p += size
		default: // an, ans, b: the bytes as they are
			p += copy(dst[p:], src[:n])
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

// Per-format constants of the BCD check in unpackFast, on nibbles spread one
// per byte: a nibble is bad when nibble+6 carries into bit 4 (it is over 9)
// and, for z, it is not D either ((nibble^D)+0xF carries into bit 4 unless
// the nibble is D). For n, bcdForce sets that second bit unconditionally.
const (
	bcdAltZ   = 0x0D0D0D0D0D0D0D0D
	bcdForceN = 0x1010101010101010
)

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
	// outside the profile.
	if !validBCD16(mti) || bm&^profileMask != 0 {
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
		dst := m.data[ws.slot:]
		m.length[id] = uint16(n)
		switch ws.op {
		case opDigits, opTrack:
			size := (n + 1) / 2
			if size > len(frame)-p {
				return false
			}
			var alt, force uint64 = 0, bcdForceN
			if ws.op == opTrack {
				alt, force = bcdAltZ, 0
			}
			var bad uint64
			// Four bytes (eight digits) at a time. A word may run past the
			// field into the next one (masked off below) but never past
			// the frame: the last word of a frame is read byte by byte.
			for k := 0; k < size; k += 4 {
				var w uint32
				if q := p + k; len(frame)-q >= 4 {
					w = binary.BigEndian.Uint32(frame[q:])
				} else {
					w = loadTailBE(frame[q : p+size])
				}
				t := spread4(w)
				if d := n - 2*k; d < 8 {
					if d&1 == 1 { // the pad nibble of an odd length
						bad |= t >> ((8 * (7 - d)) & 63) & 0xF
					}
					t &= ^uint64(0) << ((8 * (8 - d)) & 63)
				}
				bad |= (t + 0x0606060606060606) & ((t ^ alt) + 0x0F0F0F0F0F0F0F0F | force) & 0x1010101010101010
				// Eight characters into Message.data, past the value into
				// its slack or the next slot (filled later or absent).
				binary.BigEndian.PutUint64(dst[2*k:], t|zeros8)
			}
			if bad != 0 {
				return false
			}
			p += size
		case opRight:
			var err error
			if p, err = m.unpackField(frame, p, id); err != nil {
				return false
			}
		case opBytes:
			if n > len(frame)-p {
				return false
			}
			p += copy(dst[:n], frame[p:])
		default: // an, ans: checked a word at a time, then copied
			if n > len(frame)-p {
				return false
			}
			// The words are read from the frame, not from m.data after the
			// copy: an 8-byte load over bytes memmove has just stored
			// misses store forwarding and stalls. Past the value they are
			// masked to '0'; the frame's last word is read without going
			// past its end.
			c := &classOf[ws.op]
			var bad uint64
			for k := 0; k < n; k += 8 {
				var x uint64
				if q := p + k; len(frame)-q >= 8 {
					x = load8(frame, q)
				} else {
					x = loadShort(frame[q:])
				}
				if rest := n - k; rest < 8 {
					x = x&(1<<((8*rest)&63)-1) | zeros8<<((8*rest)&63)
				}
				bad |= wordBad(x, c)
			}
			if bad != 0 {
				return false
			}
			p += copy(dst[:n], frame[p:])
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

// loadTailBE reads 1 to 3 bytes big-endian into the high bytes of a word.
func loadTailBE(b []byte) uint32 {
	var w uint32
	for i, c := range b {
		w |= uint32(c) << (24 - 8*i)
	}
	return w
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
