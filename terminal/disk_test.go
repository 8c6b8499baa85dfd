package terminal

import (
	"testing"
	"time"
)

// TestMustHold pins the storage hold's boot decision.
func TestMustHold(t *testing.T) {
	for _, c := range []struct {
		failStops     int
		diskLow, owed bool
		want          bool
	}{
		{0, false, false, false},
		{0, true, true, false}, // a first attempt is always made: the disk may take it
		{1, false, true, false},
		{1, true, false, false}, // nothing owed: MAIN MENU, sales refused with DISK FULL
		{1, true, true, true},   // the write failed last time and the disk is still full
		{MaxFailStops - 1, false, true, false},
		{MaxFailStops, false, false, true}, // a store that keeps failing: stop whatever is owed
		{MaxFailStops + 5, true, true, true},
	} {
		if got := mustHold(c.failStops, c.diskLow, c.owed); got != c.want {
			t.Errorf("mustHold(fail-stops %d, disk low %v, owed %v) = %v, want %v", c.failStops, c.diskLow, c.owed, got, c.want)
		}
	}
}

// TestHoldNeverReboots: a held terminal whose disk stays full sends its
// pending reversal once (it needs no write), then writes nothing, sends
// nothing and asks for no reboot for as long as the disk stays full,
// except the one retry per HoldRetry.
func TestHoldNeverReboots(t *testing.T) {
	store := NewMemStore(State{Serial: "PA00000001"})
	rv := Reversal{Txn: Txn{Batch: 1, STAN: 7, Type: Sale, Amount: 100, Status: Pending}, Reason: ReasonNoAnswer}
	b := NewBinding("PA00000001", "6222600000000000018", t0)
	if err := store.Apply([]Op{PutParams{Merchant: Merchant{TID: "12345678"}}, PutBinding{Binding: b},
		PutCounters{Counters: Counters{STAN: 7, Batch: 1}}, PutTxn{Txn: rv.Txn}, PutReversal{Reversal: rv}}); err != nil {
		t.Fatal(err)
	}
	st, _ := store.Load()
	st.WorkingKeys, st.FailStops = true, 1
	m := New(st, testPwd)
	m.Step(t0, DiskFree{KiB: 64})
	var sent *Request
	for _, e := range m.Step(t0, Boot{}) {
		switch e := e.(type) {
		case Exchange:
			sent = &e.Req
		case Persist, Reboot:
			t.Fatalf("boot on a full disk after a fail-stop: %T", e)
		}
	}
	if !m.Holding() || !m.Screen().Contains("STORAGE FULL") {
		t.Fatalf("boot on a full disk after a fail-stop: holding %v, screen %v", m.Holding(), m.Screen())
	}
	if sent == nil || sent.Kind != MsgReversal || sent.STAN != 7 {
		t.Fatalf("the hold's boot sent %+v, want the pending reversal", sent)
	}
	// Answered: nothing is recorded (the disk refused the last write).
	for _, e := range m.Step(t0, AcquirerReply{ID: sent.ID, Resp: Response{RespCode: "00", STAN: 7, TID: "12345678"}}) {
		switch e.(type) {
		case Persist, Reboot, Exchange:
			t.Fatalf("the reversal's answer in the hold: %T", e)
		}
	}
	now := t0
	for now.Before(t0.Add(HoldRetry - time.Second)) {
		now = now.Add(time.Second)
		for _, ev := range []Event{Tick{}, KeyPressed{Key: '1'}, DiskFree{KiB: 100}} {
			for _, e := range m.Step(now, ev) {
				switch e.(type) {
				case Exchange, Persist, Reboot, PutFailStops:
					t.Fatalf("%v after boot, %T: %T", now.Sub(t0), ev, e)
				}
			}
		}
	}
	again := false
	for _, e := range m.Step(t0.Add(HoldRetry), Tick{}) {
		if x, ok := e.(Exchange); ok && x.Req.Kind == MsgReversal {
			again = true
		}
	}
	if !again || m.Holding() {
		t.Fatalf("after HoldRetry: reversal sent again %v, holding %v", again, m.Holding())
	}
}
