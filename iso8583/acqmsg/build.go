package acqmsg

import (
	"errors"
	"fmt"

	"github.com/posagent/posagent/iso8583"
	"github.com/posagent/posagent/terminal"
)

// MACer is the secure element's MAC role: field 64 for a MAC block, the CUP
// ECB MAC with the MAK (acquirer.md §MAC). hal.SecureElement is one.
type MACer interface {
	MAC(block []byte) ([8]byte, error)
}

// FrameSize is the size of a buffer that holds any frame of the profile,
// length prefix included: what Build wants as dst.
const FrameSize = iso8583.MaxFrameSize

// Codec builds requests and reads answers. It owns the scratch message and
// field buffers, so neither allocates on the way of a sale or void; its
// results depend only on its arguments. It is not safe for concurrent use:
// one per goroutine (the shell has one worker).
type Codec struct {
	msg iso8583.Message
	f48 [maxF48]byte
	f60 [13]byte
	f61 [12]byte
}

// message is one row of acquirer.md's table of messages: what the request
// carries besides its fields.
type message struct {
	mti  uint16 // request MTI, BCD readable in hex; the answer's is +0x10
	proc string // field 3, "" when not sent
	typ  string // 60.1
	net  string // 60.3
	mac  bool   // field 64
}

var messages = [...]message{
	terminal.MsgSignIn:         {mti: 0x0800, typ: "00", net: "003"},
	terminal.MsgSale:           {mti: 0x0200, proc: "000000", typ: "22", net: "000", mac: true},
	terminal.MsgVoid:           {mti: 0x0200, proc: "200000", typ: "23", net: "000", mac: true},
	terminal.MsgReversal:       {mti: 0x0400, mac: true}, // 3 and 60 copied from the message reversed
	terminal.MsgSettlement:     {mti: 0x0500, typ: "00", net: "201"},
	terminal.MsgBatchUpload:    {mti: 0x0320, typ: "00", net: "201"},
	terminal.MsgBatchUploadEnd: {mti: 0x0320, typ: "00"}, // 60.3 from Balanced
}

// Batch upload end: 60.3 says whether the settlement balanced.
const (
	netUploadEndBalanced    = "207"
	netUploadEndNotBalanced = "202"
)

// requestHeader is the header of every request (acquirer.md §Frame).
var requestHeader = [6]byte{0x60, 0x31, 0x00, 0x31, 0x00, 0x00}

// defaultTPDU is acquirer.md's default, for a merchant provisioned without
// one.
var defaultTPDU = [5]byte{0x60, 0x00, 0x03, 0x00, 0x00}

// Constant values of the profile.
const (
	operatorCode  = "01 " // field 63 of requests
	currencyCNY   = "156" // field 49
	conditionCode = "00"  // field 25
)

// Field 48 (acquirer.md §Field 48).
const (
	maxUploadRecords = 8
	uploadRecordLen  = 40                                   // card type n2, STAN n6, PAN n20, amount n12
	maxF48           = 2 + maxUploadRecords*uploadRecordLen // 322, the field's maximum
	settleTotalsLen  = 62
)

var (
	errNotProvisioned = errors.New("no TID/MID: terminal not provisioned")
	errUnknownKind    = errors.New("unknown request kind")
)

func spec(k terminal.MsgKind) (message, bool) {
	if int(k) >= len(messages) || messages[k].mti == 0 {
		return message{}, false
	}
	return messages[k], true
}

// Build packs the request q into dst (FrameSize bytes), MACed through mac
// when the message carries field 64, and returns the frame's size (length
// prefix included). The same q and MAK give the same bytes.
func (c *Codec) Build(dst []byte, q terminal.Request, mac MACer) (int, error) {
	n, err := c.build(dst, q, mac)
	if err != nil {
		return 0, fmt.Errorf("build %s request: %w", q.Kind, err)
	}
	return n, nil
}

func (c *Codec) build(dst []byte, q terminal.Request, mac MACer) (int, error) {
	s, ok := spec(q.Kind)
	if !ok {
		return 0, fmt.Errorf("%w %d", errUnknownKind, q.Kind)
	}
	if q.Merchant.TID == "" || q.Merchant.MID == "" {
		return 0, errNotProvisioned
	}
	tpdu, err := parseTPDU(q.Merchant.TPDU)
	if err != nil {
		return 0, err
	}
	m := &c.msg
	m.Reset()
	m.TPDU, m.Header, m.MTI = tpdu, requestHeader, s.mti
	f := fields{m: m}
	t := q.Txn
	switch q.Kind {
	case terminal.MsgSignIn:
		f.num(11, uint64(q.STAN))
		f.raw(60, c.field60(s.typ, q.Batch, s.net, &f))
		f.str(63, operatorCode)
	case terminal.MsgSale, terminal.MsgVoid:
		c.card(&f, t)
		f.str(3, s.proc)
		f.num(11, uint64(q.STAN))
		f.raw(60, c.field60(s.typ, q.Batch, s.net, &f))
		f.str(63, operatorCode)
		if q.Kind == terminal.MsgSale {
			f.str(35, q.Track2)
		} else {
			// The void names its original: 37 and 38 of its answer, 61 =
			// its batch and STAN.
			f.str(37, t.RRN)
			f.str(38, t.Auth)
			f.raw(61, c.field61(t, &f))
		}
	case terminal.MsgReversal:
		// Copied from the message reversed; 11 repeats its STAN, the one
		// place a STAN is sent twice. No 35, no 63.
		var orig message
		switch t.Type {
		case terminal.Sale:
			orig = messages[terminal.MsgSale]
		case terminal.Void:
			orig = messages[terminal.MsgVoid]
			f.raw(61, c.field61(t, &f))
		default:
			return 0, fmt.Errorf("reversal of a transaction of type %d", t.Type)
		}
		c.card(&f, t)
		f.str(3, orig.proc)
		f.num(11, uint64(t.STAN))
		f.str(39, q.Reason)
		f.raw(60, c.field60(orig.typ, t.Batch, orig.net, &f))
		if q.Auth != "" {
			f.str(38, q.Auth) // only when the answer reversed carried one (bad MAC)
		}
	case terminal.MsgSettlement:
		f.num(11, uint64(q.STAN))
		f.str(49, currencyCNY)
		f.raw(48, c.settlementTotals(q.Totals, &f))
		f.raw(60, c.field60(s.typ, q.Batch, s.net, &f))
		f.str(63, operatorCode)
	case terminal.MsgBatchUpload:
		f.num(11, uint64(q.STAN))
		f.raw(48, c.uploadRecords(q.Records, &f))
		f.raw(60, c.field60(s.typ, q.Batch, s.net, &f))
	case terminal.MsgBatchUploadEnd:
		net := netUploadEndNotBalanced
		if q.Balanced {
			net = netUploadEndBalanced
		}
		f.num(11, uint64(q.STAN))
		f.raw(48, c.digits(c.f48[:4], int64(q.Count), "upload count", &f))
		f.raw(60, c.field60(s.typ, q.Batch, net, &f))
	}
	f.str(41, q.Merchant.TID)
	f.str(42, q.Merchant.MID)
	if s.mac {
		var placeholder [8]byte
		f.raw(64, placeholder[:])
	}
	if f.err != nil {
		return 0, f.err
	}
	n, err := m.Pack(dst)
	if err != nil {
		return 0, err
	}
	if s.mac {
		block, err := iso8583.MACBlock(dst[:n])
		if err != nil {
			return 0, err
		}
		sum, err := mac.MAC(block)
		if err != nil {
			return 0, fmt.Errorf("MAC: %w", err)
		}
		if err := iso8583.PutMAC(dst[:n], sum[:]); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// card sets the fields of a sale, void or reversal that describe the card
// and the money: 2, 4, 14, 22 (the original swipe's entry mode), 25, 49.
func (c *Codec) card(f *fields, t terminal.Txn) {
	f.str(2, t.PAN.Digits())
	if t.Amount < 0 {
		f.fail(fmt.Errorf("negative amount %s", t.Amount))
	}
	f.num(4, uint64(t.Amount))
	f.str(14, t.Expiry)
	f.str(22, t.EntryMode)
	f.str(25, conditionCode)
	f.str(49, currencyCNY)
}

// field60 is 60.1 type, 60.2 batch, 60.3 network code, then 60.4 and 60.5
// "0": 13 digits in every request (acquirer.md §Field encodings).
func (c *Codec) field60(typ string, batch terminal.BatchNo, net string, f *fields) []byte {
	b := c.f60[:]
	copy(b[0:2], typ)
	c.digits(b[2:8], int64(batch), "batch", f)
	copy(b[8:11], net)
	b[11], b[12] = '0', '0'
	return b
}

// field61 is the original's batch n6 and STAN n6 (61.1, 61.2).
func (c *Codec) field61(t terminal.Txn, f *fields) []byte {
	b := c.f61[:]
	c.digits(b[0:6], int64(t.OrigBatch), "original batch", f)
	c.digits(b[6:12], int64(t.OrigSTAN), "original STAN", f)
	return b
}

// settlementTotals is field 48 of a 0500: domestic debit amount n12, debit
// count n3, credit amount n12, credit count n3, flag 0 (the terminal's),
// then the same 31 digits, all zero, for foreign cards.
func (c *Codec) settlementTotals(t terminal.Totals, f *fields) []byte {
	b := c.f48[:settleTotalsLen]
	c.digits(b[0:12], int64(t.DebitAmount), "debit amount", f)
	c.digits(b[12:15], int64(t.DebitCount), "debit count", f)
	c.digits(b[15:27], int64(t.CreditAmount), "credit amount", f)
	c.digits(b[27:30], int64(t.CreditCount), "credit count", f)
	for i := 30; i < len(b); i++ {
		b[i] = '0'
	}
	return b
}

// uploadRecords is field 48 of a batch upload: count n2, then per record
// card type 00, STAN n6, PAN n20 left-padded with 0, amount n12.
func (c *Codec) uploadRecords(recs []terminal.Txn, f *fields) []byte {
	if len(recs) > maxUploadRecords {
		f.fail(fmt.Errorf("%d batch upload records, at most %d per message", len(recs), maxUploadRecords))
		return nil
	}
	b := c.f48[:2+len(recs)*uploadRecordLen]
	c.digits(b[0:2], int64(len(recs)), "record count", f)
	for i, t := range recs {
		r := b[2+i*uploadRecordLen:][:uploadRecordLen]
		r[0], r[1] = '0', '0'
		c.digits(r[2:8], int64(t.STAN), "record STAN", f)
		pan := t.PAN.Digits()
		if len(pan) > 20 {
			f.fail(fmt.Errorf("record STAN %s: PAN of %d digits, at most 20", t.STAN, len(pan)))
			return nil
		}
		pad := r[8 : 28-len(pan)]
		for j := range pad {
			pad[j] = '0'
		}
		copy(r[28-len(pan):28], pan) // the codec checks these are digits
		c.digits(r[28:40], int64(t.Amount), "record amount", f)
	}
	return b
}

// digits writes v into dst as exactly len(dst) decimal digits; a value that
// is negative or does not fit fails f.
func (c *Codec) digits(dst []byte, v int64, what string, f *fields) []byte {
	if v < 0 {
		f.fail(fmt.Errorf("%s %d: negative", what, v))
		return dst
	}
	u := uint64(v)
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + u%10)
		u /= 10
	}
	if u != 0 {
		f.fail(fmt.Errorf("%s %d: more than %d digits", what, v, len(dst)))
	}
	return dst
}

// parseTPDU reads the merchant's TPDU, 10 hex digits; empty means the
// default.
func parseTPDU(s string) ([5]byte, error) {
	if s == "" {
		return defaultTPDU, nil
	}
	var t [5]byte
	if len(s) != 10 {
		return t, fmt.Errorf("TPDU %q: want 10 hex digits", s)
	}
	for i := range t {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return t, fmt.Errorf("TPDU %q: want 10 hex digits", s)
		}
		t[i] = hi<<4 | lo
	}
	return t, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// fields sets fields of a message and keeps the first error, so a request
// reads as the list of its fields.
type fields struct {
	m   *iso8583.Message
	err error
}

func (f *fields) fail(err error) {
	if f.err == nil {
		f.err = err
	}
}

func (f *fields) str(id int, v string) {
	if f.err == nil {
		f.err = f.m.SetString(id, v)
	}
}

func (f *fields) num(id int, v uint64) {
	if f.err == nil {
		f.err = f.m.SetUint(id, v)
	}
}

func (f *fields) raw(id int, v []byte) {
	if f.err == nil {
		f.err = f.m.Set(id, v)
	}
}
