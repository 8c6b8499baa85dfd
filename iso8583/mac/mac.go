// Package mac holds the pure cryptography of the acquirer profile
// (spec/acquirer.md §MAC and §Field 62): the CUP "ECB" MAC over a message,
// 3DES/DES ECB helpers, key check values, and the wrapping of the working
// keys (PIK, MAK) under the terminal master key (TMK).
//
// Everything here is deterministic and does no IO; keys are byte slices the
// caller owns (and zeroises).
package mac

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Size is the length of field 64: 8 ASCII characters.
const Size = 8

const hexUpper = "0123456789ABCDEF"

// MACer computes the CUP "ECB" MAC with one single-DES MAK. It keeps the
// cipher and a scratch area so that Sum allocates nothing (a cipher.Block is
// an interface, so buffers passed to it would escape to the heap if they
// lived on the stack). A MACer is therefore NOT safe for concurrent use: make
// one per goroutine, they are cheap.
type MACer struct {
	b       cipher.Block
	scratch [8]byte
}

// NewMACer returns a MACer for an 8-byte single-DES MAK.
func NewMACer(mak []byte) (*MACer, error) {
	if len(mak) != 8 {
		return nil, fmt.Errorf("mac: MAK must be 8 bytes (single DES), got %d", len(mak))
	}
	b, err := des.NewCipher(mak)
	if err != nil {
		return nil, fmt.Errorf("mac: MAK cipher: %w", err)
	}
	return &MACer{b: b}, nil
}

// Sum returns field 64 for a MAC block (the message from the MTI up to the
// end of the last field before 64, bit 64 set), per acquirer.md §MAC:
//  1. pad with 00 to a multiple of 8, XOR all 8-byte blocks into R;
//  2. H = upper-case hex of R (16 ASCII characters);
//  3. E1 = DES(MAK, H[0:8]); T = E1 XOR H[8:16]; E2 = DES(MAK, T);
//  4. the result is the first 8 characters of upper-case hex(E2).
func (m *MACer) Sum(block []byte) [Size]byte {
	s := m.scratch[:]
	clear(s)
	// Zero padding does not change an XOR, so the short tail is XORed as is.
	for i, c := range block {
		s[i&7] ^= c
	}
	var h [16]byte
	for i, c := range s {
		h[2*i] = hexUpper[c>>4]
		h[2*i+1] = hexUpper[c&0x0f]
	}
	copy(s, h[:8])
	m.b.Encrypt(s, s)
	for i := range s {
		s[i] ^= h[8+i]
	}
	m.b.Encrypt(s, s)
	var out [Size]byte
	// Only the first 4 bytes of E2 become the 8 hex characters of field 64.
	for i := range 4 {
		out[2*i] = hexUpper[s[i]>>4]
		out[2*i+1] = hexUpper[s[i]&0x0f]
	}
	clear(s)
	return out
}

// Verify reports whether got (the 8 bytes of a received field 64) is the MAC
// of block, in constant time. The comparison is exact: CUP hosts send
// upper-case hex.
func (m *MACer) Verify(block, got []byte) bool {
	want := m.Sum(block)
	return subtle.ConstantTimeCompare(want[:], got) == 1
}

// CUPECB computes field 64 of a MAC block with an 8-byte MAK; a convenience
// around NewMACer(mak).Sum(block) (it allocates the cipher on every call).
func CUPECB(mak []byte, block []byte) ([Size]byte, error) {
	m, err := NewMACer(mak)
	if err != nil {
		return [Size]byte{}, err
	}
	return m.Sum(block), nil
}

// newCipher returns single DES for an 8-byte key and 3DES (EDE) for a 16-byte
// (double-length, K1 K2 K1) or 24-byte key.
func newCipher(key []byte) (cipher.Block, error) {
	switch len(key) {
	case 8:
		return des.NewCipher(key)
	case 16:
		var k [24]byte
		copy(k[:], key)
		copy(k[16:], key[:8])
		b, err := des.NewTripleDESCipher(k[:])
		clear(k[:])
		return b, err
	case 24:
		return des.NewTripleDESCipher(key)
	default:
		return nil, fmt.Errorf("mac: key must be 8, 16 or 24 bytes, got %d", len(key))
	}
}

// EncryptECB encrypts data (a multiple of 8 bytes) in ECB mode: single DES
// for an 8-byte key, 3DES for a 16- or 24-byte key.
func EncryptECB(key, data []byte) ([]byte, error) {
	return ecb(key, data, true)
}

// DecryptECB is the inverse of EncryptECB.
func DecryptECB(key, data []byte) ([]byte, error) {
	return ecb(key, data, false)
}

func ecb(key, data []byte, enc bool) ([]byte, error) {
	if len(data)%8 != 0 {
		return nil, fmt.Errorf("mac: ECB data must be a multiple of 8 bytes, got %d", len(data))
	}
	b, err := newCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(data))
	for i := 0; i < len(data); i += 8 {
		if enc {
			b.Encrypt(out[i:i+8], data[i:i+8])
		} else {
			b.Decrypt(out[i:i+8], data[i:i+8])
		}
	}
	return out, nil
}

// KCV returns the key check value: the first 4 bytes of encrypting 8 zero
// bytes with the key (3DES for a 16- or 24-byte key, DES for an 8-byte key).
// A key of any other length yields the zero value, which never matches a
// real check value.
func KCV(key []byte) [4]byte {
	var out [4]byte
	b, err := newCipher(key)
	if err != nil {
		return out
	}
	var z [8]byte
	b.Encrypt(z[:], z[:])
	copy(out[:], z[:4])
	return out
}

// TMKKCV returns the provisioning check value of a TMK (spec/remote.md
// provision args, "tmk_kcv"): the first 3 bytes of 3DES-encrypting 8 zero
// bytes, as 6 upper-case hex characters. An invalid key length gives "".
func TMKKCV(tmk []byte) string {
	if len(tmk) != 16 && len(tmk) != 24 {
		return ""
	}
	k := KCV(tmk)
	out := make([]byte, 6)
	for i := range 3 {
		out[2*i] = hexUpper[k[i]>>4]
		out[2*i+1] = hexUpper[k[i]&0x0f]
	}
	return string(out)
}

// Field62Len is the length of field 62 in a sign-in response with 60.3 = 003.
const Field62Len = 40

// Errors of UnwrapWorkingKeys when a check value does not match: the key
// named is not installed and the sign-in failed (acquirer.md §Field 62).
var (
	ErrPIKCheck = errors.New("PIK check value mismatch")
	ErrMAKCheck = errors.New("MAK check value mismatch")
)

// UnwrapWorkingKeys decrypts field 62 of a sign-in response (acquirer.md
// §Field 62, 40 bytes):
//
//	PIK 16 B | PIK check 4 B | MAK 8 B | 8 zero bytes | MAK check 4 B
//
// Both keys are 3DES-ECB encrypted under the double-length TMK; the single
// length MAK is the first (only) 8-byte block. The PIK check is computed with
// 3DES, the MAK check with single DES. A mismatch returns an error wrapping
// ErrPIKCheck or ErrMAKCheck and zero keys.
func UnwrapWorkingKeys(tmk, f62 []byte) (pik [16]byte, mak [8]byte, err error) {
	if len(tmk) != 16 {
		return pik, mak, fmt.Errorf("unwrap working keys: TMK must be 16 bytes, got %d", len(tmk))
	}
	if len(f62) != Field62Len {
		return pik, mak, fmt.Errorf("unwrap working keys: field 62 must be %d bytes, got %d", Field62Len, len(f62))
	}
	for _, c := range f62[28:36] {
		if c != 0 {
			// A non-zero second MAK half means a double-length MAK, which this
			// profile (60.3 = 003, single-DES MAC) does not use.
			return pik, mak, errors.New("unwrap working keys: field 62 bytes 28..35 are not zero (double-length MAK not supported)")
		}
	}
	b, err := newCipher(tmk)
	if err != nil {
		return pik, mak, fmt.Errorf("unwrap working keys: %w", err)
	}
	b.Decrypt(pik[0:8], f62[0:8])
	b.Decrypt(pik[8:16], f62[8:16])
	b.Decrypt(mak[:], f62[20:28])
	if k := KCV(pik[:]); subtle.ConstantTimeCompare(k[:], f62[16:20]) != 1 {
		clear(pik[:])
		clear(mak[:])
		return pik, mak, fmt.Errorf("unwrap working keys: %w", ErrPIKCheck)
	}
	if k := KCV(mak[:]); subtle.ConstantTimeCompare(k[:], f62[36:40]) != 1 {
		clear(pik[:])
		clear(mak[:])
		return pik, mak, fmt.Errorf("unwrap working keys: %w", ErrMAKCheck)
	}
	return pik, mak, nil
}

// WrapWorkingKeys builds field 62 for a sign-in response: the inverse of
// UnwrapWorkingKeys (used by the acquirer simulator).
func WrapWorkingKeys(tmk []byte, pik [16]byte, mak [8]byte) ([Field62Len]byte, error) {
	var out [Field62Len]byte
	if len(tmk) != 16 {
		return out, fmt.Errorf("wrap working keys: TMK must be 16 bytes, got %d", len(tmk))
	}
	b, err := newCipher(tmk)
	if err != nil {
		return out, fmt.Errorf("wrap working keys: %w", err)
	}
	b.Encrypt(out[0:8], pik[0:8])
	b.Encrypt(out[8:16], pik[8:16])
	pk := KCV(pik[:])
	copy(out[16:20], pk[:])
	b.Encrypt(out[20:28], mak[:])
	mk := KCV(mak[:])
	copy(out[36:40], mk[:])
	return out, nil
}
