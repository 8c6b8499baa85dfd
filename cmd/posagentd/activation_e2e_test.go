package main

// End-to-end tests of technician activation and tamper (spec/terminal.md
// §Activation and §Lifecycle, spec/remote.md §provision) with every part
// real: mosquitto, posagentd, acquirer-sim --keys, `hqd` on SQLite,
// `hqctl code issue`, `hqctl audit` and `hqctl unbind`
// (activation_harness_test.go).

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/iso8583/mac"
	"github.com/posagent/posagent/terminal/remote"
)

// randomKey is a 32-byte X25519 public key nobody holds the private half of.
func randomKey(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// hostTxn finds the transaction of amount fen of a TID in the host's
// ledger.
func hostTxn(t *testing.T, l hostsim.Ledger, tid string, fen int64) (hostsim.Txn, *hostsim.Batch) {
	t.Helper()
	ht := l.Terminals[tid]
	if ht == nil {
		t.Fatalf("TID %s not in the host ledger", tid)
	}
	for _, b := range ht.Batches {
		for _, x := range b.Transactions {
			if x.Amount == fen && x.Type == hostsim.TypeSale {
				return x, b
			}
		}
	}
	t.Fatalf("no sale of %d fen under TID %s in the host ledger", fen, tid)
	return hostsim.Txn{}, nil
}

// TestActivationLifecycleE2E: a factory-fresh terminal is activated with
// an activation code (`hqctl code issue`, hqd) for merchant A, sells, is unbound by
// `hqctl unbind`, exits 3, comes back NOT ACTIVATED, is activated for
// merchant B with a new code and sells under TID B; nothing of merchant A
// (TID, MID, TMK, the PAN sold) is left under data_dir.
func TestActivationLifecycleE2E(t *testing.T) {
	t.Parallel()
	lab := startActLab(t, labOptions{})
	const serial = "PA-ACT-0001"
	const tidA, midA = "21000001", "898210000000001"
	const tidB, midB = "22000002", "898220000000002"
	r := lab.freshTerm(serial)
	lab.hq.waitStatus(serial, actWait, func(s remote.Status) bool { return s.Online && s.State == "unactivated" })

	start := time.Now()
	mark := lab.since()
	r.activate(lab, lab.code(serial, tidA, midA), tidA, midA)
	t.Logf("activation A: %v", time.Since(start))
	lab.waitAudit("activation.answer", serial, map[string]string{"tid": tidA, "mid": midA}, actWait) // hqd answered with merchant A
	ev := lab.waitEvent(r, mark, remote.EvtActivated, actWait)
	// The event names the activation request; no merchant data goes into
	// the identity store's outbox (it is never wiped).
	if !strings.Contains(string(ev.Data), `"activation":"act-`) || strings.Contains(string(ev.Data), tidA) || strings.Contains(string(ev.Data), panB) {
		t.Errorf("activated event data %s: want the activation id and no TID or PAN", ev.Data)
	}
	lab.hq.waitStatus(serial, actWait, func(s remote.Status) bool { return s.State == "active" && s.TID == tidA })
	tmkA := lab.tmkOf(tidA)
	assertPresent(t, r.DataDir, "TMK A", tmkA)

	r.sell(1234)
	if x, _ := hostTxn(t, r.Ledger(), tidA, 1234); x.State != hostsim.StateApproved {
		t.Fatalf("host: sale under TID A is %s, want approved", x.State)
	}

	// HQ unbinds it, as an operator does.
	out := hqctl(t, "unbind", "--broker", lab.broker.URL(), "--key", lab.keyPath, "--serial", serial,
		"--device-keys", lab.registry, "--wait", "60s", "--json", "--reason", "returned")
	if !strings.Contains(out, `"state":"succeeded"`) {
		t.Fatalf("hqctl unbind output lacks a succeeded ack:\n%s", out)
	}
	if code := r.waitExitCode(actWait); code != exitReboot {
		t.Fatalf("posagentd exit status %d after the unbind, want %d", code, exitReboot)
	}
	r.Start()
	r.WaitScreen("NOT ACTIVATED", actWait)

	// A provision that answers nothing pending is rejected and changes
	// nothing (a stale replay of A's answer, say).
	stale := lab.sendProvision(r, craftedProvision{TID: tidA, MID: midA, Activation: "act-" + serial + "-1",
		X25519Pub: randomKey(t)})
	if a := lab.hq.waitFinal(stale, actWait); a.Ack.State != remote.AckRejected || a.Ack.Reason != remote.ReasonWrongState {
		t.Errorf("provision without a pending request: ack %s %s, want rejected wrong-state", a.Ack.State, a.Ack.Reason)
	}

	start = time.Now()
	r.activate(lab, lab.code(serial, tidB, midB), tidB, midB)
	t.Logf("activation B: %v", time.Since(start))
	s := r.Sale(5678, track2B)
	if !strings.Contains(s, "APPROVED") {
		t.Fatalf("sale under TID B: %q", s)
	}
	r.Keys("\r")
	r.WaitScreen("MAIN MENU", actWait)
	if x, _ := hostTxn(t, r.Ledger(), tidB, 5678); x.State != hostsim.StateApproved || x.PAN != hal.MaskPAN(panB) {
		t.Errorf("host: sale under TID B %+v, want approved for %s", x, hal.MaskPAN(panB))
	}
	if b := r.Ledger().Terminals[tidA].Batches; len(b) == 0 || !b[0].Closed {
		t.Errorf("host: TID A's batch not settled by the unbind: %+v", b)
	}

	// An active terminal rejects a provision too.
	late := lab.sendProvision(r, craftedProvision{TID: tidA, MID: midA, Activation: "act-x", X25519Pub: randomKey(t)})
	if a := lab.hq.waitFinal(late, actWait); a.Ack.State != remote.AckRejected || a.Ack.Reason != remote.ReasonWrongState {
		t.Errorf("provision to an active terminal: ack %s %s, want rejected wrong-state", a.Ack.State, a.Ack.Reason)
	}

	r.Stop()
	assertAbsent(t, r.DataDir, map[string][]byte{
		"TID A": []byte(tidA), "MID A": []byte(midA), "TMK A": tmkA,
		"PAN A": []byte(panA), "masked PAN A": []byte(hal.MaskPAN(panA)),
	})
	assertPresent(t, r.DataDir, "TMK B", lab.tmkOf(tidB))
	r.Restart()
	r.Keys("5")
	r.WaitScreen("TECH PWD", actWait)
	r.Keys("8888\r")
	r.WaitScreen("INFO", actWait)
	r.Keys("2")
	if s := r.WaitScreen(tidB, actWait); strings.Contains(s, tidA) {
		t.Errorf("INFO after the restart %q shows TID A", s)
	}
}

// TestActivationFailures: each way an activation fails ends NOT ACTIVATED
// and clean — the reason on the screen and in the ack, NOT ACTIVATED after
// a restart, no TID, MID or TMK of the attempt under data_dir.
func TestActivationFailures(t *testing.T) {
	t.Parallel()
	lab := startActLab(t, labOptions{})

	// crafted runs a request with a code hqd does not know (hqd audits
	// a refusal and publishes nothing), answers it with the test's own
	// provision and expects a failed ack with reason and screen word.
	crafted := func(t *testing.T, serial, tid, mid string, p func(req remote.ActivationRequest) craftedProvision, reason, word string) {
		r := lab.freshTerm(serial)
		mark := r.typeCode(lab, "00000000")
		r.WaitScreen("WAITING FOR HQ", actWait)
		id, req := lab.pendingRequest(r, mark)
		if req.Code != "00000000" {
			t.Errorf("activation_request code %q, want the one typed", req.Code)
		}
		lab.waitAudit("activation.refuse", serial, map[string]string{"request": id, "reason": "unknown-code"}, actWait)
		cp := p(req)
		cp.TID, cp.MID, cp.Activation, cp.X25519Pub = tid, mid, id, req.X25519Pub
		pid := lab.sendProvision(r, cp)
		a := lab.hq.waitFinal(pid, actWait)
		if a.Ack.State != remote.AckFailed || a.Ack.Reason != reason {
			t.Errorf("ack %s %s, want failed %s", a.Ack.State, a.Ack.Reason, reason)
		}
		s := r.WaitScreen("ACTIVATION FAILED", actWait)
		if !strings.Contains(s, word) {
			t.Errorf("failure screen %q lacks %q", s, word)
		}
		r.Keys("\r")
		r.WaitScreen("NOT ACTIVATED", actWait)
		needles := map[string][]byte{"TID": []byte(tid), "MID": []byte(mid)}
		if cp.TMK != nil {
			needles["TMK"] = cp.TMK
		}
		r.checkCleanNotActivated(needles)
	}

	t.Run("BadKCV", func(t *testing.T) {
		crafted(t, "PA-KCV-0001", "31000001", "898310000000001", func(remote.ActivationRequest) craftedProvision {
			tmk := []byte("0123456789abcdef")
			kcv := "000000"
			if mac.TMKKCV(tmk) == kcv {
				kcv = "111111"
			}
			return craftedProvision{TMK: tmk, KCV: kcv}
		}, remote.ReasonBadKCV, "BAD KCV")
	})
	t.Run("BadSeal", func(t *testing.T) {
		crafted(t, "PA-SEAL-0001", "32000001", "898320000000001", func(remote.ActivationRequest) craftedProvision {
			garbage := make([]byte, 64)
			for i := range garbage {
				garbage[i] = byte(i * 7)
			}
			return craftedProvision{Sealed: garbage, KCV: "ABCDEF"}
		}, remote.ReasonBadSeal, "BAD SEAL")
	})

	t.Run("WrongState", func(t *testing.T) {
		const serial, tid, mid = "PA-WST-0001", "33000001", "898330000000001"
		r := lab.freshTerm(serial)
		mark := r.typeCode(lab, "00000000")
		r.WaitScreen("WAITING FOR HQ", actWait)
		id, req := lab.pendingRequest(r, mark)
		n := r.scr.Count()
		// Not the pending request's id.
		pid := lab.sendProvision(r, craftedProvision{TID: tid, MID: mid, Activation: id + "-other", X25519Pub: req.X25519Pub})
		if a := lab.hq.waitFinal(pid, actWait); a.Ack.State != remote.AckRejected || a.Ack.Reason != remote.ReasonWrongState {
			t.Errorf("provision for another request: ack %s %s, want rejected wrong-state", a.Ack.State, a.Ack.Reason)
		}
		if s := r.scr.Tail(1); r.scr.Count() != n && !strings.Contains(s, "WAITING FOR HQ") {
			t.Errorf("screen after a rejected provision:\n%s", s)
		}
		// Cancel on WAITING FOR HQ: the request is no longer pending, so
		// its right answer, arriving late, is rejected too.
		r.Keys("x")
		r.WaitScreen("NOT ACTIVATED", actWait)
		pid = lab.sendProvision(r, craftedProvision{TID: tid, MID: mid, Activation: id, X25519Pub: req.X25519Pub})
		if a := lab.hq.waitFinal(pid, actWait); a.Ack.State != remote.AckRejected || a.Ack.Reason != remote.ReasonWrongState {
			t.Errorf("provision after Cancel: ack %s %s, want rejected wrong-state", a.Ack.State, a.Ack.Reason)
		}
		if s := r.scr.Tail(1); !strings.Contains(s, "NOT ACTIVATED") {
			t.Errorf("screen after a rejected late provision:\n%s", s)
		}
		r.checkCleanNotActivated(map[string][]byte{"TID": []byte(tid), "MID": []byte(mid)})
	})

	// The settlement card does not read: the provision succeeded, so what
	// it stored (parameters, TMK, working keys) is wiped. The code is then
	// spent: a second attempt with it gets no provision.
	t.Run("CardUnreadableThenCodeReuse", func(t *testing.T) {
		const serial, tid, mid = "PA-CARD-0001", "34000001", "898340000000001"
		r := lab.freshTerm(serial)
		code := lab.code(serial, tid, mid)
		r.typeCode(lab, code)
		r.WaitScreen("SWIPE SETTLEMENT CARD", actWait)
		tmk := lab.tmkOf(tid)
		assertPresent(t, r.DataDir, "TMK", tmk)
		r.Swipe("%B;garbage-not-a-track")
		s := r.WaitScreen("ACTIVATION FAILED", actWait)
		if !strings.Contains(s, "CARD UNREADABLE") {
			t.Errorf("failure screen %q lacks CARD UNREADABLE", s)
		}
		r.Keys("\r")
		r.WaitScreen("NOT ACTIVATED", actWait)
		r.checkCleanNotActivated(map[string][]byte{"TID": []byte(tid), "MID": []byte(mid), "TMK": tmk})

		mark := r.typeCode(lab, code)
		r.WaitScreen("WAITING FOR HQ", actWait)
		id, _ := lab.pendingRequest(r, mark)
		lab.waitAudit("activation.refuse", serial, map[string]string{"request": id, "reason": "code-used"}, actWait)
		time.Sleep(3 * time.Second)
		if cmds := lab.messages(mark, serial, remote.KindCmd); len(cmds) != 0 {
			t.Errorf("HQ published %d commands to %s for a used code", len(cmds), serial)
		}
		if s := r.scr.Tail(1); !strings.Contains(s, "WAITING FOR HQ") {
			t.Errorf("screen 3 s after a refused request:\n%s", s)
		}
		r.Keys("x")
		r.WaitScreen("NOT ACTIVATED", actWait)
	})
}

// TestActivationSignInRefused: hqd installs a TMK the acquirer does not
// know (it reads another keys file, so the sign-in gets 97): the terminal
// shows ACTIVATION FAILED SIGN IN …, wipes what the provision stored and
// is NOT ACTIVATED.
func TestActivationSignInRefused(t *testing.T) {
	t.Parallel()
	lab := startActLab(t, labOptions{SplitSimKeys: true})
	const serial, tid, mid = "PA-SIGN-0001", "35000001", "898350000000001"
	r := lab.freshTerm(serial)
	r.typeCode(lab, lab.code(serial, tid, mid))
	s := r.WaitScreen("ACTIVATION FAILED", actWait)
	if !strings.Contains(s, "SIGN IN") {
		t.Errorf("failure screen %q lacks SIGN IN", s)
	}
	lab.waitProvisionAcked(serial, actWait) // the provision itself succeeded
	tmk := lab.tmkOf(tid)
	r.Keys("\r")
	r.WaitScreen("NOT ACTIVATED", actWait)
	if ht := r.Ledger().Terminals[tid]; ht != nil && ht.SignIns != 0 {
		t.Errorf("host counts %d sign-ins of %s", ht.SignIns, tid)
	}
	r.checkCleanNotActivated(map[string][]byte{"TID": []byte(tid), "MID": []byte(mid), "TMK": tmk})
}

// TestActivationTamperDuringSale: the host never answers a sale (nor its
// reversal); the tamper switch fires while it is PROCESSING. The terminal
// zeroises its keys, shows TAMPERED, reports the owed reversal in a signed
// tamper event, refuses sales; after a technician re-activation (same TID,
// a new TMK) the reversal reaches the host before the next sale.
func TestActivationTamperDuringSale(t *testing.T) {
	t.Parallel()
	lab := startActLab(t, labOptions{})
	const serial, tid, mid = "PA-TAMP-0001", "41000001", "898410000000001"
	r := lab.freshTerm(serial)
	r.activate(lab, lab.code(serial, tid, mid), tid, mid)
	tmk1 := lab.tmkOf(tid)
	assertPresent(t, filepath.Join(r.DataDir, "se"), "TMK", tmk1)
	r.sell(1000)

	r.SetFaults(hostsim.Faults{NoAnswer: true, On: []string{"0200", "0400"}})
	mark := lab.since()
	r.startSale()
	r.Keys("2500\r")
	r.WaitScreen("SWIPE CARD", actWait)
	r.Swipe(track2A)
	r.WaitScreen("PROCESSING", actWait)
	if err := os.WriteFile(filepath.Join(r.DataDir, "TAMPER"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tampered := time.Now()
	// The result of the sale (ERROR) may show first; TAMPERED follows.
	deadline := time.Now().Add(actWait)
	for !strings.Contains(r.scr.Tail(1), "TAMPERED") {
		if time.Now().After(deadline) {
			t.Fatalf("no TAMPERED screen; last screens:\n%s", r.scr.Tail(6))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("TAMPERED %v after the trigger file", time.Since(tampered).Round(time.Millisecond))

	faulted, _ := hostTxn(t, r.Ledger(), tid, 2500)
	ev := lab.waitEvent(r, mark, remote.EvtTamper, actWait)
	var data struct {
		Pending *struct {
			STAN   string `json:"stan"`
			Type   string `json:"type"`
			Amount int64  `json:"amount"`
			PAN    string `json:"pan"`
		} `json:"pending_reversal"`
	}
	if err := json.Unmarshal(ev.Data, &data); err != nil || data.Pending == nil {
		t.Fatalf("tamper event data %s: want a pending_reversal (%v)", ev.Data, err)
	}
	if p := data.Pending; p.STAN != faulted.STAN || p.Amount != 2500 || !strings.EqualFold(p.Type, "sale") || p.PAN != hal.MaskPAN(panA) {
		t.Errorf("tamper event pending_reversal %+v, want sale %s of 2500 on %s", *p, faulted.STAN, hal.MaskPAN(panA))
	}
	if strings.Contains(string(ev.Data), panA) {
		t.Errorf("tamper event carries a clear PAN: %s", ev.Data)
	}
	lab.hq.waitStatus(serial, actWait, func(s remote.Status) bool { return s.State == "tampered" })
	assertAbsent(t, filepath.Join(r.DataDir, "se"), map[string][]byte{"TMK": tmk1})

	// No sale: the root screen offers only ACTIVATE, and the sale key
	// leads nowhere but to the technician.
	root := r.scr.Tail(1)
	if strings.Contains(root, "SALE") || !strings.Contains(root, "1 ACTIVATE") {
		t.Errorf("tampered root screen:\n%s", root)
	}
	for _, k := range []string{"2", "3", "4", "5"} {
		r.Keys(k)
	}
	time.Sleep(300 * time.Millisecond)
	if s := r.scr.Tail(1); !strings.Contains(s, "TAMPERED") {
		t.Errorf("keys 2-5 on the tampered screen led to:\n%s", s)
	}
	if x, _ := hostTxn(t, r.Ledger(), tid, 2500); x.State != hostsim.StateApproved {
		t.Errorf("host: the faulted sale is %s before the re-activation, want approved (owed a reversal)", x.State)
	}

	// The host heals; the technician re-activates the unit (same TID).
	r.SetFaults(hostsim.Faults{})
	r.activate(lab, lab.code(serial, tid, mid), tid, mid)
	tmk2 := lab.tmkOf(tid)
	if string(tmk2) == string(tmk1) {
		t.Errorf("hqd issued the same TMK twice")
	}
	s := r.Sale(3000, track2A)
	if !strings.Contains(s, "APPROVED") {
		t.Fatalf("sale after the re-activation: %q; log tail:\n%s", s, tail(r.lastLog(), 3000))
	}
	r.Keys("\r")
	r.WaitScreen("MAIN MENU", actWait)

	l := r.Ledger()
	x, b := hostTxn(t, l, tid, 2500)
	if x.State != hostsim.StateReversed {
		t.Errorf("host: the faulted sale %s is %s, want reversed", x.STAN, x.State)
	}
	after, _ := hostTxn(t, l, tid, 3000)
	var rev *hostsim.Reversal
	for i := range b.Reversals {
		if b.Reversals[i].STAN == x.STAN && b.Reversals[i].Undone {
			rev = &b.Reversals[i]
		}
	}
	if rev == nil {
		t.Fatalf("host: no reversal of %s in batch %s: %+v", x.STAN, b.Number, b.Reversals)
	}
	if rev.Time.After(after.Time) {
		t.Errorf("host: the reversal (%v) came after the new sale (%v)", rev.Time, after.Time)
	}
	if first, _ := hostTxn(t, l, tid, 1000); first.State != hostsim.StateApproved {
		t.Errorf("host: the sale before the tamper is %s, want approved", first.State)
	}

	// The terminal kept its batch through the tamper: it settles balanced
	// with the host (10.00 + 30.00; the reversed 25.00 counts nowhere).
	r.Keys("3")
	s = r.WaitScreen("SETTLE BATCH?", actWait)
	if !strings.Contains(s, "40.00") {
		t.Errorf("settle screen %q: want a net total of 40.00", s)
	}
	r.Keys("\r")
	if s, w := r.WaitAny(actWait, "SETTLED", "SETTLE FAILED"); w != "SETTLED" || strings.Contains(s, "UPLOADED") {
		t.Errorf("settlement after the re-activation: %q, want SETTLED (balanced)", s)
	}
	if b := r.Ledger().Batch(tid, b.Number); b == nil || b.Reconciled != hostsim.ReconciledBalanced || b.Settlement.Host.DebitAmount != 4000 {
		t.Errorf("host batch after settlement %+v: want balanced at 40.00", b)
	}
}
