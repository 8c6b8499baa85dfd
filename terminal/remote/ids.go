package remote

import (
	"encoding/hex"
	"fmt"
	"regexp"
)

// Typed identifiers of the remote contract. Each has one validation, here,
// used by every reader of the value: the terminal's command checks, the
// factory tools, the identity store and HQ. A value of one of these types
// that came through its Parse function is known to be well formed.

// Serial is a terminal's factory serial, [A-Za-z0-9-]{4,32}. It is part of
// MQTT topic names and client ids, so the syntax keeps MQTT wildcards and
// separators (+ # /) out of them.
type Serial string

var serialRE = regexp.MustCompile(`^[A-Za-z0-9-]{4,32}$`)

// ParseSerial checks a serial.
func ParseSerial(s string) (Serial, error) {
	if !serialRE.MatchString(s) {
		return "", fmt.Errorf("serial %q: want 4-32 of [A-Za-z0-9-]", s)
	}
	return Serial(s), nil
}

// ValidSerial reports whether s is a factory serial.
func ValidSerial(s string) bool { return serialRE.MatchString(s) }

// String returns the serial.
func (s Serial) String() string { return string(s) }

// idRE is the syntax of command, event and key ids.
var idRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidID reports whether s is a usable command, event or key id,
// [A-Za-z0-9._-]{1,64}.
func ValidID(s string) bool { return idRE.MatchString(s) }

// TID is the terminal id the acquirer assigns (ISO 8583 field 41): exactly
// 8 "ans" characters.
type TID string

// ParseTID checks a TID.
func ParseTID(s string) (TID, error) {
	if !ans(s, 8) {
		return "", fmt.Errorf("tid %q: want 8 printable ASCII characters (ans)", s)
	}
	return TID(s), nil
}

// MID is the merchant id (ISO 8583 field 42): exactly 15 "ans" characters.
type MID string

// ParseMID checks a MID.
func ParseMID(s string) (MID, error) {
	if !ans(s, 15) {
		return "", fmt.Errorf("mid %q: want 15 printable ASCII characters (ans)", s)
	}
	return MID(s), nil
}

// TPDU is the 5-byte transport header of acquirer.md as 10 hex digits:
// "60", then the destination and source addresses.
type TPDU string

// ParseTPDU checks a TPDU.
func ParseTPDU(s string) (TPDU, error) {
	if len(s) != 10 || s[:2] != "60" || !isHex(s, 10) {
		return "", fmt.Errorf("tpdu %q: want 10 hex digits starting 60", s)
	}
	return TPDU(s), nil
}

// CommandType is the "type" of a command payload.
type CommandType string

// Command types (remote.md §Command payload).
const (
	TypeUnbind    CommandType = "unbind"
	TypeProvision CommandType = "provision"
	TypeStatus    CommandType = "status"
	TypeHQKeys    CommandType = "hq_keys"
	// TypeUpdate is the over-the-air update: a RAUC bundle downloaded,
	// installed into the inactive slot and booted (args.go UpdateArgs).
	TypeUpdate CommandType = "update"
)

// CommandTypes lists every known type, in the order remote.md names them.
var CommandTypes = []CommandType{TypeUnbind, TypeProvision, TypeStatus, TypeHQKeys, TypeUpdate}

// ParseCommandType checks a command type.
func ParseCommandType(s string) (CommandType, error) {
	for _, t := range CommandTypes {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown command type %q", s)
}

// UnsettledPolicy is what an unbind does with an open batch that holds
// transactions.
type UnsettledPolicy string

// Unsettled policies (remote.md §unbind args).
const (
	UnsettledSettle UnsettledPolicy = "settle" // settle first (the default); never wipe money away
	UnsettledRefuse UnsettledPolicy = "refuse" // fail with unsettled-batch, wipe nothing
	UnsettledForce  UnsettledPolicy = "force"  // report the batch in the final ack, then wipe
)

// ParseUnsettledPolicy checks a policy; "" is the default, settle.
func ParseUnsettledPolicy(s string) (UnsettledPolicy, error) {
	switch p := UnsettledPolicy(s); p {
	case "":
		return UnsettledSettle, nil
	case UnsettledSettle, UnsettledRefuse, UnsettledForce:
		return p, nil
	}
	return "", fmt.Errorf("unsettled %q: want settle, refuse or force", s)
}

// ans reports whether s is exactly n ISO 8583 "ans" characters: printable
// ASCII, space included.
func ans(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
