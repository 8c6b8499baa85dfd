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
	if id < 2 || id > 64 || wire[id].format == fmtNone {
		return setErr(id, ErrUnknownField)
	}
	ws := &wire[id]
	if len(v) > int(ws.max) || ws.prefix == fixed && len(v) != int(ws.max) {
		return setErr(id, ErrFieldLength)
	}
	if ws.mask != 0 && validChars(v, ws.mask) >= 0 {
		return setErr(id, ErrBadChar)
	}
	off := int(ws.slot)
	copy(m.data[off:off+len(v)], v)
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
// MaxFrameSize bytes is always enough.
func (m *Message) Pack(dst []byte) (int, error) {
	if len(dst) < offFields {
		return 0, fieldErr(0, 0, ErrBufferTooSmall)
	}
	if !validBCD16(m.MTI) {
		return 0, fieldErr(0, offMTI, ErrBadMTI)
	}
	copy(dst[offTPDU:], m.TPDU[:])
	copy(dst[offHeader:], m.Header[:])
	binary.BigEndian.PutUint16(dst[offMTI:], m.MTI)
	binary.BigEndian.PutUint64(dst[offBitmap:], m.present)
	p := offFields
	for bm := m.present; bm != 0; {
		id := bits.LeadingZeros64(bm) + 1
		bm &^= bit(id)
		ws := &wire[id]
		n := int(m.length[id])
		v := m.data[ws.slot:][:n]
		size := n
		if ws.prefix == fixed {
			size = int(ws.fixed)
		} else if ws.bcd {
			size = (n + 1) / 2
		}
		// prefLL adds 1 byte, prefLLL 2.
		if len(dst)-p < size+int(ws.prefix) {
			return 0, fieldErr(id, p, ErrBufferTooSmall)
		}
		switch ws.prefix {
		case prefLL:
			dst[p] = byte(n/10<<4 | n%10)
			p++
		case prefLLL:
			dst[p] = byte(n / 100)
			dst[p+1] = byte(n/10%10<<4 | n%10)
			p += 2
		}
		if ws.bcd {
			// Fixed n fields are right-aligned (leading 0 nibble when odd),
			// except the left-aligned ones (CUP field 22); variable n and z
			// fields are left-aligned (trailing 0 nibble).
			packDigits(dst[p:p+size], v, int(ws.lead))
		} else {
			copy(dst[p:p+size], v)
		}
		p += size
	}
	if p-2 > MaxFrame {
		return 0, fieldErr(0, 0, ErrFrameTooLong)
	}
	binary.BigEndian.PutUint16(dst, uint16(p-2))
	return p, nil
}

// packDigits packs digits (and '=' as D) two per byte into dst, after lead
// zero nibbles (0 or 1); a missing last nibble is 0. len(dst) is
// (lead+len(v)+1)/2.
func packDigits(dst, v []byte, lead int) {
	if lead == 1 {
		if len(v) == 0 || len(dst) == 0 {
			return
		}
		dst[0] = nibOf[v[0]]
		dst, v = dst[1:], v[1:]
	}
	k := 0
	// Eight digits at a time (SWAR); '=' (z) goes through the table below.
	for ; k+8 <= len(v) && k/2+4 <= len(dst); k += 8 {
		x := load8(v, k)
		if !digits8(x) {
			break
		}
		binary.LittleEndian.PutUint32(dst[k/2:], pack8(x-0x3030303030303030))
	}
	for ; k+1 < len(v) && k/2 < len(dst); k += 2 {
		dst[k/2] = nibOf[v[k]]<<4 | nibOf[v[k+1]]
	}
	if k < len(v) && k/2 < len(dst) {
		dst[k/2] = nibOf[v[k]] << 4
	}
}

// unpackDigits is the inverse of packDigits for format f (n or z). It
// returns the index in src of the first bad byte, or -1, and whether that
// byte is a bad pad nibble rather than a bad digit.
func unpackDigits(dst, src []byte, lead int, f format) (bad int, pad bool) {
	mask := uint8(1) << f
	i := 0
	if lead == 1 {
		if len(src) == 0 || len(dst) == 0 {
			return -1, false
		}
		if src[0]>>4 != 0 {
			return 0, true
		}
		if !nibbleOK(f, src[0]&0xF) {
			return 0, false
		}
		dst[0] = nibChr[src[0]&0xF]
		dst = dst[1:]
		i = 1
	}
	full := len(dst) / 2
	s := src[i:]
	if len(s) < full {
		return i, false
	}
	k := 0
	// Four bytes (eight digits) at a time; anything but 0..9 nibbles (a
	// track-2 D, an error) goes through the table loop below.
	for ; k+4 <= full; k += 4 {
		t := spread4(binary.BigEndian.Uint32(s[k:]))
		if (t+0x0606060606060606)&0xF0F0F0F0F0F0F0F0 != 0 {
			break
		}
		binary.BigEndian.PutUint64(dst[2*k:], t|0x3030303030303030)
	}
	for ; k < full; k++ {
		b := s[k]
		if pairOK[b]&mask == 0 {
			return i + k, false
		}
		binary.LittleEndian.PutUint16(dst[2*k:], pairOf[b])
	}
	if len(dst)&1 == 1 {
		if full >= len(s) {
			return i + full, false
		}
		b := s[full]
		if !nibbleOK(f, b>>4) {
			return i + full, false
		}
		if b&0xF != 0 {
			return i + full, true
		}
		dst[len(dst)-1] = nibChr[b>>4]
	}
	return -1, false
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
	m.present = 0
	if len(frame) < 2 {
		return fieldErr(0, 0, ErrShortFrame)
	}
	n := int(binary.BigEndian.Uint16(frame))
	if n > MaxFrame {
		return fieldErr(0, 0, ErrFrameTooLong)
	}
	if n != len(frame)-2 {
		return fieldErr(0, 0, ErrLengthMismatch)
	}
	if len(frame) < offFields {
		return fieldErr(0, len(frame), ErrShortFrame)
	}
	copy(m.TPDU[:], frame[offTPDU:])
	copy(m.Header[:], frame[offHeader:])
	mti := binary.BigEndian.Uint16(frame[offMTI:])
	if !validBCD16(mti) {
		return fieldErr(0, offMTI, ErrBadBCD)
	}
	bm := binary.BigEndian.Uint64(frame[offBitmap:])
	if bm&bit(1) != 0 {
		return fieldErr(1, offBitmap, ErrSecondaryBitmap)
	}
	if extra := bm &^ profileMask; extra != 0 {
		return fieldErr(bits.LeadingZeros64(extra)+1, offBitmap, ErrUnknownField)
	}
	p := offFields
	for rest := bm; rest != 0; {
		id := bits.LeadingZeros64(rest) + 1
		rest &^= bit(id)
		var err error
		if p, err = m.unpackField(frame, p, id); err != nil {
			return err
		}
	}
	if p != len(frame) {
		return fieldErr(0, p, ErrTrailingBytes)
	}
	m.MTI = mti
	m.present = bm
	return nil
}

// unpackField decodes field id at frame[p:] and returns the offset after it.
func (m *Message) unpackField(frame []byte, p, id int) (int, error) {
	ws := &wire[id]
	n := int(ws.max)
	switch ws.prefix {
	case prefLL:
		if p+1 > len(frame) {
			return 0, fieldErr(id, p, ErrTruncated)
		}
		b := frame[p]
		if pairOK[b]&(1<<fmtN) == 0 {
			return 0, fieldErr(id, p, ErrBadBCD)
		}
		n = int(b>>4)*10 + int(b&0xF)
		if n > int(ws.max) {
			return 0, fieldErr(id, p, ErrLengthOverMax)
		}
		p++
	case prefLLL:
		if p+2 > len(frame) {
			return 0, fieldErr(id, p, ErrTruncated)
		}
		b0, b1 := frame[p], frame[p+1]
		// LLL is 3 digits in 2 bytes: the first nibble is padding.
		if b0>>4 != 0 {
			return 0, fieldErr(id, p, ErrBadPad)
		}
		if b0 > 9 || pairOK[b1]&(1<<fmtN) == 0 {
			return 0, fieldErr(id, p, ErrBadBCD)
		}
		n = int(b0)*100 + int(b1>>4)*10 + int(b1&0xF)
		if n > int(ws.max) {
			return 0, fieldErr(id, p, ErrLengthOverMax)
		}
		p += 2
	}
	dst := m.data[ws.slot:][:n]
	m.length[id] = uint16(n)
	if ws.bcd {
		size := (n + 1) / 2
		if ws.prefix == fixed {
			size = int(ws.fixed)
		}
		if p+size > len(frame) {
			return 0, fieldErr(id, p, ErrTruncated)
		}
		// The nibble that is not a digit (leading for right-aligned odd
		// fields, trailing for left-aligned ones) must be 0.
		if bad, pad := unpackDigits(dst, frame[p:p+size], int(ws.lead), ws.format); bad >= 0 {
			if pad {
				return 0, fieldErr(id, p+bad, ErrBadPad)
			}
			return 0, fieldErr(id, p+bad, ErrBadBCD)
		}
		return p + size, nil
	}
	if p+n > len(frame) {
		return 0, fieldErr(id, p, ErrTruncated)
	}
	src := frame[p : p+n]
	if ws.mask != 0 {
		if i := validChars(src, ws.mask); i >= 0 {
			return 0, fieldErr(id, p+i, ErrBadChar)
		}
	}
	copy(dst, src)
	return p + n, nil
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
