package terminal

import (
	"fmt"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/terminal/i18n"
)

// journalPerPage is the number of journal lines under the title.
const journalPerPage = 6

// startJournal pages through the batch, one transaction per line
// "<voucher> <SALE|VOID> <amount>"; Enter pages on, Cancel leaves. With an
// empty open batch it shows the closed one, which stays readable until the
// next settlement.
func (m *Machine) startJournal() {
	txns, batch := m.st.Journal, m.st.Counters.Batch
	if len(txns) == 0 && len(m.st.Prev) > 0 {
		txns, batch = m.st.Prev, m.st.PrevBatch
	}
	var shown []Txn
	for _, t := range txns {
		if t.Status == Approved {
			shown = append(shown, t)
		}
	}
	if len(shown) == 0 {
		m.showResult(m.t(i18n.Journal), m.t(i18n.NoTransactions))
		return
	}
	m.push(&journalView{txns: shown, batch: batch})
}

type journalView struct {
	txns  []Txn
	batch BatchNo
	page  int
}

func (v *journalView) render(m *Machine) hal.Screen {
	pages := (len(v.txns) + journalPerPage - 1) / journalPerPage
	l := []string{fmt.Sprintf("%s %s %d/%d", m.t(i18n.Journal), v.batch, v.page+1, pages)}
	for _, t := range v.txns[v.page*journalPerPage : min(len(v.txns), (v.page+1)*journalPerPage)] {
		l = append(l, fmt.Sprintf("%s %s %s", t.STAN, m.typeWord(t.Type), t.Amount))
	}
	if v.page+1 < pages {
		l = append(l, m.t(i18n.EnterMore))
	} else {
		l = append(l, m.t(i18n.End))
	}
	return lines(l...)
}

func (v *journalView) key(m *Machine, k hal.Key) {
	switch k {
	case hal.KeyCancel:
		m.cancelFlow()
	case hal.KeyEnter:
		if (v.page+1)*journalPerPage < len(v.txns) {
			v.page++
		} else {
			m.cancelFlow()
		}
	}
}

// reprintLast prints the last approved transaction's receipt again, marked
// DUPLICATE.
func (m *Machine) reprintLast() {
	for _, list := range [][]Txn{m.st.Journal, m.st.Prev} {
		for i := len(list) - 1; i >= 0; i-- {
			if list[i].Status == Approved {
				m.emit(Print{Receipt: m.receipt(list[i], true)})
				m.showResult(m.t(i18n.ReprintLast), m.t(i18n.Printing), m.label(i18n.VoucherLabel, list[i].STAN.String()))
				return
			}
		}
	}
	m.showResult(m.t(i18n.ReprintLast), m.t(i18n.NoTransactions))
}
