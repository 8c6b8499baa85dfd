package terminal

import (
	"fmt"

	"github.com/posagent/posagent/hal"
)

// receipt is the cashier's receipt of an approved sale or void. The PAN is
// masked 6+4 (PAN.String), never more.
func (m *Machine) receipt(t Txn, duplicate bool) hal.Receipt {
	mer := m.st.Merchant
	l := []string{}
	if duplicate {
		l = append(l, "*** DUPLICATE ***")
	}
	name := mer.Name
	if name == "" {
		name = "MERCHANT"
	}
	l = append(l,
		name,
		"MID "+mer.MID,
		"TID "+mer.TID,
		"CARD "+t.PAN.String(),
		"EXP "+"**/**",
		"TYPE "+t.Type.String(),
		"BATCH "+t.Batch.String()+" VOUCHER "+t.STAN.String(),
		"AUTH "+t.Auth+" REF "+t.RRN,
		"DATE "+t.Time.Format("2006-01-02 15:04:05"),
	)
	if t.Type == Void {
		l = append(l, "ORIG VOUCHER "+t.OrigSTAN.String())
		l = append(l, "AMOUNT -"+t.Amount.String())
	} else {
		l = append(l, "AMOUNT "+t.Amount.String())
	}
	l = append(l, "", "CARDHOLDER SIGNATURE", "", "I ACKNOWLEDGE SATISFACTORY RECEIPT")
	return hal.Receipt{Lines: l}
}

func (m *Machine) settlementReceipt(batch BatchNo, t Totals, outcome string) hal.Receipt {
	return hal.Receipt{Lines: []string{
		"SETTLEMENT",
		"TID " + m.st.Merchant.TID,
		"BATCH " + batch.String(),
		fmt.Sprintf("SALE %d %s", t.DebitCount, t.DebitAmount),
		fmt.Sprintf("VOID %d %s", t.CreditCount, t.CreditAmount),
		"NET " + t.Net().String(),
		outcome,
		m.now.Format("2006-01-02 15:04:05"),
	}}
}
