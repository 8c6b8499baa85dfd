package remote

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"
)

func TestGoldenShapes(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	diskKiB := int64(51200)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"rejection", Rejection("", "PA-0001", ReasonInvalid, at),
			`{"v":1,"cmd_id":"","serial":"PA-0001","state":"rejected","reason":"invalid","at":"2025-03-01T12:00:00Z","result":{}}`},
		{"succeeded", Ack{CmdID: "c-1", Serial: "PA-0001", State: AckSucceeded, At: at,
			Result: json.RawMessage(`{"settlement":"SETTLED","txns_removed":3,"binding_removed":true}`)},
			`{"v":1,"cmd_id":"c-1","serial":"PA-0001","state":"succeeded","reason":"","at":"2025-03-01T12:00:00Z","result":{"settlement":"SETTLED","txns_removed":3,"binding_removed":true}}`},
		{"event", Event{ID: "e-1", Serial: "PA-0001", Type: EvtActivated, At: at},
			`{"v":1,"id":"e-1","serial":"PA-0001","type":"activated","at":"2025-03-01T12:00:00Z","data":{}}`},
		{"status", Status{Serial: "PA-0001", Online: true, State: "active", TID: "12345678", BatchNo: "000123", BatchCount: 3, BatchAmount: 24690, Version: "1.0.0", At: at,
			Clock: "synced", DiskFreeKiB: &diskKiB},
			`{"serial":"PA-0001","online":true,"state":"active","tid":"12345678","batch_no":"000123","batch_count":3,"batch_amount":24690,"version":"1.0.0","at":"2025-03-01T12:00:00Z","clock":"synced","pending_reversal":false,"disk_free_kib":51200}`},
		{"activation request", ActivationRequest{Code: "12345678", X25519Pub: []byte{1, 2, 3}},
			`{"code":"12345678","x25519_pub":"AQID"}`},
	}
	for _, tc := range tests {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.name, b, tc.want)
		}
	}
	if got, want := string(OfflineWill("PA-0001")), `{"serial":"PA-0001","online":false}`; got != want {
		t.Errorf("will %s, want %s", got, want)
	}
}

func TestParseAckEventStatus(t *testing.T) {
	a, err := ParseAck([]byte(`{"v":1,"cmd_id":"c","serial":"PA-0001","state":"failed","reason":"unsettled-batch","at":"2025-03-01T12:00:00+08:00","result":{},"new":1}`))
	if err != nil || a.State != AckFailed || !a.Final() || a.Reason != ReasonUnsettledBatch {
		t.Fatalf("ParseAck = %+v, %v", a, err)
	}
	if _, err := ParseAck([]byte(`{"v":2}`)); err == nil {
		t.Fatal("ParseAck v2: want error")
	}
	if _, err := ParseEvent([]byte(`nope`)); err == nil {
		t.Fatal("ParseEvent garbage: want error")
	}
	s, err := ParseStatus(OfflineWill("PA-0001"))
	if err != nil || s.Serial != "PA-0001" || s.Online {
		t.Fatalf("ParseStatus(will) = %+v, %v", s, err)
	}
	for state, final := range map[string]bool{AckRejected: true, AckSucceeded: true, AckFailed: true, AckAccepted: false, AckInProgress: false} {
		if FinalState(state) != final {
			t.Errorf("FinalState(%s) != %v", state, final)
		}
	}
}

func TestTopics(t *testing.T) {
	if CmdTopic("PA-0001") != "pos/v1/PA-0001/cmd" || AckTopic("PA-0001") != "pos/v1/PA-0001/ack" ||
		EvtTopic("PA-0001") != "pos/v1/PA-0001/evt" || StatusTopic("PA-0001") != "pos/v1/PA-0001/status" {
		t.Fatal("topic helpers")
	}
	if AckWildcard != "pos/v1/+/ack" || StatusWildcard != "pos/v1/+/status" || EvtWildcard != "pos/v1/+/evt" {
		t.Fatal("wildcards")
	}
	if DeviceKID("PA-0001") != "dev-PA-0001" || ClientID("PA-0001") != "pos-PA-0001" {
		t.Fatal("kid / client id")
	}
	for topic, want := range map[string]string{
		"pos/v1/PA-0001/ack":    "PA-0001 ack",
		"pos/v1/PA-0001/status": "PA-0001 status",
		"pos/v1/PA-0001/foo":    "",
		"pos/v1/PA/ack":         "",
		"pos/v1/PA-0001/ack/x":  "",
		"pos/v2/PA-0001/ack":    "",
	} {
		s, k, ok := ParseTopic(topic)
		got := ""
		if ok {
			got = s + " " + k
		}
		if got != want {
			t.Errorf("ParseTopic(%q) = %q, want %q", topic, got, want)
		}
	}
	for s, want := range map[string]bool{"PA-0001": true, "abcd": true, "abc": false, "PA_0001": false,
		"PA/0001": false, "PA+0001": false, "01234567890123456789012345678901": true, "0123456789012345678901234567890123": false} {
		if ValidSerial(s) != want {
			t.Errorf("ValidSerial(%q) != %v", s, want)
		}
	}
}

func TestSealAckEvent(t *testing.T) {
	pub, priv := testKey(t, 7)
	keys := map[string]ed25519.PublicKey{"dev-PA-0001": pub}
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	raw, err := SealAck(priv, Rejection("c-1", "PA-0001", ReasonExpired, at))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(raw, keys)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAck(e.Payload)
	if err != nil || a.Reason != ReasonExpired || a.CmdID != "c-1" || a.State != AckRejected {
		t.Fatalf("ack %+v %v", a, err)
	}
	raw, err = SealEvent(priv, Event{ID: "e-1", Serial: "PA-0001", Type: EvtTamper, At: at})
	if err != nil {
		t.Fatal(err)
	}
	if e, err = Open(raw, keys); err != nil || e.KID != "dev-PA-0001" {
		t.Fatalf("event envelope %+v %v", e, err)
	}
	if ev, err := ParseEvent(e.Payload); err != nil || ev.Type != EvtTamper {
		t.Fatalf("event %+v %v", ev, err)
	}
}
