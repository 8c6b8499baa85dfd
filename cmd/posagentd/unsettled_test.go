package main

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

// TestSplitUnsettled: a force unbind of a full batch (999 approved
// transactions) has a final ack that no 16 KiB envelope holds; split, the
// ack and every part sign within the limit, and the parts give back the
// list in order.
func TestSplitUnsettled(t *testing.T) {
	sum := terminal.UnbindSummary{Settlement: "forced", Batch: "000007", TxnsRemoved: 999, BindingRemoved: true, KeysZeroised: true}
	for i := range 999 {
		sum.Unsettled = append(sum.Unsettled, terminal.UnsettledTxn{STAN: fmt.Sprintf("%06d", i+1), Type: "sale", Amount: int64(100 + i),
			PAN: "622202*********0123", Time: "2026-03-01T12:00:00+08:00"})
	}
	result, _ := json.Marshal(sum)
	_, priv, _ := ed25519.GenerateKey(nil)
	cmdID := "unbind-" + strings.Repeat("x", 57)
	ack := remote.Ack{CmdID: cmdID, Serial: "PA-0001", State: remote.AckSucceeded, At: time.Now(), Result: result}
	if _, err := remote.SealAck(priv, ack); err == nil {
		t.Fatal("the whole list fits one envelope: the test proves nothing")
	}
	rest, parts, ok, err := splitUnsettled(result, cmdID)
	if err != nil || !ok {
		t.Fatalf("split: %v %v", ok, err)
	}
	ack.Result = rest
	if _, err := remote.SealAck(priv, ack); err != nil {
		t.Fatalf("the split ack: %v", err)
	}
	var r map[string]json.RawMessage
	_ = json.Unmarshal(rest, &r)
	if string(r["unsettled_count"]) != "999" || string(r["unsettled_parts"]) != fmt.Sprint(len(parts)) || r["unsettled"] != nil ||
		string(r["settlement"]) != `"forced"` {
		t.Fatalf("split result %s", rest)
	}
	var got []terminal.UnsettledTxn
	for i, p := range parts {
		id := unsettledPartID(cmdID, i+1)
		if !remote.ValidID(id) {
			t.Fatalf("part id %q is not a valid id", id)
		}
		if _, err := remote.SealEvent(priv, remote.Event{ID: id, Serial: "PA-0001", Type: evtUnsettled, At: time.Now(), Data: p}); err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		var part struct {
			Of        string                  `json:"of"`
			Part      int                     `json:"part"`
			Parts     int                     `json:"parts"`
			Unsettled []terminal.UnsettledTxn `json:"unsettled"`
		}
		if err := json.Unmarshal(p, &part); err != nil || part.Of != cmdID || part.Part != i+1 || part.Parts != len(parts) {
			t.Fatalf("part %d: %s", i+1, p)
		}
		got = append(got, part.Unsettled...)
	}
	if len(got) != 999 || got[0] != sum.Unsettled[0] || got[998] != sum.Unsettled[998] {
		t.Fatalf("reassembled %d entries", len(got))
	}
	if _, _, ok, _ := splitUnsettled(json.RawMessage(`{"settlement":"SETTLED"}`), "x"); ok {
		t.Error("split a result without a list")
	}
}
