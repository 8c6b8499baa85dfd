package hostsim

import (
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/posagent/posagent/iso8583"
	"github.com/posagent/posagent/iso8583/mac"
)

// Response codes the host sends.
const (
	rcApproved      = "00"
	rcInvalidTxn    = "12"
	rcNoOriginal    = "25"
	rcFormatError   = "30"
	rcInsufficient  = "51"
	rcWrongPIN      = "55"
	rcAmountDiffers = "64"
	rcDuplicate     = "94"
	rcSwitchFault   = "96"
	rcNotRegistered = "97"
	rcMACError      = "A0"
)

// DeclineCode is the sale decline rule: the response code for an amount in
// fen, decided by its last two digits (51, 55, 96 decline with that code;
// anything else approves with 00).
func DeclineCode(amount int64) string {
	switch amount % 100 {
	case 51:
		return rcInsufficient
	case 55:
		return rcWrongPIN
	case 96:
		return rcSwitchFault
	}
	return rcApproved
}

func macSum(key, block []byte) ([8]byte, error) { return mac.CUPECB(key, block) }

// respMTI is the answer's MTI: 0200 -> 0210.
func respMTI(mti string) string {
	if len(mti) != 4 || mti[2] < '0' || mti[2] > '8' {
		return "0810"
	}
	return mti[:2] + string(mti[2]+1) + mti[3:]
}

// dispatch processes one decoded request; called with h.mu held.
func (h *Host) dispatch(req *request, fl Faults, log *slog.Logger) *response {
	switch {
	case req.mti == "0800":
		return h.signIn(req, log)
	case req.mti == "0200" && req.f[3] == "000000":
		return h.sale(req, fl, log)
	case req.mti == "0200" && req.f[3] == "200000":
		return h.void(req, fl, log)
	case req.mti == "0400":
		return h.reversal(req, log)
	case req.mti == "0500":
		return h.settlement(req, fl, log)
	case req.mti == "0320":
		return h.batchUpload(req, log)
	}
	log.Warn("unsupported request", "proc", req.f[3])
	return h.answer(req, rcInvalidTxn, 11, 41, 42, 60)
}

// answer starts a response echoing the given request fields, with 39 = rc.
func (h *Host) answer(req *request, rc string, echo ...int) *response {
	r := &response{mti: respMTI(req.mti), f: map[int]string{39: rc}}
	for _, id := range echo {
		if v, ok := req.f[id]; ok {
			r.f[id] = v
		}
	}
	return r
}

func (h *Host) stamp(r *response, ids ...int) {
	now := h.cfg.Now()
	for _, id := range ids {
		switch id {
		case 12:
			r.f[12] = now.Format("150405")
		case 13, 15:
			r.f[id] = now.Format("0102")
		case 37:
			h.rrnSeq++
			r.f[37] = fmt.Sprintf("%s%06d", now.Format("060102"), h.rrnSeq%1000000)
		}
	}
}

func (h *Host) authCode() string {
	h.auth = (h.auth + 7919) % 1000000
	return fmt.Sprintf("%06d", h.auth)
}

// terminal returns (creating) the ledger entry of a TID.
func (h *Host) terminal(tid string) *Terminal {
	t := h.ledger.Terminals[tid]
	if t == nil {
		t = &Terminal{TID: tid, CurrentBatch: "000001"}
		h.ledger.Terminals[tid] = t
	}
	return t
}

// batchOf returns (creating) the batch named by a request's 60.2. The host
// follows the terminal: a batch it has not seen becomes the TID's current
// one (a terminal that kept its own batch across a sign-in, acquirer.md
// §Sign-in). It returns nil when 60 is malformed.
func (h *Host) batchOf(t *Terminal, f60 string, log *slog.Logger) *Batch {
	if len(f60) < 8 || !allDigits(f60[2:8]) {
		return nil
	}
	n := f60[2:8]
	if b := t.Batch(n); b != nil {
		return b
	}
	if n != t.CurrentBatch {
		log.Info("terminal batch differs from host, following the terminal", "host_batch", t.CurrentBatch, "terminal_batch", n)
		t.CurrentBatch = n
	}
	b := &Batch{Number: n, Transactions: []Txn{}}
	t.Batches = append(t.Batches, b)
	return b
}

func (h *Host) signIn(req *request, log *slog.Logger) *response {
	tid := req.f[41]
	r := h.answer(req, rcApproved, 11, 41, 42, 60)
	h.stamp(r, 12, 13, 37)
	tmk := h.tmkFor(tid, log)
	if tmk == nil {
		log.Warn("sign-in of an unknown terminal")
		r.f[39] = rcNotRegistered
		return r
	}
	var pik [16]byte
	var mak [8]byte
	if _, err := io.ReadFull(h.cfg.Rand, pik[:]); err != nil {
		log.Error("random PIK", "err", err)
		r.f[39] = rcSwitchFault
		return r
	}
	if _, err := io.ReadFull(h.cfg.Rand, mak[:]); err != nil {
		log.Error("random MAK", "err", err)
		r.f[39] = rcSwitchFault
		return r
	}
	f62, err := mac.WrapWorkingKeys(tmk, pik, mak)
	if err != nil {
		log.Error("wrap working keys", "err", err)
		r.f[39] = rcSwitchFault
		return r
	}
	r.f[62] = strings.ToUpper(hex.EncodeToString(f62[:]))
	k := h.keys[tid]
	if k == nil {
		k = &termKeys{}
		h.keys[tid] = k
	}
	if k.hasMAK {
		k.prevMAK, k.hasPrevMAK = k.mak, true
	}
	k.mak, k.hasMAK = mak, true
	t := h.terminal(tid)
	t.SignIns++
	// 60.2 of the answer is the host's current batch for the TID.
	if f60 := req.f[60]; len(f60) >= 8 {
		r.f[60] = f60[:2] + t.CurrentBatch + f60[8:]
	}
	r.changed = true
	log.Info("signed in", "batch", t.CurrentBatch)
	return r
}

// checkMAC verifies field 64 of a request with the TID's MAK (and, when
// allowPrev, the MAK of the sign-in before: a reversal image may have been
// MACed before the terminal signed in again).
func (h *Host) checkMAC(req *request, allowPrev bool) (*[8]byte, bool) {
	k := h.keys[req.f[41]]
	if k == nil || !k.hasMAK {
		return nil, false
	}
	got, err := hex.DecodeString(req.f[64])
	if err != nil || len(got) != 8 {
		return &k.mak, false
	}
	block, err := iso8583.MACBlock(req.frame)
	if err != nil {
		return &k.mak, false
	}
	keys := [][8]byte{k.mak}
	if allowPrev && k.hasPrevMAK {
		keys = append(keys, k.prevMAK)
	}
	for _, key := range keys {
		m, err := mac.NewMACer(key[:])
		if err == nil && m.Verify(block, got) {
			return &k.mak, true
		}
	}
	return &k.mak, false
}

// panOf is field 2, or the PAN of track 2.
func panOf(f map[int]string) string {
	if p := f[2]; p != "" {
		return p
	}
	p, _, _ := strings.Cut(f[35], "=")
	return p
}

// financialAnswer is the 0210 skeleton of acquirer.md §Sale.
func (h *Host) financialAnswer(req *request) *response {
	r := h.answer(req, rcApproved, 3, 4, 11, 14, 25, 41, 42, 49, 60)
	if pan := panOf(req.f); pan != "" {
		r.f[2] = pan
	}
	r.f[32] = h.cfg.AcquirerID
	r.f[44] = fmt.Sprintf("%-11s%-11s", h.cfg.IssuerID, h.cfg.AcquirerID)
	r.f[63] = "CUP"
	h.stamp(r, 12, 13, 37)
	return r
}

func (h *Host) sale(req *request, fl Faults, log *slog.Logger) *response {
	r := h.financialAnswer(req)
	t := h.terminal(req.f[41])
	b := h.batchOf(t, req.f[60], log)
	amount, err := strconv.ParseInt(req.f[4], 10, 64)
	if b == nil || err != nil || req.f[11] == "" {
		r.f[39] = rcFormatError
		return r
	}
	mak, ok := h.checkMAC(req, false)
	if !ok {
		log.Warn("sale MAC check failed")
		r.f[39] = rcMACError
	} else if b.Closed {
		log.Warn("sale in a closed batch", "batch", b.Number)
		r.f[39] = rcInvalidTxn
	} else if b.Txn(req.f[11]) != nil {
		log.Warn("duplicate STAN in batch")
		r.f[39] = rcDuplicate
		return r // not recorded: a STAN appears once per batch
	} else {
		r.f[39] = DeclineCode(amount)
	}
	tx := Txn{STAN: req.f[11], Type: TypeSale, Amount: amount, PAN: MaskPAN(panOf(req.f)),
		RRN: r.f[37], Response: r.f[39], State: StateDeclined, Fault: fl.String(), Time: h.cfg.Now()}
	if r.f[39] == rcApproved {
		tx.Auth = h.authCode()
		tx.State = StateApproved
		r.f[38] = tx.Auth
		r.mac = mak
	}
	b.Transactions = append(b.Transactions, tx)
	r.changed = true
	log.Info("sale", "amount", amount, "pan", tx.PAN, "rc", tx.Response)
	return r
}

func (h *Host) void(req *request, fl Faults, log *slog.Logger) *response {
	r := h.financialAnswer(req)
	t := h.terminal(req.f[41])
	b := h.batchOf(t, req.f[60], log)
	amount, err := strconv.ParseInt(req.f[4], 10, 64)
	f61 := req.f[61]
	if b == nil || err != nil || req.f[11] == "" || len(f61) < 12 {
		r.f[39] = rcFormatError
		return r
	}
	origBatch, origSTAN := f61[:6], f61[6:12]
	var orig *Txn
	if origBatch == b.Number && !b.Closed {
		if o := b.Txn(origSTAN); o != nil && o.Type == TypeSale && (o.State == StateApproved || o.State == StateVoided) {
			orig = o
		}
	}
	mak, ok := h.checkMAC(req, false)
	switch {
	case !ok:
		log.Warn("void MAC check failed")
		r.f[39] = rcMACError
	case b.Txn(req.f[11]) != nil:
		log.Warn("duplicate STAN in batch")
		r.f[39] = rcDuplicate
		return r
	case orig == nil:
		r.f[39] = rcNoOriginal
	case orig.Amount != amount:
		r.f[39] = rcAmountDiffers
	case orig.State == StateVoided:
		r.f[39] = rcInvalidTxn
	default:
		r.f[39] = rcApproved
	}
	tx := Txn{STAN: req.f[11], Type: TypeVoid, Amount: amount, PAN: MaskPAN(panOf(req.f)),
		RRN: r.f[37], Response: r.f[39], State: StateDeclined, OrigSTAN: origSTAN, Fault: fl.String(), Time: h.cfg.Now()}
	if r.f[39] == rcApproved {
		tx.Auth = h.authCode()
		tx.State = StateApproved
		r.f[38] = tx.Auth
		r.mac = mak
		orig.State = StateVoided
		orig.VoidSTAN = tx.STAN
	}
	b.Transactions = append(b.Transactions, tx)
	r.changed = true
	log.Info("void", "orig_stan", origSTAN, "amount", amount, "rc", tx.Response)
	return r
}

// reversal undoes an approved sale or void with the STAN of field 11. It
// answers 0410 whether or not it found it, and repeating it changes nothing.
func (h *Host) reversal(req *request, log *slog.Logger) *response {
	r := h.answer(req, rcApproved, 11, 41, 42, 60)
	t := h.terminal(req.f[41])
	b := h.batchOf(t, req.f[60], log)
	if b == nil {
		b = t.Batch(t.CurrentBatch)
	}
	mak, ok := h.checkMAC(req, true)
	note := Reversal{STAN: req.f[11], Reason: req.f[39], Time: h.cfg.Now()}
	var tx *Txn
	if b != nil {
		tx = b.Txn(req.f[11])
	}
	note.Found = tx != nil
	if tx != nil {
		r.f[37] = tx.RRN
	} else {
		h.stamp(r, 37)
	}
	switch {
	case !ok:
		log.Warn("reversal MAC check failed: nothing undone")
		r.f[39] = rcMACError
	case tx == nil:
		log.Info("reversal of an unknown STAN: nothing to undo")
	case tx.State == StateApproved:
		tx.State = StateReversed
		tx.ReversalReason = req.f[39]
		note.Undone = true
		if tx.Type == TypeVoid {
			if o := b.Txn(tx.OrigSTAN); o != nil && o.State == StateVoided && o.VoidSTAN == tx.STAN {
				o.State = StateApproved
				o.VoidSTAN = ""
			}
		}
		log.Info("reversed", "type", tx.Type, "amount", tx.Amount, "reason", req.f[39])
	default:
		log.Info("reversal: nothing to undo", "state", tx.State)
	}
	note.Response = r.f[39]
	if b != nil {
		b.Reversals = append(b.Reversals, note)
		r.changed = true
	}
	if mak != nil {
		r.mac = mak
	}
	return r
}

// parseTotals reads the 31 domestic digits of settlement field 48.
func parseTotals(f48 string) (Totals, bool) {
	if len(f48) < 31 || !allDigits(f48) {
		return Totals{}, false
	}
	da, _ := strconv.ParseInt(f48[0:12], 10, 64)
	dc, _ := strconv.Atoi(f48[12:15])
	ca, _ := strconv.ParseInt(f48[15:27], 10, 64)
	cc, _ := strconv.Atoi(f48[27:30])
	return Totals{DebitAmount: da, DebitCount: dc, CreditAmount: ca, CreditCount: cc}, true
}

func (h *Host) settlement(req *request, fl Faults, log *slog.Logger) *response {
	r := h.answer(req, rcApproved, 11, 41, 42, 60)
	h.stamp(r, 12, 13, 15, 37)
	t := h.terminal(req.f[41])
	b := h.batchOf(t, req.f[60], log)
	term, ok := parseTotals(req.f[48])
	if b == nil || !ok {
		r.f[39] = rcFormatError
		return r
	}
	host := b.HostTotals()
	flag := "1"
	if host != term || fl.NotBalanced {
		flag = "2"
	}
	f48 := []byte(req.f[48])
	f48[30] = flag[0] // digit 30: the domestic flag
	r.f[48] = string(f48)
	b.Settlement = &Settlement{STAN: req.f[11], Terminal: term, Host: host, Flag: flag,
		Forced: fl.NotBalanced && host == term, Time: h.cfg.Now()}
	r.changed = true
	log.Info("settlement", "batch", b.Number, "flag", flag, "terminal", term, "host", host)
	return r
}

func (h *Host) batchUpload(req *request, log *slog.Logger) *response {
	r := h.answer(req, rcApproved, 11, 41, 42, 48, 60)
	h.stamp(r, 12, 13)
	t := h.terminal(req.f[41])
	b := h.batchOf(t, req.f[60], log)
	f60, f48 := req.f[60], req.f[48]
	if b == nil || len(f60) < 11 || !allDigits(f48) {
		r.f[39] = rcFormatError
		return r
	}
	switch code := f60[8:11]; code {
	case "201":
		if len(f48) < 2 {
			r.f[39] = rcFormatError
			return r
		}
		n, _ := strconv.Atoi(f48[:2])
		recs := f48[2:]
		if len(recs) != 40*n {
			log.Warn("batch upload: record count does not match", "count", n, "digits", len(recs))
			r.f[39] = rcFormatError
			return r
		}
		for i := range n {
			rec := recs[40*i : 40*(i+1)]
			amount, _ := strconv.ParseInt(rec[28:40], 10, 64)
			pan := strings.TrimLeft(rec[8:28], "0")
			b.Uploaded = append(b.Uploaded, UploadRecord{CardType: rec[0:2], STAN: rec[2:8], PAN: MaskPAN(pan), Amount: amount})
		}
		log.Info("batch upload", "batch", b.Number, "records", n)
	case "207", "202":
		n, err := strconv.Atoi(f48)
		if err != nil {
			r.f[39] = rcFormatError
			return r
		}
		b.UploadEndCount = n
		if b.Closed {
			log.Info("batch upload end repeated: batch already closed", "batch", b.Number)
			return r
		}
		b.Closed = true
		b.Reconciled = ReconciledBalanced
		if code == "202" {
			b.Reconciled = ReconciledUpload
		}
		if t.CurrentBatch == b.Number {
			t.CurrentBatch = nextBatch(b.Number)
		}
		log.Info("batch closed", "batch", b.Number, "reconciled", b.Reconciled, "next", t.CurrentBatch)
	default:
		r.f[39] = rcInvalidTxn
		return r
	}
	r.changed = true
	return r
}

// nextBatch is the batch after n: 000001..999999 then 000001.
func nextBatch(n string) string {
	v, _ := strconv.Atoi(n)
	v++
	if v > 999999 {
		v = 1
	}
	return fmt.Sprintf("%06d", v)
}
