package iso8583

import "math/rand/v2"

// messageTypes lists every message of acquirer.md with its field set
// (requests and responses, optional fields included).
var messageTypes = []struct {
	name   string
	mti    string
	fields []int
}{
	{"signin-request", "0800", []int{11, 41, 42, 60, 63}},
	{"signin-response", "0810", []int{11, 12, 13, 37, 39, 41, 42, 60, 62}},
	{"sale-request", "0200", []int{2, 3, 4, 11, 14, 22, 25, 35, 41, 42, 49, 60, 63, 64}},
	{"sale-response", "0210", []int{2, 3, 4, 11, 12, 13, 14, 25, 32, 37, 38, 39, 41, 42, 44, 49, 60, 63, 64}},
	{"void-request", "0200", []int{2, 3, 4, 11, 14, 22, 25, 37, 38, 41, 42, 49, 60, 61, 63, 64}},
	{"reversal-request", "0400", []int{2, 3, 4, 11, 14, 22, 25, 38, 39, 41, 42, 49, 60, 61, 64}},
	{"reversal-response", "0410", []int{11, 37, 39, 41, 42, 60, 64}},
	{"settlement-request", "0500", []int{11, 41, 42, 48, 49, 60, 63}},
	{"settlement-response", "0510", []int{11, 12, 13, 15, 37, 39, 41, 42, 48, 60}},
	{"batch-upload-request", "0320", []int{11, 41, 42, 48, 60}},
	{"batch-upload-response", "0330", []int{11, 12, 13, 39, 41, 42, 48, 60}},
	{"any-profile-fields", "0000", nil}, // random subset of every profile field
}

const alnumSpace = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz "

// randomValue returns a valid semantic value of field id (hex for b).
func randomValue(r *rand.Rand, id int) string {
	fs := profile[id]
	n := fs.max
	if fs.prefix != fixed {
		n = r.IntN(fs.max + 1)
	}
	b := make([]byte, n)
	switch fs.format {
	case fmtN:
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
	case fmtZ:
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		if n > 0 && r.IntN(4) != 0 {
			b[r.IntN(n)] = '='
		}
	case fmtAN:
		for i := range b {
			b[i] = alnumSpace[r.IntN(len(alnumSpace))]
		}
	case fmtANS:
		for i := range b {
			b[i] = byte(0x20 + r.IntN(0x7f-0x20))
		}
	case fmtB:
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		return hexEncodeUpper(b)
	}
	return string(b)
}

func hexEncodeUpper(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&0xF]
	}
	return string(out)
}

func randomMessage(r *rand.Rand, ti int) (tpdu [5]byte, header [6]byte, mti string, fields map[int]string) {
	mt := messageTypes[ti]
	for i := range tpdu {
		tpdu[i] = byte(r.UintN(256))
	}
	for i := range header {
		header[i] = byte(r.UintN(256))
	}
	mti = mt.mti
	fields = make(map[int]string)
	if mt.fields == nil {
		mti = string([]byte{byte('0' + r.IntN(10)), byte('0' + r.IntN(10)), byte('0' + r.IntN(10)), byte('0' + r.IntN(10))})
		for id := 2; id <= 64; id++ {
			if InProfile(id) && r.IntN(2) == 0 {
				fields[id] = randomValue(r, id)
			}
		}
		return
	}
	for _, id := range mt.fields {
		fields[id] = randomValue(r, id)
	}
	return
}

// TestDifferential packs and unpacks a few thousand random messages of every
// type with both codecs: same bytes, same values (DESIGN.md: "one codec
// truth").
