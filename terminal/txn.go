package terminal

import "time"

// TxnType is the kind of a journal record.
type TxnType uint8

const (
	Sale TxnType = iota + 1
	Void
)

// String is the journal word (spec/terminal.md §Journal).
func (t TxnType) String() string {
	switch t {
	case Sale:
		return "SALE"
	case Void:
		return "VOID"
	}
	return "?"
}

// TxnStatus is where a journal record stands.
type TxnStatus uint8

const (
	// Pending: the request is (or may be) on its way; its reversal image is
	// in the reversal slot.
	Pending TxnStatus = iota + 1
	// Approved: 39=00 with a good MAC, committed before APPROVED showed.
	Approved
	// Declined: the host answered with another code; nothing to reverse.
	Declined
	// Reversed: no usable answer; the reversal cleared it at the host.
	Reversed
	// Failed: the request never left (dial failed); nothing to reverse.
	Failed
)

func (s TxnStatus) String() string {
	switch s {
	case Pending:
		return "pending"
	case Approved:
		return "approved"
	case Declined:
		return "declined"
	case Reversed:
		return "reversed"
	case Failed:
		return "failed"
	}
	return "?"
}

// Txn is one journal record: a sale or a void of the terminal's batch. It
// holds the PAN in clear in memory; the merchant store seals it at rest.
// Track 2 is never kept (PCI DSS 3.2: no full track data after
// authorisation).
type Txn struct {
	Batch     BatchNo   `json:"batch"`
	STAN      STAN      `json:"stan"`
	Type      TxnType   `json:"type"`
	Amount    Amount    `json:"amount"`
	PAN       PAN       `json:"pan"`
	Expiry    string    `json:"expiry"`     // YYMM, field 14
	EntryMode string    `json:"entry_mode"` // field 22, "021" for a swipe without PIN
	Time      time.Time `json:"time"`       // terminal local time of the request
	Status    TxnStatus `json:"status"`
	RespCode  string    `json:"resp_code,omitempty"`
	RRN       string    `json:"rrn,omitempty"`
	Auth      string    `json:"auth,omitempty"`
	// A void names its original; a sale records that it was voided.
	OrigBatch BatchNo `json:"orig_batch,omitempty"`
	OrigSTAN  STAN    `json:"orig_stan,omitempty"`
	Voided    bool    `json:"voided,omitempty"`
}

// Reversal is the reversal slot: the image of the message it would
// reverse and why. It is written with the journal record before a sale or
// void leaves, and cleared in the same transaction that commits the
// answer, so a power cut at any point leaves either nothing to reverse or
// a reversal that the next boot sends.
type Reversal struct {
	Txn    Txn    `json:"txn"`
	Reason string `json:"reason"` // field 39: 98 no answer, A0 MAC failed, 06 other
	Auth   string `json:"auth,omitempty"`
}

// Merchant is the acquirer parameters from provisioning.
type Merchant struct {
	TID          string `json:"tid"`
	MID          string `json:"mid"`
	Name         string `json:"merchant_name,omitempty"`
	AcquirerAddr string `json:"acquirer_addr"`
	AcquirerTLS  bool   `json:"acquirer_tls,omitempty"`
	TPDU         string `json:"tpdu"` // 10 hex digits, "6000030000"
}

// Counters are the persisted STAN and batch number.
type Counters struct {
	STAN  STAN    `json:"stan"`
	Batch BatchNo `json:"batch"`
}

// Totals are the settlement totals of a batch (acquirer.md §Field 48):
// debit = every approved sale (voided ones included), credit = every
// approved void.
type Totals struct {
	DebitAmount  Amount
	DebitCount   int
	CreditAmount Amount
	CreditCount  int
}

// Net is what the merchant is owed.
func (t Totals) Net() Amount { return t.DebitAmount - t.CreditAmount }

func totalsOf(txns []Txn) Totals {
	var t Totals
	for _, x := range txns {
		if x.Status != Approved {
			continue
		}
		switch x.Type {
		case Sale:
			t.DebitAmount += x.Amount
			t.DebitCount++
		case Void:
			t.CreditAmount += x.Amount
			t.CreditCount++
		}
	}
	return t
}
