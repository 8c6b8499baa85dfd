package remote

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseUnbindArgs(t *testing.T) {
	tests := []struct {
		raw       string
		ok        bool
		unsettled UnsettledPolicy
	}{
		{``, true, UnsettledSettle},
		{`{}`, true, UnsettledSettle},
		{`{"reason":"store closed"}`, true, UnsettledSettle},
		{`{"unsettled":"settle"}`, true, UnsettledSettle},
		{`{"unsettled":"refuse"}`, true, UnsettledRefuse},
		{`{"unsettled":"force","reason":"` + strings.Repeat("闭", 200) + `"}`, true, UnsettledForce},
		{`{"reason":"` + strings.Repeat("a", 201) + `"}`, false, ""},
		{`{"unsettled":""}`, false, ""},
		{`{"unsettled":"FORCE"}`, false, ""},
		{`{"unsettled":null}`, false, ""},
		{`{"reason":5}`, false, ""},
		{`{"extra":1}`, false, ""},
		{`[]`, false, ""},
	}
	for _, tc := range tests {
		a, err := ParseUnbindArgs(json.RawMessage(tc.raw))
		if (err == nil) != tc.ok || (tc.ok && a.Unsettled != tc.unsettled) {
			t.Errorf("ParseUnbindArgs(%.40s) = %+v, %v; want ok %v unsettled %q", tc.raw, a, err, tc.ok, tc.unsettled)
		}
	}
}

func TestParseProvisionArgs(t *testing.T) {
	base := map[string]any{
		"tid": "12345678", "mid": "123456789012345", "merchant_name": "Noodle Bar",
		"acquirer":   map[string]any{"addr": "acq.example.com:5000", "tls": true, "tpdu": "6000030000"},
		"tmk_sealed": "AAECAw==", "tmk_kcv": "ab12CD", "activation": "act-1",
	}
	mk := func(edit func(m map[string]any)) json.RawMessage {
		m := map[string]any{}
		for k, v := range base {
			if a, ok := v.(map[string]any); ok {
				c := map[string]any{}
				for k2, v2 := range a {
					c[k2] = v2
				}
				v = c
			}
			m[k] = v
		}
		if edit != nil {
			edit(m)
		}
		b, _ := json.Marshal(m)
		return b
	}
	acq := func(m map[string]any) map[string]any { return m["acquirer"].(map[string]any) }
	tests := []struct {
		name string
		edit func(m map[string]any)
		ok   bool
	}{
		{"good", nil, true},
		{"no merchant_name", func(m map[string]any) { delete(m, "merchant_name") }, true},
		{"no tls", func(m map[string]any) { delete(acq(m), "tls") }, true},
		{"ipv6 addr", func(m map[string]any) { acq(m)["addr"] = "[::1]:5000" }, true},
		{"tid with space", func(m map[string]any) { m["tid"] = "1234 678" }, true},
		{"name 40 chars", func(m map[string]any) { m["merchant_name"] = strings.Repeat("面", 40) }, true},
		{"tid 7", func(m map[string]any) { m["tid"] = "1234567" }, false},
		{"tid control char", func(m map[string]any) { m["tid"] = "1234567\n" }, false},
		{"mid 16", func(m map[string]any) { m["mid"] = "1234567890123456" }, false},
		{"name 41 chars", func(m map[string]any) { m["merchant_name"] = strings.Repeat("a", 41) }, false},
		{"no tid", func(m map[string]any) { delete(m, "tid") }, false},
		{"no activation", func(m map[string]any) { delete(m, "activation") }, false},
		{"bad activation", func(m map[string]any) { m["activation"] = "a b" }, false},
		{"no acquirer", func(m map[string]any) { delete(m, "acquirer") }, false},
		{"acquirer not object", func(m map[string]any) { m["acquirer"] = "x" }, false},
		{"addr without port", func(m map[string]any) { acq(m)["addr"] = "acq.example.com" }, false},
		{"addr port 0", func(m map[string]any) { acq(m)["addr"] = "acq:0" }, false},
		{"addr empty host", func(m map[string]any) { acq(m)["addr"] = ":5000" }, false},
		{"tls string", func(m map[string]any) { acq(m)["tls"] = "yes" }, false},
		{"tpdu 8", func(m map[string]any) { acq(m)["tpdu"] = "60000300" }, false},
		{"tpdu not hex", func(m map[string]any) { acq(m)["tpdu"] = "600003000G" }, false},
		{"acquirer unknown key", func(m map[string]any) { acq(m)["mac"] = true }, false},
		{"sealed not base64", func(m map[string]any) { m["tmk_sealed"] = "***" }, false},
		{"sealed url base64", func(m map[string]any) { m["tmk_sealed"] = "AA-_" }, false},
		{"kcv 5", func(m map[string]any) { m["tmk_kcv"] = "ABCDE" }, false},
		{"kcv not hex", func(m map[string]any) { m["tmk_kcv"] = "ABCDEZ" }, false},
		{"unknown key", func(m map[string]any) { m["pin_key"] = "x" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseProvisionArgs(mk(tc.edit))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if tc.name == "good" && (a.TID != "12345678" || !a.Acquirer.TLS || len(a.TMKSealed) != 4 || a.Activation != "act-1") {
				t.Fatalf("args %+v", a)
			}
		})
	}
}

func TestParseUpdateArgs(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	good := `"url":"https://updates.example.com/posagent-1.5.0.raucb","sha256":"` + hash + `","size":1048576,"version":"1.5.0"`
	tests := []struct {
		name string
		raw  string
		ok   bool
		when UpdateWhen
	}{
		{"good", `{` + good + `}`, true, UpdateIdle},
		{"when idle", `{` + good + `,"when":"idle"}`, true, UpdateIdle},
		{"when after-settlement", `{` + good + `,"when":"after-settlement"}`, true, UpdateAfterSettlement},
		{"upper-case hash", `{"url":"https://u.example.com:8443/b","sha256":"` + strings.ToUpper(hash) + `","size":1,"version":"1.5.0-rc1+g1a2b"}`, true, UpdateIdle},
		{"max size", `{"url":"https://u/b","sha256":"` + hash + `","size":2147483648,"version":"2"}`, true, UpdateIdle},
		{"when empty", `{` + good + `,"when":""}`, false, ""},
		{"when other", `{` + good + `,"when":"now"}`, false, ""},
		{"http", `{"url":"http://u.example.com/b","sha256":"` + hash + `","size":1,"version":"1"}`, false, ""},
		{"ftp", `{"url":"ftp://u.example.com/b","sha256":"` + hash + `","size":1,"version":"1"}`, false, ""},
		{"no host", `{"url":"https:///b","sha256":"` + hash + `","size":1,"version":"1"}`, false, ""},
		{"relative", `{"url":"/b","sha256":"` + hash + `","size":1,"version":"1"}`, false, ""},
		{"user info", `{"url":"https://me:pw@u.example.com/b","sha256":"` + hash + `","size":1,"version":"1"}`, false, ""},
		{"fragment", `{"url":"https://u.example.com/b#x","sha256":"` + hash + `","size":1,"version":"1"}`, false, ""},
		{"space", `{"url":"https://u.example.com/a b","sha256":"` + hash + `","size":1,"version":"1"}`, false, ""},
		{"port 0", `{"url":"https://u.example.com:0/b","sha256":"` + hash + `","size":1,"version":"1"}`, false, ""},
		{"url too long", `{"url":"https://u.example.com/` + strings.Repeat("a", MaxUpdateURL) + `","sha256":"` + hash + `","size":1,"version":"1"}`, false, ""},
		{"size 0", `{"url":"https://u/b","sha256":"` + hash + `","size":0,"version":"1"}`, false, ""},
		{"size negative", `{"url":"https://u/b","sha256":"` + hash + `","size":-5,"version":"1"}`, false, ""},
		{"size too large", `{"url":"https://u/b","sha256":"` + hash + `","size":2147483649,"version":"1"}`, false, ""},
		{"size fraction", `{"url":"https://u/b","sha256":"` + hash + `","size":1.5,"version":"1"}`, false, ""},
		{"size string", `{"url":"https://u/b","sha256":"` + hash + `","size":"1","version":"1"}`, false, ""},
		{"hash 63", `{"url":"https://u/b","sha256":"` + hash[1:] + `","size":1,"version":"1"}`, false, ""},
		{"hash not hex", `{"url":"https://u/b","sha256":"` + strings.Repeat("zz", 32) + `","size":1,"version":"1"}`, false, ""},
		{"version empty", `{"url":"https://u/b","sha256":"` + hash + `","size":1,"version":""}`, false, ""},
		{"version space", `{"url":"https://u/b","sha256":"` + hash + `","size":1,"version":"1 0"}`, false, ""},
		{"version 65", `{"url":"https://u/b","sha256":"` + hash + `","size":1,"version":"` + strings.Repeat("1", 65) + `"}`, false, ""},
		{"no url", `{"sha256":"` + hash + `","size":1,"version":"1"}`, false, ""},
		{"no sha256", `{"url":"https://u/b","size":1,"version":"1"}`, false, ""},
		{"no size", `{"url":"https://u/b","sha256":"` + hash + `","version":"1"}`, false, ""},
		{"no version", `{"url":"https://u/b","sha256":"` + hash + `","size":1}`, false, ""},
		{"url null", `{"url":null,"sha256":"` + hash + `","size":1,"version":"1"}`, false, ""},
		{"unknown key", `{` + good + `,"force":true}`, false, ""},
		{"empty", `{}`, false, ""},
		{"absent", ``, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseUpdateArgs(json.RawMessage(tc.raw))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if a.When != tc.when || a.SHA256 != strings.ToLower(a.SHA256) || a.Size < 1 {
				t.Fatalf("args %+v, want when %q and a lower-case hash", a, tc.when)
			}
		})
	}
	// The type's place in the check table: known args, the active state.
	if err := CheckArgs(TypeUpdate, json.RawMessage(`{`+good+`}`)); err != nil {
		t.Fatalf("CheckArgs(update): %v", err)
	}
	for lc, want := range map[string]bool{"active": true, "unactivated": false, "unbinding": false, "tampered": false} {
		if got := StateOK(TypeUpdate, lc, "", ""); got != want {
			t.Errorf("StateOK(update, %s) = %v, want %v", lc, got, want)
		}
	}
	if _, err := ParseCommandType("update"); err != nil {
		t.Errorf("update is not a known type: %v", err)
	}
}
