package hostsim

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Transaction states in the host ledger.
const (
	StateApproved = "approved"
	StateDeclined = "declined"
	StateVoided   = "voided"   // an approved sale a void has cancelled
	StateReversed = "reversed" // an approved sale or void a 0400 has undone
)

// Transaction types.
const (
	TypeSale = "sale"
	TypeVoid = "void"
)

// How a closed batch was reconciled.
const (
	ReconciledBalanced = "balanced" // batch upload end 207 after flag 1
	ReconciledUpload   = "upload"   // batch upload end 202 after an upload
)

// Ledger is the host's record of every terminal, batch and transaction. A
// Ledger returned by (*Host).Ledger is a deep copy the caller may keep.
type Ledger struct {
	Terminals map[string]*Terminal `json:"terminals"`
}

// Terminal is one TID's state at the host.
type Terminal struct {
	TID          string   `json:"tid"`
	CurrentBatch string   `json:"current_batch"` // 6 digits, what a sign-in answers in 60.2
	SignIns      int      `json:"sign_ins"`      // approved sign-ins
	Batches      []*Batch `json:"batches"`       // in the order first seen
}

// Batch is one batch of a terminal.
type Batch struct {
	Number string `json:"number"`
	// Closed is set by the batch upload end (0320 with 60.3 207 or 202).
	Closed     bool           `json:"closed"`
	Reconciled string         `json:"reconciled,omitempty"` // ReconciledBalanced or ReconciledUpload
	Settlement *Settlement    `json:"settlement,omitempty"` // the last 0500 of this batch
	Uploaded   []UploadRecord `json:"uploaded,omitempty"`
	// UploadEndCount is field 48 of the batch upload end: the count of
	// records the terminal says it uploaded.
	UploadEndCount int        `json:"upload_end_count,omitempty"`
	Transactions   []Txn      `json:"transactions"`
	Reversals      []Reversal `json:"reversals,omitempty"`
}

// Txn is one sale or void as the host processed it.
type Txn struct {
	STAN     string `json:"stan"`
	Type     string `json:"type"`   // TypeSale or TypeVoid
	Amount   int64  `json:"amount"` // fen
	PAN      string `json:"pan"`    // masked, first 6 + last 4
	RRN      string `json:"rrn"`
	Auth     string `json:"auth,omitempty"`
	Response string `json:"response"` // field 39 sent
	State    string `json:"state"`    // StateApproved, StateDeclined, StateVoided, StateReversed
	// OrigSTAN is, for a void, the STAN of the sale it voids (61.2).
	OrigSTAN string `json:"orig_stan,omitempty"`
	// VoidSTAN is, for a voided sale, the STAN of the void.
	VoidSTAN string `json:"void_stan,omitempty"`
	// Fault names the faults the answer went out with (e.g. "no-answer",
	// "bad-mac"): the host processed the request regardless.
	Fault string `json:"fault,omitempty"`
	// ReversalReason is field 39 of the 0400 that reversed it.
	ReversalReason string    `json:"reversal_reason,omitempty"`
	Time           time.Time `json:"time"`
}

// Reversal is one 0400 received, found or not.
type Reversal struct {
	STAN     string    `json:"stan"`
	Reason   string    `json:"reason"`   // field 39 of the 0400
	Found    bool      `json:"found"`    // a transaction with that STAN exists
	Undone   bool      `json:"undone"`   // this 0400 changed its state
	Response string    `json:"response"` // field 39 answered
	Time     time.Time `json:"time"`
}

// Settlement is the last 0500 of a batch: the terminal's totals from field
// 48, the host's own, and the answer.
type Settlement struct {
	STAN     string `json:"stan"`
	Terminal Totals `json:"terminal"`
	Host     Totals `json:"host"`
	// Flag is digit 30 of the answered 48: "1" balanced, "2" not balanced.
	Flag   string    `json:"flag"`
	Forced bool      `json:"forced,omitempty"` // flag 2 forced by the not-balanced fault
	Time   time.Time `json:"time"`
}

// Totals are the domestic totals of field 48.
type Totals struct {
	DebitAmount  int64 `json:"debit_amount"`
	DebitCount   int   `json:"debit_count"`
	CreditAmount int64 `json:"credit_amount"`
	CreditCount  int   `json:"credit_count"`
}

// UploadRecord is one 40-digit record of a batch upload (0320, 60.3 201).
type UploadRecord struct {
	CardType string `json:"card_type"`
	STAN     string `json:"stan"`
	PAN      string `json:"pan"` // masked
	Amount   int64  `json:"amount"`
}

// Batch returns the batch with that number, or nil.
func (t *Terminal) Batch(number string) *Batch {
	if t == nil {
		return nil
	}
	for _, b := range t.Batches {
		if b.Number == number {
			return b
		}
	}
	return nil
}

// Txn returns the transaction with that STAN, or nil.
func (b *Batch) Txn(stan string) *Txn {
	if b == nil {
		return nil
	}
	for i := range b.Transactions {
		if b.Transactions[i].STAN == stan {
			return &b.Transactions[i]
		}
	}
	return nil
}

// Find returns the transaction of a TID, batch and STAN, if any.
func (l Ledger) Find(tid, batch, stan string) (Txn, bool) {
	if t := l.Batch(tid, batch).Txn(stan); t != nil {
		return *t, true
	}
	return Txn{}, false
}

// Batch returns a TID's batch, or nil.
func (l Ledger) Batch(tid, batch string) *Batch {
	return l.Terminals[tid].Batch(batch)
}

// HostTotals computes the batch's domestic totals as acquirer.md §Field 48
// defines them: debit = every approved sale (voided ones included), credit =
// every approved void. Reversed and declined transactions count nowhere.
func (b *Batch) HostTotals() Totals {
	var t Totals
	for _, x := range b.Transactions {
		switch {
		case x.Type == TypeSale && (x.State == StateApproved || x.State == StateVoided):
			t.DebitAmount += x.Amount
			t.DebitCount++
		case x.Type == TypeVoid && x.State == StateApproved:
			t.CreditAmount += x.Amount
			t.CreditCount++
		}
	}
	return t
}

func (l Ledger) clone() Ledger {
	out := Ledger{Terminals: make(map[string]*Terminal, len(l.Terminals))}
	for k, t := range l.Terminals {
		nt := *t
		nt.Batches = make([]*Batch, len(t.Batches))
		for i, b := range t.Batches {
			nb := *b
			if b.Settlement != nil {
				s := *b.Settlement
				nb.Settlement = &s
			}
			nb.Uploaded = append([]UploadRecord(nil), b.Uploaded...)
			nb.Transactions = append([]Txn(nil), b.Transactions...)
			nb.Reversals = append([]Reversal(nil), b.Reversals...)
			nt.Batches[i] = &nb
		}
		out.Terminals[k] = &nt
	}
	return out
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so a reader never sees a half-written ledger.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write ledger %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write ledger %s: %w", path, err)
	}
	return nil
}

func marshalLedger(l Ledger) ([]byte, error) {
	return json.MarshalIndent(l, "", "  ")
}

// ReadLedgerFile reads a ledger written with Config.LedgerFile.
func ReadLedgerFile(path string) (Ledger, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Ledger{}, fmt.Errorf("read ledger: %w", err)
	}
	var l Ledger
	if err := json.Unmarshal(b, &l); err != nil {
		return Ledger{}, fmt.Errorf("read ledger %s: %w", path, err)
	}
	return l, nil
}

// MaskPAN keeps the first 6 and last 4 digits: 622202*********0123.
func MaskPAN(pan string) string {
	if len(pan) < 11 {
		out := []byte(pan)
		for i := range out {
			out[i] = '*'
		}
		return string(out)
	}
	out := []byte(pan)
	for i := 6; i < len(out)-4; i++ {
		out[i] = '*'
	}
	return string(out)
}
