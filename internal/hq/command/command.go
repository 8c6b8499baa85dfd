// Package command builds HQ's signed commands (spec/remote.md §Command
// payload): the payload, a self-check with the terminal's own check table
// so HQ never sends what a terminal would reject as invalid, and the
// envelope with one key or the signatures operators collected.
package command

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/posagent/posagent/terminal/remote"
)

// TypeHQKeys rotates HQ keys and changes the policy (remote.md §hq_keys).
const TypeHQKeys = string(remote.TypeHQKeys)

// MaxTTL is the longest validity remote.md allows (expires_at - issued_at
// ≤ 7 days).
const MaxTTL = remote.MaxValidity

// Payload builds and checks a command payload. Times are whole seconds in
// UTC.
func Payload(typ, serial, id string, args json.RawMessage, issued time.Time, ttl time.Duration) ([]byte, remote.Command, error) {
	if !remote.ValidSerial(serial) {
		return nil, remote.Command{}, fmt.Errorf("serial %q: want 4-32 of [A-Za-z0-9-]", serial)
	}
	if ttl <= 0 || ttl > MaxTTL {
		return nil, remote.Command{}, fmt.Errorf("command validity %s: want more than 0 and at most 7 days", ttl)
	}
	issued = issued.UTC().Truncate(time.Second)
	c := remote.Command{V: remote.Version, ID: id, Type: remote.CommandType(typ), Serial: serial, IssuedAt: issued, ExpiresAt: issued.Add(ttl), Args: args}
	p, err := c.Payload()
	if err != nil {
		return nil, c, err
	}
	if typ == TypeHQKeys {
		if err := CheckHQKeysArgs(args); err != nil {
			return nil, c, err
		}
		if !remote.ValidID(id) {
			return nil, c, fmt.Errorf("command id %q: want 1-64 of [A-Za-z0-9._-]", id)
		}
		return p, c, nil
	}
	if _, v := remote.CheckCommand(p, serial, issued, nil); !v.OK() {
		return nil, c, fmt.Errorf("command %s for %s: %s (%s)", id, serial, v.Reason, v.Detail)
	}
	return p, c, nil
}

// HQKeysArgs are the args of hq_keys.
type HQKeysArgs struct {
	Add    []KeyArg       `json:"add,omitempty"`
	Revoke []string       `json:"revoke,omitempty"`
	Policy map[string]int `json:"policy,omitempty"`
}

// KeyArg is one key hq_keys adds.
type KeyArg struct {
	KID  string `json:"kid"`
	Pub  []byte `json:"pub"` // base64 std, 32 bytes
	Role string `json:"role"`
}

// CheckHQKeysArgs checks hq_keys args with the terminal's own parser
// (remote.ParseHQKeysArgs). Whether the change fits a terminal's keyring
// (the last root key) only that terminal can judge.
func CheckHQKeysArgs(raw json.RawMessage) error {
	_, err := remote.ParseHQKeysArgs(raw)
	return err
}

// Signer is a key HQ signs with.
type Signer = remote.Signer

// LoadKey reads KID.key as hqctl keygen writes it (base64 Ed25519 seed, or
// a 64-byte private key); the kid defaults to the file name without .key.
func LoadKey(path, kid string) (Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Signer{}, fmt.Errorf("read key: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return Signer{}, fmt.Errorf("key %s: not base64", path)
	}
	var priv ed25519.PrivateKey
	switch len(raw) {
	case ed25519.SeedSize:
		priv = ed25519.NewKeyFromSeed(raw)
	case ed25519.PrivateKeySize:
		priv = ed25519.PrivateKey(raw)
	default:
		return Signer{}, fmt.Errorf("key %s: %d bytes, want a 32-byte Ed25519 seed", path, len(raw))
	}
	if kid == "" {
		kid = strings.TrimSuffix(filepath.Base(path), ".key")
	}
	if !remote.ValidID(kid) {
		return Signer{}, fmt.Errorf("kid %q: want 1-64 of [A-Za-z0-9._-]", kid)
	}
	return Signer{KID: kid, Priv: priv}, nil
}

// Assemble makes the envelope of a payload from operators' signatures: the
// single form for one, the sigs form for several (remote.md).
func Assemble(payload []byte, sigs []remote.Signature) ([]byte, error) {
	if len(sigs) == 0 {
		return nil, errors.New("assemble: no signature")
	}
	e := remote.Envelope{Payload: payload}
	if len(sigs) == 1 {
		e.KID, e.Sig = sigs[0].KID, sigs[0].Sig
	} else {
		e.Sigs = sigs
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	if len(raw) > remote.MaxEnvelope {
		return nil, fmt.Errorf("assemble: %d-byte envelope: %w", len(raw), remote.ErrTooLarge)
	}
	return raw, nil
}
