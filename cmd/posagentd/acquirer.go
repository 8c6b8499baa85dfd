package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/iso8583"
	"github.com/posagent/posagent/iso8583/link"
	"github.com/posagent/posagent/terminal"
)

// requestHeader is the header of every request (acquirer.md §Frame).
var requestHeader = [6]byte{0x60, 0x31, 0x00, 0x31, 0x00, 0x00}

// Operator code sent in field 63 of requests.
const operatorCode = "01 "

// acquirerLink maps the core's Requests to ISO 8583 on the fast path, MACs
// them in the secure element, sends them with the link client and maps the
// answers back. One exchange at a time (the core guarantees it), so the
// message structs and buffers are reused and the hot path allocates
// little.
type acquirerLink struct {
	se      hal.SecureElement
	timeout time.Duration

	req, resp iso8583.Message
	out, in   [iso8583.MaxFrameSize]byte
}

// do runs one exchange end to end and returns the reply event.
func (a *acquirerLink) do(ctx context.Context, q terminal.Request) terminal.AcquirerReply {
	r := terminal.AcquirerReply{ID: q.ID}
	n, err := a.pack(q)
	if err != nil {
		r.Err = fmt.Errorf("%s: build request: %w", q.Kind, err)
		return r
	}
	c := link.Client{Addr: q.Merchant.AcquirerAddr, Timeout: a.timeout, DialTimeout: 10 * time.Second}
	if q.Merchant.AcquirerTLS {
		c.TLS = tlsConfigFor(q.Merchant.AcquirerAddr)
	}
	m, err := c.Exchange(ctx, a.out[:n], a.in[:])
	if err != nil {
		r.Err = fmt.Errorf("%s: %w", q.Kind, err)
		r.Written = link.RequestWritten(err)
		return r
	}
	r.Resp = a.unpack(q, a.in[:m])
	return r
}

func tpduOf(m terminal.Merchant) ([5]byte, error) {
	var t [5]byte
	s := m.TPDU
	if s == "" {
		s = "6000030000"
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 5 {
		return t, fmt.Errorf("TPDU %q: want 10 hex digits", s)
	}
	copy(t[:], b)
	return t, nil
}

// field60 is 60.1 type, 60.2 batch, 60.3 network code, 60.4 and 60.5 "0":
// 13 digits in every request (acquirer.md §Field encodings).
func field60(typ string, batch terminal.BatchNo, net string) string {
	return typ + batch.String() + net + "00"
}

// pack builds the request frame into a.out.
func (a *acquirerLink) pack(q terminal.Request) (int, error) {
	m := &a.req
	m.Reset()
	tpdu, err := tpduOf(q.Merchant)
	if err != nil {
		return 0, err
	}
	m.TPDU, m.Header = tpdu, requestHeader
	set := func(id int, v string) {
		if err == nil {
			err = m.SetString(id, v)
		}
	}
	setN := func(id int, v uint64) {
		if err == nil {
			err = m.SetUint(id, v)
		}
	}
	t := q.Txn
	mac := false
	switch q.Kind {
	case terminal.MsgSignIn:
		m.MTI = 0x0800
		setN(11, uint64(q.STAN))
		set(60, field60("00", q.Batch, "003"))
		set(63, operatorCode)
	case terminal.MsgSale, terminal.MsgVoid:
		m.MTI = 0x0200
		mac = true
		set(2, t.PAN.Digits())
		setN(4, uint64(t.Amount))
		setN(11, uint64(q.STAN))
		set(14, t.Expiry)
		set(22, t.EntryMode)
		set(25, "00")
		set(49, "156")
		set(63, operatorCode)
		if q.Kind == terminal.MsgSale {
			set(3, "000000")
			set(35, q.Track2)
			set(60, field60("22", q.Batch, "000"))
		} else {
			set(3, "200000")
			set(37, t.RRN)
			set(38, t.Auth)
			set(60, field60("23", q.Batch, "000"))
			set(61, t.OrigBatch.String()+t.OrigSTAN.String())
		}
	case terminal.MsgReversal:
		// Fields copied from the message reversed; 11 repeats its STAN.
		m.MTI = 0x0400
		mac = true
		set(2, t.PAN.Digits())
		setN(4, uint64(t.Amount))
		setN(11, uint64(t.STAN))
		set(14, t.Expiry)
		set(22, t.EntryMode)
		set(25, "00")
		set(39, q.Reason)
		set(49, "156")
		if q.Auth != "" {
			set(38, q.Auth)
		}
		if t.Type == terminal.Void {
			set(3, "200000")
			set(60, field60("23", t.Batch, "000"))
			set(61, t.OrigBatch.String()+t.OrigSTAN.String())
		} else {
			set(3, "000000")
			set(60, field60("22", t.Batch, "000"))
		}
	case terminal.MsgSettlement:
		m.MTI = 0x0500
		setN(11, uint64(q.STAN))
		set(48, settlementTotals(q.Totals))
		set(49, "156")
		set(60, field60("00", q.Batch, "201"))
		set(63, operatorCode)
	case terminal.MsgBatchUpload:
		m.MTI = 0x0320
		setN(11, uint64(q.STAN))
		set(48, uploadRecords(q.Records))
		set(60, field60("00", q.Batch, "201"))
	case terminal.MsgBatchUploadEnd:
		m.MTI = 0x0320
		setN(11, uint64(q.STAN))
		set(48, fmt.Sprintf("%04d", q.Count))
		code := "202"
		if q.Balanced {
			code = "207"
		}
		set(60, field60("00", q.Batch, code))
	default:
		return 0, fmt.Errorf("unknown request kind %d", q.Kind)
	}
	if err == nil && (q.Merchant.TID == "" || q.Merchant.MID == "") {
		err = errors.New("no TID/MID: terminal not provisioned")
	}
	set(41, q.Merchant.TID)
	set(42, q.Merchant.MID)
	if err != nil {
		return 0, err
	}
	if mac {
		var zero [8]byte
		if err := m.Set(64, zero[:]); err != nil {
			return 0, err
		}
	}
	n, err := m.Pack(a.out[:])
	if err != nil {
		return 0, err
	}
	if mac {
		block, err := iso8583.MACBlock(a.out[:n])
		if err != nil {
			return 0, err
		}
		sum, err := a.se.MAC(block)
		if err != nil {
			return 0, fmt.Errorf("MAC: %w", err)
		}
		if err := iso8583.PutMAC(a.out[:n], sum[:]); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// settlementTotals is field 48 of a 0500 (acquirer.md §Field 48): domestic
// debit amount/count, credit amount/count, flag 0, then 31 zeros for
// foreign cards.
func settlementTotals(t terminal.Totals) string {
	return fmt.Sprintf("%012d%03d%012d%03d0%031d", int64(t.DebitAmount), t.DebitCount, int64(t.CreditAmount), t.CreditCount, 0)
}

// uploadRecords is field 48 of a batch upload: count n2, then per record
// card type 00, STAN n6, PAN n20 left-padded with 0, amount n12.
func uploadRecords(recs []terminal.Txn) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%02d", len(recs))
	for _, t := range recs {
		fmt.Fprintf(&b, "00%s%020s%012d", t.STAN, t.PAN.Digits(), int64(t.Amount))
	}
	return b.String()
}

// unpack decodes the answer and checks what the core relies on.
func (a *acquirerLink) unpack(q terminal.Request, frame []byte) terminal.Response {
	m := &a.resp
	if err := m.Unpack(frame); err != nil {
		return terminal.Response{Undecodable: true, DecodeErr: err}
	}
	var r terminal.Response
	if m.MTI != a.req.MTI+0x10 {
		return terminal.Response{Undecodable: true, DecodeErr: fmt.Errorf("answer MTI %04x to a %04x", m.MTI, a.req.MTI)}
	}
	r.RespCode = string(m.Get(39))
	r.RRN = string(m.Get(37))
	r.Auth = string(m.Get(38))
	r.TID = string(m.Get(41))
	r.LocalTime, r.LocalDate = string(m.Get(12)), string(m.Get(13)) // hhmmss, MMDD: clock trust
	if v, ok := m.Uint(11); ok {
		r.STAN = terminal.STAN(v)
	}
	want := q.STAN
	if q.Kind == terminal.MsgReversal {
		want = q.Txn.STAN
	}
	if r.STAN != want {
		return terminal.Response{Undecodable: true, DecodeErr: fmt.Errorf("answer STAN %s to STAN %s", r.STAN, want)}
	}
	if f60 := m.Get(60); len(f60) >= 8 {
		if b, err := strconv.ParseUint(string(f60[2:8]), 10, 32); err == nil {
			r.Batch = terminal.BatchNo(b)
		}
	}
	r.SignInAgain = iso8583.ProcessingRequirement(m.Header) == iso8583.SignInAgain
	switch q.Kind {
	case terminal.MsgSale, terminal.MsgVoid, terminal.MsgReversal:
		if r.Approved() || q.Kind == terminal.MsgReversal && m.Has(64) {
			r.MACBad = !a.macOK(frame)
		}
	case terminal.MsgSignIn:
		if r.Approved() {
			if f62 := m.Get(62); f62 == nil {
				r.KeysErr = errors.New("no field 62")
			} else if err := a.se.InstallWorkingKeys(f62); err != nil {
				r.KeysErr = err
			}
		}
	case terminal.MsgSettlement:
		if f48 := m.Get(48); len(f48) > 30 {
			r.SettleFlag = f48[30]
		}
	}
	return r
}

// macOK verifies field 64 of an answer with the MAK in the secure element.
func (a *acquirerLink) macOK(frame []byte) bool {
	got := a.resp.Get(64)
	if len(got) != 8 {
		return false
	}
	block, err := iso8583.MACBlock(frame)
	if err != nil {
		return false
	}
	sum, err := a.se.MAC(block)
	if err != nil {
		return false
	}
	return bytes.Equal(sum[:], got)
}

// tlsConfigFor verifies the acquirer's certificate against the system
// roots, for the host named in its address.
func tlsConfigFor(addr string) *tls.Config {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
}
