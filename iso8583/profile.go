package iso8583

// The acquirer profile of spec/acquirer.md as data. The fast path is driven by
// this table; the moov-io reference.Spec (reference/reference.go) is written out
// independently in moov-io's own vocabulary, and TestProfileMatchesReference
// checks that the two describe the same fields.

// Frame layout: | length 2B | TPDU 5B | header 6B | MTI 2B | bitmap 8B | fields |
const (
	// MaxFrame is the largest length value a frame may carry (acquirer.md:
	// "A frame whose length value exceeds 2,048 is refused"). A buffer for a
	// whole frame needs MaxFrameSize bytes.
	MaxFrame     = 2048
	MaxFrameSize = MaxFrame + 2

	offTPDU   = 2
	offHeader = 7
	offMTI    = 13
	offBitmap = 15
	offFields = 23
)

type format uint8

const (
	fmtNone format = iota // not in the profile
	fmtN                  // packed BCD digits
	fmtZ                  // packed BCD digits with '=' as nibble D (track 2)
	fmtAN                 // ASCII letters, digits and space
	fmtANS                // printable ASCII 0x20..0x7E
	fmtB                  // raw bytes
)

type prefixKind uint8

const (
	fixed   prefixKind = iota
	prefLL             // 1 byte BCD
	prefLLL            // 2 bytes BCD
)

// fieldSpec is one row of acquirer.md's table. max counts digits for n/z and
// bytes for an/ans/b, exactly as the length prefix does.
type fieldSpec struct {
	format format
	prefix prefixKind
	max    int
	left   bool // fixed n field packed left-aligned (trailing 0 nibble)
}

var profile = [65]fieldSpec{
	2:  {fmtN, prefLL, 19, false},   // PAN
	3:  {fmtN, fixed, 6, false},     // processing code
	4:  {fmtN, fixed, 12, false},    // amount in fen
	11: {fmtN, fixed, 6, false},     // STAN
	12: {fmtN, fixed, 6, false},     // local time hhmmss
	13: {fmtN, fixed, 4, false},     // local date MMDD
	14: {fmtN, fixed, 4, false},     // expiry YYMM
	15: {fmtN, fixed, 4, false},     // settlement date MMDD
	22: {fmtN, fixed, 3, true},      // entry mode: CUP left-aligns field 22 (021 -> 02 10)
	25: {fmtN, fixed, 2, false},     // condition code
	32: {fmtN, prefLL, 11, false},   // acquirer id
	35: {fmtZ, prefLL, 37, false},   // track 2, '=' is nibble D
	37: {fmtAN, fixed, 12, false},   // RRN
	38: {fmtAN, fixed, 6, false},    // auth code
	39: {fmtAN, fixed, 2, false},    // response code
	41: {fmtANS, fixed, 8, false},   // TID
	42: {fmtANS, fixed, 15, false},  // MID
	44: {fmtAN, prefLL, 25, false},  // issuer + acquirer id
	48: {fmtN, prefLLL, 322, false}, // settlement totals / batch upload records
	49: {fmtAN, fixed, 3, false},    // currency
	60: {fmtN, prefLLL, 17, false},  // 60.1..60.5
	61: {fmtN, prefLLL, 29, false},  // original batch + STAN
	62: {fmtB, prefLLL, 512, false}, // sign-in keys
	63: {fmtANS, prefLLL, 163, false},
	64: {fmtB, fixed, 8, false}, // MAC
}

// slotOff places every field at a fixed offset of Message.data, so a Set
// never moves another field and storage never fragments. Slots start on a
// multiple of 8 and are rounded up to one: the fast loops move values as
// whole 8-byte words at offsets 0, 8, 16... of a slot, which stay inside it,
// and a later 8-byte load of a word an 8-byte store wrote is forwarded from
// the store buffer (a load spanning the smaller stores of a memmove stalls).
var slotOff, dataSize = func() (off [65]uint16, total int) {
	for id := 2; id <= 64; id++ {
		off[id] = uint16(total)
		total += (profile[id].max + 7) &^ 7
	}
	return off, total
}()

// wireSpec is fieldSpec worked out once for the hot loops: Set, Pack and
// Unpack switch on op and never look at format, prefix or max separately.
type wireSpec struct {
	slot   uint16 // offset in Message.data
	max    uint16
	min    uint16 // max for a fixed field, 0 for LL/LLL: Set's length window
	span   uint16 // max-min; 0 with min 0xFFFF outside the profile
	fixed  uint16 // wire bytes of a fixed field (prefix kind fixed)
	prefix prefixKind
	format format
	op     fieldOp
	bcd    bool  // n or z: packed two per byte
	lead   uint8 // 1: fixed odd n right-aligned, leading 0 nibble
	mask   uint8 // charClass mask; 0 for b

	alt, force uint64 // Unpack's BCD nibble check: bcdAltZ, 0 for z; 0, bcdForceN for n
}

// fieldOp is how the body of a field goes on the wire, the one switch of
// the hot loops. The length prefix (none, LL, LLL) is handled before it.
type fieldOp uint8

const (
	opNone   fieldOp = iota // not in the profile
	opDigits                // n, packed BCD, left-aligned: variable n, even fixed n, CUP field 22
	opTrack                 // z, like opDigits with '=' as nibble D (track 2)
	opRight                 // fixed odd n, right-aligned behind a leading 0 nibble
	opAN                    // an: copied, letters/digits/space checked
	opANS                   // ans: copied, printable ASCII checked
	opBytes                 // b: copied as is
)

var wire = func() (w [65]wireSpec) {
	for id := range w {
		w[id].min = 0xFFFF // no length fits; and opNone's class refuses every byte
	}
	for id := 2; id <= 64; id++ {
		fs := profile[id]
		if fs.format == fmtNone {
			continue
		}
		ws := wireSpec{slot: slotOff[id], max: uint16(fs.max), prefix: fs.prefix, format: fs.format}
		if fs.prefix == fixed {
			ws.min = ws.max
		}
		ws.span = ws.max - ws.min
		ws.bcd = fs.format == fmtN || fs.format == fmtZ
		ws.fixed = uint16(fs.max)
		if ws.bcd {
			ws.fixed = uint16(fs.max+1) / 2
			if fs.prefix == fixed && !fs.left && fs.max%2 == 1 {
				ws.lead = 1
			}
		}
		if fs.format != fmtB {
			ws.mask = 1 << fs.format
		}
		switch {
		case ws.lead == 1:
			ws.op = opRight
		case fs.format == fmtN:
			ws.op = opDigits
		case fs.format == fmtZ:
			ws.op = opTrack
			ws.alt = bcdAltZ
		case fs.format == fmtAN:
			ws.op = opAN
		case fs.format == fmtANS:
			ws.op = opANS
		default:
			ws.op = opBytes
		}
		if ws.op == opDigits {
			ws.force = bcdForceN
		}
		w[id] = ws
	}
	return w
}()

// dataCap is the size of Message.data; TestDataCap checks dataSize fits.
const dataCap = 1328

// maxPacked is the size of the largest frame the profile allows (every
// field at its maximum), length prefix included. Pack's fast loop runs when
// dst holds it plus packSlack, so it needs no per-field room check.
var maxPacked = func() (n int) {
	n = offFields
	for id := 2; id <= 64; id++ {
		ws := wire[id]
		if ws.op != opNone {
			n += int(ws.prefix) + int(ws.fixed)
		}
	}
	return n
}()

// packSlack: Pack moves fields in 8-byte words, so the last store of a
// field may run up to 7 bytes past it.
const packSlack = 8

// InProfile reports whether field id is defined by the acquirer profile.
func InProfile(id int) bool {
	return id >= 2 && id <= 64 && profile[id].format != fmtNone
}

// profileMask has the wire bitmap bit of every profile field set.
var profileMask = func() (m uint64) {
	for id := 2; id <= 64; id++ {
		if profile[id].format != fmtNone {
			m |= bit(id)
		}
	}
	return m
}()

// rightMask has the bit of every right-aligned odd n field (opRight): the
// fast loops leave them to the precise path. None in this profile.
var rightMask = func() (m uint64) {
	for id := 2; id <= 64; id++ {
		if wire[id].op == opRight {
			m |= bit(id)
		}
	}
	return m
}()

// bit is the wire bitmap bit of field id (bit 1 is the MSB of byte 0).
func bit(id int) uint64 { return 1 << (64 - id) }

// charClass has bit f set for every byte allowed in a field of format f:
// one table lookup per character on the hot path.
var charClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		for f := fmtN; f <= fmtB; f++ {
			if allowedCharSlow(f, byte(c)) {
				t[c] |= 1 << f
			}
		}
	}
	return t
}()

func allowedCharSlow(f format, c byte) bool {
	switch f {
	case fmtN:
		return c >= '0' && c <= '9'
	case fmtZ:
		return c >= '0' && c <= '9' || c == '='
	case fmtAN:
		// spaces pad an fields on the right (acquirer.md), so they are allowed.
		return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == ' '
	case fmtANS:
		return c >= 0x20 && c <= 0x7e
	case fmtB:
		return true
	}
	return false
}

// Nibble tables for packed BCD. nibOf maps a semantic character to its
// nibble ('=' is D in track 2, CUP z format). pairOf[b] holds the two
// characters of byte b (little-endian: high nibble first in memory), and
// pairOK[b] has bit f set when both nibbles are valid in format f.
var (
	nibOf  [256]byte
	pairOf [256]uint16
	pairOK [256]uint8
	nibChr [16]byte
)

func init() {
	for c := '0'; c <= '9'; c++ {
		nibOf[c] = byte(c - '0')
		nibChr[c-'0'] = byte(c)
	}
	nibOf['='] = 0xD
	nibChr[0xD] = '='
	for b := 0; b < 256; b++ {
		hi, lo := b>>4, b&0xF
		pairOf[b] = uint16(nibChr[hi]) | uint16(nibChr[lo])<<8
		if hi <= 9 && lo <= 9 {
			pairOK[b] |= 1<<fmtN | 1<<fmtZ
		} else if (hi <= 9 || hi == 0xD) && (lo <= 9 || lo == 0xD) {
			pairOK[b] |= 1 << fmtZ
		}
	}
}

// lenBCD[n] is n as three BCD digits (0x0ddd), the LL and LLL prefixes
// Pack writes (LL takes the low byte); 1024 entries so that n&1023 needs no
// bounds check. Lengths never exceed 999.
var lenBCD = func() (t [1024]uint16) {
	for n := range 1000 {
		t[n] = uint16(n/100<<8 | n/10%10<<4 | n%10)
	}
	return t
}()

// nibbleOK reports whether nibble x is valid in format f (n or z).
func nibbleOK(f format, x byte) bool { return x <= 9 || f == fmtZ && x == 0xD }

// FieldFormat names field id's format ("n", "z", "an", "ans", "b") and
// whether its length varies (LL/LLL); ok is false for a field the profile
// lacks. Tests outside the package build random valid values from it.
func FieldFormat(id int) (format string, variable, ok bool) {
	if !InProfile(id) {
		return "", false, false
	}
	fs := &profile[id]
	return [...]string{fmtN: "n", fmtZ: "z", fmtAN: "an", fmtANS: "ans", fmtB: "b"}[fs.format], fs.prefix != fixed, true
}

// FieldMax is the maximum length of field id in the profile (digits for n
// and z fields, bytes otherwise), 0 for a field the profile lacks.
func FieldMax(id int) int {
	if !InProfile(id) {
		return 0
	}
	return profile[id].max
}
