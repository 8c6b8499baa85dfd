package terminal

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/terminal/i18n"
	"github.com/posagent/posagent/terminal/remote"
)

// ActivationTimeout is how long WAITING FOR HQ waits for the signed
// provision command (spec/terminal.md §Activation).
const ActivationTimeout = 120 * time.Second

// Binding is the settlement-card binding: the card the merchant's money
// settles to. Only the masked PAN and a hash are kept: enough to show it
// and to recognise the card again, never the number.
type Binding struct {
	MaskedPAN string    `json:"masked_pan"`
	PANHash   string    `json:"pan_hash"` // hex SHA-256 of the serial and the PAN
	BankID    string    `json:"bank_id"`  // the BIN: the issuer's first 6 digits
	BoundAt   time.Time `json:"bound_at"`
}

// NewBinding builds the binding of a swiped card. The hash is salted with
// the terminal's serial so the same card hashes differently on two
// terminals.
func NewBinding(serial string, pan string, now time.Time) Binding {
	h := sha256.Sum256([]byte("posagent/binding/v1\x00" + serial + "\x00" + pan))
	bin := pan
	if len(bin) > 6 {
		bin = bin[:6]
	}
	return Binding{MaskedPAN: hal.MaskPAN(pan), PANHash: hex.EncodeToString(h[:]), BankID: bin, BoundAt: now}
}

// Provision asks the shell to unseal the TMK of a provision command with
// the device's X25519 key and install it in the secure element (KCV
// checked). It answers with Provisioned; the core then stores the merchant
// parameters before it acks `succeeded` (spec/remote.md), and puts the
// previous ones back if the activation fails later.
type Provision struct {
	CmdID  string
	Sealed []byte
	KCV    string
}

// PutParams stores the merchant parameters (merchant store).
type PutParams struct{ Merchant Merchant }

// DeleteParams removes the merchant parameters (merchant store).
type DeleteParams struct{}

func (PutParams) isOp()    {}
func (DeleteParams) isOp() {}

// Provisioned is the outcome of a Provision; Reason is bad-seal or
// bad-kcv when it failed (nothing was installed then).
type Provisioned struct {
	Reason string
	Err    error
}

// PutBinding stores the settlement-card binding (merchant store).
type PutBinding struct{ Binding Binding }

// SetTampered records, or clears, the tamper flag (identity store).
type SetTampered struct{ On bool }

// ZeroiseKeys asks the secure element to zeroise TMK, PIK and MAK.
type ZeroiseKeys struct{}

func (Provision) isEffect()   {}
func (ZeroiseKeys) isEffect() {}
func (Provisioned) isEvent()  {}
func (PutBinding) isOp()      {}
func (SetTampered) isOp()     {}

// activation is the technician activation in progress.
type activation struct {
	id    string
	cmdID string
	hash  [32]byte
	// keep: a tampered unit re-activated for its own TID keeps its open
	// batch, journal and STAN counter (the host's batch is still open;
	// restarting the STAN at 1 collides with it, answer 94) and its pending
	// reversal, which goes out after the sign-in.
	keep bool
	// saved is the merchant state before the provision, put back if the
	// activation fails: a tampered unit loses nothing.
	saved State
	// stored: the provision's parameters are in the merchant store.
	stored bool
}

// startActivation: TECH PWD → ACTIVATION CODE → the signed
// activation_request → WAITING FOR HQ.
func (m *Machine) startActivation() {
	m.askTech(m.t(i18n.Activate), func(m *Machine) {
		e := &entryView{title: m.t(i18n.Activate), prompt: m.t(i18n.ActivationCode), min: 8, max: 8}
		e.enter = func(m *Machine, code string) { m.requestActivation(code) }
		m.replace(e)
	})
}

func (m *Machine) requestActivation(code string) {
	id := fmt.Sprintf("act-%s-%d", m.st.Serial, m.now.UnixNano())
	m.activation = &activation{id: id}
	pub, err := base64.StdEncoding.DecodeString(m.st.DeviceX25519Pub)
	if err != nil || len(pub) != 32 {
		m.log(slog.LevelError, "device X25519 key unusable", slog.Int("bytes", len(pub)))
		m.activationFailed(failed(i18n.Error))
		return
	}
	data, _ := json.Marshal(remote.ActivationRequest{Code: code, X25519Pub: pub})
	m.emit(PublishEvent{Type: remote.EvtActivationRequest, ID: id, Data: data})
	m.log(slog.LevelInfo, "activation requested", slog.String("id", id))
	m.replace(&waitView{lines: []string{m.t(i18n.Activate), "", m.t(i18n.WaitingForHQ), "", m.t(i18n.CancelToStop)}, until: m.now.Add(ActivationTimeout),
		timeout: func(m *Machine) { m.activationFailed(failed(i18n.NoAnswerFromHQ)) },
		cancel:  func(m *Machine) { m.activation = nil; m.cancelFlow() },
	})
}

// waitView waits for something outside with a deadline; Cancel may stop it.
type waitView struct {
	lines   []string
	until   time.Time
	timeout func(m *Machine)
	cancel  func(m *Machine) // nil: keys ignored
}

func (v *waitView) render(*Machine) hal.Screen { return lines(v.lines...) }
func (v *waitView) key(m *Machine, k hal.Key) {
	if k == hal.KeyCancel && v.cancel != nil {
		v.cancel(m)
	}
}
func (v *waitView) deadline() time.Time { return v.until }
func (v *waitView) expire(m *Machine)   { v.timeout(m) }

// onProvision handles a verified provision command: it must answer the
// activation request pending on the screen.
func (m *Machine) onProvision(c RemoteCommand) {
	a := m.activation
	if (m.st.Lifecycle != Unactivated && m.st.Lifecycle != Tampered) || a == nil || a.cmdID != "" || c.Provision == nil || c.Provision.Activation != a.id {
		m.rejectCommand(c, ReasonWrongState)
		return
	}
	a.cmdID, a.hash = c.ID, c.PayloadHash
	p := c.Provision
	a.keep = m.st.Lifecycle == Tampered && m.st.Merchant.TID != "" && m.st.Merchant.TID == p.Merchant.TID
	a.saved = m.st
	m.views = []view{m.rootView(), &infoView{lines: []string{m.t(i18n.Activate), "", m.t(i18n.InstallingKeys)}}}
	m.emit(Provision{CmdID: c.ID, Sealed: p.Sealed, KCV: p.KCV})
	m.st.Merchant = p.Merchant
}

func (m *Machine) onProvisioned(ev Provisioned) {
	a := m.activation
	if a == nil || a.cmdID == "" {
		return
	}
	if ev.Reason != "" {
		m.emit(SendAck{CmdID: a.cmdID, State: AckFailed, Reason: ev.Reason, Seen: true, PayloadHash: a.hash})
		why := failed(i18n.BadSeal)
		if ev.Reason == "bad-kcv" {
			why = failed(i18n.BadKCV)
		}
		m.activationFailed(why)
		return
	}
	ops := []Op{PutParams{Merchant: m.st.Merchant}}
	if !a.keep {
		if old := a.saved.Merchant.TID; old != "" {
			// The counters of the TID this unit served before stay with
			// the identity before the merchant store's are replaced.
			k := TIDKey(m.st.Serial, old)
			ops = append(ops, PutTIDCounters{Key: k, Counters: a.saved.Counters})
			m.st.TIDCounters = maps.Clone(m.st.TIDCounters)
			if m.st.TIDCounters == nil {
				m.st.TIDCounters = map[string]Counters{}
			}
			m.st.TIDCounters[k] = a.saved.Counters
		}
		// A TID served before continues its STAN and batch: the host
		// still knows them (answer 94 for a STAN seen twice).
		m.st.Counters = Counters{Batch: 1}
		if c, ok := m.st.TIDCounters[TIDKey(m.st.Serial, m.st.Merchant.TID)]; ok {
			m.st.Counters = c
			if m.st.Counters.Batch == 0 {
				m.st.Counters.Batch = 1
			}
		}
		m.st.Journal, m.st.Prev, m.st.PrevBatch, m.st.Reversal, m.st.Settling = nil, nil, 0, nil, 0
	}
	a.stored = true
	ops = append(ops, PutCounters{Counters: m.st.Counters})
	m.emit(Persist{Ops: ops})
	m.emit(SendAck{CmdID: a.cmdID, State: AckSucceeded, Seen: true, PayloadHash: a.hash})
	m.views = []view{m.rootView(), &infoView{lines: []string{m.t(i18n.Activate), "", m.t(i18n.SigningIn)}}}
	m.signIn(func(m *Machine, f *failure) {
		if f != nil {
			m.activationFailed(f.inSignIn())
			return
		}
		m.views = []view{m.rootView(), &bindView{}}
	})
}

// bindView asks for the settlement card.
type bindView struct{ note string }

func (v *bindView) render(m *Machine) hal.Screen {
	l := []string{m.t(i18n.Activate), "", m.t(i18n.SwipeSettleCard)}
	if v.note != "" {
		l = append(l, "", v.note)
	}
	return lines(l...)
}

func (v *bindView) key(m *Machine, k hal.Key) {
	if k == hal.KeyCancel {
		m.activationFailed(failed(i18n.Cancelled))
	}
}

func (v *bindView) card(m *Machine, c hal.Track2, err error) {
	if err != nil {
		m.log(slog.LevelWarn, "settlement card unreadable", slog.String("err", err.Error()))
		m.activationFailed(failed(i18n.CardUnreadable))
		return
	}
	b := NewBinding(m.st.Serial, c.PAN, m.now)
	m.st.Binding = &b
	a := m.activation
	ops := []Op{PutBinding{Binding: b}, PutCounters{Counters: m.st.Counters}}
	if !a.keep {
		// A new merchant: the previous one's batches and reversal (a
		// tampered unit re-activated for another TID; its keys are gone)
		// do not carry over. What they still owe goes to HQ, signed,
		// before they are erased (the outbox write comes first).
		if owed, ok := owedOf(a.saved); ok {
			b, _ := json.Marshal(owed)
			m.emit(PublishEvent{Type: "owed", Data: b})
			m.log(slog.LevelWarn, "owed by an earlier TID reported to HQ", slog.String("tid", owed.TID), slog.Int("unsettled", len(owed.Unsettled)), slog.Bool("reversal", owed.Reversal != nil))
		}
		for _, old := range []BatchNo{a.saved.Counters.Batch, a.saved.PrevBatch} {
			if old != 0 {
				ops = append(ops, DeleteBatch{Batch: old})
			}
		}
		ops = append(ops, ClearReversal{}, ClearSettling{})
	}
	m.emit(Persist{Ops: ops})
	if m.st.Lifecycle == Tampered {
		m.emit(Persist{Ops: []Op{SetTampered{On: false}}})
	}
	m.activation = nil
	// HQ knows the TID it provisioned: the event names the activation
	// request only, so the identity store (never wiped) keeps no merchant
	// data in its outbox.
	data, _ := json.Marshal(map[string]string{"activation": a.id})
	m.emit(PublishEvent{Type: "activated", Data: data})
	m.enter(Active, "activated")
	m.push(&resultView{lines: []string{m.t(i18n.Activated), "", m.label(i18n.TIDLabel, m.st.Merchant.TID)}, back: 1, until: m.now.Add(ActivatedTimeout)})
}

// activationFailed shows why and leaves the terminal as it was before
// the provision: the keys the provision installed are zeroised, nothing of
// it was stored, and a tampered unit keeps its merchant data (an owed
// reversal, an open batch).
func (m *Machine) activationFailed(why *failure) {
	m.log(slog.LevelWarn, "activation failed", slog.String("why", why.String()))
	a := m.activation
	m.activation = nil
	if a != nil && a.cmdID != "" {
		m.emit(ZeroiseKeys{})
		if a.stored {
			restore := []Op{PutCounters{Counters: a.saved.Counters}, DeleteParams{}}
			if a.saved.Merchant.TID != "" {
				restore[1] = PutParams{Merchant: a.saved.Merchant}
			}
			m.emit(Persist{Ops: restore})
		}
		lc := m.st.Lifecycle
		m.st = a.saved
		m.st.Lifecycle = lc
	}
	m.views = []view{m.rootView()}
	m.push(&resultView{lines: append([]string{m.t(i18n.ActivationFail)}, m.why(why)...), back: 1, until: m.now.Add(ResultTimeout)})
}

// onTamper zeroises every key at once, keeps the merchant data (a pending
// reversal survives and is reported), and refuses transactions until a
// technician activates the terminal again.
func (m *Machine) onTamper() {
	if m.st.Lifecycle == Tampered {
		return
	}
	m.emit(ZeroiseKeys{}, Persist{Ops: []Op{SetTampered{On: true}}})
	m.st.NeedSignIn = true
	// What the merchant data still owes, in the shape of force's
	// result.unsettled: the keys are gone, so HQ must know now.
	owed, _ := owedOf(m.st)
	// (The reversal's key is pending_reversal here, as HQs already read
	// it; the owed event names it reversal, as spec/remote.md does.)
	b, _ := json.Marshal(struct {
		StateBefore string         `json:"state_before"`
		TID         string         `json:"tid"`
		Batch       string         `json:"batch"`
		Reversal    *UnsettledTxn  `json:"pending_reversal"`
		Unsettled   []UnsettledTxn `json:"unsettled"`
	}{m.st.Lifecycle.String(), owed.TID, owed.Batch, owed.Reversal, owed.Unsettled})
	m.emit(PublishEvent{Type: "tamper", Data: b})
	m.inflight, m.waiting = nil, nil
	m.enter(Tampered, "tamper input fired")
}
