package storage

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the cost parameters of an argon2id password hash
// (RFC 9106).
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultArgon2 costs about 65 ms on the 2-core x86 build host (more on an
// ARM terminal, still well under a cashier's patience for a password
// prompt), with 32 MiB: above RFC 9106's second recommended option's time
// and OWASP's 19 MiB floor, and small enough for a POS terminal's RAM.
var DefaultArgon2 = Argon2Params{Memory: 32 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// TestArgon2 is a cheap parameter set for tests only: CheckPassword reads
// the parameters from the hash, so test hashes verify without the cost.
var TestArgon2 = Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters read back from a hash, so that a corrupted or
// hostile stored hash cannot make CheckPassword allocate gigabytes.
const (
	maxArgonMemory  = 256 * 1024 // KiB
	maxArgonTime    = 16
	maxArgonThreads = 16
)

// ErrBadHash reports a stored password hash that is not a PHC argon2id
// string this package can check.
var ErrBadHash = errors.New("malformed password hash")

// HashPassword hashes pwd with argon2id and DefaultArgon2, as a PHC string
// "$argon2id$v=19$m=…,t=…,p=…$salt$hash" (unpadded standard base64).
func HashPassword(pwd string) (string, error) { return HashPasswordWith(pwd, DefaultArgon2) }

// HashPasswordWith hashes pwd with argon2id and the given parameters.
func HashPasswordWith(pwd string, p Argon2Params) (string, error) {
	if p.Memory < 8*uint32(p.Threads) || p.Time == 0 || p.Threads == 0 || p.SaltLen < 8 || p.KeyLen < 16 {
		return "", fmt.Errorf("hash password: unusable argon2 parameters %+v", p)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(pwd), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether pwd matches the PHC argon2id hash. A hash
// it cannot parse is an error (ErrBadHash), never a match.
func CheckPassword(hash, pwd string) (bool, error) {
	p, salt, want, err := parsePHC(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pwd), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func parsePHC(s string) (p Argon2Params, salt, key []byte, err error) {
	bad := func(why string) (Argon2Params, []byte, []byte, error) {
		return Argon2Params{}, nil, nil, fmt.Errorf("%w: %s", ErrBadHash, why)
	}
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return bad("not $argon2id$v=…$m=…,t=…,p=…$salt$hash")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version " + parts[2])
	}
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return bad("parameter " + kv)
		}
		n, perr := strconv.ParseUint(v, 10, 32)
		if perr != nil {
			return bad("parameter " + kv)
		}
		switch k {
		case "m":
			p.Memory, seen[0] = uint32(n), true
		case "t":
			p.Time, seen[1] = uint32(n), true
		case "p":
			if n > 255 {
				return bad("parameter " + kv)
			}
			p.Threads, seen[2] = uint8(n), true
		default:
			return bad("unknown parameter " + k)
		}
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return bad("missing m, t or p")
	}
	if p.Threads == 0 || p.Threads > maxArgonThreads || p.Time == 0 || p.Time > maxArgonTime ||
		p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgonMemory {
		return bad("parameters out of range")
	}
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 || len(salt) > 64 {
		return bad("salt")
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 64 {
		return bad("hash")
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}
