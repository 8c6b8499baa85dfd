package acqmsg

import (
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/posagent/posagent/iso8583"
	"github.com/posagent/posagent/iso8583/link"
	"github.com/posagent/posagent/terminal"
)

// Answer is the outcome of one exchange, read for the core and the shell.
type Answer struct {
	// Reply is the core's event. For an approved sign-in the shell first
	// installs WorkingKeys and sets Reply.Resp.KeysErr when that fails.
	Reply terminal.AcquirerReply
	// WorkingKeys is the key block of an approved sign-in (acquirer.md
	// §Field 62: PIK and MAK under the TMK, with their check values), for
	// the secure element; nil otherwise. It points into the Codec and is
	// valid until its next Build or Answer.
	WorkingKeys []byte
	// Requirement is the header's processing requirement nibble.
	// iso8583.SignInAgain is in Reply.Resp.SignInAgain; other values are
	// only logged (acquirer.md §Frame).
	Requirement byte
}

// workingKeysLen is the size of the sign-in's key block: PIK 16, PIK check
// 4, MAK 8, 8 zero bytes, MAK check 4.
const workingKeysLen = 40

// codeApproved is field 39 of an approval.
const codeApproved = "00"

// Answer reads the outcome of q's exchange: frame is the answer (length
// prefix included) when exchangeErr is nil. It never installs anything and
// never fails: what cannot be read is an undecodable Response, whose
// reversal reason is 06, or an Err for the core when no answer came.
func (c *Codec) Answer(q terminal.Request, frame []byte, exchangeErr error, mac MACer) Answer {
	a := Answer{Reply: terminal.AcquirerReply{ID: q.ID}}
	switch {
	case exchangeErr == nil:
		a.Reply.Resp, a.WorkingKeys, a.Requirement = c.read(q, frame, mac)
	case link.AnswerNotFrame(exchangeErr):
		// The host answered, with a length value no frame has: an answer
		// that does not decode (06), not a missing one (98).
		a.Reply.Resp = undecodable(exchangeErr)
	default:
		a.Reply.Err = fmt.Errorf("%s: %w", q.Kind, exchangeErr)
		// A request that was never built or never left owes nothing.
		a.Reply.Written = link.RequestWritten(exchangeErr)
	}
	return a
}

func undecodable(err error) terminal.Response {
	return terminal.Response{Undecodable: true, DecodeErr: err}
}

var (
	errNoCode     = errors.New("answer has no response code (39)")
	errNoRRNAuth  = errors.New("approval without RRN (37) and authorisation code (38)")
	errNoKeyBlock = errors.New("sign-in approved without working keys (62)")
)

// read decodes frame and checks it answers q: the response MTI of q's, the
// STAN q sent (for a reversal, that of the message reversed), q's TID, and
// (but for a 0410) a response code. Anything else makes it undecodable: it
// is no answer to q.
func (c *Codec) read(q terminal.Request, frame []byte, mac MACer) (r terminal.Response, keys []byte, req byte) {
	s, ok := spec(q.Kind)
	if !ok {
		return undecodable(fmt.Errorf("%w %d", errUnknownKind, q.Kind)), nil, 0
	}
	m := &c.msg
	if err := m.Unpack(frame); err != nil {
		return undecodable(err), nil, 0
	}
	if m.MTI != s.mti+0x10 {
		return undecodable(fmt.Errorf("answer MTI %04x to a %04x", m.MTI, s.mti)), nil, 0
	}
	want := q.STAN
	if q.Kind == terminal.MsgReversal {
		want = q.Txn.STAN
	}
	stan, _ := m.Uint(11)
	if stan != uint64(want) {
		return undecodable(fmt.Errorf("answer STAN %06d to STAN %s", stan, want)), nil, 0
	}
	if tid := m.Get(41); string(tid) != q.Merchant.TID {
		return undecodable(fmt.Errorf("answer TID %q to TID %q", tid, q.Merchant.TID)), nil, 0
	}
	code := m.Get(39)
	if len(code) != 2 && q.Kind != terminal.MsgReversal {
		// A 0410 is the exception: any one whose F11 and F41 match clears
		// the reversal, whatever its 39 (acquirer.md §Messages).
		return undecodable(errNoCode), nil, 0
	}
	if string(code) == codeApproved {
		r.RespCode = codeApproved // the common answer, without a copy
	} else {
		r.RespCode = string(code)
	}
	r.STAN = want
	r.TID = q.Merchant.TID
	r.RRN = string(m.Get(37))
	r.Auth = string(m.Get(38))
	r.LocalTime = string(m.Get(12))
	r.LocalDate = string(m.Get(13))
	if f60 := m.Get(60); len(f60) >= 8 {
		// 60.2, the host's batch number: digits, the codec checked them.
		var b uint32
		for _, d := range f60[2:8] {
			b = b*10 + uint32(d-'0')
		}
		r.Batch = terminal.BatchNo(b)
	}
	req = iso8583.ProcessingRequirement(m.Header)
	r.SignInAgain = req == iso8583.SignInAgain
	approved := r.Approved()
	switch q.Kind {
	case terminal.MsgSale, terminal.MsgVoid:
		if approved && (len(r.RRN) == 0 || len(r.Auth) == 0) {
			// Without them the sale could not be voided nor the receipt
			// printed: an answer this terminal cannot use.
			return undecodable(errNoRRNAuth), nil, req
		}
		if approved {
			r.MACBad = !c.macOK(frame, mac)
		}
	case terminal.MsgReversal:
		if approved {
			r.MACBad = !c.macOK(frame, mac)
		}
	case terminal.MsgSignIn:
		if approved {
			if k := m.Get(62); len(k) == workingKeysLen {
				keys = k
			} else if k == nil {
				r.KeysErr = errNoKeyBlock
			} else {
				r.KeysErr = fmt.Errorf("working keys (62) of %d bytes, want %d", len(k), workingKeysLen)
			}
		}
	case terminal.MsgSettlement:
		// Digit 30 of 48 is the domestic flag: 1 balanced, 2 not, 3 error.
		if f48 := m.Get(48); len(f48) > 30 {
			r.SettleFlag = f48[30]
		}
	}
	return r, keys, req
}

// macOK verifies field 64 of the answer in c.msg, frame, with the MAK
// through mac (responses are MAC-checked when 39=00, acquirer.md §MAC). A
// missing field or a MAC the secure element cannot compute is a failure.
func (c *Codec) macOK(frame []byte, mac MACer) bool {
	got := c.msg.Get(64)
	if len(got) != 8 {
		return false
	}
	block, err := iso8583.MACBlock(frame)
	if err != nil {
		return false
	}
	sum, err := mac.MAC(block)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(sum[:], got) == 1
}
