package terminal

import (
	"fmt"

	"github.com/posagent/posagent/hal"
)

// startVoid: SUPERVISOR PWD → VOID BY → VOUCHER NO or TIME → VOID? →
// PROCESSING → result (spec/terminal.md §Void). Refusals send nothing.
func (m *Machine) startVoid() {
	if m.settleFirst("VOID") || m.diskFull("VOID") {
		return
	}
	m.askSupervisor("VOID", func(m *Machine) {
		m.replace(&menuLikeView{title: "VOID BY", items: []menuItem{
			{hal.Key1, "VOUCHER NO", func(m *Machine) { m.voidByVoucher() }},
			{hal.Key2, "TIME", func(m *Machine) { m.voidByTime() }},
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
	e := &entryView{title: "VOID", prompt: "VOUCHER NO", min: 1, max: 6}
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
	e := &entryView{title: "VOID", prompt: "TIME", min: 8, max: 8}
	e.note = "MMDDhhmm"
	e.enter = func(m *Machine, mmddhhmm string) {
		var hits []Txn
		for _, t := range m.st.Journal {
			if t.Type == Sale && t.Status == Approved && t.Time.In(m.now.Location()).Format("01021504") == mmddhhmm {
				hits = append(hits, t)
			}
		}
		switch len(hits) {
		case 0:
			m.showResult("VOID", "NOT FOUND")
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

func (v *pickView) render(*Machine) hal.Screen {
	l := []string{"VOID: PICK ONE"}
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
			m.showResult("VOID", "NOT VOIDABLE", "BATCH SETTLED")
			return
		}
		m.showResult("VOID", "NOT FOUND")
		return
	}
	switch {
	case t.Type != Sale:
		m.showResult("VOID", "NOT VOIDABLE")
	case t.Voided:
		m.showResult("VOID", "ALREADY VOIDED")
	case t.Status != Approved:
		m.showResult("VOID", "NOT VOIDABLE", "NOT APPROVED")
	default:
		m.replace(&confirmView{
			lines: []string{"VOID?", "AMOUNT " + t.Amount.String(), t.PAN.String(), "VOUCHER " + t.STAN.String(), "", "ENTER TO CONFIRM"},
			ok:    func(m *Machine) { m.confirmVoid(t) },
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
	m.replace(&infoView{lines: []string{"VOID", "VOUCHER " + orig.STAN.String(), "", "PROCESSING"}})
	m.beforeFinancial(func(m *Machine) {
		if m.st.Lifecycle != Active {
			return // an unbind came while a reversal went first: nothing was sent for this void
		}
		// Re-check: a reversal sent just now may have changed the original.
		if cur, ok := m.findTxn(orig.Batch, orig.STAN); !ok || cur.Voided || cur.Status != Approved {
			m.showResult("VOID", "NOT VOIDABLE")
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
	}, func(m *Machine, reason string) { m.flowError(reason) })
}
