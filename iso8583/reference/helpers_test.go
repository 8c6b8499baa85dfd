package reference

import (
	"strconv"
	"strings"
	"testing"

	"github.com/posagent/posagent/iso8583"
)

// The semantic-string helpers of package iso8583's tests, for this
// package's (an internal test there cannot import this package: cycle).

// fromFields fills m from semantic strings (hex for 62 and 64).
func fromFields(t testing.TB, m *iso8583.Message, tpdu [5]byte, header [6]byte, mti string, fields map[int]string) {
	t.Helper()
	m.Reset()
	m.TPDU, m.Header = tpdu, header
	v, err := strconv.ParseUint(mti, 16, 16)
	if err != nil {
		t.Fatalf("MTI %q: %v", mti, err)
	}
	m.MTI = uint16(v)
	for id, s := range fields {
		if isBinaryField(id) {
			raw, err := hexDecode(s)
			if err != nil {
				t.Fatalf("field %d: %v", id, err)
			}
			err = m.Set(id, raw)
			if err != nil {
				t.Fatalf("Set(%d): %v", id, err)
			}
			continue
		}
		if err := m.SetString(id, s); err != nil {
			t.Fatalf("SetString(%d, %q): %v", id, s, err)
		}
	}
}

// toFields returns m's fields as semantic strings (upper-case hex for 62, 64).
func toFields(m *iso8583.Message) (string, map[int]string) {
	out := make(map[int]string)
	for id := 2; id <= 64; id++ {
		if !m.Has(id) {
			continue
		}
		if isBinaryField(id) {
			out[id] = strings.ToUpper(hexEncode(m.Get(id)))
		} else {
			out[id] = string(m.Get(id))
		}
	}
	return strconv.FormatUint(uint64(m.MTI)|0x10000, 16)[1:], out
}
