package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func saleRecord(stan uint32) []byte {
	return fmt.Appendf(nil, `{"type":"sale","stan":"%06d","pan":"%s","tid":"%s","mid":"%s","amount":12345}`, stan, testPAN, testTID, testMID)
}

func TestMerchantRoundTrips(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, path, _ := Paths(dir)
	se := newSealer(t)
	s := mustMerchant(t, path, se)

	// Empty store: nothing there, zero counters.
	if _, ok, err := s.Params(); ok || err != nil {
		t.Fatalf("Params on empty store = %v, %v", ok, err)
	}
	if c, err := s.Counters(); err != nil || c != (Counters{}) {
		t.Fatalf("Counters on empty store = %+v, %v", c, err)
	}

	params := fmt.Appendf(nil, `{"tid":"%s","mid":"%s"}`, testTID, testMID)
	steps := []struct {
		name string
		do   func() error
	}{
		{"params", func() error { return s.PutParams(params) }},
		{"binding", func() error { return s.PutBinding(testPAN) }},
		{"counters", func() error { return s.PutCounters(Counters{STAN: 999999, Batch: 7}) }},
		{"reversal", func() error { return s.PutReversal([]byte("0400 image")) }},
		{"txn 7/5", func() error { return s.PutTxn(7, 5, saleRecord(5)) }},
		{"txn 7/2", func() error { return s.PutTxn(7, 2, saleRecord(2)) }},
		{"txn 7/300", func() error { return s.PutTxn(7, 300, saleRecord(300)) }},
		{"txn 6/9", func() error { return s.PutTxn(6, 9, saleRecord(9)) }},
		{"txn 8/1", func() error { return s.PutTxn(8, 1, saleRecord(1)) }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("merchant store mode %v", fi.Mode().Perm())
	}
	s = mustMerchant(t, path, se)
	defer s.Close()

	if v, ok, err := s.Params(); err != nil || !ok || !bytes.Equal(v, params) {
		t.Errorf("Params = %q, %v, %v", v, ok, err)
	}
	if v, ok, err := s.Binding(); err != nil || !ok || !bytes.Equal(v, testPAN) {
		t.Errorf("Binding = %q, %v, %v", v, ok, err)
	}
	if c, err := s.Counters(); err != nil || c != (Counters{STAN: 999999, Batch: 7}) {
		t.Errorf("Counters = %+v, %v", c, err)
	}
	if v, ok, err := s.Reversal(); err != nil || !ok || string(v) != "0400 image" {
		t.Errorf("Reversal = %q, %v, %v", v, ok, err)
	}
	if v, ok, err := s.Txn(7, 300); err != nil || !ok || !bytes.Equal(v, saleRecord(300)) {
		t.Errorf("Txn(7,300) = %q, %v, %v", v, ok, err)
	}
	if _, ok, _ := s.Txn(7, 3); ok {
		t.Error("Txn(7,3) found")
	}
	txns, err := s.Txns(7)
	if err != nil {
		t.Fatal(err)
	}
	var stans []uint32
	for _, e := range txns {
		if e.Batch != 7 || !bytes.Equal(e.Rec, saleRecord(e.STAN)) {
			t.Errorf("entry %+v", e)
		}
		stans = append(stans, e.STAN)
	}
	if fmt.Sprint(stans) != "[2 5 300]" {
		t.Errorf("Txns(7) STANs = %v, want [2 5 300] (STAN order, not byte-string order)", stans)
	}
	var batches []uint32
	if err := s.View(func(tx *MerchantTx) error { batches, err = tx.Batches(); return err }); err != nil || fmt.Sprint(batches) != "[6 7 8]" {
		t.Errorf("Batches = %v, %v", batches, err)
	}
	if n, err := s.DeleteBatch(7); err != nil || n != 3 {
		t.Errorf("DeleteBatch(7) = %d, %v", n, err)
	}
	if txns, _ := s.Txns(7); len(txns) != 0 {
		t.Errorf("batch 7 still has %d txns", len(txns))
	}
	for _, b := range []uint32{6, 8} {
		if txns, _ := s.Txns(b); len(txns) != 1 {
			t.Errorf("DeleteBatch(7) touched batch %d: %d txns left", b, len(txns))
		}
	}
	if err := s.DeleteBinding(); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearReversal(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Binding(); ok {
		t.Error("binding survived DeleteBinding")
	}
	if _, ok, _ := s.Reversal(); ok {
		t.Error("reversal survived ClearReversal")
	}
}

func TestMerchantUpdateIsAtomic(t *testing.T) {
	s := mustMerchant(t, filepath.Join(t.TempDir(), "merchant.db"), newSealer(t))
	defer s.Close()
	// Write-ahead: request journaled with its reversal image.
	err := s.Update(func(tx *MerchantTx) error {
		if err := tx.PutCounters(Counters{STAN: 2, Batch: 1}); err != nil {
			return err
		}
		if err := tx.PutTxn(1, 2, []byte("sale pending")); err != nil {
			return err
		}
		return tx.PutReversal([]byte("reversal of 2"))
	})
	if err != nil {
		t.Fatal(err)
	}
	// A failing update leaves nothing behind, not even its first write.
	boom := errors.New("boom")
	err = s.Update(func(tx *MerchantTx) error {
		if err := tx.PutTxn(1, 2, []byte("sale approved")); err != nil {
			return err
		}
		if err := tx.ClearReversal(); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if v, _, _ := s.Txn(1, 2); string(v) != "sale pending" {
		t.Errorf("rolled-back update leaked: txn = %q", v)
	}
	if _, ok, _ := s.Reversal(); !ok {
		t.Error("rolled-back update cleared the reversal")
	}
	// Commit the response and clear the reversal in one transaction.
	err = s.Update(func(tx *MerchantTx) error {
		if _, ok, err := tx.Reversal(); err != nil || !ok {
			return fmt.Errorf("reversal not visible in tx: %v %v", ok, err)
		}
		if err := tx.PutTxn(1, 2, []byte("sale approved")); err != nil {
			return err
		}
		return tx.ClearReversal()
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := s.Txn(1, 2); string(v) != "sale approved" {
		t.Errorf("txn = %q", v)
	}
	if _, ok, _ := s.Reversal(); ok {
		t.Error("reversal still pending")
	}
}

// Values are bound to their slot: a sealed value copied under another key
// (by someone with write access to the file but not the SE) is refused.
func TestMerchantSwappedValueRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "merchant.db")
	se := newSealer(t)
	s := mustMerchant(t, path, se)
	if err := s.PutTxn(1, 2, []byte("amount 1")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutTxn(1, 3, []byte("amount 99999")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutReversal([]byte("reversal")); err != nil {
		t.Fatal(err)
	}
	s.Close()

	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		j := tx.Bucket(bktJournal)
		if err := j.Put(txnKey(1, 2), clone(j.Get(txnKey(1, 3)))); err != nil {
			return err
		}
		st := tx.Bucket(bktState)
		return st.Put(keyBinding, clone(st.Get(keyReversal)))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = mustMerchant(t, path, se)
	defer s.Close()
	if _, _, err := s.Txn(1, 2); err == nil || !strings.Contains(err.Error(), "journal/000001/000002") {
		t.Errorf("swapped journal record: err = %v, want an unseal error naming journal/000001/000002", err)
	}
	if _, _, err := s.Binding(); err == nil {
		t.Error("reversal image accepted as binding")
	}
	if v, _, err := s.Txn(1, 3); err != nil || string(v) != "amount 99999" {
		t.Errorf("untouched record: %q, %v", v, err)
	}
}

// Sensitive values never reach the file in clear, even while the store is
// open and before any wipe.
func TestMerchantFileHoldsNoClearValues(t *testing.T) {
	dir := t.TempDir()
	_, path, _ := Paths(dir)
	s := mustMerchant(t, path, newSealer(t))
	defer s.Close()
	if err := s.PutParams(fmt.Appendf(nil, `{"tid":"%s","mid":"%s","tmk":"%X"}`, testTID, testMID, testTMK)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBinding(testPAN); err != nil {
		t.Fatal(err)
	}
	for stan := uint32(1); stan <= 50; stan++ {
		if err := s.PutTxn(1, stan, saleRecord(stan)); err != nil {
			t.Fatal(err)
		}
	}
	for name, needle := range map[string][]byte{"PAN": testPAN, "TID": testTID, "MID": testMID, "TMK hex": fmt.Appendf(nil, "%X", testTMK), "sale": []byte(`"type":"sale"`)} {
		if hits := grepDir(t, dir, needle); len(hits) > 0 {
			t.Errorf("%s readable in %v while the store is open", name, hits)
		}
	}
}

func TestOpenMerchantNeedsSealer(t *testing.T) {
	if _, err := OpenMerchant(filepath.Join(t.TempDir(), "m.db"), nil); err == nil {
		t.Fatal("nil sealer accepted")
	}
}

// BenchmarkCommitTxn measures one write-ahead commit (journal record and
// counters, sealed, fsynced): the latency a sale pays before its request
// leaves.
func BenchmarkCommitTxn(b *testing.B) {
	s := mustMerchant(b, filepath.Join(b.TempDir(), "merchant.db"), newSealer(b))
	defer s.Close()
	rec := saleRecord(1)
	stan := uint32(0)
	for b.Loop() {
		stan++
		err := s.Update(func(tx *MerchantTx) error {
			if err := tx.PutTxn(1, stan, rec); err != nil {
				return err
			}
			return tx.PutCounters(Counters{STAN: stan, Batch: 1})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
