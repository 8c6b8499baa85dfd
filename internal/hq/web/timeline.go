package web

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/terminal/remote"
)

// Step states of a terminal's timeline.
const (
	stepDone    = "done"
	stepCurrent = "current"
	stepFailed  = "failed"
	stepTodo    = "todo"
)

// step is one line of a terminal's unbind as HQ saw it.
type step struct {
	Label  string // translated
	State  string // done, current, failed, todo
	At     time.Time
	Detail string // translated
}

// unbindResult is what a terminal reports in an unbind's final ack
// (remote.md §unbind args, step 5: the proof of wipe).
type unbindResult struct {
	Settlement     string          `json:"settlement"` // SETTLED, SETTLED UPLOADED, empty-batch, forced
	Batch          string          `json:"batch"`
	TxnsRemoved    int             `json:"txns_removed"`
	BindingRemoved bool            `json:"binding_removed"`
	KeysZeroised   bool            `json:"keys_zeroised"`
	Unsettled      []unsettledTxn  `json:"unsettled"`
	Rest           json.RawMessage `json:"-"`
}

type unsettledTxn struct {
	STAN   string `json:"stan"`
	Type   string `json:"type"`
	Amount int64  `json:"amount"`
	PAN    string `json:"pan"`
	Time   string `json:"time"`
}

// proof is a terminal's signed proof of wipe: its final ack exactly as it
// arrived, and whether it verifies.
type proof struct {
	Envelope   []byte // the bytes the terminal signed and sent, unchanged
	Payload    string // the signed payload, indented for reading
	ReceivedAt time.Time
	Verified   bool
	Problem    string // why it does not verify (English: a technical fact)
	KID        string
	Result     unbindResult
}

// verifyProof checks a final ack envelope against the terminal's device
// key: the signature (remote.OpenSigners with the one key dev-<serial>),
// then that the ack is the succeeded final ack of this command from this
// terminal, and that it says the binding is gone.
func verifyProof(env []byte, serial, cmdID string, devPub ed25519.PublicKey) (proof, error) {
	p := proof{Envelope: env, KID: remote.DeviceKID(serial)}
	e, err := remote.Decode(env)
	if err != nil {
		p.Problem = err.Error()
		return p, nil
	}
	p.Payload = prettyJSON(string(e.Payload))
	if len(devPub) != ed25519.PublicKeySize {
		p.Problem = "the terminal's device key is not registered"
		return p, nil
	}
	_, kids, err := remote.OpenSigners(env, map[string]ed25519.PublicKey{p.KID: devPub})
	if err != nil || len(kids) != 1 {
		p.Problem = fmt.Sprintf("signature: %v", err)
		return p, nil
	}
	a, err := remote.ParseAck(e.Payload)
	switch {
	case err != nil:
		p.Problem = err.Error()
	case a.CmdID != cmdID:
		p.Problem = fmt.Sprintf("the ack is of command %q, not %q", a.CmdID, cmdID)
	case a.Serial != serial:
		p.Problem = fmt.Sprintf("the ack names serial %q, not %q", a.Serial, serial)
	case a.State != remote.AckSucceeded:
		p.Problem = fmt.Sprintf("the ack is %s, not succeeded", a.State)
	default:
		if err := json.Unmarshal(a.Result, &p.Result); err != nil {
			p.Problem = fmt.Sprintf("result: %v", err)
			break
		}
		if !p.Result.BindingRemoved {
			p.Problem = "the result does not say binding_removed"
			break
		}
		p.Verified = true
	}
	if p.Problem == "" && !p.Verified {
		return p, errors.New("proof: no verdict")
	}
	return p, nil
}

// termView is one terminal of a request's table.
type termView struct {
	store.JobTerminal
	Batch  batchInfo
	Steps  []step
	Proof  *proof
	Reason string // plain-language reason of a failure, rejection, no answer
}

// timeline works out an unbind's steps for one terminal from what HQ
// stored: its command (sent), its acks (accepted, final with the proof of
// wipe) and its last status (unbinding while it settles, unactivated once
// it has rebooted).
func timeline(lang string, jt store.JobTerminal, acks []store.AckRecord) []step {
	T := func(k string, a ...any) string { return tr(lang, k, a...) }
	steps := []step{
		{Label: T("step.sent"), State: stepTodo},
		{Label: T("step.accepted"), State: stepTodo},
		{Label: T("step.settling"), State: stepTodo},
		{Label: T("step.settled"), State: stepTodo},
		{Label: T("step.wiped"), State: stepTodo},
		{Label: T("step.rebooted"), State: stepTodo},
		{Label: T("step.final"), State: stepTodo},
	}
	const (
		iSent = iota
		iAccepted
		iSettling
		iSettled
		iWiped
		iRebooted
		iFinal
	)
	if jt.SentAt.IsZero() {
		if jt.State == store.ItemCancelled {
			steps[iSent].State, steps[iSent].Detail = stepFailed, T("step.not-sent")
		}
		return steps
	}
	steps[iSent].State, steps[iSent].At = stepDone, jt.SentAt
	if jt.SendCount > 1 {
		steps[iSent].Detail = T("step.resent", jt.SendCount-1)
	}
	var accepted, final *store.AckRecord
	for i := range acks {
		a := &acks[i]
		switch {
		case a.State == remote.AckAccepted || a.State == remote.AckInProgress:
			if accepted == nil {
				accepted = a
			}
		case remote.FinalState(a.State):
			if final == nil {
				final = a
			}
		}
	}
	if final != nil && final.State == remote.AckRejected {
		steps[iAccepted].Label = T("step.refused")
		steps[iAccepted].State, steps[iAccepted].At = stepFailed, final.ReceivedAt
		steps[iAccepted].Detail = reasonText(lang, final.Reason)
		steps[iFinal].State, steps[iFinal].At = stepFailed, final.ReceivedAt
		steps[iFinal].Detail = T("ack.rejected")
		return steps
	}
	if accepted != nil {
		steps[iAccepted].State, steps[iAccepted].At = stepDone, accepted.ReceivedAt
		if accepted.Reason != "" {
			steps[iAccepted].Detail = reasonText(lang, accepted.Reason)
		}
	} else if final != nil {
		// The accepted ack may be lost or still on its way; the final
		// one says the terminal took the command.
		steps[iAccepted].State = stepDone
	}
	if final == nil {
		switch {
		case jt.State == store.ItemNoAnswer:
			steps[iFinal].State, steps[iFinal].Detail = stepFailed, reasonText(lang, "no-answer")
		case accepted != nil && jt.Terminal.State == "unbinding":
			steps[iSettling].State, steps[iSettling].Detail = stepCurrent, T("step.settling-now")
		case accepted != nil:
			steps[iSettling].State = stepCurrent
		}
		return steps
	}
	var res unbindResult
	if final.State == remote.AckSucceeded {
		if r, err := ackResult(final.Envelope); err == nil {
			res = r
		}
	}
	steps[iFinal].State, steps[iFinal].At = stepDone, final.ReceivedAt
	steps[iFinal].Detail = T("ack." + final.State)
	if final.State == remote.AckFailed {
		steps[iSettling].State, steps[iSettling].Detail = stepFailed, reasonText(lang, final.Reason)
		steps[iFinal].State = stepFailed
		return steps
	}
	steps[iSettling].State = stepDone
	steps[iSettled].State = stepDone
	switch res.Settlement {
	case "SETTLED":
		steps[iSettled].Detail = T("settle.settled", res.Batch)
	case "SETTLED UPLOADED":
		steps[iSettled].Detail = T("settle.uploaded", res.Batch)
	case "empty-batch":
		steps[iSettled].Detail = T("settle.empty")
	case "forced":
		steps[iSettled].State = stepFailed
		steps[iSettled].Detail = T("settle.forced", len(res.Unsettled))
	default:
		steps[iSettled].Detail = res.Settlement
	}
	if res.BindingRemoved {
		steps[iWiped].State = stepDone
		steps[iWiped].Detail = trN(lang, "step.wiped-detail", res.TxnsRemoved)
		if !res.KeysZeroised {
			steps[iWiped].Detail += " " + T("step.keys-not-zeroised")
		}
	}
	// The terminal reboots after writing the final ack; its next status
	// (from the new boot) says unactivated.
	if jt.Terminal.State == "unactivated" {
		steps[iRebooted].State, steps[iRebooted].At = stepDone, jt.Terminal.StatusAt
		steps[iRebooted].Detail = T("step.rebooted-detail")
	} else {
		steps[iRebooted].State = stepCurrent
	}
	return steps
}

// ackResult reads the result of an ack envelope (not verified here: the
// ingest stored only verified acks, and the proof is verified on its own).
func ackResult(env []byte) (unbindResult, error) {
	e, err := remote.Decode(env)
	if err != nil {
		return unbindResult{}, err
	}
	a, err := remote.ParseAck(e.Payload)
	if err != nil {
		return unbindResult{}, err
	}
	var r unbindResult
	if len(a.Result) > 0 {
		if err := json.Unmarshal(a.Result, &r); err != nil {
			return unbindResult{}, err
		}
	}
	return r, nil
}

// finalAck is the command's final ack, if one arrived.
func finalAck(acks []store.AckRecord) *store.AckRecord {
	for i := range acks {
		if remote.FinalState(acks[i].State) {
			return &acks[i]
		}
	}
	return nil
}
