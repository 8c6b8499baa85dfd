package remote

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"
)

// Version is the payload version, the "v" of commands, acks and events.
const Version = 1

// Ack states (remote.md §Ack payload). Rejected, Succeeded and Failed are
// final: every verified command ends with exactly one of them.
const (
	AckRejected   = "rejected"
	AckAccepted   = "accepted"
	AckInProgress = "in_progress"
	AckSucceeded  = "succeeded"
	AckFailed     = "failed"
)

// FinalState reports whether an ack state ends a command.
func FinalState(state string) bool {
	return state == AckRejected || state == AckSucceeded || state == AckFailed
}

// Ack is the payload of an acknowledgement. Every key is always written,
// "reason" as "" when there is none and "result" as {} when empty, so a
// reader never has to tell a missing key from an empty one.
type Ack struct {
	V      int             `json:"v"`
	CmdID  string          `json:"cmd_id"`
	Serial string          `json:"serial"`
	State  string          `json:"state"`
	Reason string          `json:"reason"`
	At     time.Time       `json:"at"`
	Result json.RawMessage `json:"result"`
}

// Final reports whether the ack ends its command.
func (a Ack) Final() bool { return FinalState(a.State) }

// MarshalJSON writes the remote.md shape; a zero V is written as Version
// and an empty Result as {}.
func (a Ack) MarshalJSON() ([]byte, error) {
	type plain Ack
	p := plain(a)
	if p.V == 0 {
		p.V = Version
	}
	p.Result = objectOrEmpty(p.Result)
	return json.Marshal(p)
}

// Rejection is the ack of a command refused by a check (reason is one of
// the Reason words); it changes nothing on the terminal.
func Rejection(cmdID, serial, reason string, at time.Time) Ack {
	return Ack{V: Version, CmdID: cmdID, Serial: serial, State: AckRejected, Reason: reason, At: at}
}

// ParseAck decodes an ack payload (HQ side). It is lenient about unknown
// keys, so an HQ tool keeps working when terminals add result fields.
func ParseAck(payload []byte) (Ack, error) {
	var a Ack
	if err := json.Unmarshal(payload, &a); err != nil {
		return Ack{}, fmt.Errorf("ack payload: %w", err)
	}
	if a.V != Version {
		return Ack{}, fmt.Errorf("ack payload: v %d, want %d", a.V, Version)
	}
	return a, nil
}

// Event types (remote.md §Event payload).
const (
	EvtActivationRequest = "activation_request"
	EvtActivated         = "activated"
	EvtUnbound           = "unbound"
	EvtTamper            = "tamper"
	EvtOwed              = "owed" // what an earlier TID still owed, before an activation erases it
	// EvtSupervisorPwdChanged: the supervisor password was set from the
	// TECHNICIAN menu (data {"via":"technician-menu"}).
	EvtSupervisorPwdChanged = "supervisor_pwd_changed"
)

// Event is the payload of a terminal event; Data is written as {} when empty.
type Event struct {
	V      int             `json:"v"`
	ID     string          `json:"id"`
	Serial string          `json:"serial"`
	Type   string          `json:"type"`
	At     time.Time       `json:"at"`
	Data   json.RawMessage `json:"data"`
}

// MarshalJSON writes the remote.md shape; a zero V is written as Version
// and an empty Data as {}.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	p := plain(e)
	if p.V == 0 {
		p.V = Version
	}
	p.Data = objectOrEmpty(p.Data)
	return json.Marshal(p)
}

// ParseEvent decodes an event payload (HQ side).
func ParseEvent(payload []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(payload, &e); err != nil {
		return Event{}, fmt.Errorf("event payload: %w", err)
	}
	if e.V != Version {
		return Event{}, fmt.Errorf("event payload: v %d, want %d", e.V, Version)
	}
	return e, nil
}

// ActivationRequest is the data of an activation_request event: the code
// the technician typed and the X25519 key HQ seals the TMK to.
type ActivationRequest struct {
	Code      string `json:"code"`       // 8 digits
	X25519Pub []byte `json:"x25519_pub"` // 32 bytes, base64 std on the wire
}

// Status is the retained status payload. The Last Will carries only
// serial and online:false (see OfflineWill), so a decoded Status may hold
// zero values for the rest.
type Status struct {
	Serial     string    `json:"serial"`
	Online     bool      `json:"online"`
	State      string    `json:"state"`
	TID        string    `json:"tid"`
	BatchNo    string    `json:"batch_no"`
	BatchCount int       `json:"batch_count"`
	Version    string    `json:"version"`
	At         time.Time `json:"at"`
	// Clock is "synced" once the terminal trusts its clock, "unsynced"
	// before (spec/remote.md "Clock trust").
	Clock           string `json:"clock,omitempty"`
	PendingReversal bool   `json:"pending_reversal"`
	// DiskFreeKiB is the free space of the data directory; absent when
	// unknown.
	DiskFreeKiB *int64 `json:"disk_free_kib,omitempty"`
}

// ParseStatus decodes a status payload (HQ side).
func ParseStatus(payload []byte) (Status, error) {
	var s Status
	if err := json.Unmarshal(payload, &s); err != nil {
		return Status{}, fmt.Errorf("status payload: %w", err)
	}
	return s, nil
}

// OfflineWill is the Last Will payload, {"serial":…,"online":false}:
// the broker publishes it (retained) when the connection dies uncleanly.
func OfflineWill(serial string) []byte {
	b, _ := json.Marshal(struct {
		Serial string `json:"serial"`
		Online bool   `json:"online"`
	}{serial, false})
	return b
}

func objectOrEmpty(m json.RawMessage) json.RawMessage {
	if len(m) == 0 || string(m) == "null" {
		return json.RawMessage("{}")
	}
	return m
}

// SealAck encodes a and signs it with the terminal's device key under
// kid DeviceKID(a.Serial).
func SealAck(priv ed25519.PrivateKey, a Ack) ([]byte, error) {
	p, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("ack %s: %w", a.CmdID, err)
	}
	return Seal(DeviceKID(a.Serial), priv, p)
}

// SealEvent encodes e and signs it with the terminal's device key under
// kid DeviceKID(e.Serial).
func SealEvent(priv ed25519.PrivateKey, e Event) ([]byte, error) {
	p, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", e.ID, err)
	}
	return Seal(DeviceKID(e.Serial), priv, p)
}
