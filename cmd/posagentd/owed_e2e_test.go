package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

// TestActivationTamperThenNewTIDOwed: a tamper while a sale is at a host
// that never answers, then a re-activation under another TID. What the
// old TID still owes — the reversal of the faulted sale and the approved
// sale of its open batch — reaches HQ in a signed owed event before it is
// erased; the new TID sells.
func TestActivationTamperThenNewTIDOwed(t *testing.T) {
	t.Parallel()
	lab := startActLab(t, labOptions{})
	const serial, tid, tid2, mid = "PA-OWED-0001", "42000001", "42000002", "898420000000001"
	r := lab.freshTerm(serial)
	r.activate(lab, lab.code(serial, tid, mid), tid, mid)
	r.sell(1000)
	r.SetFaults(hostsim.Faults{NoAnswer: true, On: []string{"0200", "0400"}})
	r.startSale()
	r.Keys("2500\r")
	r.WaitScreen("SWIPE CARD", actWait)
	r.Swipe(track2A)
	r.WaitScreen("PROCESSING", actWait)
	if err := os.WriteFile(filepath.Join(r.DataDir, "TAMPER"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r.WaitAny(actWait, "TAMPERED")
	faulted, _ := hostTxn(t, r.Ledger(), tid, 2500)
	r.SetFaults(hostsim.Faults{})
	mark := lab.since()
	r.activate(lab, lab.code(serial, tid2, mid), tid2, mid)

	ev := lab.waitEvent(r, mark, remote.EvtOwed, actWait) // signed: waitEvent verifies with the device key
	var owed terminal.OwedData
	if err := json.Unmarshal(ev.Data, &owed); err != nil {
		t.Fatalf("owed event data %s: %v", ev.Data, err)
	}
	if owed.TID != tid || owed.Reversal == nil || owed.Reversal.STAN != faulted.STAN || owed.Reversal.Amount != 2500 {
		t.Errorf("owed event %s: want TID %s and the reversal of %s", ev.Data, tid, faulted.STAN)
	}
	if len(owed.Unsettled) != 1 || owed.Unsettled[0].Amount != 1000 || owed.Unsettled[0].Type != "sale" {
		t.Errorf("owed event %s: want the approved sale of 10.00 unsettled", ev.Data)
	}
	if strings.Contains(string(ev.Data), track2A[1:17]) {
		t.Errorf("owed event carries a clear PAN: %s", ev.Data)
	}
	if s := r.Sale(3000, track2A); !strings.Contains(s, "APPROVED") {
		t.Fatalf("sale under the new TID: %q", s)
	}
	if _, b := hostTxn(t, r.Ledger(), tid2, 3000); b == nil {
		t.Fatal("the new sale is not under the new TID")
	}
}

// TestActivationForceUnbindSameTID: a force unbind, then a re-activation
// under the same TID: the STAN goes on, so the next sale is approved (the
// host's duplicate check would answer 94 to a STAN it has seen).
func TestActivationForceUnbindSameTID(t *testing.T) {
	t.Parallel()
	lab := startActLab(t, labOptions{})
	const serial, tid, mid = "PA-STAN-0001", "43000001", "898430000000001"
	r := lab.freshTerm(serial)
	r.activate(lab, lab.code(serial, tid, mid), tid, mid)
	r.sell(1000)
	r.sell(2000)
	id := lab.hq.unbind(r.Serial, remote.UnsettledForce, 10*time.Minute)
	if fin := lab.hq.waitFinal(id, actWait); fin.Ack.State != remote.AckSucceeded {
		t.Fatalf("force unbind: %s %s", fin.Ack.State, fin.Ack.Reason)
	}
	if code := r.waitExitCode(actWait); code != exitReboot {
		t.Fatalf("exit %d after the unbind, want %d", code, exitReboot)
	}
	r.Start()
	r.WaitScreen("NOT ACTIVATED", actWait)
	r.activate(lab, lab.code(serial, tid, mid), tid, mid)
	s := r.Sale(3000, track2A)
	if !strings.Contains(s, "APPROVED") {
		t.Fatalf("sale after re-activation under the same TID: %q, want APPROVED (no 94 DUPLICATE)", s)
	}
}
