package iso8583

// The precise path of the codec: field by field, every bound checked where
// it is crossed. The fast loops in message.go fall back on it to name the
// field and offset of an error (or the room that ran out), so the two agree
// on what is accepted and the error reports stay exact.

import (
	"encoding/binary"
	"math/bits"
)

// setFail works out which error a Set refused by the fast check gets.
//
//go:noinline
func setFail(id int, v []byte) error {
	if !InProfile(id) {
		return setErr(id, ErrUnknownField)
	}
	ws := &wire[id]
	if len(v) > int(ws.max) || ws.prefix == fixed && len(v) != int(ws.max) {
		return setErr(id, ErrFieldLength)
	}
	return setErr(id, ErrBadChar)
}

// packSlow is Pack checking the room left before every field: it runs when
// dst is smaller than the fast loop needs, or the MTI is bad, and reports
// exactly where a frame stops fitting.
func (m *Message) packSlow(dst []byte) (int, error) {
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

// unpackSlow is Unpack one field at a time with a precise error for every
// fault. Unpack's fast loop only knows that a frame is bad; it hands the
// frame to unpackSlow, which finds the field and offset to report.
// FuzzUnpack checks that both accept the same frames with the same fields.
func (m *Message) unpackSlow(frame []byte) error {
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
