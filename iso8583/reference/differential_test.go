package reference

import (
	"bytes"
	"github.com/posagent/posagent/iso8583"
	"math/rand/v2"
	"testing"
)

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
	format, variable, _ := iso8583.FieldFormat(id)
	n := iso8583.FieldMax(id)
	if variable {
		n = r.IntN(n + 1)
	}
	b := make([]byte, n)
	switch format {
	case "n":
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
	case "z":
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		if n > 0 && r.IntN(4) != 0 {
			b[r.IntN(n)] = '='
		}
	case "an":
		for i := range b {
			b[i] = alnumSpace[r.IntN(len(alnumSpace))]
		}
	case "ans":
		for i := range b {
			b[i] = byte(0x20 + r.IntN(0x7f-0x20))
		}
	case "b":
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
			if iso8583.InProfile(id) && r.IntN(2) == 0 {
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
func TestDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(8583, 2048))
	var m, d iso8583.Message
	buf := make([]byte, iso8583.MaxFrameSize)
	const perType = 250
	for ti, mt := range messageTypes {
		for i := 0; i < perType; i++ {
			tpdu, header, mti, fields := randomMessage(r, ti)
			ref, err := Pack(tpdu, header, mti, fields)
			if err != nil {
				t.Fatalf("%s #%d: Pack: %v\nfields %v", mt.name, i, err, fields)
			}
			fromFields(t, &m, tpdu, header, mti, fields)
			n, err := m.Pack(buf)
			if err != nil {
				t.Fatalf("%s #%d: Pack: %v", mt.name, i, err)
			}
			if !bytes.Equal(buf[:n], ref) {
				t.Fatalf("%s #%d: codecs disagree\nfast %X\nmoov %X\nfields %v", mt.name, i, buf[:n], ref, fields)
			}
			if err := d.Unpack(ref); err != nil {
				t.Fatalf("%s #%d: Unpack: %v", mt.name, i, err)
			}
			rt, rh, rmti, rfields, err := Unpack(ref)
			if err != nil {
				t.Fatalf("%s #%d: Unpack: %v", mt.name, i, err)
			}
			fmti, ffields := toFields(&d)
			if rt != d.TPDU || rh != d.Header || rmti != fmti || rmti != mti {
				t.Fatalf("%s #%d: frame head differs: moov %X %X %s fast %X %X %s", mt.name, i, rt, rh, rmti, d.TPDU, d.Header, fmti)
			}
			assertFields(t, ffields, rfields)
			assertFields(t, ffields, fields)
		}
	}
}
