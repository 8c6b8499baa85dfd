package web

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/terminal/remote"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func ackEnv(t *testing.T, priv ed25519.PrivateKey, cmdID, serial, state, reason string, result any) []byte {
	t.Helper()
	res, _ := json.Marshal(result)
	env, err := remote.SealAck(priv, remote.Ack{CmdID: cmdID, Serial: serial, State: state, Reason: reason, At: t0, Result: res})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func states(steps []step) string {
	var b []string
	for _, s := range steps {
		b = append(b, s.State)
	}
	return strings.Join(b, " ")
}

// TestTimeline: the steps of an unbind as HQ saw them, for a terminal
// that settled and rebooted, one still settling, one that refused with an
// open batch, one that rejected the command, one that never answered.
func TestTimeline(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	const cmd, serial = "j1.POS-1", "POS-1"
	accepted := store.AckRecord{CmdID: cmd, State: "accepted", ReceivedAt: t0.Add(time.Second), Envelope: ackEnv(t, priv, cmd, serial, "accepted", "", nil)}
	okEnv := ackEnv(t, priv, cmd, serial, "succeeded", "", map[string]any{"settlement": "SETTLED UPLOADED", "batch": "000007",
		"txns_removed": 3, "binding_removed": true, "keys_zeroised": true})
	done := store.AckRecord{CmdID: cmd, State: "succeeded", ReceivedAt: t0.Add(time.Minute), Envelope: okEnv}
	jt := store.JobTerminal{Item: store.Item{Serial: serial, CmdID: cmd, State: "succeeded"}, SentAt: t0, SendCount: 2}
	jt.Terminal.State, jt.Terminal.StatusAt = "unactivated", t0.Add(2*time.Minute)

	s := timeline("en", jt, []store.AckRecord{accepted, done})
	if got := states(s); got != "done done done done done done done" {
		t.Fatalf("finished unbind: %s", got)
	}
	if !strings.Contains(s[0].Detail, "sent again 1 times") || !strings.Contains(s[3].Detail, "batch 000007 settled after a batch upload") ||
		!strings.Contains(s[4].Detail, "3 transactions removed") || !s[5].At.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("details: %+v", s)
	}
	// Still settling: the terminal says unbinding.
	jt.State, jt.Terminal.State = "accepted", "unbinding"
	if got := states(timeline("en", jt, []store.AckRecord{accepted})); got != "done done current todo todo todo todo" {
		t.Errorf("settling: %s", got)
	}
	// Refused: an open batch under refuse.
	failed := store.AckRecord{CmdID: cmd, State: "failed", Reason: "unsettled-batch", ReceivedAt: t0.Add(time.Minute),
		Envelope: ackEnv(t, priv, cmd, serial, "failed", "unsettled-batch", nil)}
	jt.State, jt.Terminal.State = "failed", "active"
	s = timeline("zh-CN", jt, []store.AckRecord{accepted, failed})
	if got := states(s); got != "done done failed todo todo todo failed" || !strings.Contains(s[2].Detail, "未结批次") {
		t.Errorf("refused: %s %q", got, s[2].Detail)
	}
	// Rejected by the terminal's checks.
	rej := store.AckRecord{CmdID: cmd, State: "rejected", Reason: "insufficient-signatures", ReceivedAt: t0.Add(time.Second),
		Envelope: ackEnv(t, priv, cmd, serial, "rejected", "insufficient-signatures", nil)}
	s = timeline("en", jt, []store.AckRecord{rej})
	if got := states(s); got != "done failed todo todo todo todo failed" || s[1].Label != "Refused by the terminal" || !strings.Contains(s[1].Detail, "Not enough signatures") {
		t.Errorf("rejected: %s %q", got, s[1].Detail)
	}
	// No answer before expiry.
	jt.State = store.ItemNoAnswer
	if got := states(timeline("en", jt, nil)); got != "done todo todo todo todo todo failed" {
		t.Errorf("no answer: %s", got)
	}

	// The proof verifies with the device key, and with no other.
	p, err := verifyProof(okEnv, serial, cmd, pub)
	if err != nil || !p.Verified || p.Result.TxnsRemoved != 3 || !strings.Contains(p.Payload, `"binding_removed": true`) {
		t.Fatalf("proof: %+v %v", p, err)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if p, _ := verifyProof(okEnv, serial, cmd, other); p.Verified || !strings.Contains(p.Problem, "signature") {
		t.Errorf("proof under another key: %+v", p)
	}
	if p, _ := verifyProof(okEnv, serial, "j2.POS-1", pub); p.Verified || !strings.Contains(p.Problem, "command") {
		t.Errorf("proof of another command: %+v", p)
	}
	if p, _ := verifyProof(failed.Envelope, serial, cmd, pub); p.Verified {
		t.Errorf("a failed ack taken as proof: %+v", p)
	}
}
