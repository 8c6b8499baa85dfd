package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWipeLeavesNothingReadable(t *testing.T) {
	dir := t.TempDir()
	_, path, _ := Paths(dir)
	se := newSealer(t)
	s := mustMerchant(t, path, se)
	err := s.Update(func(tx *MerchantTx) error {
		if err := tx.PutParams(fmt.Appendf(nil, `{"tid":"%s","mid":"%s"}`, testTID, testMID)); err != nil {
			return err
		}
		if err := tx.PutBinding(testPAN); err != nil {
			return err
		}
		if err := tx.PutReversal(testPAN); err != nil {
			return err
		}
		if err := tx.PutCounters(Counters{STAN: 12, Batch: 2}); err != nil {
			return err
		}
		for stan := uint32(1); stan <= 6; stan++ {
			if err := tx.PutTxn(1, stan, saleRecord(stan)); err != nil {
				return err
			}
		}
		for stan := uint32(7); stan <= 11; stan++ {
			if err := tx.PutTxn(2, stan, saleRecord(stan)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	size := func() int64 { fi, _ := os.Stat(path); return fi.Size() }()

	se.destroy() // the caller destroys the SE's data key first
	rep, err := s.Wipe()
	if err != nil {
		t.Fatal(err)
	}
	// Bytes counts the data overwritten: the file's holes hold none.
	if rep.Bytes <= 0 || rep.Bytes > size {
		t.Errorf("bytes zeroed %d, want some of the file's %d", rep.Bytes, size)
	}
	want := WipeReport{Existed: true, Counted: true, Txns: 11, Batches: 2, Params: true, Binding: true, Reversal: true, Bytes: rep.Bytes}
	if rep != want {
		t.Errorf("report = %+v\nwant     %+v", rep, want)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("merchant store still there: %v", err)
	}
	for name, needle := range map[string][]byte{"PAN": testPAN, "TID": testTID, "MID": testMID, "TMK": testTMK} {
		if hits := grepDir(t, dir, needle); len(hits) > 0 {
			t.Errorf("%s readable after wipe in %v", name, hits)
		}
	}
	// Idempotent: an unbind resumed after a power cut wipes again.
	if rep, err := Wipe(path); err != nil || rep.Existed {
		t.Fatalf("second wipe = %+v, %v", rep, err)
	}
	// After the wipe the store opens empty (unactivated terminal).
	s = mustMerchant(t, path, newSealer(t))
	defer s.Close()
	if _, ok, _ := s.Binding(); ok {
		t.Error("binding back after wipe")
	}
}

// Wipe zeroes the file before unlinking it: a process that still holds the
// old inode open (a backup tool, a forgotten handle) reads zeros only.
func TestWipeZeroesBeforeUnlink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "merchant.db")
	s := mustMerchant(t, path, newSealer(t))
	if err := s.PutBinding(testPAN); err != nil {
		t.Fatal(err)
	}
	s.Close()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Wipe(path); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	buf := make([]byte, fi.Size())
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	for i, b := range buf {
		if b != 0 {
			t.Fatalf("byte %d of the unlinked file is %#x, want 0", i, b)
		}
	}
	if len(buf) == 0 {
		t.Fatal("file was truncated, not overwritten")
	}
}

func TestWipeCorruptFileStillWiped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "merchant.db")
	if err := os.WriteFile(path, append([]byte("garbage "), testPAN...), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := Wipe(path)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Existed || rep.Counted {
		t.Errorf("report = %+v; want existed, not counted", rep)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("corrupt store not removed")
	}
}

func TestWipeRefusesLockedStore(t *testing.T) {
	old := lockTimeout
	lockTimeout = 100 * time.Millisecond
	defer func() { lockTimeout = old }()
	path := filepath.Join(t.TempDir(), "merchant.db")
	s := mustMerchant(t, path, newSealer(t))
	defer s.Close()
	if err := s.PutBinding(testPAN); err != nil {
		t.Fatal(err)
	}
	_, err := Wipe(path)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Wipe(open store) = %v; want ErrLocked", err)
	}
	if v, ok, err := s.Binding(); err != nil || !ok || string(v) != string(testPAN) {
		t.Fatalf("live store damaged by refused wipe: %q %v %v", v, ok, err)
	}
}

// TestWipeOnFullDisk: a merchant store (sparse, as bbolt grows its file)
// is wiped on a full tmpfs: only its data is overwritten, which needs no
// free space, and removing it gives the space back.
func TestWipeOnFullDisk(t *testing.T) {
	dir := smallTmpfs(t, "1m")
	path := filepath.Join(dir, MerchantFile)
	s := mustMerchant(t, path, newSealer(t))
	for stan := uint32(1); stan <= 20; stan++ {
		if err := s.PutTxn(1, stan, saleRecord(stan)); err != nil {
			t.Fatal(err)
		}
	}
	fillDisk(t, dir)
	rep, err := s.Wipe()
	if err != nil {
		t.Fatalf("wipe on a full disk: %v", err)
	}
	if rep.Txns != 20 || rep.Bytes == 0 {
		t.Errorf("report %+v", rep)
	}
	if hits := grepDir(t, dir, testPAN); len(hits) > 0 {
		t.Errorf("PAN readable after the wipe in %v", hits)
	}
	// The space the store held is free again: a fresh store opens.
	s = mustMerchant(t, path, newSealer(t))
	s.Close()
}
