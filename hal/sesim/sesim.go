// Package sesim is the software secure element of the host simulator and
// the tests: the keys live in small files under a directory (data_dir/se,
// mode 0700, files 0600).
//
// A real terminal's secure element keeps its keys in tamper-responsive
// hardware that erases them when the case is opened, and does DES, MAC and
// AES inside; nothing here resists an attacker who can read the disk. It
// reproduces the behaviour the rest of posagent depends on: checked
// installs that change nothing on failure, writes that a power cut never
// leaves half done, and zeroisation that leaves no key byte in the
// directory.
package sesim

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/posagent/posagent/internal/durable"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/iso8583/mac"
)

// File names under the SE directory.
const (
	KeysFile    = "keys"    // TMK, PIK, MAK
	DataKeyFile = "datakey" // AES-256 key of the merchant store
	tmpSuffix   = ".tmp"
)

// Errors.
var (
	ErrNoKey     = errors.New("key not installed")
	ErrBadKCV    = errors.New("key check value mismatch")
	ErrNoDataKey = errors.New("no data key (destroyed or never created)")
	ErrCorrupt   = errors.New("corrupted secure element file")
)

// SE is the file-backed software secure element. It is safe for concurrent
// use.
type SE struct {
	mu      sync.Mutex
	dir     string
	tmk     []byte // 16 bytes, or nil
	pik     []byte // 16 bytes, or nil
	mak     []byte // 8 bytes, or nil
	dataKey []byte // 32 bytes, or nil
}

var _ hal.SecureElement = (*SE)(nil)

// Open opens (creating it 0700 if missing) the SE directory and loads its
// keys. Temporary files left by a write that a power cut interrupted (the
// install never completed, so it was never acknowledged) are zeroed and
// removed.
func Open(dir string) (*SE, error) {
	wrap := func(err error) error { return fmt.Errorf("open secure element %s: %w", dir, err) }
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, wrap(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, wrap(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, wrap(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), tmpSuffix) {
			if err := scrub(filepath.Join(dir, e.Name())); err != nil {
				return nil, wrap(err)
			}
		}
	}
	se := &SE{dir: dir}
	keys, err := readFile(filepath.Join(dir, KeysFile), keysMagic)
	if err != nil {
		return nil, wrap(err)
	}
	if keys != nil {
		if se.tmk, se.pik, se.mak, err = decodeKeys(keys); err != nil {
			return nil, wrap(fmt.Errorf("%s: %w", KeysFile, err))
		}
	}
	dk, err := readFile(filepath.Join(dir, DataKeyFile), dataKeyMagic)
	if err != nil {
		return nil, wrap(err)
	}
	if dk != nil {
		if len(dk) != 32 {
			return nil, wrap(fmt.Errorf("%w: %s: data key is %d bytes", ErrCorrupt, DataKeyFile, len(dk)))
		}
		se.dataKey = dk
	}
	return se, nil
}

// Dir is the SE's directory.
func (s *SE) Dir() string { return s.dir }

// InstallTMK installs a 16-byte TMK after checking its KCV.
func (s *SE) InstallTMK(tmk []byte, kcv string) error {
	if len(tmk) != 16 {
		return fmt.Errorf("install TMK: want 16 bytes (double-length 3DES), got %d", len(tmk))
	}
	if got := mac.TMKKCV(tmk); got == "" || len(kcv) != 6 || !strings.EqualFold(got, kcv) {
		return fmt.Errorf("install TMK: %w", ErrBadKCV)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Working keys wrapped under the previous TMK mean nothing under the
	// new one: the terminal signs in again before its next MAC.
	if err := s.storeKeys(bytes.Clone(tmk), nil, nil); err != nil {
		return fmt.Errorf("install TMK: %w", err)
	}
	return nil
}

// InstallWorkingKeys unwraps and checks PIK and MAK from field 62.
func (s *SE) InstallWorkingKeys(f62 []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tmk == nil {
		return fmt.Errorf("install working keys: TMK: %w", ErrNoKey)
	}
	pik, mak, err := mac.UnwrapWorkingKeys(s.tmk, f62)
	if err != nil {
		return fmt.Errorf("install working keys: %w", err)
	}
	err = s.storeKeys(s.tmk, pik[:], mak[:])
	clear(pik[:])
	clear(mak[:])
	if err != nil {
		return fmt.Errorf("install working keys: %w", err)
	}
	return nil
}

// MAC computes field 64 of a MAC block with the MAK.
func (s *SE) MAC(block []byte) ([8]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mak == nil {
		return [8]byte{}, fmt.Errorf("MAC: MAK: %w", ErrNoKey)
	}
	m, err := mac.CUPECB(s.mak, block)
	if err != nil {
		return [8]byte{}, fmt.Errorf("MAC: %w", err)
	}
	return m, nil
}

// HasKey reports whether the slot holds a key.
func (s *SE) HasKey(slot hal.KeySlot) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch slot {
	case hal.TMK:
		return s.tmk != nil
	case hal.PIK:
		return s.pik != nil
	case hal.MAK:
		return s.mak != nil
	}
	return false
}

// ZeroiseKeys overwrites the key file with zeros, fsyncs and removes it,
// and forgets TMK, PIK and MAK.
func (s *SE) ZeroiseKeys() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tmk)
	clear(s.pik)
	clear(s.mak)
	s.tmk, s.pik, s.mak = nil, nil, nil
	if err := scrub(filepath.Join(s.dir, KeysFile)); err != nil {
		return fmt.Errorf("zeroise keys: %w", err)
	}
	return nil
}

// Seal encrypts plaintext under the data key (created on first use) with
// AES-256-GCM; the result is nonce || ciphertext || tag. Nonces are random:
// GCM's 2^32-messages-per-key bound is far beyond a terminal's writes
// between two unbinds.
func (s *SE) Seal(plaintext, additionalData []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dataKey == nil {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("seal: create data key: %w", err)
		}
		if err := writeFile(s.dir, DataKeyFile, dataKeyMagic, k); err != nil {
			return nil, fmt.Errorf("seal: create data key: %w", err)
		}
		s.dataKey = k
	}
	g, err := s.gcm()
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := make([]byte, g.NonceSize(), g.NonceSize()+len(plaintext)+g.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return g.Seal(out, out, plaintext, additionalData), nil
}

// Open decrypts and authenticates a value made by Seal with the same
// additional data.
func (s *SE) Open(sealed, additionalData []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dataKey == nil {
		return nil, fmt.Errorf("open sealed value: %w", ErrNoDataKey)
	}
	g, err := s.gcm()
	if err != nil {
		return nil, fmt.Errorf("open sealed value: %w", err)
	}
	if len(sealed) < g.NonceSize()+g.Overhead() {
		return nil, errors.New("open sealed value: too short")
	}
	n := g.NonceSize()
	p, err := g.Open(nil, sealed[:n], sealed[n:], additionalData)
	if err != nil {
		return nil, fmt.Errorf("open sealed value: %w", err)
	}
	return p, nil
}

// DestroyDataKey overwrites the data key file with zeros, fsyncs and
// removes it, and forgets the key.
func (s *SE) DestroyDataKey() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.dataKey)
	s.dataKey = nil
	if err := scrub(filepath.Join(s.dir, DataKeyFile)); err != nil {
		return fmt.Errorf("destroy data key: %w", err)
	}
	return nil
}

func (s *SE) gcm() (cipher.AEAD, error) {
	b, err := aes.NewCipher(s.dataKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// storeKeys persists the three slots, then updates memory (so a failed
// write changes nothing). The caller holds s.mu.
func (s *SE) storeKeys(tmk, pik, mak []byte) error {
	if err := writeFile(s.dir, KeysFile, keysMagic, encodeKeys(tmk, pik, mak)); err != nil {
		return err
	}
	if !sameBacking(s.tmk, tmk) { // InstallWorkingKeys passes s.tmk itself
		clear(s.tmk)
	}
	clear(s.pik)
	clear(s.mak)
	s.tmk, s.pik, s.mak = tmk, bytes.Clone(pik), bytes.Clone(mak)
	return nil
}

func sameBacking(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
}

// keys file body: for TMK, PIK, MAK: length byte, key bytes (0 = absent).
func encodeKeys(keys ...[]byte) []byte {
	var out []byte
	for _, k := range keys {
		out = append(out, byte(len(k)))
		out = append(out, k...)
	}
	return out
}

func decodeKeys(b []byte) (tmk, pik, mak []byte, err error) {
	var keys [3][]byte
	want := [3]int{16, 16, 8}
	for i := range keys {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return nil, nil, nil, fmt.Errorf("%w: short key record", ErrCorrupt)
		}
		n := int(b[0])
		if n != 0 && n != want[i] {
			return nil, nil, nil, fmt.Errorf("%w: key %d is %d bytes", ErrCorrupt, i, n)
		}
		if n > 0 {
			keys[i] = bytes.Clone(b[1 : 1+n])
		}
		b = b[1+n:]
	}
	if len(b) != 0 {
		return nil, nil, nil, fmt.Errorf("%w: trailing bytes", ErrCorrupt)
	}
	return keys[0], keys[1], keys[2], nil
}

// File format: magic (4) | body | SHA-256(magic | body). The checksum
// catches a file damaged on disk; atomic replacement already rules out a
// half-written one.
var (
	keysMagic    = []byte("PSK1")
	dataKeyMagic = []byte("PSD1")
)

// readFile returns the body of a checked file, nil if there is none.
func readFile(path string, magic []byte) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(raw) < len(magic)+sha256.Size || !bytes.Equal(raw[:len(magic)], magic) {
		return nil, fmt.Errorf("%w: %s: bad header", ErrCorrupt, path)
	}
	body, sum := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		return nil, fmt.Errorf("%w: %s: checksum mismatch", ErrCorrupt, path)
	}
	out := bytes.Clone(body[len(magic):])
	clear(raw)
	return out, nil
}

// writeFile replaces dir/name atomically: temp file, fsync, rename, fsync
// the directory, so a power cut leaves the old version or the new one,
// never half a key. The replaced version is then overwritten with zeros
// through a handle kept open across the rename, so no old key lingers in
// the directory's files.
func writeFile(dir, name string, magic, body []byte) error {
	path := filepath.Join(dir, name)
	tmp := path + tmpSuffix
	data := append(bytes.Clone(magic), body...)
	sum := sha256.Sum256(data)
	data = append(data, sum[:]...)
	defer clear(data)

	old, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if old != nil {
		defer old.Close()
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		_ = scrub(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		_ = scrub(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		_ = scrub(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = scrub(tmp)
		return err
	}
	if err := durable.SyncDir(dir); err != nil {
		return err
	}
	if old != nil {
		if err := zero(old); err != nil {
			return fmt.Errorf("zero replaced %s: %w", name, err)
		}
	}
	return nil
}

// scrub overwrites a file with zeros, fsyncs it, removes it and fsyncs its
// directory. A missing file is not an error. The file is first renamed to
// a temp name (and the directory fsynced): a power cut between the zeroing
// and the removal would otherwise leave a zeroed keys file that Open
// refuses as corrupt, and the terminal could never boot to finish its
// wipe; a leftover temp file is scrubbed by the next Open.
func scrub(path string) error {
	if !strings.HasSuffix(path, tmpSuffix) {
		tmp := path + tmpSuffix
		if err := os.Rename(path, tmp); errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if err := durable.SyncDir(filepath.Dir(path)); err != nil {
			return err
		}
		path = tmp
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	zerr := zero(f)
	cerr := f.Close()
	if zerr != nil {
		return zerr
	}
	if cerr != nil {
		return cerr
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Dir(path))
}

func zero(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(make([]byte, fi.Size()), 0); err != nil {
		return err
	}
	return f.Sync()
}
