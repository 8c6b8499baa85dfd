package reference

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/posagent/posagent/iso8583"
	"sort"

	moov "github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/prefix"
)

// Spec is the acquirer profile (spec/acquirer.md) as a moov-io
// message spec. It is the slow, obviously-right codec the fast path must agree
// with byte for byte, and what the acquirer simulator speaks.
//
// moov-io expresses most rules directly: encoding.BCD is right-aligned with a
// leading 0 nibble, encoding.LBCD left-aligned with a trailing 0 nibble, and
// its prefixers count what the field holds (digits of a string for n/z, bytes
// for an/ans/b), so BCD.LL/LLL give the CUP length rule. Two small encoders
// fill the gaps: trackZ (track 2: '=' is nibble D) and asciiClass (moov's
// ASCII encoder lets any byte under 0x80 through, the profile does not).
//
// The frame around the message (length, TPDU, header) is not part of the
// spec: Pack and Unpack add and strip it.
var Spec = &moov.MessageSpec{
	Name: "posagent acquirer profile (CUP binary)",
	Fields: map[int]field.Field{
		0: field.NewString(&field.Spec{Length: 4, Description: "Message Type Indicator", Enc: encoding.BCD, Pref: prefix.BCD.Fixed}),
		1: field.NewBitmap(&field.Spec{
			Length: 8, Description: "Bitmap", Enc: encoding.Binary, Pref: prefix.Binary.Fixed,
			// Only the primary bitmap is used (acquirer.md); bit 1 is refused
			// by Unpack rather than read as a secondary bitmap.
			DisableAutoExpand: true,
		}),
		2:  field.NewString(&field.Spec{Length: 19, Description: "Primary Account Number", Enc: encoding.LBCD, Pref: prefix.BCD.LL}),
		3:  field.NewString(&field.Spec{Length: 6, Description: "Processing Code", Enc: encoding.BCD, Pref: prefix.BCD.Fixed}),
		4:  field.NewString(&field.Spec{Length: 12, Description: "Amount (fen)", Enc: encoding.BCD, Pref: prefix.BCD.Fixed}),
		11: field.NewString(&field.Spec{Length: 6, Description: "STAN", Enc: encoding.BCD, Pref: prefix.BCD.Fixed}),
		12: field.NewString(&field.Spec{Length: 6, Description: "Local time hhmmss", Enc: encoding.BCD, Pref: prefix.BCD.Fixed}),
		13: field.NewString(&field.Spec{Length: 4, Description: "Local date MMDD", Enc: encoding.BCD, Pref: prefix.BCD.Fixed}),
		14: field.NewString(&field.Spec{Length: 4, Description: "Expiry YYMM", Enc: encoding.BCD, Pref: prefix.BCD.Fixed}),
		15: field.NewString(&field.Spec{Length: 4, Description: "Settlement date MMDD", Enc: encoding.BCD, Pref: prefix.BCD.Fixed}),
		// CUP left-aligns field 22: 021 -> 02 10.
		22: field.NewString(&field.Spec{Length: 3, Description: "POS entry mode", Enc: encoding.LBCD, Pref: prefix.BCD.Fixed}),
		25: field.NewString(&field.Spec{Length: 2, Description: "Condition code", Enc: encoding.BCD, Pref: prefix.BCD.Fixed}),
		32: field.NewString(&field.Spec{Length: 11, Description: "Acquirer id", Enc: encoding.LBCD, Pref: prefix.BCD.LL}),
		35: field.NewString(&field.Spec{Length: 37, Description: "Track 2", Enc: trackZ{}, Pref: prefix.BCD.LL}),
		37: field.NewString(&field.Spec{Length: 12, Description: "RRN", Enc: anEncoding, Pref: prefix.ASCII.Fixed}),
		38: field.NewString(&field.Spec{Length: 6, Description: "Authorisation code", Enc: anEncoding, Pref: prefix.ASCII.Fixed}),
		39: field.NewString(&field.Spec{Length: 2, Description: "Response code", Enc: anEncoding, Pref: prefix.ASCII.Fixed}),
		41: field.NewString(&field.Spec{Length: 8, Description: "Terminal id", Enc: ansEncoding, Pref: prefix.ASCII.Fixed}),
		42: field.NewString(&field.Spec{Length: 15, Description: "Merchant id", Enc: ansEncoding, Pref: prefix.ASCII.Fixed}),
		44: field.NewString(&field.Spec{Length: 25, Description: "Issuer and acquirer id", Enc: anEncoding, Pref: prefix.BCD.LL}),
		48: field.NewString(&field.Spec{Length: 322, Description: "Settlement totals / batch upload", Enc: encoding.LBCD, Pref: prefix.BCD.LLL}),
		49: field.NewString(&field.Spec{Length: 3, Description: "Currency", Enc: anEncoding, Pref: prefix.ASCII.Fixed}),
		60: field.NewString(&field.Spec{Length: 17, Description: "Reserved private 60", Enc: encoding.LBCD, Pref: prefix.BCD.LLL}),
		61: field.NewString(&field.Spec{Length: 29, Description: "Original message", Enc: encoding.LBCD, Pref: prefix.BCD.LLL}),
		62: field.NewHex(&field.Spec{Length: 512, Description: "Reserved private 62", Enc: encoding.Binary, Pref: prefix.BCD.LLL}),
		63: field.NewString(&field.Spec{Length: 163, Description: "Reserved private 63", Enc: ansEncoding, Pref: prefix.BCD.LLL}),
		64: field.NewHex(&field.Spec{Length: 8, Description: "MAC", Enc: encoding.Binary, Pref: prefix.Binary.Fixed}),
	},
}

// Frame layout (acquirer.md §Frame): 2-byte length, TPDU, header, then the
// message moov-io handles from the MTI on.
const (
	offTPDU   = 2
	offHeader = 7
	offMTI    = 13
	offBitmap = 15
	offFields = 23
)

// bit is field id's bit in the primary bitmap.
func bit(id int) uint64 { return 1 << (64 - id) }

// fieldErr is a decode error naming the field and the frame offset.
func fieldErr(field, offset int, err error) error {
	return &iso8583.FieldError{Field: field, Offset: offset, Err: err}
}

// trackZ is the CUP z format: track-2 characters packed two per byte,
// left-aligned with a trailing 0 nibble, the separator '=' as nibble D.
// moov-io's BCD tables know digits only.
type trackZ struct{}

var _ encoding.Encoder = trackZ{}

func (trackZ) Encode(src []byte) ([]byte, error) {
	dst := make([]byte, (len(src)+1)/2)
	for i, c := range src {
		var nib byte
		switch {
		case c >= '0' && c <= '9':
			nib = c - '0'
		case c == '=':
			nib = 0xD
		default:
			return nil, fmt.Errorf("track 2: %w %q", iso8583.ErrBadChar, c)
		}
		if i%2 == 0 {
			dst[i/2] = nib << 4
		} else {
			dst[i/2] |= nib
		}
	}
	return dst, nil
}

func (trackZ) Decode(src []byte, length int) ([]byte, int, error) {
	if length < 0 {
		return nil, 0, fmt.Errorf("track 2: negative length %d", length)
	}
	read := (length + 1) / 2
	if len(src) < read {
		return nil, 0, fmt.Errorf("track 2: %w: need %d bytes, have %d", iso8583.ErrTruncated, read, len(src))
	}
	out := make([]byte, length)
	for i := range out {
		nib := src[i/2] >> 4
		if i%2 == 1 {
			nib = src[i/2] & 0x0F
		}
		switch {
		case nib <= 9:
			out[i] = '0' + nib
		case nib == 0xD:
			out[i] = '='
		default:
			return nil, 0, fmt.Errorf("track 2: %w %X", iso8583.ErrBadBCD, nib)
		}
	}
	if length%2 == 1 && src[read-1]&0x0F != 0 {
		return nil, 0, fmt.Errorf("track 2: %w", iso8583.ErrBadPad)
	}
	return out, read, nil
}

// asciiClass is moov-io's ASCII encoding restricted to the characters an or
// ans allows, in both directions.
type asciiClass struct{ ans bool }

var (
	_           encoding.Encoder = asciiClass{}
	anEncoding                   = asciiClass{ans: false}
	ansEncoding                  = asciiClass{ans: true}
)

// allowed is written out here rather than shared with the fast path: the
// reference stays an independent reading of acquirer.md. an: letters,
// digits and the space that pads it; ans: printable ASCII.
func (a asciiClass) allowed(c byte) bool {
	if a.ans {
		return c >= 0x20 && c <= 0x7e
	}
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == ' '
}

func (a asciiClass) check(b []byte) error {
	for i, c := range b {
		if !a.allowed(c) {
			return fmt.Errorf("%w: %q at %d", iso8583.ErrBadChar, c, i)
		}
	}
	return nil
}

func (a asciiClass) Encode(src []byte) ([]byte, error) {
	if err := a.check(src); err != nil {
		return nil, err
	}
	return encoding.ASCII.Encode(src)
}

func (a asciiClass) Decode(src []byte, length int) ([]byte, int, error) {
	out, n, err := encoding.ASCII.Decode(src, length)
	if err != nil {
		return nil, 0, err
	}
	if err := a.check(out); err != nil {
		return nil, 0, err
	}
	return out, n, nil
}

// binaryFields hold raw bytes; their semantic strings are upper-case hex.
func isBinaryField(id int) bool { return id == 62 || id == 64 }

// Pack builds a whole frame (2-byte length included) with the moov-io
// reference spec. Field values are the semantic strings of the golden
// testdata: digits for n, exact characters for an/ans, '=' in track 2, hex for
// 62 and 64.
func Pack(tpdu [5]byte, header [6]byte, mti string, fields map[int]string) ([]byte, error) {
	msg := moov.NewMessage(Spec)
	if len(mti) != 4 {
		return nil, fmt.Errorf("pack reference: MTI %q: %w", mti, iso8583.ErrBadMTI)
	}
	msg.MTI(mti)
	for id, v := range fields {
		if !iso8583.InProfile(id) {
			return nil, fmt.Errorf("pack reference: field %d: %w", id, iso8583.ErrUnknownField)
		}
		var err error
		if isBinaryField(id) {
			var raw []byte
			raw, err = hex.DecodeString(v)
			if err != nil {
				return nil, fmt.Errorf("pack reference: field %d: hex: %w", id, err)
			}
			err = msg.BinaryField(id, raw)
		} else {
			err = msg.Field(id, v)
		}
		if err != nil {
			return nil, fmt.Errorf("pack reference: field %d: %w", id, err)
		}
	}
	body, err := msg.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack reference: %w", err)
	}
	n := 5 + 6 + len(body)
	if n > iso8583.MaxFrame {
		return nil, fmt.Errorf("pack reference: %w (%d)", iso8583.ErrFrameTooLong, n)
	}
	frame := make([]byte, 0, 2+n)
	frame = binary.BigEndian.AppendUint16(frame, uint16(n))
	frame = append(frame, tpdu[:]...)
	frame = append(frame, header[:]...)
	frame = append(frame, body...)
	return frame, nil
}

// Unpack decodes a whole frame (2-byte length included) with the
// moov-io reference spec. It is as strict as the fast path: moov-io tolerates
// a non-zero pad nibble, a stray leading nibble in a BCD length and bytes after
// the last field, so the decoded message is packed again and must give back
// the very same bytes.
func Unpack(frame []byte) (tpdu [5]byte, header [6]byte, mti string, fields map[int]string, err error) {
	if len(frame) < offFields {
		return tpdu, header, "", nil, fieldErr(0, 0, iso8583.ErrShortFrame)
	}
	n := int(binary.BigEndian.Uint16(frame))
	if n > iso8583.MaxFrame {
		return tpdu, header, "", nil, fieldErr(0, 0, iso8583.ErrFrameTooLong)
	}
	if n != len(frame)-2 {
		return tpdu, header, "", nil, fieldErr(0, 0, iso8583.ErrLengthMismatch)
	}
	copy(tpdu[:], frame[offTPDU:])
	copy(header[:], frame[offHeader:])
	bm := binary.BigEndian.Uint64(frame[offBitmap:])
	if bm&bit(1) != 0 {
		return tpdu, header, "", nil, fieldErr(1, offBitmap, iso8583.ErrSecondaryBitmap)
	}
	var profileMask uint64
	for id := 2; id <= 64; id++ {
		if iso8583.InProfile(id) {
			profileMask |= bit(id)
		}
	}
	if extra := bm &^ profileMask; extra != 0 {
		id := 1
		for extra&bit(id) == 0 {
			id++
		}
		return tpdu, header, "", nil, fieldErr(id, offBitmap, iso8583.ErrUnknownField)
	}
	body := frame[offMTI:]
	msg := moov.NewMessage(Spec)
	if err := msg.Unpack(body); err != nil {
		return tpdu, header, "", nil, fmt.Errorf("unpack reference: %w", err)
	}
	mti, err = msg.GetMTI()
	if err != nil {
		return tpdu, header, "", nil, fmt.Errorf("unpack reference: MTI: %w", err)
	}
	fields = make(map[int]string)
	for id, f := range msg.GetFields() {
		if id < 2 {
			continue
		}
		s, err := f.String()
		if err != nil {
			return tpdu, header, "", nil, fmt.Errorf("unpack reference: field %d: %w", id, err)
		}
		fields[id] = s
	}
	again, err := msg.Pack()
	if err != nil {
		return tpdu, header, "", nil, fmt.Errorf("unpack reference: repack: %w", err)
	}
	if !bytes.Equal(again, body) {
		return tpdu, header, "", nil, fmt.Errorf("unpack reference: %w", errNotCanonical(again, body))
	}
	return tpdu, header, mti, fields, nil
}

var errNonCanonical = errors.New("frame is not the canonical encoding of its fields (pad nibble, length nibble or trailing bytes)")

func errNotCanonical(again, body []byte) error {
	i := 0
	for i < len(again) && i < len(body) && again[i] == body[i] {
		i++
	}
	return fmt.Errorf("%w: first difference at frame offset %d", errNonCanonical, offMTI+i)
}

// SortedFieldIDs returns the ids of fields in ascending order; handy for
// logging a map[int]string from Unpack deterministically.
func SortedFieldIDs(fields map[int]string) []int {
	ids := make([]int, 0, len(fields))
	for id := range fields {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}
