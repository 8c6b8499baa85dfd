package terminal

import (
	"errors"
	"testing"
)

func TestEventsBeforeBootDoNothing(t *testing.T) {
	m := New(State{Serial: "PA00000001"}, testPwd)
	for _, ev := range []Event{Tick{}, KeyPressed{Key: '1'}, CardSwiped{}, Wiped{}, ClockSynced{}} {
		if effs := m.Step(t0, ev); len(effs) != 0 {
			t.Errorf("%T before Boot: %v", ev, effs)
		}
	}
	// The free space is recorded for the boot decision, and only logged.
	for _, e := range m.Step(t0, DiskFree{KiB: 1}) {
		if _, ok := e.(Log); !ok {
			t.Errorf("DiskFree before Boot: %T", e)
		}
	}
	if effs := m.Step(t0, Boot{}); len(effs) == 0 {
		t.Fatal("Boot did nothing")
	}
}

func TestHaltedMachineDecidesNothing(t *testing.T) {
	m := New(State{Serial: "PA00000001"}, testPwd)
	m.Step(t0, Boot{})
	effs := m.Step(t0, PersistFailed{Err: errors.New("disk full")})
	if _, ok := effs[len(effs)-1].(Reboot); !ok {
		t.Fatalf("PersistFailed: last effect %T, want Reboot", effs[len(effs)-1])
	}
	if !m.Screen().Contains("STORAGE FAULT") {
		t.Fatalf("screen %v", m.Screen())
	}
	if effs := m.Step(t0, KeyPressed{Key: '1'}); len(effs) != 0 {
		t.Fatalf("a halted machine answered %v", effs)
	}
}
