package remote

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Role is what an HQ key may sign (remote.md "Keys and policy"): every
// command type is accepted with ops or root signatures, hq_keys only with
// root ones.
type Role string

// HQ key roles.
const (
	RoleRoot Role = "root"
	RoleOps  Role = "ops"
)

// HQKey is one HQ command-signing public key with its role.
type HQKey struct {
	KID  string `json:"kid"`
	Pub  []byte `json:"pub"` // Ed25519, 32 bytes; base64 std on the wire
	Role Role   `json:"role"`
}

// MaxPolicy bounds a policy's signature count: more than a handful of
// co-signers is a typo, and a policy no key set can meet locks the
// terminal out of that command for good.
const MaxPolicy = 8

// Keyring is the terminal's HQ keys, their roles and the signature policy
// (command type -> distinct valid signatures needed; a type not listed
// needs 1). It lives with the factory identity and survives the wipe;
// hq_keys commands change it (Apply).
type Keyring struct {
	Keys   []HQKey             `json:"keys"`
	Policy map[CommandType]int `json:"policy,omitempty"`
}

// Validate checks the keyring: at least one key; kids unique and valid;
// 32-byte keys; known roles; a policy of known types whose counts the keys
// can meet (hq_keys counts root keys only).
func (k Keyring) Validate() error {
	if len(k.Keys) == 0 {
		return errors.New("no HQ key")
	}
	seen := map[string]bool{}
	for _, key := range k.Keys {
		if !ValidID(key.KID) {
			return fmt.Errorf("HQ key kid %q: want 1-64 of [A-Za-z0-9._-]", key.KID)
		}
		if seen[key.KID] {
			return fmt.Errorf("HQ key %q twice", key.KID)
		}
		seen[key.KID] = true
		if len(key.Pub) != ed25519.PublicKeySize {
			return fmt.Errorf("HQ key %q: %d bytes, want a %d-byte Ed25519 public key", key.KID, len(key.Pub), ed25519.PublicKeySize)
		}
		if key.Role != RoleRoot && key.Role != RoleOps {
			return fmt.Errorf("HQ key %q: role %q, want root or ops", key.KID, key.Role)
		}
	}
	for t, n := range k.Policy {
		if _, err := ParseCommandType(string(t)); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		if n < 1 || n > MaxPolicy {
			return fmt.Errorf("policy %s=%d: want 1 to %d signatures", t, n, MaxPolicy)
		}
		if have := len(k.eligible(t)); n > have {
			return fmt.Errorf("policy %s=%d: only %d key(s) may sign %s", t, n, have, t)
		}
	}
	return nil
}

// eligible returns the kids whose signatures count for type t.
func (k Keyring) eligible(t CommandType) []string {
	var out []string
	for _, key := range k.Keys {
		if t != TypeHQKeys || key.Role == RoleRoot {
			out = append(out, key.KID)
		}
	}
	return out
}

// Required is the number of distinct valid signatures type t needs.
func (k Keyring) Required(t CommandType) int {
	if n := k.Policy[t]; n > 0 {
		return n
	}
	return 1
}

// PublicKeys is the kid -> key map that Open and OpenSigners verify with.
// A revoked kid is not in it: its envelopes are unknown, and get no ack.
func (k Keyring) PublicKeys() map[string]ed25519.PublicKey {
	m := make(map[string]ed25519.PublicKey, len(k.Keys))
	for _, key := range k.Keys {
		m[key.KID] = ed25519.PublicKey(key.Pub)
	}
	return m
}

// Sufficient reports whether signers (the distinct kids whose signatures
// verified, from OpenSigners) meet the policy of type t: enough of them,
// and for hq_keys only root keys count. detail says what is missing.
func (k Keyring) Sufficient(t CommandType, signers []string) (ok bool, detail string) {
	eligible := k.eligible(t)
	n := 0
	for _, s := range signers {
		if slices.Contains(eligible, s) {
			n++
		}
	}
	need := k.Required(t)
	if n >= need {
		return true, ""
	}
	what := "signature"
	if t == TypeHQKeys {
		what = "root signature"
	}
	return false, fmt.Sprintf("%s needs %d distinct %s(s), has %d", t, need, what, n)
}

// HQKeysArgs are the args of an hq_keys command: keys to add, kids to
// revoke, policy entries to set (each part optional, at least one).
type HQKeysArgs struct {
	Add    []HQKey             `json:"add,omitempty"`
	Revoke []string            `json:"revoke,omitempty"`
	Policy map[CommandType]int `json:"policy,omitempty"`
}

// ParseHQKeysArgs decodes hq_keys args strictly:
// {"add":[{"kid","pub","role"}],"revoke":[kid…],"policy":{type:n}}. It
// checks the syntax only; whether the change fits the terminal's keyring
// (the last root key, a kid already used) is Keyring.Apply's.
func ParseHQKeysArgs(raw json.RawMessage) (HQKeysArgs, error) {
	var a HQKeysArgs
	wrap := func(err error) (HQKeysArgs, error) { return HQKeysArgs{}, fmt.Errorf("hq_keys args: %w", err) }
	m, err := argsObject(raw, "add", "revoke", "policy")
	if err != nil {
		return wrap(err)
	}
	if len(m) == 0 {
		return wrap(errors.New("want at least one of add, revoke, policy"))
	}
	if v, ok := m["add"]; ok {
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil || items == nil {
			return wrap(errors.New("add: not an array"))
		}
		for i, it := range items {
			km, err := argsObject(it, "kid", "pub", "role")
			if err != nil {
				return wrap(fmt.Errorf("add[%d]: %w", i, err))
			}
			var key HQKey
			var pub, role string
			for _, f := range []struct {
				name string
				dst  *string
			}{{"kid", &key.KID}, {"pub", &pub}, {"role", &role}} {
				if err := reqString(km, f.name, f.dst); err != nil {
					return wrap(fmt.Errorf("add[%d]: %w", i, err))
				}
			}
			if !ValidID(key.KID) {
				return wrap(fmt.Errorf("add[%d]: kid %q: want 1-64 of [A-Za-z0-9._-]", i, key.KID))
			}
			if key.Pub, err = base64.StdEncoding.Strict().DecodeString(pub); err != nil || len(key.Pub) != ed25519.PublicKeySize {
				return wrap(fmt.Errorf("add[%d]: pub: want the standard base64 of a 32-byte Ed25519 public key", i))
			}
			key.Role = Role(role)
			if key.Role != RoleRoot && key.Role != RoleOps {
				return wrap(fmt.Errorf("add[%d]: role %q: want root or ops", i, role))
			}
			if slices.ContainsFunc(a.Add, func(k HQKey) bool { return k.KID == key.KID }) {
				return wrap(fmt.Errorf("add: kid %q twice", key.KID))
			}
			a.Add = append(a.Add, key)
		}
	}
	if v, ok := m["revoke"]; ok {
		if err := json.Unmarshal(v, &a.Revoke); err != nil || a.Revoke == nil {
			return wrap(errors.New("revoke: not an array of kids"))
		}
		for _, kid := range a.Revoke {
			if !ValidID(kid) {
				return wrap(fmt.Errorf("revoke: kid %q: want 1-64 of [A-Za-z0-9._-]", kid))
			}
			if slices.ContainsFunc(a.Add, func(k HQKey) bool { return k.KID == kid }) {
				return wrap(fmt.Errorf("kid %q both added and revoked", kid))
			}
		}
	}
	if v, ok := m["policy"]; ok {
		pm, err := argsObject(v, typeNames()...)
		if err != nil {
			return wrap(fmt.Errorf("policy: %w", err))
		}
		if len(pm) == 0 {
			return wrap(errors.New("policy: empty"))
		}
		a.Policy = map[CommandType]int{}
		for t, nv := range pm {
			n, err := strconv.Atoi(string(bytes.TrimSpace(nv)))
			if err != nil || n < 1 || n > MaxPolicy {
				return wrap(fmt.Errorf("policy %s: %s, want an integer 1 to %d", t, nv, MaxPolicy))
			}
			a.Policy[CommandType(t)] = n
		}
	}
	return a, nil
}

func typeNames() []string {
	out := make([]string, len(CommandTypes))
	for i, t := range CommandTypes {
		out[i] = string(t)
	}
	return out
}

// Apply returns the keyring with args applied: revocations, then
// additions, then policy entries (a count of 1 is the default and is
// dropped from the map). Revoking a kid the keyring does not hold, or
// adding one it holds with the same key and role, changes nothing, so a
// fleet-wide rotation can be sent again. It refuses (the command is
// invalid) a change that would leave no root key where there was one, a
// kid re-added with another key or role, or a policy the remaining keys
// cannot meet.
func (k Keyring) Apply(a HQKeysArgs) (Keyring, error) {
	roots := func(r Keyring) int { return len(r.eligible(TypeHQKeys)) }
	out := Keyring{Policy: map[CommandType]int{}}
	for _, key := range k.Keys {
		if !slices.Contains(a.Revoke, key.KID) {
			out.Keys = append(out.Keys, key)
		}
	}
	for _, add := range a.Add {
		i := slices.IndexFunc(out.Keys, func(h HQKey) bool { return h.KID == add.KID })
		if i < 0 {
			out.Keys = append(out.Keys, add)
			continue
		}
		if !bytes.Equal(out.Keys[i].Pub, add.Pub) || out.Keys[i].Role != add.Role {
			return Keyring{}, fmt.Errorf("hq_keys: kid %q is in use with another key or role (revoke it, add a new kid)", add.KID)
		}
	}
	for t, n := range k.Policy {
		out.Policy[t] = n
	}
	for t, n := range a.Policy {
		out.Policy[t] = n
	}
	for t, n := range out.Policy {
		if n == 1 {
			delete(out.Policy, t)
		}
	}
	if len(out.Policy) == 0 {
		out.Policy = nil
	}
	slices.SortFunc(out.Keys, func(x, y HQKey) int {
		switch {
		case x.KID < y.KID:
			return -1
		case x.KID > y.KID:
			return 1
		}
		return 0
	})
	if roots(k) > 0 && roots(out) == 0 {
		return Keyring{}, errors.New("hq_keys: revoking the last root key")
	}
	if err := out.Validate(); err != nil {
		return Keyring{}, fmt.Errorf("hq_keys: %w", err)
	}
	return out, nil
}

// KeysResult is the result of a succeeded hq_keys ack: the key ids by
// role and the policy now in force (remote.md).
type KeysResult struct {
	Keys   map[Role][]string   `json:"keys"`
	Policy map[CommandType]int `json:"policy"`
}

// Result is the keyring as an hq_keys ack reports it: kids sorted within
// each role, both roles always present, the explicit policy entries.
func (k Keyring) Result() KeysResult {
	r := KeysResult{Keys: map[Role][]string{RoleRoot: {}, RoleOps: {}}, Policy: map[CommandType]int{}}
	for _, key := range k.Keys {
		r.Keys[key.Role] = append(r.Keys[key.Role], key.KID)
	}
	for _, kids := range r.Keys {
		slices.Sort(kids)
	}
	for t, n := range k.Policy {
		r.Policy[t] = n
	}
	return r
}
