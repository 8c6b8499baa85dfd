package termstore_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/curve25519"

	"github.com/posagent/posagent/hal/sesim"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/storage/termstore"
	"github.com/posagent/posagent/terminal/storetest"
)

type fileStore struct {
	*termstore.Store
	dir string
	se  storage.Sealer
}

func (s fileStore) WipeMerchant() error {
	_, err := s.Store.WipeMerchant()
	return err
}

func newIdentity(t *testing.T, dir string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	xpriv := make([]byte, 32)
	if _, err := rand.Read(xpriv); err != nil {
		t.Fatal(err)
	}
	xpub, err := curve25519.X25519(xpriv, curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	hq, _, _ := ed25519.GenerateKey(rand.Reader)
	id := storage.Identity{Serial: "PA00000001", DeviceEd25519Priv: priv, DeviceEd25519Pub: pub, DeviceX25519Priv: xpriv, DeviceX25519Pub: xpub,
		HQKeys: map[string][]byte{"hq-1": hq}, TechPwdHash: storetest.SupervisorHash, SupervisorPwdHash: storetest.SupervisorHash}
	idPath, _, _ := storage.Paths(dir)
	if err := storage.CreateIdentity(idPath, id); err != nil {
		t.Fatal(err)
	}
}

func TestBoltStoreSuite(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T) storetest.Store {
			dir := t.TempDir()
			newIdentity(t, dir)
			_, _, sePath := storage.Paths(dir)
			se, err := sesim.Open(sePath)
			if err != nil {
				t.Fatal(err)
			}
			s, err := termstore.Open(dir, se)
			if err != nil {
				t.Fatal(err)
			}
			fs := fileStore{Store: s, dir: dir, se: se}
			t.Cleanup(func() { _ = fs.Close() })
			return fs
		},
		Reopen: func(t *testing.T, s storetest.Store) storetest.Store {
			fs := s.(fileStore)
			if err := fs.Close(); err != nil {
				t.Fatal(err)
			}
			n, err := termstore.Open(fs.dir, fs.se)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = n.Close() })
			return fileStore{Store: n, dir: fs.dir, se: fs.se}
		},
	})
}

func TestOpenNeedsIdentity(t *testing.T) {
	dir := t.TempDir()
	_, _, sePath := storage.Paths(dir)
	se, err := sesim.Open(filepath.Join(sePath))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := termstore.Open(dir, se); err == nil {
		t.Fatal("Open without an identity succeeded")
	}
}

// TestLoadRefusesUnknownIntent: an intent with a stage or unsettled policy
// this version does not know is a corrupt store, not an unbind to resume.
func TestLoadRefusesUnknownIntent(t *testing.T) {
	for _, raw := range []string{`{"cmd_id":"c-1","stage":"burning","unsettled":"settle"}`, `{"cmd_id":"c-1","stage":"accepted","unsettled":"later"}`} {
		dir := t.TempDir()
		newIdentity(t, dir)
		idPath, _, sePath := storage.Paths(dir)
		ident, err := storage.OpenIdentity(idPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := ident.PutIntent([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		ident.Close()
		se, err := sesim.Open(sePath)
		if err != nil {
			t.Fatal(err)
		}
		s, err := termstore.Open(dir, se)
		if err == nil {
			_, err = s.Load()
			s.Close()
		}
		if !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("intent %s: %v, want ErrCorrupt", raw, err)
		}
	}
}
