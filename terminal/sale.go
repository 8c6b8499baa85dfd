package terminal

import (
	"log/slog"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/terminal/i18n"
)

// EntrySwipe is field 22 for a magnetic-stripe read without PIN.
const EntrySwipe = "021"

// maxAmountDigits bounds an amount typed on the keypad: 99,999,999.99 yuan.
const maxAmountDigits = 10

func (m *Machine) startSale() {
	if m.st.Reversal != nil && m.inflight != nil {
		m.showResult(m.t(i18n.Sale), m.t(i18n.Busy), m.t(i18n.ReversalInProgress))
		return
	}
	if m.settleFirst(m.t(i18n.Sale)) || m.diskFull(m.t(i18n.Sale)) {
		return
	}
	e := &entryView{title: m.t(i18n.Sale), prompt: m.t(i18n.Amount), amount: true, min: 1, max: maxAmountDigits}
	e.enter = func(m *Machine, digits string) {
		amt := parseAmount(digits)
		m.replace(&swipeView{amount: amt})
	}
	m.push(e)
}

func parseAmount(digits string) Amount {
	var a Amount
	for i := 0; i < len(digits); i++ {
		a = a*10 + Amount(digits[i]-'0')
	}
	return a
}

// swipeView waits for the card of a sale.
type swipeView struct {
	amount Amount
	note   string
}

func (v *swipeView) render(m *Machine) hal.Screen {
	l := []string{m.t(i18n.Sale), m.label(i18n.AmountLabel, v.amount.String()), "", m.t(i18n.SwipeCard)}
	if v.note != "" {
		l = append(l, "", v.note)
	}
	return lines(l...)
}

func (v *swipeView) key(m *Machine, k hal.Key) {
	if k == hal.KeyCancel {
		m.cancelFlow()
	}
}

func (v *swipeView) card(m *Machine, c hal.Track2, err error) {
	if err != nil {
		m.log(slog.LevelWarn, "card unreadable", slog.String("err", err.Error()))
		v.note = m.t(i18n.CardErrorAgain)
		m.emit(Beep{For: 300 * time.Millisecond})
		return
	}
	m.replace(&infoView{lines: []string{m.t(i18n.Sale), m.label(i18n.AmountLabel, v.amount.String()), "", m.t(i18n.Processing)}})
	amount := v.amount
	m.beforeFinancial(func(m *Machine) {
		if m.st.Lifecycle != Active {
			return // an unbind came while a reversal went first: nothing was sent for this sale
		}
		m.sendSale(amount, c)
	}, func(m *Machine, f *failure) {
		m.flowError(f)
	})
}

// sendSale journals the sale and its reversal image, then sends it: the
// Persist is before the Exchange in the effect list, so the shell has both
// on disk before a byte leaves.
func (m *Machine) sendSale(amount Amount, c hal.Track2) {
	stan, op := m.allocSTAN()
	t := Txn{
		Batch: m.st.Counters.Batch, STAN: stan, Type: Sale, Amount: amount,
		PAN: PAN(c.PAN), Expiry: c.Expiry, EntryMode: EntrySwipe, Time: m.now, Status: Pending,
	}
	m.writeAhead(t, op)
	m.exchange(Request{Kind: MsgSale, STAN: stan, Batch: t.Batch, Txn: t, Track2: c.Raw}, func(m *Machine, r AcquirerReply) {
		m.onFinancialReply(t, r)
	})
}

// writeAhead persists a pending journal record, its reversal image and the
// counters in one fsynced transaction.
func (m *Machine) writeAhead(t Txn, counters Op) {
	rv := Reversal{Txn: t, Reason: ReasonNoAnswer}
	m.st.Reversal = &rv
	m.putTxn(t)
	m.emit(Persist{Ops: []Op{counters, PutTxn{Txn: t}, PutReversal{Reversal: rv}}})
}

// Reversal reasons (field 39 of a 0400).
const (
	ReasonNoAnswer  = "98"
	ReasonMACFailed = "A0"
	ReasonOther     = "06"
)

// onFinancialReply commits the answer to a sale or void before the screen
// says anything, and decides about the reversal.
func (m *Machine) onFinancialReply(t Txn, r AcquirerReply) {
	what := t.Type.String()
	switch {
	case r.Err != nil && !r.Written:
		// The request never left: nothing to reverse.
		t.Status = Failed
		m.st.Reversal = nil
		m.putTxn(t)
		m.emit(Persist{Ops: []Op{PutTxn{Txn: t}, ClearReversal{}}})
		m.log(slog.LevelWarn, "request not sent", slog.String("type", what), errAttr(r.Err))
		m.flowError(failed(i18n.NoConnection))
	case r.Err != nil || r.Resp.Undecodable:
		reason, shown := ReasonNoAnswer, i18n.NoResponse
		if r.Err == nil {
			reason, shown = ReasonOther, i18n.BadResponse
		}
		m.owe(t, reason, "", shown)
	case r.Resp.Approved() && r.Resp.MACBad:
		// A failed MAC is no approval: reverse with A0 and sign in again.
		m.st.NeedSignIn = true
		m.owe(t, ReasonMACFailed, r.Resp.Auth, i18n.MACError)
	case r.Resp.Approved():
		t.Status, t.RespCode, t.RRN, t.Auth = Approved, r.Resp.RespCode, r.Resp.RRN, r.Resp.Auth
		ops := []Op{PutTxn{Txn: t}, ClearReversal{}}
		if t.Type == Void {
			if orig, ok := m.findTxn(t.OrigBatch, t.OrigSTAN); ok {
				orig.Voided = true
				m.putTxn(orig)
				ops = append(ops, PutTxn{Txn: orig})
			}
		}
		m.st.Reversal = nil
		m.putTxn(t)
		m.emit(Persist{Ops: ops})
		m.clearFailStops("a transaction committed")
		m.log(slog.LevelInfo, "approved", slog.String("type", what), slog.String("stan", t.STAN.String()),
			slog.String("amount", t.Amount.String()), slog.Any("pan", t.PAN))
		m.publishStatus()
		m.emit(Print{Receipt: m.receipt(t, false)})
		m.showResult(m.typeWord(t.Type), m.t(i18n.Approved), m.label(i18n.VoucherLabel, t.STAN.String()),
			m.label(i18n.AmountLabel, t.Amount.String()), m.label(i18n.AuthLabel, t.Auth))
	default:
		t.Status, t.RespCode = Declined, r.Resp.RespCode
		if t.RespCode == ReasonMACFailed {
			// The host could not verify our MAC: its working keys and ours
			// differ. Sign in before the next financial message.
			m.st.NeedSignIn = true
		}
		m.st.Reversal = nil
		m.putTxn(t)
		m.emit(Persist{Ops: []Op{PutTxn{Txn: t}, ClearReversal{}}})
		m.clearFailStops("a transaction committed")
		m.log(slog.LevelInfo, "declined", slog.String("type", what), slog.String("stan", t.STAN.String()), slog.String("code", t.RespCode))
		m.showResult(append([]string{m.typeWord(t.Type)}, m.declineLines(t.RespCode)...)...)
	}
}

// owe leaves the reversal pending with its reason, tells the cashier, and
// sends the reversal at once (it would otherwise go before the next
// financial message, or at the next boot).
func (m *Machine) owe(t Txn, reason, auth string, shown i18n.Msg) {
	rv := Reversal{Txn: t, Reason: reason, Auth: auth}
	m.st.Reversal = &rv
	m.emit(Persist{Ops: []Op{PutReversal{Reversal: rv}}})
	m.log(slog.LevelWarn, "reversal owed", slog.String("type", t.Type.String()), slog.String("stan", t.STAN.String()), slog.String("reason", reason))
	m.flowError(failed(shown))
	m.sendReversal(func(m *Machine, ok bool) {
		if ok && m.st.NeedSignIn {
			m.signIn(func(*Machine, *failure) {})
		}
	})
}

// flowError ends the current flow with ERROR <why>.
func (m *Machine) flowError(f *failure) {
	m.showResult(append([]string{m.t(i18n.Error)}, m.why(f)...)...)
}

// putTxn updates the in-memory journal of the current batch.
func (m *Machine) putTxn(t Txn) {
	if t.Batch != m.st.Counters.Batch {
		for i := range m.st.Prev {
			if m.st.Prev[i].STAN == t.STAN {
				m.st.Prev[i] = t
				return
			}
		}
		return
	}
	for i := range m.st.Journal {
		if m.st.Journal[i].STAN == t.STAN {
			m.st.Journal[i] = t
			return
		}
	}
	m.st.Journal = append(m.st.Journal, t)
}

func (m *Machine) findTxn(b BatchNo, s STAN) (Txn, bool) {
	list := m.st.Journal
	if b != m.st.Counters.Batch {
		list = m.st.Prev
	}
	for _, t := range list {
		if t.Batch == b && t.STAN == s {
			return t, true
		}
	}
	return Txn{}, false
}

// publishStatus re-publishes the retained status (batch count changed).
func (m *Machine) publishStatus() { m.emit(PublishStatus{Status: m.status()}) }

// settleFirst refuses a sale or void while a settlement of the batch is
// unfinished: the host may already have closed the batch.
func (m *Machine) settleFirst(title string) bool {
	if m.st.Settling == 0 {
		return false
	}
	m.showResult(title, m.t(i18n.SettleFirst), m.label(i18n.BatchLabel, m.st.Settling.String()))
	return true
}
