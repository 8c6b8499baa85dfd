package remote

import (
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// payload builds a command payload from the good one, with members replaced
// (raw JSON values) or removed (value "-").
func payload(over ...string) []byte {
	keys := []string{"v", "id", "type", "serial", "issued_at", "expires_at", "args"}
	vals := map[string]string{
		"v": `1`, "id": `"c-1"`, "type": `"unbind"`, "serial": `"PA-0001"`,
		"issued_at": `"2025-03-01T11:00:00Z"`, "expires_at": `"2025-03-02T11:00:00+08:00"`,
		"args": `{"reason":"closed","unsettled":"force"}`,
	}
	for i := 0; i+1 < len(over); i += 2 {
		if _, ok := vals[over[i]]; !ok {
			keys = append(keys, over[i])
		}
		vals[over[i]] = over[i+1]
	}
	var b strings.Builder
	b.WriteString("{")
	first := true
	for _, k := range keys {
		if vals[k] == "-" {
			continue
		}
		if !first {
			b.WriteString(",")
		}
		first = false
		b.WriteString(`"` + k + `":` + vals[k])
	}
	b.WriteString("}")
	return []byte(b.String())
}

func TestCheckCommand(t *testing.T) {
	executed := payload() // c-1 executed with exactly these bytes
	seen := func(id string) ([32]byte, bool) {
		if id == "c-1" {
			return sha256.Sum256(executed), true
		}
		return [32]byte{}, false
	}
	provArgs := `{"tid":"12345678","mid":"123456789012345","merchant_name":"Noodle Bar","acquirer":{"addr":"10.0.0.1:5000","tls":false,"tpdu":"6000030000"},"tmk_sealed":"AAECAw==","tmk_kcv":"ab12CD","activation":"act-1"}`

	tests := []struct {
		name    string
		payload []byte
		wantID  string
		reason  string
		resend  bool
	}{
		{"fresh good", payload("id", `"c-2"`), "c-2", "", false},
		{"args absent", payload("id", `"c-2"`, "args", "-"), "c-2", "", false},
		{"args null", payload("id", `"c-2"`, "args", "null"), "c-2", "", false},
		{"fractional seconds and offset", payload("id", `"c-2"`, "issued_at", `"2025-03-01T19:59:59.123+08:00"`), "c-2", "", false},
		{"status", payload("id", `"c-2"`, "type", `"status"`, "args", `{}`), "c-2", "", false},
		{"provision", payload("id", `"c-2"`, "type", `"provision"`, "args", provArgs), "c-2", "", false},

		// 1. invalid
		{"not JSON", []byte(`{"v":1,`), "", ReasonInvalid, false},
		{"JSON array", []byte(`[]`), "", ReasonInvalid, false},
		{"trailing data", append(payload("id", `"c-2"`), '1'), "", ReasonInvalid, false},
		{"v 2", payload("id", `"c-2"`, "v", `2`), "c-2", ReasonInvalid, false},
		{"v string", payload("id", `"c-2"`, "v", `"1"`), "c-2", ReasonInvalid, false},
		{"v missing", payload("id", `"c-2"`, "v", "-"), "c-2", ReasonInvalid, false},
		{"id missing", payload("id", "-"), "", ReasonInvalid, false},
		{"id empty", payload("id", `""`), "", ReasonInvalid, false},
		{"id bad char", payload("id", `"c/2"`), "", ReasonInvalid, false},
		{"id 65 chars", payload("id", `"`+strings.Repeat("a", 65)+`"`), "", ReasonInvalid, false},
		{"id number", payload("id", `12`), "", ReasonInvalid, false},
		{"type missing", payload("id", `"c-2"`, "type", "-"), "c-2", ReasonInvalid, false},
		{"serial missing", payload("id", `"c-2"`, "serial", "-"), "c-2", ReasonInvalid, false},
		{"issued_at missing", payload("id", `"c-2"`, "issued_at", "-"), "c-2", ReasonInvalid, false},
		{"expires_at missing", payload("id", `"c-2"`, "expires_at", "-"), "c-2", ReasonInvalid, false},
		{"unknown key", payload("id", `"c-2"`, "extra", `true`), "c-2", ReasonInvalid, false},
		// A duplicate key makes the object ambiguous: invalid, but the id,
		// given once, is readable and echoed (remote.md).
		{"duplicate key", payload("id", `"c-2"`, "args", `{}, "args":{"unsettled":"force"}`), "c-2", ReasonInvalid, false},
		{"duplicate id", payload("id", `"c-2", "id":"c-3"`), "", ReasonInvalid, false},
		{"duplicate key before a bad id", []byte(`{"v":1,"v":1,"id":"c/2"}`), "", ReasonInvalid, false},
		{"time without zone", payload("id", `"c-2"`, "expires_at", `"2025-03-02T11:00:00"`), "c-2", ReasonInvalid, false},
		{"date only", payload("id", `"c-2"`, "issued_at", `"2025-03-01"`), "c-2", ReasonInvalid, false},
		{"invalid wins over wrong serial", payload("id", `"c-2"`, "v", `2`, "serial", `"PA-9"`), "c-2", ReasonInvalid, false},

		// 2. wrong-serial, before the seen check
		{"wrong serial", payload("id", `"c-2"`, "serial", `"PA-0002"`), "c-2", ReasonWrongSerial, false},
		{"wrong serial beats replay", payload("serial", `"PA-0002"`), "c-1", ReasonWrongSerial, false},

		// 3. seen with the same bytes: resend, even expired and whatever else
		{"resend", executed, "c-1", "", true},

		// 4. replayed
		{"replayed", payload("args", `{"unsettled":"force"}`), "c-1", ReasonReplayed, false},
		{"replayed beats expired", payload("expires_at", `"2025-03-01T11:59:59Z"`), "c-1", ReasonReplayed, false},

		// 5. the validity window: at most 7 days
		{"window 7 days", payload("id", `"c-2"`, "issued_at", `"2025-03-01T11:00:00Z"`, "expires_at", `"2025-03-08T11:00:00Z"`), "c-2", "", false},
		{"window 7 days 1 s", payload("id", `"c-2"`, "issued_at", `"2025-03-01T11:00:00Z"`, "expires_at", `"2025-03-08T11:00:01Z"`), "c-2", ReasonInvalid, false},
		{"window 10 years", payload("id", `"c-2"`, "issued_at", `"2025-03-01T11:00:00Z"`, "expires_at", `"2035-03-01T11:00:00Z"`), "c-2", ReasonInvalid, false},
		{"window beats not-yet-valid", payload("id", `"c-2"`, "issued_at", `"2025-03-02T11:00:00Z"`, "expires_at", `"2025-03-12T11:00:00Z"`), "c-2", ReasonInvalid, false},
		{"replayed beats window", payload("expires_at", `"2035-03-01T11:00:00Z"`), "c-1", ReasonReplayed, false},
		{"wrong serial beats window", payload("id", `"c-2"`, "serial", `"PA-0002"`, "expires_at", `"2035-03-01T11:00:00Z"`), "c-2", ReasonWrongSerial, false},

		// 6. expired (now <= expires_at passes)
		{"expires now", payload("id", `"c-2"`, "expires_at", `"2025-03-01T12:00:00Z"`), "c-2", "", false},
		{"expired", payload("id", `"c-2"`, "expires_at", `"2025-03-01T11:59:59Z"`), "c-2", ReasonExpired, false},
		{"expired beats not-yet-valid", payload("id", `"c-2"`, "expires_at", `"2025-03-01T11:59:59Z"`, "issued_at", `"2025-03-02T00:00:00Z"`), "c-2", ReasonExpired, false},
		{"expired beats bad type", payload("id", `"c-2"`, "expires_at", `"2025-03-01T11:59:59Z"`, "type", `"reboot"`), "c-2", ReasonExpired, false},

		// 7. not-yet-valid (issued_at <= now + 5 min passes)
		{"issued in 5 min", payload("id", `"c-2"`, "issued_at", `"2025-03-01T12:05:00Z"`), "c-2", "", false},
		{"issued in 5 min 1 s", payload("id", `"c-2"`, "issued_at", `"2025-03-01T12:05:01Z"`), "c-2", ReasonNotYetValid, false},
		{"not-yet-valid beats bad args", payload("id", `"c-2"`, "issued_at", `"2025-03-01T13:00:00Z"`, "args", `{"x":1}`), "c-2", ReasonNotYetValid, false},

		// 8. type and args
		{"unknown type", payload("id", `"c-2"`, "type", `"reboot"`), "c-2", ReasonInvalid, false},
		{"type number", payload("id", `"c-2"`, "type", `7`), "c-2", ReasonInvalid, false},
		{"args not object", payload("id", `"c-2"`, "args", `[]`), "c-2", ReasonInvalid, false},
		{"unbind unknown arg", payload("id", `"c-2"`, "args", `{"wipe":true}`), "c-2", ReasonInvalid, false},
		{"unbind bad unsettled", payload("id", `"c-2"`, "args", `{"unsettled":"later"}`), "c-2", ReasonInvalid, false},
		{"status with args", payload("id", `"c-2"`, "type", `"status"`, "args", `{"now":true}`), "c-2", ReasonInvalid, false},
		{"provision without args", payload("id", `"c-2"`, "type", `"provision"`, "args", "-"), "c-2", ReasonInvalid, false},
		{"hq_keys without args", payload("id", `"c-2"`, "type", `"hq_keys"`, "args", "-"), "c-2", ReasonInvalid, false},
		{"hq_keys revoke", payload("id", `"c-2"`, "type", `"hq_keys"`, "args", `{"revoke":["hq-1"]}`), "c-2", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, v := CheckCommand(tc.payload, "PA-0001", now, seen)
			if v.CmdID != tc.wantID || v.Reason != tc.reason || v.Resend != tc.resend {
				t.Fatalf("verdict %+v, want id %q reason %q resend %v\npayload %s", v, tc.wantID, tc.reason, tc.resend, tc.payload)
			}
			if v.OK() != (tc.reason == "" && !tc.resend) {
				t.Fatalf("OK() = %v for %+v", v.OK(), v)
			}
			if v.OK() && (c.ID != tc.wantID || c.Serial != "PA-0001" || c.V != 1 || !json.Valid(c.Args)) {
				t.Fatalf("command %+v", c)
			}
		})
	}
}

func TestCheckCommandNilSeen(t *testing.T) {
	c, v := CheckCommand(payload(), "PA-0001", now, nil)
	if !v.OK() {
		t.Fatalf("verdict %+v", v)
	}
	a, err := c.Unbind()
	if err != nil || a.Unsettled != UnsettledForce || a.Reason != "closed" {
		t.Fatalf("Unbind() = %+v, %v", a, err)
	}
	if !c.IssuedAt.Equal(time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC)) || !c.ExpiresAt.Equal(time.Date(2025, 3, 2, 3, 0, 0, 0, time.UTC)) {
		t.Fatalf("times %v %v", c.IssuedAt, c.ExpiresAt)
	}
}

func TestCommandPayloadRoundTrip(t *testing.T) {
	c := Command{ID: "unbind-PA-0001-1", Type: TypeUnbind, Serial: "PA-0001",
		IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour), Args: json.RawMessage(`{"unsettled":"refuse"}`)}
	b, err := c.Payload()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"id":"unbind-PA-0001-1","type":"unbind","serial":"PA-0001","issued_at":"2025-03-01T12:00:00Z","expires_at":"2025-03-02T12:00:00Z","args":{"unsettled":"refuse"}}`
	if string(b) != want {
		t.Fatalf("payload\n got %s\nwant %s", b, want)
	}
	got, v := CheckCommand(b, "PA-0001", now, nil)
	if !v.OK() || got.ID != c.ID || !got.ExpiresAt.Equal(c.ExpiresAt) {
		t.Fatalf("round trip: %+v %+v", got, v)
	}
}

func TestStateOK(t *testing.T) {
	tests := []struct {
		typ                  CommandType
		life, pending, named string
		want                 bool
	}{
		{TypeUnbind, "active", "", "", true},
		{TypeUnbind, "unactivated", "", "", false},
		{TypeUnbind, "unbinding", "", "", false},
		{TypeUnbind, "tampered", "", "", false},
		{TypeProvision, "unactivated", "act-1", "act-1", true},
		{TypeProvision, "unactivated", "act-1", "act-2", false},
		{TypeProvision, "unactivated", "", "", false},
		{TypeProvision, "active", "act-1", "act-1", false},
		{TypeStatus, "active", "", "", true},
		{TypeStatus, "unactivated", "", "", true},
		{TypeStatus, "tampered", "", "", true},
		{TypeHQKeys, "unactivated", "", "", true},
		{TypeHQKeys, "unbinding", "", "", true},
		{"reboot", "active", "", "", false},
	}
	for _, tc := range tests {
		if got := StateOK(tc.typ, tc.life, tc.pending, tc.named); got != tc.want {
			t.Errorf("StateOK(%q, %q, %q, %q) = %v, want %v", tc.typ, tc.life, tc.pending, tc.named, got, tc.want)
		}
	}
}

// TestCheckOnlyTime: a command failing on expired or not-yet-valid says
// whether the clock alone decided (every later row passes), which is what
// lets a terminal with an untrusted clock hold it instead.
func TestCheckOnlyTime(t *testing.T) {
	tests := []struct {
		name     string
		payload  []byte
		reason   string
		onlyTime bool
	}{
		{"expired, good otherwise", payload("id", `"c-2"`, "expires_at", `"2025-03-01T11:59:59Z"`), ReasonExpired, true},
		{"not yet valid, good otherwise", payload("id", `"c-2"`, "issued_at", `"2025-03-01T12:05:01Z"`), ReasonNotYetValid, true},
		{"expired, bad type", payload("id", `"c-2"`, "expires_at", `"2025-03-01T11:59:59Z"`, "type", `"reboot"`), ReasonExpired, false},
		{"not yet valid, bad args", payload("id", `"c-2"`, "issued_at", `"2025-03-01T13:00:00Z"`, "args", `{"x":1}`), ReasonNotYetValid, false},
		{"good", payload("id", `"c-2"`), "", false},
		{"bad args, valid time", payload("id", `"c-2"`, "args", `{"x":1}`), ReasonInvalid, false},
	}
	for _, tc := range tests {
		_, v := CheckCommand(tc.payload, "PA-0001", now, nil)
		if v.Reason != tc.reason || v.OnlyTime != tc.onlyTime {
			t.Errorf("%s: verdict %+v, want reason %q onlyTime %v", tc.name, v, tc.reason, tc.onlyTime)
		}
	}
}
