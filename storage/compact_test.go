package storage

import (
	"bytes"
	"os"
	"testing"
)

// After a record is deleted its bytes may stay in a freed page; compaction
// leaves only the live records in the file.
func TestCompactIdentityDropsFreedPages(t *testing.T) {
	s, path := openTestIdentity(t)
	if _, err := s.Enqueue("pos/v1/PA-0001/ack", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("TID-87654321-MID-876543210987654 "), 40)
	if err := s.Put("inbox", secret); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("inbox", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if !bytes.Contains(raw, []byte("TID-87654321")) {
		t.Fatal("control: the deleted value is not in the file before compaction (the test proves nothing)")
	}
	if err := CompactIdentity(path); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(path)
	if bytes.Contains(raw, []byte("TID-87654321")) {
		t.Error("deleted value still in the compacted file")
	}
	s2, err := OpenIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Identity(); err != nil {
		t.Fatal(err)
	}
	if items, _ := s2.Outbox(); len(items) != 1 || string(items[0].Payload) != "kept" {
		t.Errorf("outbox after compaction: %+v", items)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Error("temp file left")
	}
}
