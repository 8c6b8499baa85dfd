package storage

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posagent/posagent/terminal/remote"
)

func TestKeyringFactoryThenStored(t *testing.T) {
	s, _ := openTestIdentity(t)
	id, _ := s.Identity()
	k, err := s.Keyring()
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Keys) != 1 || k.Keys[0].KID != "hq-1" || k.Keys[0].Role != remote.RoleOps || !bytes.Equal(k.Keys[0].Pub, id.HQKeys["hq-1"]) {
		t.Fatalf("factory keyring %+v", k)
	}
	root, _, _ := ed25519.GenerateKey(rand.Reader)
	next := remote.Keyring{Keys: []remote.HQKey{{KID: "root-1", Pub: root, Role: remote.RoleRoot}, k.Keys[0]},
		Policy: map[remote.CommandType]int{remote.TypeUnbind: 2}}
	if err := s.Update(func(tx *IdentityTx) error { return tx.PutKeyring(next) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *IdentityTx) error { return tx.PutKeyring(remote.Keyring{}) }); err == nil {
		t.Error("an empty keyring was stored")
	}
	s = reopen(t, s)
	got, err := s.Keyring()
	if err != nil || len(got.Keys) != 2 || got.Policy[remote.TypeUnbind] != 2 {
		t.Fatalf("stored keyring after reopen: %+v, %v", got, err)
	}
}

func TestIdentityValidateKeys(t *testing.T) {
	id := newIdentity(t)
	root, _, _ := ed25519.GenerateKey(rand.Reader)
	id.HQRootKeys = map[string][]byte{"root-1": root}
	id.Policy = map[string]int{"unbind": 2}
	if err := id.Validate(); err != nil {
		t.Fatalf("ops + root key, unbind=2: %v", err)
	}
	id.Policy = map[string]int{"unbind": 3}
	if err := id.Validate(); err == nil {
		t.Error("unbind=3 with two keys validated")
	}
	id.Policy = nil
	id.HQKeys = nil
	if err := id.Validate(); err != nil {
		t.Errorf("a root key alone: %v", err)
	}
	id.HQRootKeys = nil
	if err := id.Validate(); err == nil {
		t.Error("no HQ key validated")
	}
}

func TestTechPwdLockSeparate(t *testing.T) {
	s, _ := openTestIdentity(t)
	if err := s.SetTechPwdLock(PwdLock{Failures: 3, LockedUntil: 1763721000}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	if l, err := s.TechPwdLock(); err != nil || l.Failures != 3 || l.LockedUntil != 1763721000 {
		t.Fatalf("TechPwdLock = %+v, %v", l, err)
	}
	if l, _ := s.PwdLock(); l != (PwdLock{}) {
		t.Fatalf("the supervisor lock moved with the technician's: %+v", l)
	}
}

func TestSeenPruning(t *testing.T) {
	s, _ := openTestIdentity(t)
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		c := SeenCommand{ID: fmt.Sprintf("c-%d", i), Ack: []byte("ack"), At: t0.Add(time.Duration(i) * 24 * time.Hour)}
		if err := s.PutSeen(c); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, _ := s.Seen("c-0")
	if !ok || !got.PruneAt.Equal(t0.Add(remote.RecordKept)) {
		t.Fatalf("c-0 %+v: prune time, want record time + %v", got, remote.RecordKept)
	}
	// Re-recording an id moves its prune time, and leaves no stale index.
	if err := s.PutSeen(SeenCommand{ID: "c-0", Ack: []byte("ack2"), At: t0.Add(10 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneSeen(t0.Add(remote.RecordKept + 60*time.Hour))
	if err != nil || n != 2 { // c-1 and c-2
		t.Fatalf("PruneSeen = %d, %v; want 2", n, err)
	}
	for id, want := range map[string]bool{"c-0": true, "c-1": false, "c-2": false, "c-3": true, "c-4": true} {
		if _, ok, _ := s.Seen(id); ok != want {
			t.Errorf("%s recorded = %v, want %v", id, ok, want)
		}
	}
	// A bounded prune in a transaction, as the daemon does with each record.
	late := t0.Add(remote.RecordKept + 30*24*time.Hour)
	err = s.Update(func(tx *IdentityTx) error {
		if err := tx.PutSeen(SeenCommand{ID: "late", Ack: []byte("x"), At: late}); err != nil {
			return err
		}
		n, err := tx.PruneSeen(late, 2)
		if n != 2 {
			return fmt.Errorf("pruned %d, want the limit 2", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneSeen(late); err != nil || n != 1 {
		t.Fatalf("PruneSeen = %d, %v; want the last one", n, err)
	}
	for _, id := range []string{"c-0", "c-3", "c-4"} {
		if _, ok, _ := s.Seen(id); ok {
			t.Errorf("%s not pruned by a later record", id)
		}
	}
	err = view(s.db, "count", func(tx *bolt.Tx) error {
		if n := tx.Bucket(bktSeenPrune).Stats().KeyN; n != 1 {
			return fmt.Errorf("prune index holds %d keys, want 1", n)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestReplaceSeenAck(t *testing.T) {
	s, _ := openTestIdentity(t)
	if err := s.PutSeen(SeenCommand{ID: "u-1", Ack: []byte("with unsettled"), At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var replaced bool
	err := s.Update(func(tx *IdentityTx) (err error) {
		replaced, err = tx.ReplaceSeenAck("u-1", []byte("something else"), []byte("redacted"))
		return err
	})
	if err != nil || replaced {
		t.Fatalf("replace of another ack: %v %v", replaced, err)
	}
	err = s.Update(func(tx *IdentityTx) (err error) {
		replaced, err = tx.ReplaceSeenAck("u-1", []byte("with unsettled"), []byte("redacted"))
		return err
	})
	if c, _, _ := s.Seen("u-1"); err != nil || !replaced || string(c.Ack) != "redacted" {
		t.Fatalf("replace: %v %v %q", replaced, err, c.Ack)
	}
}

func TestInboxOneKeyPerCommand(t *testing.T) {
	s, _ := openTestIdentity(t)
	var seqs []uint64
	for i := range 3 {
		seq, err := s.InboxAdd([]byte(fmt.Sprintf(`{"n":%d}`, i)), 3)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	if _, err := s.InboxAdd([]byte(`{"n":3}`), 3); !errors.Is(err, ErrInboxFull) {
		t.Fatalf("fourth add into an inbox of 3: %v", err)
	}
	if err := s.InboxDone(seqs[0]); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	first, ok, err := s.InboxFirst()
	if err != nil || !ok || first.Seq != seqs[1] || string(first.Envelope) != `{"n":1}` {
		t.Fatalf("InboxFirst = %+v %v %v", first, ok, err)
	}
	if _, err := s.InboxAdd([]byte(`{"n":3}`), 3); err != nil {
		t.Fatalf("add after a done: %v", err)
	}
	items, _ := s.Inbox()
	if len(items) != 3 || string(items[2].Envelope) != `{"n":3}` || items[2].Seq <= seqs[2] {
		t.Fatalf("inbox %+v", items)
	}
}

// TestInboxLegacyMigration: the JSON array of verified payloads an older
// version kept under kv "inbox" moves into the bucket, in order, at open.
func TestInboxLegacyMigration(t *testing.T) {
	s, path := openTestIdentity(t)
	old, _ := json.Marshal([][]byte{[]byte(`{"id":"a"}`), []byte(`{"id":"b"}`)})
	if err := s.Put("inbox", old); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	s, err := OpenIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	items, err := s.Inbox()
	if err != nil || len(items) != 2 || string(items[0].LegacyPayload) != `{"id":"a"}` || items[1].Envelope != nil {
		t.Fatalf("migrated inbox %+v, %v", items, err)
	}
	if _, ok, _ := s.Get("inbox"); ok {
		t.Error("legacy inbox key left behind")
	}
}

// TestSeenPruneTimeFromExpiry: a record made on a clock that read far
// behind (no RTC battery) is kept until 30 days after its command's
// expires_at, not pruned on the first trusted prune.
func TestSeenPruneTimeFromExpiry(t *testing.T) {
	s, _ := openTestIdentity(t)
	boot := time.Date(1970, 1, 1, 0, 5, 0, 0, time.UTC)
	expires := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	if err := s.PutSeen(SeenCommand{ID: "c-1970", Ack: []byte("x"), At: boot, ExpiresAt: expires}); err != nil {
		t.Fatal(err)
	}
	c, _, _ := s.Seen("c-1970")
	if !c.PruneAt.Equal(expires.Add(remote.RecordAfterExpiry)) {
		t.Fatalf("prune at %v, want 30 days after expires_at", c.PruneAt)
	}
	if n, _ := s.PruneSeen(expires.Add(29 * 24 * time.Hour)); n != 0 {
		t.Fatal("pruned before 30 days after expires_at")
	}
}
