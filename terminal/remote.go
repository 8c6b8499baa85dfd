package terminal

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/posagent/posagent/terminal/i18n"
	"github.com/posagent/posagent/terminal/remote"
)

// RemoteCommand is a signed HQ command that the shell verified and checked
// against spec/remote.md's table up to, but not including, the state
// check, which is the core's: it knows the lifecycle.
type RemoteCommand struct {
	ID          string
	Type        string // "unbind", "status", "provision"
	ExpiresAt   time.Time
	PayloadHash [32]byte
	// unbind
	Unsettled remote.UnsettledPolicy
	Reason    string
	// provision
	Provision *ProvisionCmd
	// update
	Update *UpdateCmd
}

// ProvisionCmd is the content of a provision command.
type ProvisionCmd struct {
	Activation string // the activation request it answers
	Merchant   Merchant
	Sealed     []byte // TMK, NaCl anonymous box to the device's X25519 key
	KCV        string
}

// CommandReceived feeds a verified command to the machine.
type CommandReceived struct{ Cmd RemoteCommand }

// Wiped reports that the shell has erased the merchant data: keys
// zeroised in the secure element, data key destroyed, merchant store
// overwritten, removed and its directory fsynced.
type Wiped struct{ Err error }

func (CommandReceived) isEvent() {}
func (Wiped) isEvent()           {}

// Ack states and reasons of spec/remote.md, from the wire package so the
// words have one definition.
const (
	AckRejected   = remote.AckRejected
	AckAccepted   = remote.AckAccepted
	AckInProgress = remote.AckInProgress
	AckSucceeded  = remote.AckSucceeded
	AckFailed     = remote.AckFailed

	ReasonWrongState       = remote.ReasonWrongState
	ReasonReplayed         = remote.ReasonReplayed
	ReasonSettlementFailed = remote.ReasonSettlementFailed
	ReasonUnsettledBatch   = remote.ReasonUnsettledBatch
)

// SendAck asks the shell to sign an ack, put it in the durable outbox and
// publish it. The identity-store changes that go with it are written in the
// same transaction: Seen records the command as executed with this ack as
// its final one (a replay re-sends these exact bytes), SetIntent and
// ClearIntent move the unbind intent.
type SendAck struct {
	CmdID       string
	State       string
	Reason      string
	Result      json.RawMessage
	Seen        bool
	PayloadHash [32]byte
	SetIntent   *UnbindIntent
	ClearIntent bool
	// SetUpdate and ClearUpdate move the update intent (update.go) the
	// same way.
	SetUpdate   *UpdateIntent
	ClearUpdate bool
}

// PublishEvent asks the shell to sign and send an event (spec/remote.md
// §Event payload) through the durable outbox.
type PublishEvent struct {
	Type string // activation_request, activated, unbound, tamper
	ID   string // "" = the shell makes one
	Data json.RawMessage
}

// Wipe asks the shell to erase the merchant data; it answers with Wiped.
type Wipe struct{}

// PutIntent rewrites the unbind intent (identity store).
type PutIntent struct{ Intent UnbindIntent }

func (SendAck) isEffect()      {}
func (PublishEvent) isEffect() {}
func (Wipe) isEffect()         {}
func (PutIntent) isOp()        {}

// UnbindIntent is the persisted unbind in progress. It lives with the
// factory identity, so it survives the wipe of the merchant store it
// orders, and every boot resumes it until the final ack is in the outbox.
type UnbindIntent struct {
	CmdID       string                 `json:"cmd_id"`
	PayloadHash [32]byte               `json:"payload_hash"`
	Source      string                 `json:"source"` // "remote" or "device"
	Unsettled   remote.UnsettledPolicy `json:"unsettled"`
	Reason      string                 `json:"reason,omitempty"`
	ExpiresAt   time.Time              `json:"expires_at"`
	// Stage is "accepted" until the merchant data is about to be wiped,
	// then "wiping" with the Summary fixed, so a run resumed after a power
	// cut reports exactly what an uninterrupted one would.
	Stage   UnbindStage    `json:"stage"`
	Settled string         `json:"settled,omitempty"` // outcome of the settlement this unbind ran
	Summary *UnbindSummary `json:"summary,omitempty"`
}

// UnbindSummary is the proof of wipe in the final ack's result.
type UnbindSummary struct {
	Settlement     string          `json:"settlement"` // SETTLED, SETTLED UPLOADED, empty-batch, forced
	Batch          string          `json:"batch"`
	TxnsRemoved    int             `json:"txns_removed"`
	BindingRemoved bool            `json:"binding_removed"`
	KeysZeroised   bool            `json:"keys_zeroised"`
	Unsettled      []UnsettledTxn  `json:"unsettled,omitempty"`
	Extra          json.RawMessage `json:"-"`
}

// UnsettledTxn is one entry of result.unsettled for unbind with force.
type UnsettledTxn struct {
	STAN   string `json:"stan"`
	Type   string `json:"type"`
	Amount int64  `json:"amount"`
	PAN    string `json:"pan"` // masked 6+4
	Time   string `json:"time"`
}

// UnbindStage is where a persisted unbind stands (UnbindIntent.Stage).
type UnbindStage string

// Unbind stages.
const (
	StageAccepted UnbindStage = "accepted"
	StageWiping   UnbindStage = "wiping"

	stageAccepted = StageAccepted
	stageWiping   = StageWiping
)

// Valid reports whether s is a stage this version knows: a stored intent
// with any other is not resumed blindly.
func (s UnbindStage) Valid() bool { return s == StageAccepted || s == StageWiping }

// settleRetry bounds the backoff between settlement attempts of an unbind.
const (
	settleRetryMin = 5 * time.Second
	settleRetryMax = 60 * time.Second
)

func (m *Machine) onCommand(c RemoteCommand) {
	m.log(slog.LevelInfo, "command", slog.String("id", c.ID), slog.String("type", c.Type))
	if iv := m.st.Intent; iv != nil && iv.CmdID == c.ID {
		// The command being executed, delivered again (a power cut after
		// PUBACK, a broker re-delivery): say where it stands.
		if iv.PayloadHash != c.PayloadHash {
			m.emit(SendAck{CmdID: c.ID, State: AckRejected, Reason: ReasonReplayed})
			return
		}
		m.emit(SendAck{CmdID: c.ID, State: AckInProgress})
		return
	}
	if u := m.st.Update; u != nil && u.CmdID == c.ID {
		if u.PayloadHash != c.PayloadHash {
			m.emit(SendAck{CmdID: c.ID, State: AckRejected, Reason: ReasonReplayed})
			return
		}
		m.emit(SendAck{CmdID: c.ID, State: AckInProgress})
		return
	}
	switch c.Type {
	case "status":
		m.publishStatus()
		m.emit(SendAck{CmdID: c.ID, State: AckSucceeded, Seen: true, PayloadHash: c.PayloadHash})
	case "unbind":
		if m.st.Lifecycle != Active {
			m.rejectCommand(c, ReasonWrongState)
			return
		}
		iv := &UnbindIntent{CmdID: c.ID, PayloadHash: c.PayloadHash, Source: "remote", Unsettled: c.Unsettled,
			Reason: c.Reason, ExpiresAt: c.ExpiresAt, Stage: stageAccepted}
		if iv.Unsettled == "" {
			iv.Unsettled = remote.UnsettledSettle
		}
		m.st.Intent = iv
		m.emit(SendAck{CmdID: c.ID, State: AckAccepted, SetIntent: iv})
		m.beginUnbind("unbind command " + c.ID)
	case "provision":
		m.onProvision(c)
	case "update":
		m.onUpdateCommand(c)
	default:
		m.rejectCommand(c, ReasonWrongState)
	}
}

// rejectCommand acks a command rejected, recorded with its payload hash
// (spec/remote.md: every verified command's id is recorded with its final
// ack, rejected ones included), so the same bytes sent again get this
// rejection again, whatever the state is by then.
func (m *Machine) rejectCommand(c RemoteCommand, reason string) {
	m.emit(SendAck{CmdID: c.ID, State: AckRejected, Reason: reason, Seen: true, PayloadHash: c.PayloadHash})
}

// startUnbind is the on-device unbind from the TECHNICIAN menu: the same
// sequence as a remote unbind with settle, reported to HQ with an
// `unbound` event instead of acks.
func (m *Machine) startUnbind() {
	m.push(&confirmView{
		lines: []string{m.t(i18n.UnbindConfirm), m.t(i18n.UnbindSettles), m.t(i18n.UnbindErases), m.t(i18n.UnbindReboots), "", m.t(i18n.EnterToUnbind)},
		ok: func(m *Machine) {
			iv := &UnbindIntent{CmdID: fmt.Sprintf("device-%s-%d", m.st.Serial, m.now.Unix()), Source: "device",
				Unsettled: remote.UnsettledSettle, ExpiresAt: m.now.Add(10 * time.Minute), Stage: stageAccepted}
			m.st.Intent = iv
			m.emit(Persist{Ops: []Op{PutIntent{Intent: *iv}}})
			m.beginUnbind("on-device unbind")
		},
	})
}

// beginUnbind enters the unbinding state once the intent is persisted. A
// flow waiting for the cashier (amount, card, confirm) is cancelled with
// nothing sent; an exchange in flight finishes exactly as it would have
// without the unbind (an approved answer stays approved, is printed and is
// settled; a timeout reverses as usual) before the unbind goes on
// (spec/remote.md unbind step 1).
func (m *Machine) beginUnbind(why string) {
	var busy view
	if len(m.views) > 0 && !m.linkIdle() {
		busy = m.top()
	}
	m.enter(Unbinding, why)
	if !m.linkIdle() {
		if v, ok := busy.(*infoView); ok {
			m.push(v) // PROCESSING stays until its answer
		}
		m.log(slog.LevelInfo, "unbind waits for the exchange in flight")
		m.unbindWhenIdle = true
		return
	}
	m.unbindStep()
}

// whenIdle runs what waited for the acquirer link to be free.
func (m *Machine) whenIdle() {
	if m.unbindWhenIdle && m.linkIdle() {
		m.unbindWhenIdle = false
		m.unbindStep()
	}
}

// unbindStep moves the unbind on from wherever it stands; it is called
// when the command is accepted, at every boot in the unbinding state, and
// after each step. Every step is crash-safe: what it decided is on disk
// before what depends on it.
func (m *Machine) unbindStep() {
	iv := m.st.Intent
	if iv == nil {
		return
	}
	if iv.Stage == stageWiping {
		m.unbindScreen(m.t(i18n.ErasingData))
		m.emit(Wipe{})
		return
	}
	if m.st.Reversal != nil {
		m.unbindScreen(m.t(i18n.Reversal))
		m.sendReversal(func(m *Machine, ok bool) {
			if !ok {
				m.unbindRetry("reversal not cleared")
				return
			}
			m.unbindStep()
		})
		return
	}
	open := m.approvedTxns()
	sum := &UnbindSummary{Batch: m.st.Counters.Batch.String(), BindingRemoved: true, KeysZeroised: true,
		TxnsRemoved: len(m.st.Journal) + len(m.st.Prev)}
	switch {
	case len(open) == 0:
		sum.Settlement = "empty-batch"
	case iv.Unsettled == remote.UnsettledRefuse:
		m.unbindFail(ReasonUnsettledBatch)
		return
	case iv.Unsettled == remote.UnsettledForce:
		sum.Settlement = "forced"
		sum.Unsettled = unsettledOf(open)
	default:
		m.unbindScreen(m.t(i18n.Settlement))
		m.settle(func(m *Machine, outcome string, f *failure) {
			if f != nil {
				m.unbindRetry("settlement: " + f.String())
				return
			}
			m.log(slog.LevelInfo, "unbind: batch settled", slog.String("outcome", outcome))
			iv.Settled = outcome
			m.emit(Persist{Ops: []Op{PutIntent{Intent: *iv}}})
			m.unbindStep()
		})
		return
	}
	if sum.Settlement == "empty-batch" && iv.Settled != "" {
		// This unbind's own settlement closed the batch: report that one.
		sum.Settlement, sum.Batch = iv.Settled, m.st.PrevBatch.String()
	}
	iv.Stage, iv.Summary = stageWiping, sum
	// The TID's counters stay with the identity: provisioned again, it
	// continues its STAN (the host's duplicate check, answer 94).
	m.emit(Persist{Ops: []Op{PutIntent{Intent: *iv}, m.keepTIDCounters()}})
	m.unbindStep()
}

// keepTIDCounters records the current TID's counters with the identity
// (never wiped).
func (m *Machine) keepTIDCounters() Op {
	if m.st.TIDCounters == nil {
		m.st.TIDCounters = map[string]Counters{}
	}
	k := TIDKey(m.st.Serial, m.st.Merchant.TID)
	m.st.TIDCounters[k] = m.st.Counters
	return PutTIDCounters{Key: k, Counters: m.st.Counters}
}

// UnsettledEntry is one transaction in the shape of an unbind's
// result.unsettled (spec/remote.md), which the tamper and owed events
// reuse.
func UnsettledEntry(t Txn) UnsettledTxn {
	return UnsettledTxn{STAN: t.STAN.String(), Type: map[TxnType]string{Sale: "sale", Void: "void"}[t.Type],
		Amount: int64(t.Amount), PAN: t.PAN.String(), Time: t.Time.Format(time.RFC3339)}
}

func unsettledOf(txns []Txn) []UnsettledTxn {
	out := []UnsettledTxn{}
	for _, t := range txns {
		out = append(out, UnsettledEntry(t))
	}
	return out
}

// OwedData is what an earlier TID still owes: the data of the `owed`
// event, and the merchant part of the `tamper` event (spec/remote.md
// §Event payload). Reversal is null when none is pending.
type OwedData struct {
	TID       string         `json:"tid"`
	Batch     string         `json:"batch"`
	Reversal  *UnsettledTxn  `json:"reversal"`
	Unsettled []UnsettledTxn `json:"unsettled"`
}

// owedOf is what st owes the acquirer: the pending reversal and the
// approved transactions of the open batch.
func owedOf(st State) (OwedData, bool) {
	d := OwedData{TID: st.Merchant.TID, Batch: st.Counters.Batch.String(), Unsettled: []UnsettledTxn{}}
	if rv := st.Reversal; rv != nil {
		e := UnsettledEntry(rv.Txn)
		d.Reversal = &e
	}
	for _, t := range st.Journal {
		if t.Status == Approved {
			d.Unsettled = append(d.Unsettled, UnsettledEntry(t))
		}
	}
	return d, d.Reversal != nil || len(d.Unsettled) > 0
}

func (m *Machine) approvedTxns() []Txn {
	var out []Txn
	for _, t := range m.st.Journal {
		if t.Status == Approved {
			out = append(out, t)
		}
	}
	return out
}

// unbindScreen shows the unbind's step. A result that is on the screen
// (the APPROVED of a sale that finished before the unbind went on) stays
// on top until its key or its time.
func (m *Machine) unbindScreen(step string) {
	vs := []view{&infoView{lines: []string{m.t(i18n.Unbinding), "", step, "", m.t(i18n.DoNotPowerOff)}}}
	if len(m.views) > 1 {
		if r, ok := m.top().(*resultView); ok {
			r.back, r.then = 1, nil
			vs = append(vs, r)
		}
	}
	m.views = vs
}

// unbindRetry tries again with backoff until the command expires; then
// the unbind fails and the terminal stays active: money is never wiped
// away.
func (m *Machine) unbindRetry(why string) {
	iv := m.st.Intent
	if !m.now.Before(iv.ExpiresAt) {
		m.log(slog.LevelWarn, "unbind gives up", slog.String("why", why))
		m.unbindFail(ReasonSettlementFailed)
		return
	}
	m.unbindBackoff = min(max(2*m.unbindBackoff, settleRetryMin), settleRetryMax)
	at := m.now.Add(m.unbindBackoff)
	if at.After(iv.ExpiresAt) {
		at = iv.ExpiresAt
	}
	m.log(slog.LevelWarn, "unbind step failed, retrying", slog.String("why", why), slog.Duration("in", at.Sub(m.now)))
	m.unbindScreen(m.lang.F(i18n.RetryAt, at.Format("15:04:05")))
	m.alarm = at
	m.onAlarm = func(m *Machine) { m.unbindStep() }
}

// unbindFail ends the unbind with a failed ack and back to active.
func (m *Machine) unbindFail(reason string) {
	iv := m.st.Intent
	m.st.Intent = nil
	m.unbindBackoff = 0
	if iv.Source == "remote" {
		m.emit(SendAck{CmdID: iv.CmdID, State: AckFailed, Reason: reason, Seen: true, PayloadHash: iv.PayloadHash, ClearIntent: true})
	} else {
		m.emit(Persist{Ops: []Op{ClearIntentOp{}}})
	}
	var shown *resultView
	if len(m.views) > 1 {
		shown, _ = m.top().(*resultView)
	}
	m.enter(Active, "unbind failed: "+reason)
	if shown != nil {
		// The APPROVED of a sale that finished first stays on the screen.
		shown.back, shown.then = 1, nil
		m.push(shown)
	}
	if iv.Source == "device" {
		m.showResult(m.t(i18n.UnbindFailed), m.unbindReasonWord(reason))
	}
}

// onWiped finishes the unbind: the final ack (or the unbound event) goes
// into the outbox with the intent's removal, then the reboot.
func (m *Machine) onWiped(err error) {
	iv := m.st.Intent
	if iv == nil {
		return
	}
	if err != nil {
		m.log(slog.LevelError, "wipe failed", slog.String("err", err.Error()))
		m.unbindRetry("wipe: " + err.Error())
		return
	}
	result, _ := json.Marshal(iv.Summary)
	m.st.Merchant, m.st.Journal, m.st.Prev, m.st.PrevBatch, m.st.Reversal = Merchant{}, nil, nil, 0, nil
	m.st.Counters = Counters{}
	m.st.Intent = nil
	if iv.Source == "remote" {
		m.emit(SendAck{CmdID: iv.CmdID, State: AckSucceeded, Result: result, Seen: true, PayloadHash: iv.PayloadHash, ClearIntent: true})
	} else {
		m.emit(Persist{Ops: []Op{ClearIntentOp{}}})
	}
	m.emit(PublishEvent{Type: "unbound", Data: result})
	m.clearFailStops("unbind written") // a planned reboot: not one more in a row
	m.st.Lifecycle = Unactivated
	m.publishStatus()
	m.rebootWith(m.t(i18n.Unbound), "", m.t(i18n.Rebooting))
}

// ClearIntentOp removes the unbind intent (identity store).
type ClearIntentOp struct{}

func (ClearIntentOp) isOp() {}
