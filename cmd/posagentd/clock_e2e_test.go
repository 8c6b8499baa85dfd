package main

import (
	"testing"
	"time"

	"github.com/posagent/posagent/terminal/remote"
)

// TestRemoteClock1970: a terminal boots with a 1970 clock (no RTC
// battery) while an unbind and an expired command wait at the broker.
// Neither is answered rejected while the clock is untrusted (ack
// in_progress, clock-unsynced); the sign-in answer sets the clock; then
// the unbind ends succeeded and the expired command is still expired
// (spec/remote.md "Clock trust"). Not parallel: the daemon's clock comes
// from the environment (POSAGENT_SIM_CLOCK).
func TestRemoteClock1970(t *testing.T) {
	_, host, hq, r := remoteSetup(t, "PA-CLK-0001", "74000001", rtermOptions{})
	r.Stop()
	hq.waitStatus(r.Serial, remoteWait, func(s remote.Status) bool { return !s.Online })
	t.Setenv("POSAGENT_SIM_CLOCK", "1970-01-01T00:00:00Z")
	id := hq.unbind(r.Serial, remote.UnsettledSettle, 10*time.Minute)
	const old = "expired-1"
	hq.publish(r.Serial, hq.seal(hq.command(r.Serial, remote.TypeStatus, old, nil, -time.Minute)))
	r.Start()
	r.WaitScreen("MAIN MENU", remoteWait)
	for _, c := range []string{id, old} {
		a := hq.waitAck(c, remote.AckInProgress, remoteWait)
		if a.Ack.Reason != "clock-unsynced" {
			t.Errorf("%s: in_progress reason %q, want clock-unsynced", c, a.Ack.Reason)
		}
	}
	hq.waitStatus(r.Serial, remoteWait, func(s remote.Status) bool { return s.Online && s.Clock == "unsynced" })
	r.Keys("4") // SIGN IN: the answer's fields 12 and 13 set the clock
	fin := hq.waitFinal(id, remoteWait)
	if fin.Ack.State != remote.AckSucceeded {
		t.Fatalf("unbind after the clock was set: %s %s, want succeeded", fin.Ack.State, fin.Ack.Reason)
	}
	if f := hq.waitFinal(old, remoteWait); f.Ack.State != remote.AckRejected || f.Ack.Reason != remote.ReasonExpired {
		t.Errorf("expired command on a trusted clock: %s %s, want rejected expired", f.Ack.State, f.Ack.Reason)
	}
	checkUnbound(t, r, host)
}
