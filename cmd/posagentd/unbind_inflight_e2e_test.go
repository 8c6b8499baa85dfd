package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/terminal/remote"
)

// TestRemoteUnbindWhileSaleAtHost: a remote unbind arrives while a sale
// waits 4 s at the host (real posagentd, acquirer simulator, mosquitto).
// The sale finishes as it would have: approved at the host and on the
// receipt, never reversed; then settle settles it, refuse changes
// nothing, force lists it (spec/remote.md unbind step 1).
func TestRemoteUnbindWhileSaleAtHost(t *testing.T) {
	t.Parallel()
	for i, policy := range []remote.UnsettledPolicy{remote.UnsettledSettle, remote.UnsettledRefuse, remote.UnsettledForce} {
		t.Run(string(policy), func(t *testing.T) {
			t.Parallel()
			_, host, hq, r := remoteSetup(t, fmt.Sprintf("PA-INF-%04d", i+1), fmt.Sprintf("7300000%d", i+1), rtermOptions{Timeout: "15s"})
			const fen = 7007
			host.host.SetFaults(hostsim.Faults{Delay: 4 * time.Second, On: []string{"0200"}, Count: 1})
			r.startSale()
			r.Keys(fmt.Sprintf("%d\r", fen))
			r.WaitScreen("SWIPE CARD", remoteWait)
			r.Swipe(track2B)
			r.WaitScreen("PROCESSING", remoteWait)
			id := hq.unbind(r.Serial, policy, 10*time.Minute)
			hq.waitAck(id, remote.AckAccepted, remoteWait)
			if s, _ := r.WaitAny(remoteWait, "APPROVED", "DECLINED", "ERROR"); !strings.Contains(s, "APPROVED") {
				t.Fatalf("the sale at the host when the unbind came: %q, want APPROVED", s)
			}
			fin := hq.waitFinal(id, remoteWait)
			receipts, _ := os.ReadFile(r.Printer)
			if !strings.Contains(string(receipts), "70.07") {
				t.Errorf("no receipt for the sale: %s", receipts)
			}
			x, b := hostTxn(t, host.host.Ledger(), r.TID, fen)
			if x.State != hostsim.StateApproved {
				t.Errorf("the sale at the host is %s (reversal %q), want approved", x.State, x.ReversalReason)
			}
			for _, rv := range b.Reversals {
				if rv.STAN == x.STAN {
					t.Errorf("the host got a reversal of the approved sale: %+v", rv)
				}
			}
			switch policy {
			case remote.UnsettledSettle:
				if fin.Ack.State != remote.AckSucceeded {
					t.Fatalf("final ack %s %s, want succeeded", fin.Ack.State, fin.Ack.Reason)
				}
				if b.Settlement == nil || b.Settlement.Terminal.DebitCount != 2 || b.Settlement.Terminal.DebitAmount != 12345+fen {
					t.Errorf("settlement of batch %s: %+v, want both sales", b.Number, b.Settlement)
				}
				checkUnbound(t, r, host)
			case remote.UnsettledRefuse:
				if fin.Ack.State != remote.AckFailed || fin.Ack.Reason != remote.ReasonUnsettledBatch {
					t.Fatalf("final ack %s %s, want failed unsettled-batch", fin.Ack.State, fin.Ack.Reason)
				}
				r.Keys("\r")
				checkStillActive(t, r, hq, host, 2)
			case remote.UnsettledForce:
				if fin.Ack.State != remote.AckSucceeded {
					t.Fatalf("final ack %s %s, want succeeded", fin.Ack.State, fin.Ack.Reason)
				}
				res := unbindResult(t, fin)
				found := false
				for _, u := range res.Unsettled {
					found = found || (u.STAN == x.STAN && u.Amount == fen && u.Type == "sale")
				}
				if res.Settlement != "forced" || !found {
					t.Errorf("force result %s does not list the sale %s", fin.Ack.Result, x.STAN)
				}
				checkUnbound(t, r, host)
			}
		})
	}
}
