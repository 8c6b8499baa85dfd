package storage

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIdentityCreateOpenRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path, _, _ := Paths(dir)
	id := newIdentity(t)
	id.CreatedAt = time.Date(2025, 11, 21, 10, 30, 0, 0, time.UTC)
	if err := CreateIdentity(path, id); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("data dir holds %d entries, want only identity.db (temp file left?)", len(ents))
	}
	s, err := OpenIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != id.Serial || !bytes.Equal(got.DeviceEd25519Priv, id.DeviceEd25519Priv) ||
		!bytes.Equal(got.DeviceX25519Pub, id.DeviceX25519Pub) || !bytes.Equal(got.HQKeys["hq-1"], id.HQKeys["hq-1"]) ||
		got.TechPwdHash != id.TechPwdHash || !got.CreatedAt.Equal(id.CreatedAt) {
		t.Fatalf("identity round trip: got %+v", got)
	}
	if ok, _ := CheckPassword(got.SupervisorPwdHash, "123456"); !ok {
		t.Error("supervisor password does not check")
	}
}

func TestCreateIdentityRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	path, _, _ := Paths(dir)
	first := newIdentity(t)
	if err := CreateIdentity(path, first); err != nil {
		t.Fatal(err)
	}
	second := newIdentity(t)
	second.Serial = "PA-999999"
	err := CreateIdentity(path, second)
	if !errors.Is(err, ErrIdentityExists) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second CreateIdentity: %v; want ErrIdentityExists naming %s", err, path)
	}
	s, err := OpenIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, _ := s.Identity(); got.Serial != first.Serial {
		t.Fatalf("identity overwritten: serial %q", got.Serial)
	}
	// Any file at the path counts, even one that is not a store.
	other := filepath.Join(dir, "other.db")
	if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CreateIdentity(other, first); !errors.Is(err, ErrIdentityExists) {
		t.Fatalf("CreateIdentity over a foreign file: %v", err)
	}
}

func TestIdentityValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Identity)
	}{
		{"short serial", func(id *Identity) { id.Serial = "PA1" }},
		{"serial with slash", func(id *Identity) { id.Serial = "PA/0001" }},
		{"mismatched ed25519", func(id *Identity) { id.DeviceEd25519Pub = newIdentity(t).DeviceEd25519Pub }},
		{"mismatched x25519", func(id *Identity) { id.DeviceX25519Pub = newIdentity(t).DeviceX25519Pub }},
		{"short x25519", func(id *Identity) { id.DeviceX25519Priv = id.DeviceX25519Priv[:31] }},
		{"no hq key", func(id *Identity) { id.HQKeys = nil }},
		{"short hq key", func(id *Identity) { id.HQKeys["hq-2"] = []byte{1, 2, 3} }},
		{"no tech pwd", func(id *Identity) { id.TechPwdHash = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := newIdentity(t)
			tc.mod(&id)
			path := filepath.Join(t.TempDir(), "identity.db")
			if err := CreateIdentity(path, id); err == nil {
				t.Fatal("invalid identity accepted")
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused identity left a file: %v", err)
			}
		})
	}
}

func TestOpenIdentityMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.db")
	_, err := OpenIdentity(path)
	if !errors.Is(err, ErrNoIdentity) || !strings.Contains(err.Error(), path) {
		t.Fatalf("OpenIdentity(missing) = %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("OpenIdentity created a file")
	}
	// An empty bbolt file (e.g. the merchant store at the wrong path) has no identity.
	m := mustMerchant(t, path, newSealer(t))
	m.Close()
	if _, err := OpenIdentity(path); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("OpenIdentity(no identity record) = %v", err)
	}
}

func openTestIdentity(t *testing.T) (*IdentityStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "identity.db")
	if err := CreateIdentity(path, newIdentity(t)); err != nil {
		t.Fatal(err)
	}
	s, err := OpenIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func reopen(t *testing.T, s *IdentityStore) *IdentityStore {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	n, err := OpenIdentity(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestIdentityStateSurvivesReopen(t *testing.T) {
	s, _ := openTestIdentity(t)
	newHash, _ := HashPasswordWith("654321", TestArgon2)
	if err := s.SetSupervisorPwdHash(newHash); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSupervisorPwdHash("plain"); !errors.Is(err, ErrBadHash) {
		t.Fatalf("SetSupervisorPwdHash(not a hash) = %v", err)
	}
	lock := PwdLock{Failures: 3, LockedUntil: 1763721000}
	if err := s.SetPwdLock(lock); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"v":1,"id":"c-1"}`)
	seen := SeenCommand{ID: "c-1", PayloadSHA256: sha256.Sum256(payload), Ack: []byte(`{"kid":"dev-PA-000123"}`), At: time.Unix(1763721000, 0).UTC()}
	if err := s.PutSeen(seen); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIntent([]byte(`{"cmd_id":"c-1","unsettled":"settle"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("activation_pending", []byte("req-7")); err != nil {
		t.Fatal(err)
	}

	s = reopen(t, s)
	id, _ := s.Identity()
	if ok, _ := CheckPassword(id.SupervisorPwdHash, "654321"); !ok {
		t.Error("new supervisor password lost")
	}
	if got, err := s.PwdLock(); err != nil || got != lock {
		t.Errorf("PwdLock = %+v, %v; want %+v", got, err, lock)
	}
	got, ok, err := s.Seen("c-1")
	if err != nil || !ok || got.PayloadSHA256 != seen.PayloadSHA256 || !bytes.Equal(got.Ack, seen.Ack) || !got.At.Equal(seen.At) {
		t.Errorf("Seen = %+v, %v, %v", got, ok, err)
	}
	if _, ok, _ := s.Seen("c-2"); ok {
		t.Error("unknown id reported seen")
	}
	if v, ok, err := s.Intent(); err != nil || !ok || !bytes.Contains(v, []byte("settle")) {
		t.Errorf("Intent = %q, %v, %v", v, ok, err)
	}
	if v, ok, err := s.Get("activation_pending"); err != nil || !ok || string(v) != "req-7" {
		t.Errorf("Get = %q, %v, %v", v, ok, err)
	}
	if err := s.ClearIntent(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("activation_pending", nil); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	if _, ok, _ := s.Intent(); ok {
		t.Error("intent survived ClearIntent")
	}
	if _, ok, _ := s.Get("activation_pending"); ok {
		t.Error("key survived Put(nil)")
	}
	if err := s.PutIntent(nil); err == nil {
		t.Error("empty intent accepted")
	}
}

func TestOutboxOrderAndDone(t *testing.T) {
	s, _ := openTestIdentity(t)
	var seqs []uint64
	for i, topic := range []string{"pos/v1/PA-000123/ack", "pos/v1/PA-000123/evt", "pos/v1/PA-000123/ack"} {
		seq, err := s.Enqueue(topic, []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	if err := s.Done(seqs[1]); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	items, err := s.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Seq != seqs[0] || items[1].Seq != seqs[2] ||
		items[1].Topic != "pos/v1/PA-000123/ack" || !bytes.Equal(items[1].Payload, []byte{2}) {
		t.Fatalf("outbox = %+v", items)
	}
	// Sequence numbers never repeat, even once the queue empties.
	for _, it := range items {
		if err := s.Done(it.Seq); err != nil {
			t.Fatal(err)
		}
	}
	s = reopen(t, s)
	seq, err := s.Enqueue("pos/v1/PA-000123/evt", []byte("x"))
	if err != nil || seq <= seqs[2] {
		t.Fatalf("Enqueue after drain = %d, %v; want > %d", seq, err, seqs[2])
	}
	if err := s.Done(12345); err != nil {
		t.Fatalf("Done(unknown) = %v", err)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	old := lockTimeout
	lockTimeout = 100 * time.Millisecond
	defer func() { lockTimeout = old }()
	_, path := openTestIdentity(t)
	start := time.Now()
	_, err := OpenIdentity(path)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second OpenIdentity = %v; want ErrLocked naming the path", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("second open hung")
	}
}

func TestIdentityUpdateIsAtomic(t *testing.T) {
	s, _ := openTestIdentity(t)
	boom := errors.New("boom")
	err := s.Update(func(tx *IdentityTx) error {
		if err := tx.PutIntent([]byte(`{"id":"c1"}`)); err != nil {
			return err
		}
		if _, err := tx.Enqueue("pos/v1/PA-0001/ack", []byte("accepted")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if _, ok, _ := s.Intent(); ok {
		t.Error("intent written by a rolled-back transaction")
	}
	if items, _ := s.Outbox(); len(items) != 0 {
		t.Error("outbox written by a rolled-back transaction")
	}
	err = s.Update(func(tx *IdentityTx) error {
		if err := tx.PutSeen(SeenCommand{ID: "c1", Ack: []byte("final"), At: time.Now()}); err != nil {
			return err
		}
		if err := tx.ClearIntent(); err != nil {
			return err
		}
		_, err := tx.Enqueue("pos/v1/PA-0001/ack", []byte("final"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok, _ := s.Seen("c1"); !ok || string(c.Ack) != "final" {
		t.Errorf("seen = %+v %v", c, ok)
	}
	if items, _ := s.Outbox(); len(items) != 1 || string(items[0].Payload) != "final" {
		t.Errorf("outbox = %+v", items)
	}
}
