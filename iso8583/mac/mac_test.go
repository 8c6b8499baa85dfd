package mac

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdataDir finds the golden frames: $POSAGENT_TESTDATA, the iso8583
// package's copy, or the shared contract directory next to the checkout.
func testdataDir(t testing.TB) string {
	t.Helper()
	cands := []string{os.Getenv("POSAGENT_TESTDATA"), "../testdata/golden", "../../../shared/testdata"}
	for _, d := range cands {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "mac-cnblogs.json")); err == nil {
			return d
		}
	}
	t.Fatalf("golden testdata not found in %v (set POSAGENT_TESTDATA)", cands)
	return ""
}

type golden struct {
	Name string `json:"name"`
	Keys struct {
		TMK string `json:"tmk"`
		PIK string `json:"pik"`
		MAK string `json:"mak"`
	} `json:"keys"`
	MAK         string            `json:"mak"` // mac-cnblogs.json only
	Fields      map[string]string `json:"fields"`
	FrameHex    string            `json:"frame_hex"`
	MACBlockHex string            `json:"mac_block_hex"`
	MACASCII    string            `json:"mac_ascii"`
}

func loadGolden(t testing.TB) []golden {
	t.Helper()
	dir := testdataDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in %s: %v", dir, err)
	}
	var out []golden
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var g golden
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, g)
	}
	return out
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func TestCUPECBGolden(t *testing.T) {
	n := 0
	for _, g := range loadGolden(t) {
		if g.MACASCII == "" {
			continue
		}
		n++
		t.Run(g.Name, func(t *testing.T) {
			makHex := g.Keys.MAK
			if g.MAK != "" {
				makHex = g.MAK
			}
			mak := mustHex(t, makHex)
			block := mustHex(t, g.MACBlockHex)
			got, err := CUPECB(mak, block)
			if err != nil {
				t.Fatal(err)
			}
			if string(got[:]) != g.MACASCII {
				t.Fatalf("MAC = %s, want %s", got[:], g.MACASCII)
			}
			// The block is frame[13:len-8] and the frame ends with the MAC.
			frame := mustHex(t, g.FrameHex)
			if !bytes.Equal(frame[13:len(frame)-8], block) {
				t.Errorf("mac_block_hex is not frame[13:len-8]")
			}
			if string(frame[len(frame)-8:]) != g.MACASCII {
				t.Errorf("frame ends with %q, want %q", frame[len(frame)-8:], g.MACASCII)
			}
			m, err := NewMACer(mak)
			if err != nil {
				t.Fatal(err)
			}
			if !m.Verify(block, []byte(g.MACASCII)) {
				t.Errorf("Verify rejected the golden MAC")
			}
			bad := bytes.Clone(block)
			bad[len(bad)-1] ^= 1
			if m.Verify(bad, []byte(g.MACASCII)) {
				t.Errorf("Verify accepted a MAC over a changed block")
			}
			if m.Verify(block, []byte(strings.ToLower(g.MACASCII))) && strings.ToLower(g.MACASCII) != g.MACASCII {
				t.Errorf("Verify accepted lower-case hex")
			}
		})
	}
	// mac-cnblogs plus the 7 MACed messages of the story.
	if n < 8 {
		t.Fatalf("only %d golden files with a MAC", n)
	}
}

func TestCUPECBCnblogs(t *testing.T) {
	// The captured frame of mac-cnblogs.json, spelled out: B3A092AE.
	mak := mustHex(t, "0723C80DB5F4CD3D")
	block := mustHex(t, "02003020048000C08015000000000000001234000002030099303030303030303139353237313831383232313738373531353600192600000100060000000000435F01123238343431323334353637383930313233345F03063136303033365F04063230303832365C023031")
	got, err := CUPECB(mak, block)
	if err != nil {
		t.Fatal(err)
	}
	if string(got[:]) != "B3A092AE" {
		t.Fatalf("got %s, want B3A092AE", got[:])
	}
}

func TestCUPECBBadKey(t *testing.T) {
	for _, n := range []int{0, 7, 16, 24} {
		if _, err := CUPECB(make([]byte, n), []byte{1}); err == nil {
			t.Errorf("MAK of %d bytes accepted", n)
		}
	}
}

func TestMACerEdgeBlocks(t *testing.T) {
	m, err := NewMACer(mustHex(t, "4A7C19E3B5D20F86"))
	if err != nil {
		t.Fatal(err)
	}
	// Padding with zeros: a block and the same block with trailing zeros up to
	// the next multiple of 8 have the same MAC.
	tests := []struct{ a, b string }{
		{"", "0000000000000000"},
		{"01", "0100000000000000"},
		{"0102030405060708090A", "0102030405060708090A000000000000"},
	}
	for _, tc := range tests {
		a, b := m.Sum(mustHex(t, tc.a)), m.Sum(mustHex(t, tc.b))
		if a != b {
			t.Errorf("%s: %s != %s", tc.a, a[:], b[:])
		}
		for _, c := range a {
			if !strings.ContainsRune(hexUpper, rune(c)) {
				t.Errorf("non upper-hex char %q in %s", c, a[:])
			}
		}
	}
}

func TestKCV(t *testing.T) {
	tests := []struct {
		key, want string
	}{
		// Classic test vectors: the all-0123456789ABCDEF single DES key and
		// a double-length key whose halves are equal behave like single DES.
		{"0123456789ABCDEF", "D5D44FF7"},
		{"0123456789ABCDEF0123456789ABCDEF", "D5D44FF7"},
		{"", "00000000"},
	}
	for _, tc := range tests {
		got := KCV(mustHex(t, tc.key))
		if h := strings.ToUpper(hex.EncodeToString(got[:])); h != tc.want {
			t.Errorf("KCV(%s) = %s, want %s", tc.key, h, tc.want)
		}
	}
}

func TestTMKKCV(t *testing.T) {
	tmk := mustHex(t, "3F7A1C9E5B2D4086A1E3C57B92D40F68")
	k := KCV(tmk)
	want := strings.ToUpper(hex.EncodeToString(k[:3]))
	got := TMKKCV(tmk)
	if got != want || len(got) != 6 {
		t.Fatalf("TMKKCV = %q, want %q", got, want)
	}
	if TMKKCV(tmk[:8]) != "" {
		t.Errorf("single-length TMK accepted")
	}
}

func TestUnwrapWorkingKeysGolden(t *testing.T) {
	var g golden
	for _, x := range loadGolden(t) {
		if x.Name == "signin-response" {
			g = x
		}
	}
	if g.Name == "" {
		t.Fatal("signin-response.json not found")
	}
	tmk := mustHex(t, g.Keys.TMK)
	f62 := mustHex(t, g.Fields["62"])
	pik, mak, err := UnwrapWorkingKeys(tmk, f62)
	if err != nil {
		t.Fatal(err)
	}
	if h := strings.ToUpper(hex.EncodeToString(pik[:])); h != g.Keys.PIK {
		t.Errorf("PIK = %s, want %s", h, g.Keys.PIK)
	}
	if h := strings.ToUpper(hex.EncodeToString(mak[:])); h != g.Keys.MAK {
		t.Errorf("MAK = %s, want %s", h, g.Keys.MAK)
	}
	// Wrap is the exact inverse: it reproduces the golden field 62.
	w, err := WrapWorkingKeys(tmk, pik, mak)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w[:], f62) {
		t.Errorf("WrapWorkingKeys = %X, want %X", w, f62)
	}
}

func TestUnwrapWorkingKeysErrors(t *testing.T) {
	tmk := mustHex(t, "3F7A1C9E5B2D4086A1E3C57B92D40F68")
	good := mustHex(t, "B7FC11A0F16C3E06636697AAD16DE2BC16E9117D3F96276AB258F7A80000000000000000DC15F9E3")
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x01; return b }
	tests := []struct {
		name    string
		tmk     []byte
		f62     []byte
		wantErr error
		substr  string
	}{
		{"pik check", tmk, flip(17), ErrPIKCheck, "PIK"},
		{"pik body", tmk, flip(3), ErrPIKCheck, "PIK"},
		{"mak check", tmk, flip(38), ErrMAKCheck, "MAK"},
		{"mak body", tmk, flip(22), ErrMAKCheck, "MAK"},
		{"wrong tmk", mustHex(t, "00112233445566778899AABBCCDDEEFF"), good, ErrPIKCheck, "PIK"},
		{"short", tmk, good[:39], nil, "40 bytes"},
		{"double mak", tmk, flip(30), nil, "double-length"},
		{"short tmk", tmk[:8], good, nil, "TMK"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pik, mak, err := UnwrapWorkingKeys(tc.tmk, tc.f62)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("err %q does not name %q", err, tc.substr)
			}
			if pik != [16]byte{} || mak != [8]byte{} {
				t.Errorf("keys returned with an error")
			}
		})
	}
}

func TestECBRoundTrip(t *testing.T) {
	data := mustHex(t, "00112233445566778899AABBCCDDEEFF")
	for _, key := range []string{"4A7C19E3B5D20F86", "3F7A1C9E5B2D4086A1E3C57B92D40F68", "3F7A1C9E5B2D4086A1E3C57B92D40F684A7C19E3B5D20F86"} {
		k := mustHex(t, key)
		enc, err := EncryptECB(k, data)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(enc, data) {
			t.Fatalf("%s: encryption is the identity", key)
		}
		dec, err := DecryptECB(k, enc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dec, data) {
			t.Errorf("%s: round trip %X", key, dec)
		}
	}
	if _, err := EncryptECB(mustHex(t, "4A7C19E3B5D20F86"), []byte{1, 2, 3}); err == nil {
		t.Error("non-multiple of 8 accepted")
	}
	if _, err := EncryptECB([]byte{1, 2, 3}, data); err == nil {
		t.Error("3-byte key accepted")
	}
}

func BenchmarkMACerSum(b *testing.B) {
	m, err := NewMACer([]byte{0x4A, 0x7C, 0x19, 0xE3, 0xB5, 0xD2, 0x0F, 0x86})
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, 140) // a sale response's MAC block
	b.ReportAllocs()
	b.SetBytes(int64(len(block)))
	for b.Loop() {
		_ = m.Sum(block)
	}
}
