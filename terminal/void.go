package terminal

import (
	"fmt"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/terminal/i18n"
)

// startVoid: SUPERVISOR PWD → VOID BY → VOUCHER NO or TIME → VOID? →
// PROCESSING → result (spec/terminal.md §Void). Refusals send nothing.
func (m *Machine) startVoid() {
	if m.settleFirst(m.t(i18n.Void)) || m.diskFull(m.t(i18n.Void)) {
		return
	}
	m.askSupervisor(m.t(i18n.Void), func(m *Machine) {
		m.replace(&menuLikeView{title: m.t(i18n.VoidBy), items: []menuItem{
			{hal.Key1, m.t(i18n.ItemVoucherNo), func(m *Machine) { m.voidByVoucher() }},
			{hal.Key2, m.t(i18n.Time), func(m *Machine) { m.voidByTime() }},
		}})
	})
}

// menuLikeView is a numbered choice inside a flow: unlike a menuView,
// Cancel leaves the whole flow and results return past it.
type menuLikeView menuView

func (v *menuLikeView) render(m *Machine) hal.Screen { return (*menuView)(v).render(m) }
func (v *menuLikeView) key(m *Machine, k hal.Key) {
	if k == hal.KeyCancel {
		m.cancelFlow()
		return
	}
	for _, it := range v.items {
		if it.key == k {
			it.run(m)
			return
		}
	}
}

func (m *Machine) voidByVoucher() {
	e := &entryView{title: m.t(i18n.Void), prompt: m.t(i18n.VoucherNo), min: 1, max: 6}
	e.enter = func(m *Machine, digits string) {
		// Decimal, leading zeros and all: fmt.Sscan would read "000010"
		// as octal (8). The entry holds digits only.
		var n uint32
		for i := 0; i < len(digits); i++ {
			n = n*10 + uint32(digits[i]-'0')
		}
		m.voidCandidate(STAN(n))
	}
	m.replace(e)
}

func (m *Machine) voidByTime() {
	e := &entryView{title: m.t(i18n.Void), prompt: m.t(i18n.Time), min: 8, max: 8}
	e.note = m.t(i18n.TimeFormat)
	e.enter = func(m *Machine, mmddhhmm string) {
		var hits []Txn
		for _, t := range m.st.Journal {
			if t.Type == Sale && t.Status == Approved && t.Time.In(m.now.Location()).Format("01021504") == mmddhhmm {
				hits = append(hits, t)
			}
		}
		switch len(hits) {
		case 0:
			m.showResult(m.t(i18n.Void), m.t(i18n.NotFound))
		case 1:
			m.voidCandidate(hits[0].STAN)
		default:
			m.replace(&pickView{hits: hits})
		}
	}
	m.replace(e)
}

// pickView lists several sales of the same minute, one per line
// "<n> <voucher> <amount>", chosen by n.
type pickView struct{ hits []Txn }

func (v *pickView) render(m *Machine) hal.Screen {
	l := []string{m.t(i18n.Void) + ": " + m.t(i18n.PickOne)}
	for i, t := range v.hits {
		if i == 7 {
			break // the display has 8 lines; 7 sales in one minute is plenty
		}
		l = append(l, fmt.Sprintf("%d %s %s", i+1, t.STAN, t.Amount))
	}
	return lines(l...)
}

func (v *pickView) key(m *Machine, k hal.Key) {
	if k == hal.KeyCancel {
		m.cancelFlow()
		return
	}
	if n := k.Digit(); n >= 1 && n <= len(v.hits) && n <= 7 {
		m.voidCandidate(v.hits[n-1].STAN)
	}
}

// voidCandidate checks the refusals, then asks VOID?.
func (m *Machine) voidCandidate(stan STAN) {
	t, ok := m.findTxn(m.st.Counters.Batch, stan)
	if !ok {
		if _, inPrev := m.findTxn(m.st.PrevBatch, stan); inPrev && m.st.PrevBatch != 0 {
			m.showResult(m.t(i18n.Void), m.t(i18n.NotVoidable), m.t(i18n.BatchSettled))
			return
		}
		m.showResult(m.t(i18n.Void), m.t(i18n.NotFound))
		return
	}
	switch {
	case t.Type != Sale:
		m.showResult(m.t(i18n.Void), m.t(i18n.NotVoidable))
	case t.Voided:
		m.showResult(m.t(i18n.Void), m.t(i18n.AlreadyVoided))
	case t.Status != Approved:
		m.showResult(m.t(i18n.Void), m.t(i18n.NotVoidable), m.t(i18n.NotApproved))
	default:
		m.replace(&confirmView{
			lines: []string{m.t(i18n.VoidConfirm), m.label(i18n.AmountLabel, t.Amount.String()), t.PAN.String(),
				m.label(i18n.VoucherLabel, t.STAN.String()), "", m.t(i18n.EnterToAccept)},
			ok: func(m *Machine) { m.confirmVoid(t) },
		})
	}
}

// confirmView asks for Enter; Cancel leaves the flow.
type confirmView struct {
	lines []string
	ok    func(m *Machine)
}

func (v *confirmView) render(*Machine) hal.Screen { return lines(v.lines...) }
func (v *confirmView) key(m *Machine, k hal.Key) {
	switch k {
	case hal.KeyEnter:
		v.ok(m)
	case hal.KeyCancel:
		m.cancelFlow()
	}
}

func (m *Machine) confirmVoid(orig Txn) {
	m.replace(&infoView{lines: []string{m.t(i18n.Void), m.label(i18n.VoucherLabel, orig.STAN.String()), "", m.t(i18n.Processing)}})
	m.beforeFinancial(func(m *Machine) {
		if m.st.Lifecycle != Active {
			return // an unbind came while a reversal went first: nothing was sent for this void
		}
		// Re-check: a reversal sent just now may have changed the original.
		if cur, ok := m.findTxn(orig.Batch, orig.STAN); !ok || cur.Voided || cur.Status != Approved {
			m.showResult(m.t(i18n.Void), m.t(i18n.NotVoidable))
			return
		}
		stan, op := m.allocSTAN()
		t := Txn{
			Batch: m.st.Counters.Batch, STAN: stan, Type: Void, Amount: orig.Amount,
			PAN: orig.PAN, Expiry: orig.Expiry, EntryMode: orig.EntryMode, Time: m.now, Status: Pending,
			RRN: orig.RRN, Auth: orig.Auth, OrigBatch: orig.Batch, OrigSTAN: orig.STAN,
		}
		m.writeAhead(t, op)
		m.exchange(Request{Kind: MsgVoid, STAN: stan, Batch: t.Batch, Txn: t}, func(m *Machine, r AcquirerReply) {
			m.onFinancialReply(t, r)
		})
	}, func(m *Machine, f *failure) { m.flowError(f) })
}
