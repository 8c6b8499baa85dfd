package storage_test

import (
	"bytes"
	"crypto/des"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/sesim"
	"github.com/posagent/posagent/iso8583/mac"
	"github.com/posagent/posagent/storage"
)

// The unbind wipe with the real parts: the software SE under data_dir/se
// seals the merchant store; after ZeroiseKeys, DestroyDataKey and Wipe no
// byte of the PAN, TID, MID or any key is left anywhere under data_dir.
func TestUnbindWipeWithSoftwareSE(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "posagent")
	_, merchPath, seDir := storage.Paths(dataDir)

	tmk, _ := hex.DecodeString("3F7A1C9E5B2D4086A1E3C57B92D40F68")
	pik, _ := hex.DecodeString("6B1F3DA85C2E7049D6A4B1C38E5F7021")
	mak, _ := hex.DecodeString("4A7C19E3B5D20F86")
	var p16 [16]byte
	var m8 [8]byte
	copy(p16[:], pik)
	copy(m8[:], mak)
	f62, err := mac.WrapWorkingKeys(tmk, p16, m8)
	if err != nil {
		t.Fatal(err)
	}
	pan, tid, mid := []byte("6222021234567890123"), []byte("12345678"), []byte("123456789012345")

	se, err := sesim.Open(seDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := se.InstallTMK(tmk, kcv(t, tmk)); err != nil {
		t.Fatal(err)
	}
	if err := se.InstallWorkingKeys(f62[:]); err != nil {
		t.Fatal(err)
	}
	m, err := storage.OpenMerchant(merchPath, se)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Update(func(tx *storage.MerchantTx) error {
		if err := tx.PutParams(fmt.Appendf(nil, `{"tid":%q,"mid":%q}`, tid, mid)); err != nil {
			return err
		}
		if err := tx.PutBinding(pan); err != nil {
			return err
		}
		for stan := uint32(2); stan <= 5; stan++ {
			if err := tx.PutTxn(1, stan, fmt.Appendf(nil, `{"pan":%q,"tid":%q,"mid":%q}`, pan, tid, mid)); err != nil {
				return err
			}
		}
		return tx.PutCounters(storage.Counters{STAN: 5, Batch: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	needles := map[string][]byte{"PAN": pan, "TID": tid, "MID": mid, "TMK": tmk, "PIK": pik, "MAK": mak}
	if hits := grep(t, dataDir, mak); len(hits) == 0 {
		t.Fatal("test is blind: the MAK is not under data_dir before the wipe")
	}
	for _, name := range []string{"PAN", "TID", "MID"} {
		if hits := grep(t, dataDir, needles[name]); len(hits) > 0 {
			t.Errorf("%s in clear in %v before the wipe", name, hits)
		}
	}

	// Unbind step 4.
	if err := se.ZeroiseKeys(); err != nil {
		t.Fatal(err)
	}
	if err := se.DestroyDataKey(); err != nil {
		t.Fatal(err)
	}
	rep, err := m.Wipe()
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Binding || rep.Txns != 4 || !rep.Params {
		t.Errorf("report %+v", rep)
	}
	for name, needle := range needles {
		if hits := grep(t, dataDir, needle); len(hits) > 0 {
			t.Errorf("%s left in %v", name, hits)
		}
	}
	if se.HasKey(hal.TMK) || se.HasKey(hal.MAK) {
		t.Error("keys still held")
	}
	var left []string
	_ = filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			left = append(left, p)
		}
		return err
	})
	if len(left) != 0 {
		t.Errorf("files left under data_dir: %v", left)
	}
}

func kcv(t *testing.T, k []byte) string {
	b, err := des.NewTripleDESCipher(append(bytes.Clone(k), k[:8]...))
	if err != nil {
		t.Fatal(err)
	}
	var z [8]byte
	b.Encrypt(z[:], z[:])
	return fmt.Sprintf("%X", z[:3])
}

func grep(t *testing.T, dir string, needle []byte) []string {
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
