package sesim

import (
	"bytes"
	"crypto/des"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/hal"
)

type golden struct {
	Keys struct {
		TMK string `json:"tmk"`
		PIK string `json:"pik"`
		MAK string `json:"mak"`
	} `json:"keys"`
	Fields      map[string]string `json:"fields"`
	MACBlockHex string            `json:"mac_block_hex"`
	MACASCII    string            `json:"mac_ascii"`
}

// loadGolden reads a golden message: $POSAGENT_TESTDATA, the repository's
// testdata, the acquirer package's copy, or the shared contract directory.
func loadGolden(t *testing.T, name string) golden {
	t.Helper()
	cands := []string{os.Getenv("POSAGENT_TESTDATA"), "../../testdata", "../../iso8583/testdata/golden", "../../../shared/testdata"}
	for _, d := range cands {
		if d == "" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(d, name))
		if err != nil {
			continue
		}
		var g golden
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	t.Fatalf("%s not found in %v (set POSAGENT_TESTDATA)", name, cands)
	return golden{}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tmkKCV computes the provisioning KCV independently of iso8583/mac:
// 3DES (K1 K2 K1) of 8 zero bytes, first 3 bytes, upper-case hex.
func tmkKCV(t *testing.T, tmk []byte) string {
	t.Helper()
	b, err := des.NewTripleDESCipher(append(bytes.Clone(tmk), tmk[:8]...))
	if err != nil {
		t.Fatal(err)
	}
	var z [8]byte
	b.Encrypt(z[:], z[:])
	return fmt.Sprintf("%X", z[:3])
}

type keys struct{ tmk, pik, mak, f62, block []byte }

func storyKeys(t *testing.T) keys {
	signin := loadGolden(t, "signin-response.json")
	sale := loadGolden(t, "sale-request.json")
	return keys{
		tmk: unhex(t, signin.Keys.TMK), pik: unhex(t, signin.Keys.PIK), mak: unhex(t, signin.Keys.MAK),
		f62: unhex(t, signin.Fields["62"]), block: unhex(t, sale.MACBlockHex),
	}
}

func signedIn(t *testing.T, dir string) (*SE, keys) {
	t.Helper()
	k := storyKeys(t)
	se, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := se.InstallTMK(k.tmk, tmkKCV(t, k.tmk)); err != nil {
		t.Fatal(err)
	}
	if err := se.InstallWorkingKeys(k.f62); err != nil {
		t.Fatal(err)
	}
	return se, k
}

func TestMACWithGoldenKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "se")
	se, k := signedIn(t, dir)
	for _, slot := range []hal.KeySlot{hal.TMK, hal.PIK, hal.MAK} {
		if !se.HasKey(slot) {
			t.Errorf("%v not installed", slot)
		}
	}
	m, err := se.MAC(k.block)
	if err != nil {
		t.Fatal(err)
	}
	if string(m[:]) != "BA7662C7" {
		t.Fatalf("MAC = %q, want BA7662C7 (sale-request.json)", m[:])
	}
	// The keys survive a restart.
	se2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m2, err := se2.MAC(k.block); err != nil || m2 != m {
		t.Fatalf("MAC after reopen = %q, %v", m2[:], err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, KeysFile): 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", p, fi.Mode().Perm(), err, want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("SE dir holds %d files, want only %s (temp file left?)", len(ents), KeysFile)
	}
}

func TestInstallTMKRefusals(t *testing.T) {
	k := storyKeys(t)
	good := tmkKCV(t, k.tmk)
	for _, tc := range []struct {
		name string
		tmk  []byte
		kcv  string
		ok   bool
	}{
		{"right", k.tmk, good, true},
		{"right, lower case", k.tmk, strings.ToLower(good), true},
		{"wrong kcv", k.tmk, "000000", false},
		{"kcv of another key", k.pik, good, false},
		{"4-byte kcv", k.tmk, good + "00", false},
		{"empty kcv", k.tmk, "", false},
		{"single-length tmk", k.mak, tmkKCV(t, append(bytes.Clone(k.mak), k.mak...)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			se, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			err = se.InstallTMK(tc.tmk, tc.kcv)
			if (err == nil) != tc.ok {
				t.Fatalf("InstallTMK = %v, want ok=%v", err, tc.ok)
			}
			if se.HasKey(hal.TMK) != tc.ok {
				t.Fatalf("HasKey(TMK) = %v after %v", se.HasKey(hal.TMK), err)
			}
			if !tc.ok {
				if !errors.Is(err, ErrBadKCV) && len(tc.tmk) == 16 {
					t.Errorf("err = %v, want ErrBadKCV", err)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Errorf("refused install wrote %d files", len(ents))
				}
			}
		})
	}
}

// A refused TMK keeps the installed keys; a new TMK drops the working keys.
func TestInstallTMKKeepsOrDropsKeys(t *testing.T) {
	se, k := signedIn(t, t.TempDir())
	if err := se.InstallTMK(k.pik, tmkKCV(t, k.tmk)); err == nil {
		t.Fatal("TMK with the wrong KCV installed")
	}
	if m, err := se.MAC(k.block); err != nil || string(m[:]) != "BA7662C7" {
		t.Fatalf("refused TMK disturbed the MAK: %q %v", m[:], err)
	}
	if err := se.InstallTMK(k.pik, tmkKCV(t, k.pik)); err != nil {
		t.Fatal(err)
	}
	if se.HasKey(hal.PIK) || se.HasKey(hal.MAK) {
		t.Fatal("working keys of the old TMK kept")
	}
}

func TestInstallWorkingKeysRefusals(t *testing.T) {
	k := storyKeys(t)
	flip := func(i int) []byte { f := bytes.Clone(k.f62); f[i] ^= 0x01; return f }
	for _, tc := range []struct {
		name string
		f62  []byte
	}{
		{"PIK check", flip(17)},
		{"MAK check", flip(38)},
		{"PIK bytes", flip(3)},
		{"MAK bytes", flip(21)},
		{"short", k.f62[:39]},
		{"double-length MAK", flip(30)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			se, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := se.InstallTMK(k.tmk, tmkKCV(t, k.tmk)); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(filepath.Join(dir, KeysFile))
			if err := se.InstallWorkingKeys(tc.f62); err == nil {
				t.Fatal("bad field 62 installed")
			}
			if se.HasKey(hal.PIK) || se.HasKey(hal.MAK) {
				t.Fatal("a key was installed from a bad field 62")
			}
			if after, _ := os.ReadFile(filepath.Join(dir, KeysFile)); !bytes.Equal(before, after) {
				t.Fatal("key file changed")
			}
			if _, err := se.MAC(k.block); !errors.Is(err, ErrNoKey) {
				t.Fatalf("MAC without MAK = %v", err)
			}
		})
	}
	se, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := se.InstallWorkingKeys(k.f62); !errors.Is(err, ErrNoKey) {
		t.Fatalf("InstallWorkingKeys without TMK = %v", err)
	}
}

// grepDir lists the files under dir whose raw bytes contain needle.
func grepDir(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, needle) {
			hits = append(hits, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func TestZeroiseLeavesNoKeyBytes(t *testing.T) {
	dir := t.TempDir()
	se, k := signedIn(t, dir)
	if hits := grepDir(t, dir, k.mak); len(hits) == 0 {
		t.Fatal("test is blind: the MAK is not in the key file before zeroise")
	}
	if err := se.ZeroiseKeys(); err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string][]byte{"TMK": k.tmk, "PIK": k.pik, "MAK": k.mak} {
		if hits := grepDir(t, dir, key); len(hits) > 0 {
			t.Errorf("%s bytes remain in %v", name, hits)
		}
		if hits := grepDir(t, dir, []byte(hex.EncodeToString(key))); len(hits) > 0 {
			t.Errorf("%s hex remains in %v", name, hits)
		}
	}
	for _, slot := range []hal.KeySlot{hal.TMK, hal.PIK, hal.MAK} {
		if se.HasKey(slot) {
			t.Errorf("%v still held", slot)
		}
	}
	if _, err := se.MAC(k.block); !errors.Is(err, ErrNoKey) {
		t.Errorf("MAC after zeroise = %v", err)
	}
	se2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if se2.HasKey(hal.TMK) || se2.HasKey(hal.MAK) {
		t.Error("keys back after reopen")
	}
	if err := se2.ZeroiseKeys(); err != nil {
		t.Errorf("second zeroise = %v", err)
	}
}

// Replacing the keys (a new sign-in) scrubs the replaced version through a
// handle kept across the rename: a reader still holding the old file sees
// zeros, not the old MAK.
func TestReplacedKeyFileIsScrubbed(t *testing.T) {
	dir := t.TempDir()
	se, k := signedIn(t, dir)
	old, err := os.Open(filepath.Join(dir, KeysFile))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := se.InstallTMK(k.tmk, tmkKCV(t, k.tmk)); err != nil {
		t.Fatal(err)
	}
	fi, _ := old.Stat()
	buf := make([]byte, fi.Size())
	if _, err := old.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf, k.mak) || len(bytes.Trim(buf, "\x00")) != 0 {
		t.Fatalf("replaced key file not zeroed: %x", buf)
	}
}

func TestSealOpen(t *testing.T) {
	dir := t.TempDir()
	se, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := se.Open(make([]byte, 40), nil); !errors.Is(err, ErrNoDataKey) {
		t.Fatalf("Open before any key = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, DataKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("Open created a data key")
	}
	pan := []byte("6222021234567890123")
	ad := []byte("state\x00binding")
	sealed, err := se.Seal(pan, ad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, pan) {
		t.Fatal("sealed value holds the plaintext")
	}
	again, _ := se.Seal(pan, ad)
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals are equal: nonce reused")
	}
	for _, tc := range []struct {
		name   string
		sealed []byte
		ad     []byte
		ok     bool
	}{
		{"round trip", sealed, ad, true},
		{"other additional data", sealed, []byte("state\x00reversal"), false},
		{"flipped byte", func() []byte { b := bytes.Clone(sealed); b[20] ^= 1; return b }(), ad, false},
		{"truncated", sealed[:20], ad, false},
		{"empty", nil, ad, false},
	} {
		p, err := se.Open(tc.sealed, tc.ad)
		if tc.ok != (err == nil) || (tc.ok && !bytes.Equal(p, pan)) {
			t.Errorf("%s: Open = %q, %v", tc.name, p, err)
		}
	}
	// The data key persists.
	se2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := se2.Open(sealed, ad); err != nil || !bytes.Equal(p, pan) {
		t.Fatalf("Open after restart = %q, %v", p, err)
	}
	key := bytes.Clone(se2.dataKey)
	if err := se2.DestroyDataKey(); err != nil {
		t.Fatal(err)
	}
	if _, err := se2.Open(sealed, ad); err == nil {
		t.Fatal("Open works after DestroyDataKey")
	}
	if hits := grepDir(t, dir, key); len(hits) > 0 {
		t.Fatalf("data key bytes remain in %v", hits)
	}
	se3, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := se3.Open(sealed, ad); !errors.Is(err, ErrNoDataKey) {
		t.Fatalf("Open after destroy and restart = %v", err)
	}
	// A new data key is created on the next Seal; the old values stay dead.
	if _, err := se3.Seal([]byte("new"), ad); err != nil {
		t.Fatal(err)
	}
	if _, err := se3.Open(sealed, ad); err == nil {
		t.Fatal("old value opens under the new data key")
	}
}

func TestCorruptFilesAreErrors(t *testing.T) {
	for _, name := range []string{KeysFile, DataKeyFile} {
		for _, tc := range []struct {
			what string
			mod  func([]byte) []byte
		}{
			{"flipped", func(b []byte) []byte { b[6] ^= 1; return b }},
			{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
			{"garbage", func([]byte) []byte { return []byte("not a key file at all, not at all, no") }},
		} {
			dir := t.TempDir()
			se, _ := signedIn(t, dir)
			if _, err := se.Seal([]byte("x"), nil); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, name)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, tc.mod(b), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = Open(dir)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), dir) {
				t.Errorf("%s %s: Open = %v; want ErrCorrupt naming the directory", name, tc.what, err)
			}
		}
	}
}

// A temp file left by a write a power cut interrupted is scrubbed at open.
func TestLeftoverTempFileScrubbed(t *testing.T) {
	dir := t.TempDir()
	k := storyKeys(t)
	if err := os.WriteFile(filepath.Join(dir, KeysFile+tmpSuffix), k.tmk, 0o600); err != nil {
		t.Fatal(err)
	}
	se, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if se.HasKey(hal.TMK) {
		t.Fatal("an unfinished install was taken as installed")
	}
	if hits := grepDir(t, dir, k.tmk); len(hits) > 0 {
		t.Fatalf("TMK bytes remain in %v", hits)
	}
}
