package terminal

import (
	"testing"
	"time"

	"github.com/posagent/posagent/hal"
)

// A sale keeps the terminal busy from the first key to the return to MAIN
// MENU: while the amount is typed, while the request is at the acquirer,
// while APPROVED waits for the cashier. An owed reversal keeps it busy
// until the host has it.
func TestIdleFollowsTheSale(t *testing.T) {
	m := New(idleActive(), testPwd)
	now := t0
	var last Request
	step := func(ev Event) {
		for _, e := range m.Step(now, ev) {
			if x, ok := e.(Exchange); ok {
				last = x.Req
			}
		}
	}
	keys := func(s string) {
		for _, k := range parseKeys(s) {
			step(KeyPressed{Key: k})
		}
	}
	want := func(what string, idle bool) {
		t.Helper()
		if m.Idle() != idle {
			t.Fatalf("%s: Idle() = %v, want %v; screen:\n%s", what, m.Idle(), idle, m.Screen())
		}
	}
	step(Boot{})
	want("MAIN MENU after boot", true)
	keys("1")
	want("AMOUNT prompt", false)
	keys("1000<enter>")
	want("SWIPE CARD", false)
	c, err := hal.ParseTrack2(";6222021234567890123=25122010000000000?")
	step(CardSwiped{Card: c, Err: err})
	if last.Kind != MsgSale {
		t.Fatalf("no sale at the acquirer: %+v", last)
	}
	want("sale at the acquirer", false)
	step(parseReply(t, "00", last))
	if !m.Screen().Contains("APPROVED") {
		t.Fatalf("screen %s", m.Screen())
	}
	want("APPROVED on screen", false)
	keys("<enter>")
	want("back at MAIN MENU", true)

	// A sale the host never answered: a reversal is owed until it is sent.
	keys("1")
	keys("2500<enter>")
	step(CardSwiped{Card: c, Err: err})
	step(parseReply(t, "timeout", last))
	now = now.Add(ResultTimeout + time.Second)
	step(Tick{})
	if m.st.Reversal == nil {
		t.Fatal("no reversal owed after a silent host")
	}
	want("reversal owed", false)
}

// idleActive is an active, signed-in terminal with its settlement card.
func idleActive() State {
	b := NewBinding("PA00000001", "6222600000000000018", t0)
	return State{Serial: "PA00000001", TechPwdHash: "4321", SupervisorPwdHash: "123456",
		Merchant: Merchant{TID: "12345678", MID: "123456789012345", Name: "TEST SHOP", AcquirerAddr: "127.0.0.1:5000", TPDU: "6000030000"},
		Counters: Counters{Batch: 1}, Binding: &b, WorkingKeys: true}
}

func TestIdleStates(t *testing.T) {
	settling := idleActive()
	settling.Settling = 1
	unbinding := idleActive()
	unbinding.Intent = &UnbindIntent{Stage: "wiping"}
	for _, tc := range []struct {
		name string
		st   State
		idle bool
	}{
		{"active", idleActive(), true},
		{"unactivated", State{}, true},
		{"tampered", State{Tampered: true}, true},
		{"settlement to resume", settling, false},
		{"unbinding", unbinding, false},
	} {
		m := New(tc.st, testPwd)
		m.Step(t0, Boot{})
		if m.Idle() != tc.idle {
			t.Errorf("%s: Idle() = %v, want %v; screen:\n%s", tc.name, m.Idle(), tc.idle, m.Screen())
		}
	}
}
