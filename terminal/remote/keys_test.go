package remote

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func testPub(seed byte) []byte {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)).Public().(ed25519.PublicKey)
}

func testKeyring() Keyring {
	return Keyring{Keys: []HQKey{
		{KID: "hq-1", Pub: testPub(1), Role: RoleOps},
		{KID: "hq-2", Pub: testPub(2), Role: RoleOps},
		{KID: "root-1", Pub: testPub(9), Role: RoleRoot},
	}}
}

func TestKeyringValidate(t *testing.T) {
	ok := testKeyring()
	if err := ok.Validate(); err != nil {
		t.Fatalf("good keyring: %v", err)
	}
	bad := map[string]Keyring{
		"empty":            {},
		"bad kid":          {Keys: []HQKey{{KID: "hq/1", Pub: testPub(1), Role: RoleOps}}},
		"kid twice":        {Keys: []HQKey{{KID: "a", Pub: testPub(1), Role: RoleOps}, {KID: "a", Pub: testPub(2), Role: RoleOps}}},
		"short key":        {Keys: []HQKey{{KID: "a", Pub: []byte{1, 2}, Role: RoleOps}}},
		"bad role":         {Keys: []HQKey{{KID: "a", Pub: testPub(1), Role: "admin"}}},
		"unknown type":     {Keys: ok.Keys, Policy: map[CommandType]int{"reboot": 2}},
		"policy 0":         {Keys: ok.Keys, Policy: map[CommandType]int{TypeUnbind: 0}},
		"unmeetable":       {Keys: ok.Keys, Policy: map[CommandType]int{TypeUnbind: 4}},
		"unmeetable roots": {Keys: ok.Keys, Policy: map[CommandType]int{TypeHQKeys: 2}},
	}
	for name, k := range bad {
		if err := k.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil, want an error", name)
		}
	}
}

func TestKeyringSufficient(t *testing.T) {
	k := testKeyring()
	k.Policy = map[CommandType]int{TypeUnbind: 2}
	tests := []struct {
		typ     CommandType
		signers []string
		want    bool
	}{
		{TypeStatus, []string{"hq-1"}, true},
		{TypeStatus, []string{"root-1"}, true},
		{TypeStatus, nil, false},
		{TypeUnbind, []string{"hq-1"}, false},
		{TypeUnbind, []string{"hq-1", "hq-2"}, true},
		{TypeUnbind, []string{"hq-1", "root-1"}, true},
		{TypeUnbind, []string{"hq-1", "hq-9"}, false}, // an unknown kid does not count
		{TypeHQKeys, []string{"hq-1", "hq-2"}, false},
		{TypeHQKeys, []string{"root-1"}, true},
	}
	for _, tc := range tests {
		if got, detail := k.Sufficient(tc.typ, tc.signers); got != tc.want {
			t.Errorf("Sufficient(%s, %v) = %v (%s), want %v", tc.typ, tc.signers, got, detail, tc.want)
		}
	}
}

func TestParseHQKeysArgs(t *testing.T) {
	pub := base64.StdEncoding.EncodeToString(testPub(3))
	good := []string{
		`{"add":[{"kid":"hq-3","pub":"` + pub + `","role":"ops"}]}`,
		`{"revoke":["hq-1"]}`,
		`{"policy":{"unbind":2}}`,
		`{"add":[{"kid":"root-2","pub":"` + pub + `","role":"root"}],"revoke":["root-1"],"policy":{"unbind":2,"hq_keys":1}}`,
	}
	for _, raw := range good {
		if _, err := ParseHQKeysArgs(json.RawMessage(raw)); err != nil {
			t.Errorf("ParseHQKeysArgs(%s): %v", raw, err)
		}
	}
	bad := []string{
		`{}`, ``, `[]`, `{"rotate":true}`,
		`{"add":{}}`, `{"add":[{"kid":"hq-3","pub":"` + pub + `"}]}`,
		`{"add":[{"kid":"hq-3","pub":"AAAA","role":"ops"}]}`,
		`{"add":[{"kid":"hq-3","pub":"` + pub + `","role":"god"}]}`,
		`{"add":[{"kid":"hq 3","pub":"` + pub + `","role":"ops"}]}`,
		`{"add":[{"kid":"hq-3","pub":"` + pub + `","role":"ops","x":1}]}`,
		`{"add":[{"kid":"hq-3","pub":"` + pub + `","role":"ops"},{"kid":"hq-3","pub":"` + pub + `","role":"ops"}]}`,
		`{"revoke":"hq-1"}`, `{"revoke":[""]}`,
		`{"add":[{"kid":"hq-3","pub":"` + pub + `","role":"ops"}],"revoke":["hq-3"]}`,
		`{"policy":{}}`, `{"policy":{"reboot":2}}`, `{"policy":{"unbind":0}}`, `{"policy":{"unbind":"2"}}`, `{"policy":{"unbind":1.5}}`,
		`{"policy":{"unbind":9}}`,
	}
	for _, raw := range bad {
		if a, err := ParseHQKeysArgs(json.RawMessage(raw)); err == nil {
			t.Errorf("ParseHQKeysArgs(%s) = %+v, want an error", raw, a)
		}
	}
}

func TestKeyringApply(t *testing.T) {
	k := testKeyring()
	// Rotation: hq-1 out, hq-3 in, unbind needs two.
	got, err := k.Apply(HQKeysArgs{Add: []HQKey{{KID: "hq-3", Pub: testPub(3), Role: RoleOps}}, Revoke: []string{"hq-1"},
		Policy: map[CommandType]int{TypeUnbind: 2}})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := json.Marshal(got.Result())
	if want := `{"keys":{"ops":["hq-2","hq-3"],"root":["root-1"]},"policy":{"unbind":2}}`; string(res) != want {
		t.Errorf("result %s, want %s", res, want)
	}
	if _, ok := got.PublicKeys()["hq-1"]; ok {
		t.Error("a revoked kid is still a known key")
	}
	if len(k.Keys) != 3 || k.Policy != nil {
		t.Error("Apply changed the keyring it was called on")
	}
	// Applying the same change again changes nothing (fleet jobs re-send).
	again, err := got.Apply(HQKeysArgs{Add: []HQKey{{KID: "hq-3", Pub: testPub(3), Role: RoleOps}}, Revoke: []string{"hq-1"}})
	if err != nil {
		t.Fatalf("re-applied rotation: %v", err)
	}
	if r, _ := json.Marshal(again.Result()); string(r) != string(res) {
		t.Errorf("re-applied rotation: %s, want %s", r, res)
	}
	// Policy back to the default: dropped.
	def, err := got.Apply(HQKeysArgs{Policy: map[CommandType]int{TypeUnbind: 1}})
	if err != nil || def.Policy != nil {
		t.Errorf("policy unbind=1: %+v, %v; want no explicit policy", def.Policy, err)
	}

	refused := map[string]HQKeysArgs{
		"last root key":        {Revoke: []string{"root-1"}},
		"kid reused":           {Add: []HQKey{{KID: "hq-2", Pub: testPub(7), Role: RoleOps}}},
		"role changed":         {Add: []HQKey{{KID: "hq-2", Pub: testPub(2), Role: RoleRoot}}},
		"unmeetable policy":    {Policy: map[CommandType]int{TypeUnbind: 4}},
		"policy loses its key": {Revoke: []string{"hq-1", "hq-2"}, Policy: map[CommandType]int{TypeUnbind: 2}},
	}
	for name, a := range refused {
		if _, err := k.Apply(a); err == nil {
			t.Errorf("%s: Apply succeeded, want refused", name)
		}
	}
	// A root key may be revoked while another remains.
	two, err := k.Apply(HQKeysArgs{Add: []HQKey{{KID: "root-2", Pub: testPub(8), Role: RoleRoot}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := two.Apply(HQKeysArgs{Revoke: []string{"root-1"}}); err != nil {
		t.Errorf("revoking one of two root keys: %v", err)
	}
}

// TestCheckerSignatures: the insufficient-signatures row sits after the
// args (an invalid command is invalid, however signed) and before the
// caller's wrong-state; hq_keys counts root signatures only, and its args
// are judged against the keyring.
func TestCheckerSignatures(t *testing.T) {
	k := testKeyring()
	k.Policy = map[CommandType]int{TypeUnbind: 2}
	c := Checker{Serial: "PA-0001", Keys: &k}
	tests := []struct {
		name    string
		payload []byte
		signers []string
		reason  string
	}{
		{"unbind, one ops signature", payload("id", `"c-2"`), []string{"hq-1"}, ReasonInsufficientSigs},
		{"unbind, two signatures", payload("id", `"c-2"`), []string{"hq-1", "root-1"}, ""},
		{"status, one signature", payload("id", `"c-2"`, "type", `"status"`, "args", `{}`), []string{"hq-2"}, ""},
		{"invalid args beat signatures", payload("id", `"c-2"`, "args", `{"x":1}`), []string{"hq-1"}, ReasonInvalid},
		{"expired beats signatures", payload("id", `"c-2"`, "expires_at", `"2025-03-01T11:59:59Z"`), []string{"hq-1"}, ReasonExpired},
		{"hq_keys by ops", payload("id", `"c-2"`, "type", `"hq_keys"`, "args", `{"revoke":["hq-1"]}`), []string{"hq-1", "hq-2"}, ReasonInsufficientSigs},
		{"hq_keys by root", payload("id", `"c-2"`, "type", `"hq_keys"`, "args", `{"revoke":["hq-1"]}`), []string{"root-1"}, ""},
		{"hq_keys revoking the last root", payload("id", `"c-2"`, "type", `"hq_keys"`, "args", `{"revoke":["root-1"]}`), []string{"root-1"}, ReasonInvalid},
	}
	for _, tc := range tests {
		_, v := c.Check(tc.payload, tc.signers, now)
		if v.Reason != tc.reason {
			t.Errorf("%s: verdict %+v, want %q", tc.name, v, tc.reason)
		}
		if tc.reason == ReasonInsufficientSigs && !strings.Contains(v.Detail, "needs") {
			t.Errorf("%s: detail %q", tc.name, v.Detail)
		}
	}
	// Expired with too few signatures: the clock is not the only failure.
	_, v := c.Check(payload("id", `"c-2"`, "expires_at", `"2025-03-01T11:59:59Z"`), []string{"hq-1"}, now)
	if v.OnlyTime {
		t.Errorf("expired and one signature short: OnlyTime set")
	}
}

// TestPolicyAcceptsUpdate: a signature policy may name update, like
// unbind (factory-init --require update=2, hq_keys policy).
func TestPolicyAcceptsUpdate(t *testing.T) {
	a, err := ParseHQKeysArgs(json.RawMessage(`{"policy":{"update":2,"unbind":2}}`))
	if err != nil {
		t.Fatalf("ParseHQKeysArgs: %v", err)
	}
	if a.Policy[TypeUpdate] != 2 {
		t.Fatalf("policy %v, want update=2", a.Policy)
	}
}
