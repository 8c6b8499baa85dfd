package main

// End-to-end tests of the cashier flows (spec/terminal.md §Flows) against
// the acquirer simulator, asserting what the cashier sees AND what the
// host recorded. Every terminal's logs, receipts and store files are
// checked for clear PANs when its test ends (Term.checkNoClearPAN).

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/terminal/i18n"
)

const (
	maskedA = "622202*********0123"
	maskedB = "476173******0119"
)

// waitLedger polls the host ledger until cond holds (a wait, not an
// assertion on time).
func (h *Term) waitLedger(what string, cond func(*hostsim.Terminal) bool) *hostsim.Terminal {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		l := h.Ledger()
		if t := l.Terminals[h.TID]; t != nil && cond(t) {
			return t
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("host ledger: timeout waiting for %s; ledger: %+v", what, l.Terminals[h.TID])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hostTxn returns the host's record of batch/STAN, failing when absent.
func (h *Term) hostTxn(batch, stan string) hostsim.Txn {
	h.t.Helper()
	tx, ok := h.Ledger().Find(h.TID, batch, stan)
	if !ok {
		h.t.Fatalf("host ledger: no transaction %s/%s", batch, stan)
	}
	return tx
}

// voidFlow runs TRANSACTION MGMT 1 with the right password from MAIN MENU
// or TRANSACTION MGMT and stops on VOID BY.
func (h *Term) toVoidBy() {
	h.t.Helper()
	_, w := h.WaitAny(waitTimeout, h.W(i18n.MainMenu), h.W(i18n.TxnMgmt))
	if w == h.W(i18n.MainMenu) {
		h.Keys("2")
		h.WaitScreen(h.W(i18n.TxnMgmt), waitTimeout)
	}
	h.Keys("1")
	h.WaitScreen(h.W(i18n.SupervisorPwd), waitTimeout)
	h.Keys("123456\r")
	h.WaitScreen(h.W(i18n.VoidBy), waitTimeout)
}

// voidByVoucher goes up to the screen after the voucher number (VOID? or
// a refusal) and returns it.
func (h *Term) voidByVoucher(voucher string) string {
	h.t.Helper()
	h.toVoidBy()
	h.Keys("1")
	h.WaitScreen(h.W(i18n.VoucherNo), waitTimeout)
	h.Keys(voucher + "\r")
	s, _ := h.WaitAny(waitTimeout, h.W(i18n.VoidConfirm), h.W(i18n.NotFound), h.W(i18n.AlreadyVoided), h.W(i18n.NotVoidable))
	return s
}

func mustContain(t *testing.T, what, s string, words ...string) {
	t.Helper()
	for _, w := range words {
		if !strings.Contains(s, w) {
			t.Errorf("%s %q: want %q", what, s, w)
		}
	}
}

// receiptTimes maps the voucher of every receipt in the printer file to
// its DATE line (terminal local time).
var receiptRE = regexp.MustCompile(`VOUCHER (\d{6})[\s\S]*?DATE (\d{4}-\d{2}-\d{2} \d{2}:\d{2}):\d{2}`)

func receiptMinutes(printed string) map[string]time.Time {
	out := map[string]time.Time{}
	for _, m := range receiptRE.FindAllStringSubmatch(printed, -1) {
		if tm, err := time.ParseInLocation("2006-01-02 15:04", m[2], time.Local); err == nil {
			out[m[1]] = tm
		}
	}
	return out
}

// TestE2ECashierDay: three sales, void #2 by voucher, the refusals, a void
// by time through the pick list, a balanced settlement and a void of the
// settled batch refused.
func TestE2ECashierDay(t *testing.T) {
	sim := startAcqSim(t)
	h := NewTerm(t, sim, TermOptions{})
	h.WaitScreen("MAIN MENU", waitTimeout)

	type sale struct {
		fen     int64
		track   string
		masked  string
		amount  string
		voucher string
	}
	sales := []sale{
		{12345, track2A, maskedA, "123.45", ""},
		{5000, track2B, maskedB, "50.00", ""},
		{700, track2A, maskedA, "7.00", ""},
	}
	for i := range sales {
		s := h.Sale(sales[i].fen, sales[i].track)
		mustContain(t, "sale screen", s, "APPROVED", "AMOUNT "+sales[i].amount)
		sales[i].voucher = voucherOf(t, s)
		h.Keys("\r")
	}
	// The first sale signed in first: STAN 1 is the sign-in.
	if sales[0].voucher != "000002" || sales[1].voucher != "000003" || sales[2].voucher != "000004" {
		t.Fatalf("vouchers %s %s %s, want 000002-000004 after the sign-in", sales[0].voucher, sales[1].voucher, sales[2].voucher)
	}
	ht := h.HostTerminal()
	if ht.SignIns != 1 {
		t.Errorf("host sign-ins %d, want 1", ht.SignIns)
	}
	for _, s := range sales {
		tx := h.hostTxn("000001", s.voucher)
		if tx.Type != hostsim.TypeSale || tx.State != hostsim.StateApproved || tx.Amount != s.fen || tx.PAN != s.masked {
			t.Errorf("host %s: %+v, want an approved sale of %d on %s", s.voucher, tx, s.fen, s.masked)
		}
	}

	// Void #2 by voucher number.
	s := h.voidByVoucher(sales[1].voucher)
	mustContain(t, "confirm screen", s, "VOID?", "50.00", maskedB, sales[1].voucher)
	h.Keys("\r")
	s, _ = h.WaitAny(waitTimeout, "APPROVED", "DECLINED", "ERROR")
	mustContain(t, "void result", s, "APPROVED")
	voidVoucher := voucherOf(t, s)
	h.Keys("\r")
	h.WaitScreen("TRANSACTION MGMT", waitTimeout)
	if tx := h.hostTxn("000001", sales[1].voucher); tx.State != hostsim.StateVoided || tx.VoidSTAN != voidVoucher {
		t.Errorf("host sale %s after the void: %+v, want voided by %s", sales[1].voucher, tx, voidVoucher)
	}
	if tx := h.hostTxn("000001", voidVoucher); tx.Type != hostsim.TypeVoid || tx.State != hostsim.StateApproved || tx.OrigSTAN != sales[1].voucher || tx.Amount != 5000 {
		t.Errorf("host void %s: %+v", voidVoucher, tx)
	}
	nHost := len(h.HostTerminal().Batch("000001").Transactions)

	// Void #2 again: ALREADY VOIDED, nothing sent.
	s = h.voidByVoucher(sales[1].voucher)
	mustContain(t, "second void", s, "ALREADY VOIDED")
	h.Keys("\r")
	// An unknown voucher: NOT FOUND.
	s = h.voidByVoucher("999")
	mustContain(t, "unknown voucher", s, "NOT FOUND")
	h.Keys("\r")
	// A void cannot be voided.
	s = h.voidByVoucher(voidVoucher)
	mustContain(t, "void of a void", s, "NOT VOIDABLE")
	h.Keys("\r")
	h.WaitScreen("TRANSACTION MGMT", waitTimeout)
	if n := len(h.HostTerminal().Batch("000001").Transactions); n != nHost {
		t.Errorf("refused voids reached the host: %d transactions, want %d", n, nHost)
	}

	// Void by TIME: two approved, unvoided sales in the same minute give a
	// pick list. Sales take seconds, so at most one more sale is needed to
	// get two in one minute.
	minutes := receiptMinutes(h.PrinterText())
	pair := func() (time.Time, bool) {
		seen := map[time.Time]int{}
		for _, x := range sales {
			if x.voucher == sales[1].voucher {
				continue // voided
			}
			if tm, ok := minutes[x.voucher]; ok {
				seen[tm]++
				if seen[tm] >= 2 {
					return tm, true
				}
			}
		}
		return time.Time{}, false
	}
	minute, ok := pair()
	for tries := 0; !ok && tries < 2; tries++ {
		h.Keys("x")
		sx := h.Sale(888, track2A)
		mustContain(t, "extra sale", sx, "APPROVED")
		sales = append(sales, sale{888, track2A, maskedA, "8.88", voucherOf(t, sx)})
		h.Keys("\r")
		minutes = receiptMinutes(h.PrinterText())
		minute, ok = pair()
	}
	if !ok {
		t.Fatalf("no two sales in the same minute; receipts: %v", minutes)
	}
	target := ""
	for _, x := range sales {
		if x.voucher != sales[1].voucher && minutes[x.voucher].Equal(minute) {
			target = x.voucher // the last one of that minute
		}
	}
	h.toVoidBy()
	h.Keys("2")
	h.WaitScreen("TIME", waitTimeout)
	h.Keys(minute.Format("01021504") + "\r")
	s = h.WaitScreen("PICK", waitTimeout)
	pick := ""
	for _, line := range strings.Split(s, "\r\n") {
		if f := strings.Fields(line); len(f) == 3 && f[1] == target {
			pick = f[0]
		}
	}
	if pick == "" {
		t.Fatalf("pick list %q has no line for voucher %s", s, target)
	}
	h.Keys(pick)
	s = h.WaitScreen("VOID?", waitTimeout)
	mustContain(t, "confirm by time", s, "VOUCHER "+target)
	h.Keys("\r")
	s, _ = h.WaitAny(waitTimeout, "APPROVED", "DECLINED", "ERROR")
	mustContain(t, "void by time", s, "APPROVED")
	h.Keys("\r")
	if tx := h.hostTxn("000001", target); tx.State != hostsim.StateVoided {
		t.Errorf("host sale %s after the void by time: %+v, want voided", target, tx)
	}

	// Balanced settlement.
	h.WaitScreen("TRANSACTION MGMT", waitTimeout)
	h.Keys("x")
	h.WaitScreen("MAIN MENU", waitTimeout)
	h.Keys("3")
	h.WaitScreen("SETTLE BATCH?", waitTimeout)
	h.Keys("\r")
	s, _ = h.WaitAny(waitTimeout, "SETTLED", "SETTLE FAILED")
	if !strings.Contains(s, "SETTLED") || strings.Contains(s, "UPLOADED") {
		t.Errorf("settlement screen %q, want SETTLED (balanced)", s)
	}
	b := h.HostTerminal().Batch("000001")
	if b == nil || !b.Closed || b.Reconciled != hostsim.ReconciledBalanced || b.Settlement == nil || b.Settlement.Flag != "1" || len(b.Uploaded) != 0 {
		t.Errorf("host batch 000001 after settlement: %+v", b)
	} else if b.Settlement.Terminal != b.HostTotals() {
		t.Errorf("settlement totals: terminal %+v, host %+v", b.Settlement.Terminal, b.HostTotals())
	}
	if cur := h.HostTerminal().CurrentBatch; cur != "000002" {
		t.Errorf("host current batch %s, want 000002", cur)
	}
	h.Keys("\r")

	// A transaction of the settled batch is not voidable.
	s = h.voidByVoucher(sales[0].voucher)
	mustContain(t, "void of a settled sale", s, "NOT VOIDABLE")
	h.Keys("\r")

	// Receipts: masked PANs only (the clear ones are checked at cleanup).
	printed := h.PrinterText()
	mustContain(t, "printer file", printed, "CARD "+maskedA, "CARD "+maskedB, "TYPE VOID")
	// The logs do talk about cards, masked: the clear-PAN check is not
	// vacuous.
	if !strings.Contains(h.Logs(), maskedA) {
		t.Errorf("posagentd logs never mention the masked PAN %s; the PAN check would be vacuous", maskedA)
	}
}

// TestE2ESettleNotBalanced: the host says not balanced, the terminal
// uploads every approved sale and void, then SETTLED UPLOADED; the settled
// batch's sale is then NOT VOIDABLE.
func TestE2ESettleNotBalanced(t *testing.T) {
	sim := startAcqSim(t)
	h := NewTerm(t, sim, TermOptions{})
	var vouchers []string
	for _, fen := range []int64{2000, 1000, 4321} {
		s := h.Sale(fen, track2B)
		mustContain(t, "sale", s, "APPROVED")
		vouchers = append(vouchers, voucherOf(t, s))
		h.Keys("\r")
	}
	s := h.voidByVoucher(vouchers[1])
	mustContain(t, "confirm", s, "VOID?")
	h.Keys("\r")
	s, _ = h.WaitAny(waitTimeout, "APPROVED", "DECLINED", "ERROR")
	mustContain(t, "void", s, "APPROVED")
	voidV := voucherOf(t, s)
	h.Keys("\r")
	h.WaitScreen("TRANSACTION MGMT", waitTimeout)
	h.Keys("x")
	h.WaitScreen("MAIN MENU", waitTimeout)

	h.SetFaults(hostsim.Faults{NotBalanced: true, On: []string{"0500"}, Count: 1})
	h.Keys("3")
	s = h.WaitScreen("SETTLE BATCH?", waitTimeout)
	mustContain(t, "settle confirm", s, "73.21", "10.00", "NET 63.21")
	h.Keys("\r")
	s, _ = h.WaitAny(waitTimeout, "SETTLED", "SETTLE FAILED")
	mustContain(t, "settlement", s, "SETTLED UPLOADED")
	h.Keys("\r")

	b := h.HostTerminal().Batch("000001")
	if b == nil || !b.Closed || b.Reconciled != hostsim.ReconciledUpload || b.Settlement == nil || b.Settlement.Flag != "2" {
		t.Fatalf("host batch after the upload: %+v", b)
	}
	// The host checked the upload: one record per approved sale and void,
	// with the amounts and masked PANs the terminal holds.
	want := map[string]int64{vouchers[0]: 2000, vouchers[1]: 1000, vouchers[2]: 4321, voidV: 1000}
	got := map[string]int64{}
	for _, r := range b.Uploaded {
		got[r.STAN] = r.Amount
		if r.PAN != maskedB || r.CardType != "00" {
			t.Errorf("uploaded record %+v", r)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || b.UploadEndCount != len(want) {
		t.Errorf("uploaded %v (end count %d), want %v", got, b.UploadEndCount, want)
	}
	if h.HostTerminal().CurrentBatch != "000002" {
		t.Errorf("host current batch %s, want 000002", h.HostTerminal().CurrentBatch)
	}

	s = h.voidByVoucher(vouchers[0])
	mustContain(t, "void of a settled sale", s, "NOT VOIDABLE")
	h.Keys("\r")
	// And the new batch settles balanced.
	h.WaitScreen("TRANSACTION MGMT", waitTimeout)
	h.Keys("x3")
	h.WaitScreen("SETTLE BATCH?", waitTimeout)
	h.Keys("\r")
	s, _ = h.WaitAny(waitTimeout, "SETTLED", "SETTLE FAILED")
	if !strings.Contains(s, "SETTLED") || strings.Contains(s, "UPLOADED") {
		t.Errorf("empty batch settlement %q, want SETTLED", s)
	}
}

// TestE2EPasswordLock: three wrong supervisor passwords lock the void, and
// the lock survives a restart even for the right password.
func TestE2EPasswordLock(t *testing.T) {
	sim := startAcqSim(t)
	h := NewTerm(t, sim, TermOptions{})
	s := h.Sale(1500, track2A)
	mustContain(t, "sale", s, "APPROVED")
	v := voucherOf(t, s)
	h.Keys("\r")
	h.WaitScreen("MAIN MENU", waitTimeout)
	h.Keys("21")
	h.WaitScreen("SUPERVISOR PWD", waitTimeout)
	h.Keys("111111\r")
	h.WaitScreen("WRONG PWD", waitTimeout)
	h.Keys("222222\r")
	h.WaitScreen("WRONG PWD", waitTimeout)
	h.Keys("333333\r")
	h.WaitScreen("LOCKED", waitTimeout)
	h.Keys("\r")
	h.WaitScreen("TRANSACTION MGMT", waitTimeout)
	h.Keys("1")
	h.WaitScreen("SUPERVISOR PWD", waitTimeout)
	h.Keys("123456\r")
	h.WaitScreen("LOCKED", waitTimeout)

	h.Stop()
	h.Restart()
	h.Keys("21")
	h.WaitScreen("SUPERVISOR PWD", waitTimeout)
	h.Keys("123456\r")
	s = h.WaitScreen("LOCKED", waitTimeout)
	if strings.Contains(s, "VOID BY") {
		t.Errorf("locked screen %q", s)
	}
	h.Keys("\r")
	if tx := h.hostTxn("000001", v); tx.State != hostsim.StateApproved {
		t.Errorf("host sale %s: %+v, want approved (no void sent)", v, tx)
	}
	if n := len(h.HostTerminal().Batch("000001").Transactions); n != 1 {
		t.Errorf("host has %d transactions, want 1", n)
	}
}

// TestE2EHostSilent: the host never answers a sale: ERROR on screen, and
// the reversal (39=98) reaches the host before the next sale.
func TestE2EHostSilent(t *testing.T) {
	sim := startAcqSim(t)
	h := NewTerm(t, sim, TermOptions{Timeout: "2s"})
	s := h.Sale(1000, track2A)
	mustContain(t, "first sale", s, "APPROVED")
	h.Keys("\r")

	h.SetFaults(hostsim.Faults{NoAnswer: true, On: []string{"0200"}, Count: 1})
	s = h.Sale(2500, track2A)
	mustContain(t, "silent sale", s, "ERROR")
	h.Keys("\r")
	s = h.Sale(3000, track2B)
	mustContain(t, "next sale", s, "APPROVED")
	next := voucherOf(t, s)
	h.Keys("\r")

	b := h.HostTerminal().Batch("000001")
	var silent *hostsim.Txn
	for i := range b.Transactions {
		if b.Transactions[i].Amount == 2500 {
			silent = &b.Transactions[i]
		}
	}
	if silent == nil || silent.State != hostsim.StateReversed || silent.ReversalReason != "98" || !strings.Contains(silent.Fault, "no-answer") {
		t.Fatalf("host record of the silent sale: %+v, want reversed with 98", silent)
	}
	nextTx := b.Txn(next)
	var rev *hostsim.Reversal
	for i := range b.Reversals {
		if b.Reversals[i].STAN == silent.STAN && b.Reversals[i].Undone {
			rev = &b.Reversals[i]
		}
	}
	if rev == nil || rev.Reason != "98" || nextTx == nil || rev.Time.After(nextTx.Time) {
		t.Errorf("reversal %+v must reach the host before the next sale %+v", rev, nextTx)
	}
	if nextTx != nil && nextTx.State != hostsim.StateApproved {
		t.Errorf("next sale at the host: %+v", nextTx)
	}
}

// TestE2EBadMAC: a bad response MAC on an approved sale is no approval:
// reversal A0, then a new sign-in.
func TestE2EBadMAC(t *testing.T) {
	sim := startAcqSim(t)
	h := NewTerm(t, sim, TermOptions{})
	s := h.Sale(1000, track2A)
	mustContain(t, "first sale", s, "APPROVED")
	h.Keys("\r")
	if n := h.HostTerminal().SignIns; n != 1 {
		t.Fatalf("sign-ins %d, want 1", n)
	}
	h.SetFaults(hostsim.Faults{BadMAC: true, On: []string{"0200"}, Count: 1})
	s = h.Sale(2000, track2A)
	mustContain(t, "bad-MAC sale", s, "ERROR", "MAC ERROR")
	ht := h.waitLedger("a new sign-in after the bad MAC", func(t *hostsim.Terminal) bool { return t.SignIns == 2 })
	// The host has answered the sign-in; the terminal takes it in after
	// that. A sale started before would find the sign-in still owed and
	// sign in a third time.
	for deadline := time.Now().Add(waitTimeout); strings.Count(h.Logs(), `msg="signed in"`) < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never took in the second sign-in:\n%s", h.Logs())
		}
	}
	var bad *hostsim.Txn
	for i, x := range ht.Batch("000001").Transactions {
		if x.Amount == 2000 {
			bad = &ht.Batch("000001").Transactions[i]
		}
	}
	if bad == nil || bad.State != hostsim.StateReversed || bad.ReversalReason != "A0" {
		t.Errorf("host record of the bad-MAC sale: %+v, want reversed with A0", bad)
	}
	h.Keys("\r")
	s = h.Sale(3000, track2A)
	mustContain(t, "sale after the new sign-in", s, "APPROVED")
	h.Keys("\r")
	if n := h.HostTerminal().SignIns; n != 2 {
		t.Errorf("sign-ins %d, want 2", n)
	}
}

// TestE2ESignInAgain: the "sign in again" header nibble on an answer makes
// the terminal sign in before its next financial message.
func TestE2ESignInAgain(t *testing.T) {
	sim := startAcqSim(t)
	h := NewTerm(t, sim, TermOptions{})
	s := h.Sale(1000, track2A)
	mustContain(t, "first sale", s, "APPROVED")
	h.Keys("\r")
	h.SetFaults(hostsim.Faults{SignInAgain: true, On: []string{"0200"}, Count: 1})
	s = h.Sale(2000, track2A)
	mustContain(t, "flagged sale", s, "APPROVED")
	flagged := voucherOf(t, s)
	h.Keys("\r")
	if n := h.HostTerminal().SignIns; n != 1 {
		t.Errorf("sign-ins after the flagged answer %d, want still 1", n)
	}
	s = h.Sale(3000, track2A)
	mustContain(t, "next sale", s, "APPROVED")
	next := voucherOf(t, s)
	h.Keys("\r")
	if n := h.HostTerminal().SignIns; n != 2 {
		t.Errorf("sign-ins %d, want 2 (a sign-in before the next sale)", n)
	}
	// The sign-in took the STAN between the two sales.
	var f, n int
	fmt.Sscan(flagged, &f)
	fmt.Sscan(next, &n)
	if n != f+2 {
		t.Errorf("next sale STAN %s after %s: want one STAN used by the sign-in in between", next, flagged)
	}
	if tx := h.hostTxn("000001", flagged); !strings.Contains(tx.Fault, "signin-again") || tx.State != hostsim.StateApproved {
		t.Errorf("host flagged sale %+v", tx)
	}
}

// TestE2EVoidVoucherDecimal: voucher numbers are typed with their leading
// zeros and read as decimal ("000010" is voucher 10, not octal 8).
func TestE2EVoidVoucherDecimal(t *testing.T) {
	sim := startAcqSim(t)
	h := NewTerm(t, sim, TermOptions{})
	amounts := map[string]int64{}
	for i := range 9 { // STAN 1 is the sign-in: vouchers 000002-000010
		fen := int64(1000 + i)
		s := h.Sale(fen, track2A)
		mustContain(t, "sale", s, "APPROVED")
		amounts[voucherOf(t, s)] = fen
		h.Keys("\r")
	}
	for _, v := range []string{"000009", "000010", "000008"} {
		if _, ok := amounts[v]; !ok {
			t.Fatalf("no sale with voucher %s: %v", v, amounts)
		}
		s := h.voidByVoucher(v)
		mustContain(t, "confirm", s, "VOID?", "VOUCHER "+v, hostsim.MaskPAN(panA), fmt.Sprintf("%d.%02d", amounts[v]/100, amounts[v]%100))
		h.Keys("x")
		h.WaitScreen("TRANSACTION MGMT", waitTimeout)
		h.Keys("x")
	}
}
