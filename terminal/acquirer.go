package terminal

import (
	"log/slog"

	"github.com/posagent/posagent/terminal/i18n"
)

// MsgKind is an acquirer message of spec/acquirer.md §Messages.
type MsgKind uint8

const (
	MsgSignIn MsgKind = iota + 1
	MsgSale
	MsgVoid
	MsgReversal
	MsgSettlement
	MsgBatchUpload
	MsgBatchUploadEnd
)

func (k MsgKind) String() string {
	switch k {
	case MsgSignIn:
		return "sign-in"
	case MsgSale:
		return "sale"
	case MsgVoid:
		return "void"
	case MsgReversal:
		return "reversal"
	case MsgSettlement:
		return "settlement"
	case MsgBatchUpload:
		return "batch-upload"
	case MsgBatchUploadEnd:
		return "batch-upload-end"
	}
	return "?"
}

// Request is one message to the acquirer, described at the terminal's
// level; iso8583/acqmsg maps it to ISO 8583 fields and MACs it through the
// secure element, the shell sends it.
type Request struct {
	ID       uint64 // matches the AcquirerReply
	Kind     MsgKind
	STAN     STAN
	Batch    BatchNo // 60.2: the terminal's current batch
	Merchant Merchant

	Txn    Txn    // sale, void: the journal record; reversal: the message reversed
	Track2 string // sale: the z value "PAN=YYMM…", never stored
	Reason string // reversal: field 39
	Auth   string // reversal: field 38 when the reversed answer carried one

	Totals   Totals // settlement
	Records  []Txn  // batch upload: up to 8 records
	Count    int    // batch upload end: records uploaded
	Balanced bool   // batch upload end: 60.3 = 207 (balanced) or 202
}

// Exchange asks the shell to send req and to answer with an AcquirerReply
// carrying the same ID.
type Exchange struct{ Req Request }

func (Exchange) isEffect() {}

// AcquirerReply is the outcome of an Exchange.
type AcquirerReply struct {
	ID  uint64
	Err error // no usable answer; Written says whether the request may have reached the host
	// Written: the request bytes may have reached the host (a reversal is
	// owed for a sale or void).
	Written bool
	Resp    Response
}

func (AcquirerReply) isEvent() {}

// Response is what the terminal needs from an answer.
type Response struct {
	RespCode    string  // field 39
	RRN         string  // field 37
	Auth        string  // field 38
	STAN        STAN    // field 11
	TID         string  // field 41
	Batch       BatchNo // field 60.2
	MACBad      bool    // 39=00 but field 64 did not verify (or was missing)
	SignInAgain bool    // header processing requirement 3
	// KeysErr is set on a sign-in whose working keys (field 62) did not
	// install: bad check value or missing field. The keys themselves never
	// reach the core: the shell hands the key block to the secure element.
	KeysErr error
	// SettleFlag is the domestic flag of a settlement answer (digit 30 of
	// field 48): '1' balanced, '2' not balanced, '3' error.
	SettleFlag  byte
	Undecodable bool  // the answer did not decode or did not match: reversal reason 06
	DecodeErr   error // why, for the log
	// LocalDate (field 13, MMDD) and LocalTime (field 12, hhmmss) are the
	// host's local date and time as raw digits, "" when absent; a sign-in
	// answer sets an untrusted clock from them.
	LocalDate string
	LocalTime string
}

// Approved reports 39=00.
func (r Response) Approved() bool { return r.RespCode == "00" }

// job is an exchange waiting for its turn or its reply.
type job struct {
	req Request
	// build, when set, makes the request at the moment it is sent, from
	// the state as it is then (a reversal from the reversal slot); false
	// means there is nothing to send any more, and skipped runs instead
	// of onReply.
	build   func(m *Machine) (Request, bool)
	skipped func(m *Machine)
	onReply func(m *Machine, r AcquirerReply)
}

// exchange sends req now if the link is free, or after the exchanges
// already waiting. One request is in flight at a time (acquirer.md §Frame).
func (m *Machine) exchange(req Request, onReply func(m *Machine, r AcquirerReply)) {
	m.enqueue(&job{req: req, onReply: onReply})
}

func (m *Machine) enqueue(j *job) {
	if m.inflight != nil {
		m.waiting = append(m.waiting, j)
		return
	}
	m.send(j)
}

// send puts j on the wire, building its request first if it is built at
// send time. A job with nothing left to send is skipped and the next one
// goes.
func (m *Machine) send(j *job) {
	for j != nil {
		if j.build != nil {
			req, ok := j.build(m)
			if !ok {
				if j.skipped != nil {
					j.skipped(m)
				}
				j = m.dequeue()
				continue
			}
			j.req = req
		}
		m.nextID++
		j.req.ID = m.nextID
		j.req.Merchant = m.st.Merchant
		m.inflight = j
		m.emit(Exchange{Req: j.req})
		return
	}
}

func (m *Machine) dequeue() *job {
	if m.inflight != nil || len(m.waiting) == 0 {
		return nil
	}
	j := m.waiting[0]
	m.waiting = m.waiting[1:]
	return j
}

// linkIdle reports that no exchange is in flight or waiting.
func (m *Machine) linkIdle() bool { return m.inflight == nil && len(m.waiting) == 0 }

func (m *Machine) onAcquirerReply(r AcquirerReply) {
	j := m.inflight
	if j == nil || j.req.ID != r.ID {
		m.log(slog.LevelWarn, "acquirer reply for no request", slog.Uint64("id", r.ID))
		return
	}
	m.inflight = nil
	if r.Err == nil && r.Resp.SignInAgain {
		// Processing requirement 3: sign in before the next financial message.
		m.st.NeedSignIn = true
	}
	j.onReply(m, r)
	if m.inflight == nil {
		m.send(m.dequeue())
	}
	m.whenIdle()
}

// allocSTAN returns the next STAN and the op that persists it; the op goes
// in the same Persist as the request's journal record, before the send.
func (m *Machine) allocSTAN() (STAN, Op) {
	m.st.Counters.STAN = m.st.Counters.STAN.Next()
	return m.st.Counters.STAN, PutCounters{Counters: m.st.Counters}
}

// beforeFinancial clears the way for a financial message or settlement:
// a pending reversal goes first (acquirer.md: "sent before any other
// financial message or settlement"), then a sign-in if the host asked for
// one or the working keys are missing. then runs once the way is clear;
// fail gets why not.
func (m *Machine) beforeFinancial(then func(m *Machine), fail func(m *Machine, f *failure)) {
	switch {
	case m.st.Reversal != nil:
		m.sendReversal(func(m *Machine, ok bool) {
			if !ok {
				fail(m, failed(i18n.ReversalPending))
				return
			}
			m.beforeFinancial(then, fail)
		})
	case m.st.NeedSignIn:
		m.signIn(func(m *Machine, f *failure) {
			if f != nil {
				fail(m, f.inSignIn())
				return
			}
			m.beforeFinancial(then, fail)
		})
	default:
		then(m)
	}
}

// sendReversal sends the pending reversal; done learns whether a 0410
// cleared it. Any 0410 whose F11 and F41 match clears it, whatever its 39.
// The request is built from the reversal slot when it is sent, not when it
// is queued: an answer committed in between (an approval that cleared the
// slot) means there is nothing to reverse, and a slot that now holds
// another message is that message's own reversal to send.
func (m *Machine) sendReversal(done func(m *Machine, ok bool)) {
	rv0 := m.st.Reversal
	if rv0 == nil {
		done(m, true)
		return
	}
	var sent Reversal
	m.enqueue(&job{
		build: func(m *Machine) (Request, bool) {
			rv := m.st.Reversal
			if rv == nil || rv.Txn.STAN != rv0.Txn.STAN || rv.Txn.Batch != rv0.Txn.Batch {
				m.log(slog.LevelInfo, "reversal not sent: the slot changed", slog.String("stan", rv0.Txn.STAN.String()))
				return Request{}, false
			}
			sent = *rv
			return Request{Kind: MsgReversal, STAN: rv.Txn.STAN, Batch: rv.Txn.Batch, Txn: rv.Txn, Reason: rv.Reason, Auth: rv.Auth}, true
		},
		skipped: func(m *Machine) { done(m, true) }, // the caller looks at the slot again
		onReply: func(m *Machine, r AcquirerReply) {
			if r.Err != nil || r.Resp.Undecodable || r.Resp.STAN != sent.Txn.STAN || r.Resp.TID != m.st.Merchant.TID {
				m.log(slog.LevelWarn, "reversal not cleared", slog.String("stan", sent.Txn.STAN.String()), errAttr(r.Err))
				done(m, false)
				return
			}
			t := sent.Txn
			t.Status = Reversed
			m.putTxn(t)
			m.st.Reversal = nil
			m.emit(Persist{Ops: []Op{PutTxn{Txn: t}, ClearReversal{}}})
			m.clearFailStops("a reversal cleared")
			m.log(slog.LevelInfo, "reversal cleared", slog.String("stan", t.STAN.String()), slog.String("reason", sent.Reason))
			m.publishStatus()
			done(m, true)
		},
	})
}

// signIn runs a sign-in (0800); done gets nil on success or why not.
func (m *Machine) signIn(done func(m *Machine, f *failure)) {
	stan, op := m.allocSTAN()
	m.emit(Persist{Ops: []Op{op}})
	m.exchange(Request{Kind: MsgSignIn, STAN: stan, Batch: m.st.Counters.Batch}, func(m *Machine, r AcquirerReply) {
		switch {
		case r.Err != nil:
			done(m, failed(i18n.NoAnswer))
		case !r.Resp.Approved():
			done(m, declinedWith(r.Resp.RespCode))
		case r.Resp.KeysErr != nil:
			m.log(slog.LevelError, "working keys refused", slog.String("err", r.Resp.KeysErr.Error()))
			done(m, failed(i18n.KeyError))
		default:
			m.st.NeedSignIn = false
			m.clockFromSignIn(r.Resp)
			// Adopt the host's batch number unless ours holds transactions
			// (acquirer.md §Sign-in).
			if r.Resp.Batch != 0 && r.Resp.Batch != m.st.Counters.Batch && len(m.st.Journal) == 0 {
				m.st.Counters.Batch = r.Resp.Batch
				m.emit(Persist{Ops: []Op{PutCounters{Counters: m.st.Counters}}})
			}
			m.log(slog.LevelInfo, "signed in", slog.String("batch", m.st.Counters.Batch.String()))
			done(m, nil)
		}
	})
}

func errAttr(err error) slog.Attr {
	if err == nil {
		return slog.Attr{}
	}
	return slog.String("err", err.Error())
}
