package main

import (
	"strings"
	"testing"
)

// TestOnDeviceUnbindShowsRebooting: TECHNICIAN → UNBIND settles the batch,
// erases the merchant data and shows REBOOTING before the reboot runs
// (spec/terminal.md §Flows).
func TestOnDeviceUnbindShowsRebooting(t *testing.T) {
	t.Parallel()
	sim := startAcqSim(t)
	h := NewTerm(t, sim, TermOptions{})
	if s := h.Sale(4200, track2A); !strings.Contains(s, "APPROVED") {
		t.Fatalf("sale: %q", s)
	}
	h.Keys("\r")
	h.WaitScreen("MAIN MENU", waitTimeout)
	h.Keys("5")
	h.WaitScreen("TECH PWD", waitTimeout)
	h.Keys("8888\r")
	h.WaitScreen("1 UNBIND", waitTimeout)
	h.Keys("1")
	h.WaitScreen("UNBIND?", waitTimeout)
	h.Keys("\r")
	h.WaitScreen("REBOOTING", waitTimeout)
	h.waitExit()
	if h.exitSt != exitReboot {
		t.Fatalf("exit %d after the on-device unbind, want %d", h.exitSt, exitReboot)
	}
	if b := h.Ledger().Batch(h.TID, "000001"); b == nil || b.Settlement == nil {
		t.Errorf("the on-device unbind did not settle batch 000001: %+v", b)
	}
	h.Start()
	h.WaitScreen("NOT ACTIVATED", waitTimeout)
}
