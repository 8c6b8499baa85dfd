package storage

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testPageSize = 4096 // bbolt's default page size on linux/amd64 and arm

// bigStore writes a merchant store of a few hundred KiB, so that truncating
// it cuts through live pages.
func bigStore(t *testing.T, path string, se Sealer) {
	t.Helper()
	s := mustMerchant(t, path, se)
	defer s.Close()
	rec := bytes.Repeat([]byte("x"), 400)
	err := s.Update(func(tx *MerchantTx) error {
		for stan := uint32(1); stan <= 400; stan++ {
			if err := tx.PutTxn(1, stan, rec); err != nil {
				return err
			}
		}
		return tx.PutCounters(Counters{STAN: 400, Batch: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCorruptedStoreIsAnErrorNotAPanic(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, path string)
	}{
		{"truncated to half", func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated to the meta pages", func(t *testing.T, path string) {
			if err := os.Truncate(path, 2*testPageSize); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated inside the meta pages", func(t *testing.T, path string) {
			if err := os.Truncate(path, 100); err != nil {
				t.Fatal(err)
			}
		}},
		{"both meta pages garbage", func(t *testing.T, path string) {
			overwrite(t, path, 0, randomBytes(t, 2*testPageSize))
		}},
		{"data pages garbage", func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			overwrite(t, path, 2*testPageSize, randomBytes(t, int(fi.Size())-2*testPageSize))
		}},
		{"random garbage file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, randomBytes(t, 64<<10), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"text file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("tid=12345678\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "merchant.db")
			bigStore(t, path, newSealer(t))
			tc.corrupt(t, path)
			s, err := OpenMerchant(path, newSealer(t))
			if err == nil {
				s.Close()
				t.Fatal("corrupted store opened")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "open merchant store "+path) {
				t.Fatalf("err = %v; want ErrCorrupt naming the path", err)
			}
			t.Log(err)
			// The same for the identity store.
			if _, err := OpenIdentity(path); err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("OpenIdentity(corrupt) = %v", err)
			}
			// The failed opens released the file lock: the wipe can proceed.
			if rep, err := Wipe(path); err != nil || !rep.Existed {
				t.Fatalf("Wipe after failed open = %+v, %v", rep, err)
			}
		})
	}
}

// bbolt keeps two meta pages and falls back to the older one when the
// newer is torn (a power cut in the middle of the meta write).
func TestOneTornMetaPageStillOpens(t *testing.T) {
	for _, page := range []int64{0, 1} {
		path := filepath.Join(t.TempDir(), "merchant.db")
		se := newSealer(t)
		bigStore(t, path, se)
		overwrite(t, path, page*testPageSize+16, randomBytes(t, 64))
		s, err := OpenMerchant(path, se)
		if err != nil {
			t.Fatalf("meta page %d torn: %v", page, err)
		}
		if _, err := s.Txns(1); err != nil {
			t.Errorf("meta page %d torn: Txns: %v", page, err)
		}
		s.Close()
	}
}

// A file cut short under an open store (a failing SD card, an operator's
// truncate) faults inside bbolt's mmap: the read returns an error.
func TestReadFaultOnOpenStoreIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "merchant.db")
	bigStore(t, path, newSealer(t))
	s := mustMerchant(t, path, newSealer(t))
	defer s.Close()
	if err := os.Truncate(path, 2*testPageSize); err != nil {
		t.Fatal(err)
	}
	_, err := s.Txns(1)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Txns on a truncated open store = %v; want ErrCorrupt", err)
	}
}

func overwrite(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
