package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
)

// TestCommitFaultRollsBack: a commit failed through the test seam (what
// the faultinject build does) writes nothing, is reported with ENOSPC,
// and the store goes on: the next commit succeeds.
func TestCommitFaultRollsBack(t *testing.T) {
	s := mustMerchant(t, filepath.Join(t.TempDir(), MerchantFile), newSealer(t))
	defer s.Close()
	if err := s.PutTxn(1, 1, []byte("first")); err != nil {
		t.Fatal(err)
	}
	var points []string
	beforeCommit = func(path, what string) error {
		points = append(points, filepath.Base(path)+"/"+what)
		return fmt.Errorf("write %s: %w", path, syscall.ENOSPC)
	}
	err := s.PutTxn(1, 2, []byte("second"))
	beforeCommit = nil
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("failed commit: %v, want ENOSPC", err)
	}
	if len(points) != 1 || points[0] != "merchant.db/update merchant store" {
		t.Fatalf("write points seen: %q", points)
	}
	if _, ok, err := s.Txn(1, 2); err != nil || ok {
		t.Fatalf("the failed commit's record: present=%v err=%v", ok, err)
	}
	if err := s.PutTxn(1, 3, []byte("third")); err != nil {
		t.Fatalf("commit after the failed one: %v", err)
	}
	if v, ok, err := s.Txn(1, 1); err != nil || !ok || string(v) != "first" {
		t.Fatalf("earlier record: %q %v %v", v, ok, err)
	}
}
