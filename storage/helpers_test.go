package storage

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/curve25519"
)

// gcmSealer is a test stand-in for the secure element's data key
// (storage must not import hal/sesim's own key handling to test itself).
type gcmSealer struct{ key []byte }

func newSealer(t testing.TB) *gcmSealer {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return &gcmSealer{key: k}
}

var errNoKey = errors.New("data key destroyed")

func (s *gcmSealer) aead() (cipher.AEAD, error) {
	if s.key == nil {
		return nil, errNoKey
	}
	b, err := aes.NewCipher(s.key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func (s *gcmSealer) Seal(p, ad []byte) ([]byte, error) {
	g, err := s.aead()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, p, ad), nil
}

func (s *gcmSealer) Open(c, ad []byte) ([]byte, error) {
	g, err := s.aead()
	if err != nil {
		return nil, err
	}
	if len(c) < g.NonceSize() {
		return nil, errors.New("short")
	}
	return g.Open(nil, c[:g.NonceSize()], c[g.NonceSize():], ad)
}

func (s *gcmSealer) destroy() { clear(s.key); s.key = nil }

var _ Sealer = (*gcmSealer)(nil)

// The story of testdata/README.md.
var (
	testPAN = []byte("6222021234567890123")
	testTID = []byte("12345678")
	testMID = []byte("123456789012345")
	testTMK = []byte{0x3F, 0x7A, 0x1C, 0x9E, 0x5B, 0x2D, 0x40, 0x86, 0xA1, 0xE3, 0xC5, 0x7B, 0x92, 0xD4, 0x0F, 0x68}
)

func newIdentity(t testing.TB) Identity {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hqPub, _, err := ed25519.GenerateKey(rand.Reader)
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
	tech, err := HashPasswordWith("4711", TestArgon2)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := HashPasswordWith("123456", TestArgon2)
	if err != nil {
		t.Fatal(err)
	}
	return Identity{
		Serial: "PA-000123", DeviceEd25519Priv: priv, DeviceEd25519Pub: pub,
		DeviceX25519Priv: xpriv, DeviceX25519Pub: xpub,
		HQKeys:      map[string][]byte{"hq-1": hqPub},
		TechPwdHash: tech, SupervisorPwdHash: sup,
	}
}

// grepDir reports the files under dir whose raw bytes contain needle.
func grepDir(t testing.TB, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if bytes.Contains(b, needle) {
				hits = append(hits, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func mustMerchant(t testing.TB, path string, se Sealer) *MerchantStore {
	t.Helper()
	s, err := OpenMerchant(path, se)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
