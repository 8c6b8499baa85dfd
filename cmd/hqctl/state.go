package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/posagent/posagent/internal/durable"
	"io"
	"math/big"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/posagent/posagent/terminal/remote"
)

// The HQ state file of the activation service: one JSON document holding
// the activation codes (issued by `hqctl activation-code`, consumed by
// `hqctl serve`) and what HQ last learnt of each terminal. Every change
// takes an exclusive flock(2) on FILE.lock, re-reads the file, and writes
// it back atomically (temp file, fsync, rename, fsync of the directory),
// so two hqctl processes never lose each other's update and a power cut
// leaves either the old or the new document, never a torn one.

// Code states.
const (
	codePending    = "pending"
	codeUsed       = "used"
	codeRevoked    = "revoked"    // too many wrong codes for its serial
	codeSuperseded = "superseded" // a newer code was issued for the serial
)

// Refusal words of an activation request, logged by serve. The terminal
// gets no answer for any of them (spec/remote.md has no negative answer):
// it shows NO ANSWER FROM HQ after its 120 s wait.
const (
	refuseUnknownCode = "unknown-code"
	refuseWrongSerial = "wrong-serial"
	refuseExpired     = "code-expired"
	refuseUsed        = "code-used"
	refuseRevoked     = "code-revoked"
	refuseSuperseded  = "code-superseded"
)

// maxCodeAttempts is how many wrong codes a serial may present while it has
// a pending code; the next wrong one revokes its pending codes. Eight
// digits are 10^8 guesses, but a request costs an attacker nothing once
// they hold a device key, so the guesses are capped.
const maxCodeAttempts = 5

// stateRetention is how long used, revoked or expired codes stay in the
// file (an audit trail) before they are pruned.
const stateRetention = 30 * 24 * time.Hour

// codeRecord is one activation code.
type codeRecord struct {
	Code         string          `json:"code"`
	Serial       string          `json:"serial"`
	TID          string          `json:"tid"`
	MID          string          `json:"mid"`
	MerchantName string          `json:"merchant_name"`
	Acquirer     remote.Acquirer `json:"acquirer"`
	IssuedAt     time.Time       `json:"issued_at"`
	ExpiresAt    time.Time       `json:"expires_at"`
	Status       string          `json:"status"`
	Attempts     int             `json:"attempts,omitempty"` // wrong codes from its serial while pending
	UsedAt       *time.Time      `json:"used_at,omitempty"`
	Activation   string          `json:"activation,omitempty"`   // the activation request id that used it
	ProvisionID  string          `json:"provision_id,omitempty"` // the provision command sent in answer
	// Provision is the signed provision envelope, kept so that a
	// redelivered request (MQTT QoS 1 is at least once) gets the same
	// command again instead of a refusal.
	Provision string `json:"provision,omitempty"`
}

// terminalRecord is what HQ last learnt of a terminal from its verified
// events and acks.
type terminalRecord struct {
	State string    `json:"state"` // provisioned, active, unactivated, tampered
	TID   string    `json:"tid,omitempty"`
	Event string    `json:"event"` // the event or ack that set State
	At    time.Time `json:"at"`
}

// hqState is the whole state file.
type hqState struct {
	V         int                        `json:"v"`
	Codes     []*codeRecord              `json:"codes"`
	Terminals map[string]*terminalRecord `json:"terminals"`
}

// withLockedState runs fn on the state at path under an exclusive lock of
// path+".lock"; when fn reports a change the state is written back
// atomically before the lock is released. A missing file is an empty state.
func withLockedState(path string, fn func(st *hqState) (changed bool, err error)) error {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	st, err := readState(path)
	if err != nil {
		return err
	}
	changed, ferr := fn(st)
	if changed {
		data, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return fmt.Errorf("state %s: %w", path, err)
		}
		if err := writeFileAtomic(path, append(data, '\n'), 0o600); err != nil {
			return fmt.Errorf("state %s: %w", path, err)
		}
	}
	return ferr
}

func readState(path string) (*hqState, error) {
	st := &hqState{V: 1, Terminals: map[string]*terminalRecord{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("state %s: not an hqctl state file: %w", path, err)
	}
	if st.V != 1 {
		return nil, fmt.Errorf("state %s: version %d, want 1", path, st.V)
	}
	if st.Terminals == nil {
		st.Terminals = map[string]*terminalRecord{}
	}
	return st, nil
}

// lockFile takes an exclusive flock(2) on path (created 0600 if missing)
// and returns the function that releases it. flock is per open file
// description, so it also serialises goroutines of one process that each
// call lockFile.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// writeFileAtomic replaces path with data: a temp file in the same
// directory, fsynced, renamed over path, then the directory fsynced so the
// rename itself survives a power cut. Readers (the acquirer simulator
// re-reading its keys) see the old file or the new one, never a mix.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return durable.WriteFile(path, data, mode)
}

// newCode draws a uniform 8-digit code from r (crypto/rand in use) that
// no pending code of the state already has.
func (st *hqState) newCode(r io.Reader) (string, error) {
	limit := big.NewInt(100_000_000)
	for range 100 {
		n, err := rand.Int(r, limit)
		if err != nil {
			return "", fmt.Errorf("activation code: %w", err)
		}
		code := fmt.Sprintf("%08d", n.Int64())
		clash := false
		for _, c := range st.Codes {
			if c.Status == codePending && c.Code == code {
				clash = true
			}
		}
		if !clash {
			return code, nil
		}
	}
	return "", errors.New("activation code: no free code after 100 draws")
}

// issue adds rec as the serial's pending code; earlier pending codes of the
// serial are superseded, so only the last code handed to a technician
// works. Old finished records are pruned.
func (st *hqState) issue(rec *codeRecord, now time.Time) {
	kept := st.Codes[:0]
	for _, c := range st.Codes {
		if c.Serial == rec.Serial && c.Status == codePending {
			c.Status = codeSuperseded
		}
		if c.Status != codePending && now.Sub(c.ExpiresAt) > stateRetention {
			continue
		}
		kept = append(kept, c)
	}
	st.Codes = append(kept, rec)
}

// matchResult is the decision on an activation request.
type matchResult struct {
	rec     *codeRecord // the code's record (nil for an unknown code)
	dup     bool        // already used by this very request: send its stored provision again
	refusal string      // "" when the request may be answered
	changed bool        // attempt counters moved: write the state back
	revoked bool        // this refusal revoked the serial's pending codes
}

// match decides an activation request (serial, code, request id) at now.
// A wrong code counts against the serial's pending codes, which are
// revoked at maxCodeAttempts.
func (st *hqState) match(serial, code, reqID string, now time.Time) matchResult {
	var res matchResult
	for _, c := range st.Codes {
		// Constant-time: the comparison must not tell a prober how many
		// leading digits were right.
		if subtle.ConstantTimeCompare([]byte(c.Code), []byte(code)) == 1 && (c.Status == codePending || c.Serial == serial) {
			res.rec = c
			if c.Serial == serial {
				break // prefer the requester's own record over another serial's pending one
			}
		}
	}
	rec := res.rec
	switch {
	case rec == nil:
		res.refusal = refuseUnknownCode
	case rec.Serial != serial:
		res.refusal = refuseWrongSerial
	case rec.Status == codeUsed && rec.Activation == reqID && rec.Provision != "":
		res.dup = true
		return res
	case rec.Status == codeUsed:
		res.refusal = refuseUsed
	case rec.Status == codeRevoked:
		res.refusal = refuseRevoked
	case rec.Status == codeSuperseded:
		res.refusal = refuseSuperseded
	case !now.Before(rec.ExpiresAt):
		res.refusal = refuseExpired
	default:
		return res
	}
	if res.refusal == refuseUnknownCode || res.refusal == refuseWrongSerial {
		for _, c := range st.Codes {
			if c.Serial == serial && c.Status == codePending {
				c.Attempts++
				if c.Attempts >= maxCodeAttempts {
					c.Status = codeRevoked
					res.revoked = true
				}
				res.changed = true
			}
		}
	}
	return res
}

// setAcquirerKey records tid -> TMK (upper-case hex) in the acquirer's keys
// file, the JSON object the acquirer simulator (--keys) re-reads at every
// sign-in, under the same lock-read-modify-atomic-write discipline as the
// state file. A missing file is created with mode 0600.
func setAcquirerKey(path, tid string, tmk []byte) error {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	keys := map[string]string{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read acquirer keys: %w", err)
	default:
		if err := json.Unmarshal(data, &keys); err != nil {
			return fmt.Errorf("acquirer keys %s: want a JSON object TID -> TMK hex: %w", path, err)
		}
	}
	keys[tid] = strings.ToUpper(hex.EncodeToString(tmk))
	out, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		return fmt.Errorf("acquirer keys %s: %w", path, err)
	}
	if err := writeFileAtomic(path, append(out, '\n'), 0o600); err != nil {
		return fmt.Errorf("acquirer keys %s: %w", path, err)
	}
	return nil
}
