package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/terminal/remote"
)

func demoRequest(serial string) codeRequest {
	return codeRequest{Serial: serial, TID: "10000001", MID: "100000000000001", MerchantName: "DEMO SHOP",
		Acquirer: remote.Acquirer{Addr: "127.0.0.1:15000", TPDU: "6000030000"}, TTL: time.Hour}
}

func readStateFile(t *testing.T, path string) *hqState {
	t.Helper()
	st, err := readState(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestActivationCodeCLI(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "hq-state.json")
	base := []string{"activation-code", "--state", state, "--serial", "DEMO-0001", "--tid", "10000001",
		"--mid", "100000000000001", "--acquirer", "127.0.0.1:15000", "--merchant-name", "DEMO SHOP"}

	code, out, errOut := runHQ(base...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	m := regexp.MustCompile(`^activation code for DEMO-0001: (\d{8}) \(TID 10000001, MID 100000000000001, valid until \S+, one use\)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("human output %q", out)
	}
	first := m[1]

	code, out, errOut = runHQ(append(base, "--json", "--ttl", "2h")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var j struct {
		Serial, Code, TID, MID string
		ExpiresAt              time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || j.Serial != "DEMO-0001" || len(j.Code) != 8 || j.TID != "10000001" {
		t.Fatalf("json output %q: %v", out, err)
	}
	if d := time.Until(j.ExpiresAt); d < 119*time.Minute || d > 121*time.Minute {
		t.Fatalf("expires_at %s, want in 2h", j.ExpiresAt)
	}

	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, %v; want 0600", fi.Mode(), err)
	}
	st := readStateFile(t, state)
	if len(st.Codes) != 2 || st.Codes[0].Code != first || st.Codes[0].Status != codeSuperseded ||
		st.Codes[1].Code != j.Code || st.Codes[1].Status != codePending || st.Codes[1].Acquirer.TPDU != "6000030000" {
		b, _ := json.Marshal(st)
		t.Fatalf("state after two codes: %s", b)
	}

	bad := []struct {
		name string
		args []string
		want string
	}{
		{"no state", []string{"activation-code", "--serial", "DEMO-0001"}, "required"},
		{"short tid", replaceFlag(base, "--tid", "1234"), "tid"},
		{"long mid", replaceFlag(base, "--mid", "1000000000000012"), "mid"},
		{"bad acquirer", replaceFlag(base, "--acquirer", "nohost"), "addr"},
		{"bad tpdu", append(base, "--tpdu", "60000300"), "tpdu"},
		{"bad serial", replaceFlag(base, "--serial", "a/b"), "serial"},
		{"zero ttl", append(base, "--ttl", "0s"), "ttl"},
		{"long name", replaceFlag(base, "--merchant-name", strings.Repeat("N", 41)), "merchant_name"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runHQ(tc.args...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
	if st2 := readStateFile(t, state); len(st2.Codes) != 2 {
		t.Fatalf("refused requests changed the state: %d codes", len(st2.Codes))
	}
}

func replaceFlag(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == flag {
			out[i+1] = value
		}
	}
	return out
}

// Concurrent issuers (each lockFile call opens its own file description,
// so flock serialises goroutines like it serialises processes) lose no
// code and never hand out the same pending code twice.
func TestIssueCodeConcurrent(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	const n = 24
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = issueCode(state, demoRequest(fmt.Sprintf("SER-%04d", i)), time.Now(), rand.Reader)
		}()
	}
	wg.Wait()
	st := readStateFile(t, state)
	if len(st.Codes) != n {
		t.Fatalf("%d codes in the state, want %d", len(st.Codes), n)
	}
	seen := map[string]bool{}
	for i, c := range st.Codes {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if c.Status != codePending || seen[c.Code] {
			t.Fatalf("code %d: %+v (duplicate %v)", i, c, seen[c.Code])
		}
		seen[c.Code] = true
	}
}

// newCode redraws a code that clashes with a pending one.
func TestNewCodeAvoidsPendingClash(t *testing.T) {
	st := &hqState{Codes: []*codeRecord{{Code: "00000000", Status: codePending}}}
	// rand.Int reads 4 bytes for a limit of 10^8 (27 bits, top byte masked):
	// zeros first give 00000000 (taken), then 00000001.
	r := bytes.NewReader([]byte{0, 0, 0, 0, 0, 0, 0, 1})
	code, err := st.newCode(r)
	if err != nil || code != "00000001" {
		t.Fatalf("newCode = %q, %v; want 00000001", code, err)
	}
}

func TestMatch(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	mk := func() *hqState {
		return &hqState{Codes: []*codeRecord{
			{Code: "11111111", Serial: "SER-A", Status: codePending, ExpiresAt: now.Add(time.Hour)},
			{Code: "22222222", Serial: "SER-A", Status: codeUsed, Activation: "act-1", Provision: "{}", ExpiresAt: now.Add(time.Hour)},
			{Code: "33333333", Serial: "SER-B", Status: codePending, ExpiresAt: now.Add(-time.Second)},
			{Code: "44444444", Serial: "SER-B", Status: codeSuperseded, ExpiresAt: now.Add(time.Hour)},
			{Code: "55555555", Serial: "SER-C", Status: codeRevoked, ExpiresAt: now.Add(time.Hour)},
		}}
	}
	tests := []struct {
		serial, code, id string
		refusal          string
		dup, changed     bool
	}{
		{"SER-A", "11111111", "act-9", "", false, false},
		{"SER-A", "22222222", "act-1", "", true, false},
		{"SER-A", "22222222", "act-2", refuseUsed, false, false},
		{"SER-A", "99999999", "act-3", refuseUnknownCode, false, true},
		{"SER-A", "33333333", "act-4", refuseWrongSerial, false, true},
		{"SER-B", "33333333", "act-5", refuseExpired, false, false},
		{"SER-B", "44444444", "act-6", refuseSuperseded, false, false},
		{"SER-C", "55555555", "act-7", refuseRevoked, false, false},
		{"SER-C", "22222222", "act-8", refuseUnknownCode, false, false}, // SER-A's used code means nothing to SER-C
	}
	for _, tc := range tests {
		t.Run(tc.serial+"/"+tc.code+"/"+tc.id, func(t *testing.T) {
			r := mk().match(tc.serial, tc.code, tc.id, now)
			if r.refusal != tc.refusal || r.dup != tc.dup || r.changed != tc.changed {
				t.Fatalf("match = %+v; want refusal %q dup %v changed %v", r, tc.refusal, tc.dup, tc.changed)
			}
		})
	}
}

// The fifth wrong code of a serial revokes its pending code: the right
// code no longer works after that.
func TestMatchRevokesAfterAttempts(t *testing.T) {
	now := time.Now()
	st := &hqState{Codes: []*codeRecord{{Code: "12345678", Serial: "SER-A", Status: codePending, ExpiresAt: now.Add(time.Hour)}}}
	for i := 1; i <= maxCodeAttempts; i++ {
		r := st.match("SER-A", fmt.Sprintf("%08d", i), "act", now)
		if r.refusal != refuseUnknownCode || r.revoked != (i == maxCodeAttempts) {
			t.Fatalf("attempt %d: %+v", i, r)
		}
	}
	if r := st.match("SER-A", "12345678", "act", now); r.refusal != refuseRevoked {
		t.Fatalf("right code after %d wrong ones: %+v, want %s", maxCodeAttempts, r, refuseRevoked)
	}
}

func TestSetAcquirerKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acquirer-keys.json")
	if err := os.WriteFile(path, []byte(`{"99999999":"0123456789ABCDEF0123456789ABCDEF"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := setAcquirerKey(path, "10000001", []byte{0xab, 0xcd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}); err != nil {
		t.Fatal(err)
	}
	var keys map[string]string
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &keys); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"99999999": "0123456789ABCDEF0123456789ABCDEF", "10000001": "ABCD0102030405060708090A0B0C0D0E"}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if err := os.WriteFile(path, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := setAcquirerKey(path, "10000001", make([]byte, 16)); err == nil {
		t.Fatal("a corrupt keys file was overwritten")
	}
}

func TestSetOddParity(t *testing.T) {
	k := []byte{0x00, 0x01, 0xfe, 0xff, 0x10, 0x11}
	setOddParity(k)
	want := []byte{0x01, 0x01, 0xfe, 0xfe, 0x10, 0x10}
	if !bytes.Equal(k, want) {
		t.Fatalf("%x, want %x", k, want)
	}
}
