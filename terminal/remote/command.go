package remote

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Rejection and failure reasons, the exact machine words of remote.md.
const (
	ReasonInvalid          = "invalid"
	ReasonWrongSerial      = "wrong-serial"
	ReasonReplayed         = "replayed"
	ReasonExpired          = "expired"
	ReasonNotYetValid      = "not-yet-valid"
	ReasonWrongState       = "wrong-state"
	ReasonUnsettledBatch   = "unsettled-batch"
	ReasonSettlementFailed = "settlement-failed"
	ReasonBadKCV           = "bad-kcv"
	ReasonBadSeal          = "bad-seal"
	ReasonInsufficientSigs = "insufficient-signatures"
	// ReasonClockUnsynced is the reason of the in_progress ack of a
	// command that waits for a trusted clock ("Clock trust").
	ReasonClockUnsynced = "clock-unsynced"
)

// Failure reasons of an update command (its failed ack).
const (
	// ReasonUpdateDisabled: the terminal's [update] section is off.
	ReasonUpdateDisabled = "update-disabled"
	// ReasonDownloadFailed: the bundle could not be fetched whole (no
	// answer, an HTTP error, a download that never completes).
	ReasonDownloadFailed = "download-failed"
	// ReasonBadSize: the server has more or fewer bytes than size, or size
	// is over the terminal's limit.
	ReasonBadSize = "bad-size"
	// ReasonBadHash: size bytes arrived and their SHA-256 is not sha256.
	ReasonBadHash = "bad-hash"
	// ReasonInstallFailed: RAUC refused or failed the install (its
	// LastError is in result.detail).
	ReasonInstallFailed = "install-failed"
	// ReasonSignInFailed: the new version booted but could not sign in
	// with the acquirer in time; its slot was marked bad and the terminal
	// rebooted into the old one.
	ReasonSignInFailed = "sign-in-failed"
	// ReasonRolledBack: after the reboot the old version runs (the
	// bootloader fell back: the new slot never came up to sign in).
	ReasonRolledBack = "rolled-back"
	// ReasonMarkFailed: the new version runs and signed in, but RAUC did
	// not record its slot good, so a later reboot may fall back.
	ReasonMarkFailed = "mark-failed"
	// ReasonNotIdle: the command expired before the terminal was idle
	// (or before the settlement it was told to wait for).
	ReasonNotIdle = "not-idle"
)

// MaxClockSkew is how far in the future issued_at may lie (remote.md:
// issued_at <= now + 5 min), to absorb HQ and terminal clock drift.
const MaxClockSkew = 5 * time.Minute

// MaxValidity is the longest validity window a command may have
// (remote.md: expires_at - issued_at <= 7 days). A captured command stays
// dangerous as long as it is valid: a ten-year unbind would be a standing
// order to wipe.
const MaxValidity = 7 * 24 * time.Hour

// RecordKept is how long after its record was made a command's id and
// final ack may be pruned: 30 days after expires_at (remote.md), and
// expires_at is never later than the record time plus MaxValidity plus
// MaxClockSkew for a command that passed the window checks, so one rule
// on the record time alone keeps every record at least as long as the
// contract asks.
const RecordKept = MaxValidity + MaxClockSkew + RecordAfterExpiry

// RecordAfterExpiry is how long a recorded id is kept after its command's
// expires_at (remote.md: "may be pruned 30 days after").
const RecordAfterExpiry = 30 * 24 * time.Hour

// Command is a command payload. Args holds the raw args object ({} when
// the payload had none); Unbind and Provision decode it.
type Command struct {
	V         int             `json:"v"`
	ID        string          `json:"id"`
	Type      CommandType     `json:"type"`
	Serial    string          `json:"serial"`
	IssuedAt  time.Time       `json:"issued_at"`
	ExpiresAt time.Time       `json:"expires_at"`
	Args      json.RawMessage `json:"args,omitempty"`
}

// Payload encodes the command as the bytes HQ signs: the remote.md keys,
// times in RFC 3339 with their zone, a zero V written as Version.
func (c Command) Payload() ([]byte, error) {
	type plain Command
	p := plain(c)
	if p.V == 0 {
		p.V = Version
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("command %s payload: %w", c.ID, err)
	}
	return b, nil
}

// Unbind decodes the args of an unbind command.
func (c Command) Unbind() (UnbindArgs, error) { return ParseUnbindArgs(c.Args) }

// Provision decodes the args of a provision command.
func (c Command) Provision() (ProvisionArgs, error) { return ParseProvisionArgs(c.Args) }

// Update decodes the args of an update command.
func (c Command) Update() (UpdateArgs, error) { return ParseUpdateArgs(c.Args) }

// HQKeys decodes the args of an hq_keys command.
func (c Command) HQKeys() (HQKeysArgs, error) { return ParseHQKeysArgs(c.Args) }

// Verdict is the outcome of CheckCommand.
//
//   - Resend: the id was executed before with the same payload bytes; the
//     caller re-sends the stored final ack envelope verbatim and does
//     nothing else (even if the command has expired since).
//   - Reason != "": the command is rejected; ack AckRejected with Reason and
//     CmdID ("" when the payload had no usable id) and change nothing.
//   - otherwise the command passed every check but wrong-state, which only
//     the caller can judge (see StateOK).
//
// OnlyTime is set when Reason is expired or not-yet-valid and every later
// check of the table passed (args, signatures): the verdict rests on the
// clock alone, so a terminal whose clock is not trusted may hold the
// command instead of rejecting it (remote.md "Clock trust").
//
// Detail is a human explanation for the log line, never sent.
type Verdict struct {
	CmdID    string
	Reason   string
	Resend   bool
	OnlyTime bool
	Detail   string
}

// OK reports whether the command passed every check CheckCommand makes.
func (v Verdict) OK() bool { return v.Reason == "" && !v.Resend }

// SeenFunc looks up an executed command id and returns the SHA-256 of the
// payload bytes it was executed with.
type SeenFunc func(id string) (payloadSHA256 [32]byte, ok bool)

var commandKeys = map[string]bool{
	"v": true, "id": true, "type": true, "serial": true,
	"issued_at": true, "expires_at": true, "args": true,
}

// Checker runs remote.md's check table for one terminal.
type Checker struct {
	Serial string
	// Seen looks up recorded ids; nil: nothing recorded.
	Seen SeenFunc
	// Keys is the terminal's keyring, for the hq_keys args that depend on
	// it and the signature-policy row. nil skips both: HQ's self-check of
	// a command before it signs it cannot know the signatures yet.
	Keys *Keyring
}

// CheckCommand runs the check table without a keyring (see Checker): the
// rows every reader can judge from the payload, the serial and the clock.
func CheckCommand(payload []byte, serial string, now time.Time, seen SeenFunc) (Command, Verdict) {
	return Checker{Serial: serial, Seen: seen}.Check(payload, nil, now)
}

// Check runs the check table of remote.md, in its order, on a verified
// payload at time now; signers are the distinct kids whose signatures
// verified (OpenSigners). The first failing check decides. The returned
// Command holds whatever could be decoded, even on rejection.
func (k Checker) Check(payload []byte, signers []string, now time.Time) (Command, Verdict) {
	var c Command
	invalid := func(format string, a ...any) (Command, Verdict) {
		return c, Verdict{CmdID: c.ID, Reason: ReasonInvalid, Detail: fmt.Sprintf(format, a...)}
	}

	// 1. JSON with v=1 and every required key; unknown keys are invalid.
	fields, dup, err := decodeMembers(payload)
	// The id is read first so that every later rejection names it; an
	// unusable id leaves CmdID "" (remote.md: acked with cmd_id ""), and
	// so does an id given twice (which of the two would it be?).
	if raw, ok := fields["id"]; ok && dup != "id" {
		var id string
		if json.Unmarshal(raw, &id) == nil && ValidID(id) {
			c.ID = id
		}
	}
	switch {
	case err != nil:
		return invalid("payload: %v", err)
	case dup != "":
		// Two readers of the same signed bytes could see two commands.
		return invalid("payload: duplicate key %q", dup)
	}
	for k := range fields {
		if !commandKeys[k] {
			return invalid("unknown key %q", k)
		}
	}
	for _, k := range []string{"v", "id", "type", "serial", "issued_at", "expires_at"} {
		if _, ok := fields[k]; !ok {
			return invalid("missing key %q", k)
		}
	}
	if c.ID == "" {
		return invalid("id: want 1-64 of [A-Za-z0-9._-]")
	}
	if string(bytes.TrimSpace(fields["v"])) != "1" {
		return invalid("v %s, want 1", fields["v"])
	}
	c.V = Version
	if err := json.Unmarshal(fields["type"], &c.Type); err != nil {
		return invalid("type: not a string")
	}
	if err := json.Unmarshal(fields["serial"], &c.Serial); err != nil {
		return invalid("serial: not a string")
	}
	if c.IssuedAt, err = parseTime(fields["issued_at"]); err != nil {
		return invalid("issued_at: %v", err)
	}
	if c.ExpiresAt, err = parseTime(fields["expires_at"]); err != nil {
		return invalid("expires_at: %v", err)
	}
	c.Args = fields["args"]
	if len(c.Args) == 0 || string(c.Args) == "null" {
		// Absent args mean {}; null is taken as absent because encoders
		// write a nil map that way.
		c.Args = json.RawMessage("{}")
	}

	// 2. Addressed to this terminal.
	if c.Serial != k.Serial {
		return c, Verdict{CmdID: c.ID, Reason: ReasonWrongSerial, Detail: fmt.Sprintf("serial %q", c.Serial)}
	}

	// 3-4. Recorded ids: the same bytes re-send the stored final ack,
	// other bytes under a recorded id are a replay.
	if k.Seen != nil {
		if sum, ok := k.Seen(c.ID); ok {
			if sum == sha256.Sum256(payload) {
				return c, Verdict{CmdID: c.ID, Resend: true, Detail: "already answered"}
			}
			return c, Verdict{CmdID: c.ID, Reason: ReasonReplayed, Detail: "id recorded with another payload"}
		}
	}

	// 5. A bounded validity window.
	if w := c.ExpiresAt.Sub(c.IssuedAt); w > MaxValidity {
		return invalid("validity window %v, max %v", w, MaxValidity)
	}

	// 6-7. The clock rows. Their verdict is kept while the rows after
	// them run, to tell a command that fails on the clock alone.
	var clock Verdict
	switch {
	case now.After(c.ExpiresAt):
		clock = Verdict{CmdID: c.ID, Reason: ReasonExpired, Detail: "expired at " + c.ExpiresAt.Format(time.RFC3339)}
	case c.IssuedAt.After(now.Add(MaxClockSkew)):
		clock = Verdict{CmdID: c.ID, Reason: ReasonNotYetValid, Detail: "issued at " + c.IssuedAt.Format(time.RFC3339)}
	}
	later := k.checkTypeAndSignatures(c, signers)
	if clock.Reason != "" {
		clock.OnlyTime = later.Reason == ""
		return c, clock
	}
	return c, later
}

// checkTypeAndSignatures is rows 8 and 9: a known type with valid args,
// then enough distinct signatures for the type's policy.
func (k Checker) checkTypeAndSignatures(c Command, signers []string) Verdict {
	if err := k.checkArgs(c); err != nil {
		return Verdict{CmdID: c.ID, Reason: ReasonInvalid, Detail: err.Error()}
	}
	if k.Keys != nil {
		if ok, detail := k.Keys.Sufficient(c.Type, signers); !ok {
			return Verdict{CmdID: c.ID, Reason: ReasonInsufficientSigs, Detail: detail}
		}
	}
	return Verdict{CmdID: c.ID}
}

func (k Checker) checkArgs(c Command) error {
	if err := CheckArgs(c.Type, c.Args); err != nil {
		return err
	}
	if c.Type == TypeHQKeys && k.Keys != nil {
		a, _ := c.HQKeys()
		if _, err := k.Keys.Apply(a); err != nil {
			return err
		}
	}
	return nil
}

// CheckArgs validates args for a command type; an unknown type is an error.
func CheckArgs(cmdType CommandType, args json.RawMessage) error {
	var err error
	switch cmdType {
	case TypeUnbind:
		_, err = ParseUnbindArgs(args)
	case TypeProvision:
		_, err = ParseProvisionArgs(args)
	case TypeStatus:
		err = ParseStatusArgs(args)
	case TypeHQKeys:
		_, err = ParseHQKeysArgs(args)
	case TypeUpdate:
		_, err = ParseUpdateArgs(args)
	default:
		return fmt.Errorf("unknown type %q", cmdType)
	}
	return err
}

// StateOK is the wrong-state check, the last row of the table, which needs
// the lifecycle only the caller knows: unbind needs "active"; provision
// needs "unactivated" with a pending activation request whose id the
// command names; update needs "active" (like unbind: a terminal that
// serves no merchant is updated by its technician, an unbinding one has
// its own work to finish); status and hq_keys fit every state.
func StateOK(cmdType CommandType, lifecycle, pendingActivationID, provisionActivationID string) bool {
	switch cmdType {
	case TypeUnbind, TypeUpdate:
		return lifecycle == "active"
	case TypeProvision:
		return lifecycle == "unactivated" && pendingActivationID != "" &&
			pendingActivationID == provisionActivationID
	case TypeStatus, TypeHQKeys:
		return true
	}
	return false
}

// parseTime accepts RFC 3339 with a zone (Z or ±hh:mm), with or without
// fractional seconds; a local time without a zone is ambiguous across the
// HQ and terminal time zones and is refused.
func parseTime(raw json.RawMessage) (time.Time, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, errors.New("not a string")
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not RFC 3339 with a zone", s)
	}
	return t, nil
}

// decodeObject decodes one JSON object into its members, refusing
// anything else, trailing data and duplicate keys (a duplicate would let
// two readers of the same signed bytes see different commands).
func decodeObject(raw []byte) (map[string]json.RawMessage, error) {
	m, dup, err := decodeMembers(raw)
	if err != nil {
		return nil, err
	}
	if dup != "" {
		return nil, fmt.Errorf("duplicate key %q", dup)
	}
	return m, nil
}

// decodeMembers decodes one JSON object into its members. A duplicated key
// does not stop it: dup names the first one and m keeps its first value,
// so a caller can still read the members that are not in doubt (the id
// that a rejection echoes). err is for anything that is not one object.
func decodeMembers(raw []byte) (m map[string]json.RawMessage, dup string, err error) {
	if !json.Valid(raw) {
		return nil, "", errors.New("not JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, "", err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, "", errors.New("not a JSON object")
	}
	m = make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, "", err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, "", errors.New("object key is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, "", fmt.Errorf("key %q: %w", key, err)
		}
		if _, twice := m[key]; twice {
			if dup == "" {
				dup = key
			}
			continue
		}
		m[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing }
		return nil, "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "", errors.New("trailing data after the object")
	}
	return m, dup, nil
}
