package terminal

import (
	"fmt"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/terminal/i18n"
)

// receiptTime is how receipts write the time (terminal local time).
const receiptTime = "2006-01-02 15:04:05"

// receipt is the merchant copy of an approved sale or void, which the
// cardholder signs. The PAN is masked 6+4 (PAN.String), never more. The
// layout is the same in every language: a word of the catalog, then the
// value.
func (m *Machine) receipt(t Txn, duplicate bool) hal.Receipt {
	mer := m.st.Merchant
	l := []string{}
	if duplicate {
		l = append(l, "*** "+m.t(i18n.RcptDuplicate)+" ***")
	}
	name := m.t(i18n.RcptMerchantName)
	if mer.Name != "" {
		name = m.label(i18n.RcptMerchantName, mer.Name)
	}
	l = append(l,
		m.t(i18n.RcptMerchantCopy),
		name,
		m.label(i18n.RcptMerchantNo, mer.MID),
		m.label(i18n.RcptTerminalNo, mer.TID),
		m.label(i18n.RcptCardNo, t.PAN.String()),
		m.label(i18n.RcptExpiry, "**/**"),
		m.label(i18n.RcptTxnType, m.typeWord(t.Type)),
		m.label(i18n.RcptBatchNo, t.Batch.String())+" "+m.label(i18n.RcptVoucherNo, t.STAN.String()),
		m.label(i18n.RcptAuthCode, t.Auth)+" "+m.label(i18n.RcptRefNo, t.RRN),
		m.label(i18n.RcptDateTime, t.Time.Format(receiptTime)),
	)
	if t.Type == Void {
		l = append(l, m.label(i18n.RcptOrigVoucher, t.OrigSTAN.String()))
		l = append(l, m.label(i18n.RcptAmount, "-"+t.Amount.String()))
	} else {
		l = append(l, m.label(i18n.RcptAmount, t.Amount.String()))
	}
	l = append(l, "", m.t(i18n.RcptSignature), "", m.t(i18n.RcptAcknowledge))
	return hal.Receipt{Lines: l}
}

func (m *Machine) settlementReceipt(batch BatchNo, t Totals, outcome string) hal.Receipt {
	return hal.Receipt{Lines: []string{
		m.t(i18n.RcptSettlement),
		m.label(i18n.RcptTerminalNo, m.st.Merchant.TID),
		m.label(i18n.RcptBatchNo, batch.String()),
		fmt.Sprintf("%s %d %s", m.typeWord(Sale), t.DebitCount, t.DebitAmount),
		fmt.Sprintf("%s %d %s", m.typeWord(Void), t.CreditCount, t.CreditAmount),
		m.label(i18n.NetLabel, t.Net().String()),
		m.outcomeWord(outcome),
		m.now.Format(receiptTime),
	}}
}
