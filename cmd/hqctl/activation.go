package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/posagent/posagent/terminal/remote"
)

// codeRequest is what an activation code binds: the terminal it activates
// and the merchant parameters its provision command will carry.
type codeRequest struct {
	Serial       string
	TID          string
	MID          string
	MerchantName string
	Acquirer     remote.Acquirer
	TTL          time.Duration
}

// validate checks the request with the terminal's own provision-args
// rules (remote.ParseProvisionArgs), with placeholders for the parts only
// serve knows, so a code is never issued for parameters the terminal would
// refuse as invalid.
func (q codeRequest) validate() error {
	if !remote.ValidSerial(q.Serial) {
		return fmt.Errorf("--serial %q: want 4-32 of [A-Za-z0-9-]", q.Serial)
	}
	if q.TTL <= 0 {
		return fmt.Errorf("--ttl %s: must be positive", q.TTL)
	}
	probe := remote.ProvisionArgs{TID: remote.TID(q.TID), MID: remote.MID(q.MID), MerchantName: q.MerchantName, Acquirer: q.Acquirer,
		TMKSealed: []byte{0}, TMKKCV: "000000", Activation: "probe"}
	raw, err := json.Marshal(probe)
	if err != nil {
		return err
	}
	_, err = remote.ParseProvisionArgs(raw)
	return err
}

// issueCode validates q, draws a fresh one-time code and records it in the
// state file at statePath (superseding the serial's earlier pending code).
func issueCode(statePath string, q codeRequest, now time.Time, r io.Reader) (*codeRecord, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Second)
	var rec *codeRecord
	err := withLockedState(statePath, func(st *hqState) (bool, error) {
		code, err := st.newCode(r)
		if err != nil {
			return false, err
		}
		rec = &codeRecord{Code: code, Serial: q.Serial, TID: q.TID, MID: q.MID, MerchantName: q.MerchantName,
			Acquirer: q.Acquirer, IssuedAt: now, ExpiresAt: now.Add(q.TTL), Status: codePending}
		st.issue(rec, now)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// cmdActivationCode issues a one-time activation code for one terminal.
func cmdActivationCode(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("activation-code", "--state FILE --serial S --tid T --mid M --acquirer HOST:PORT [flags]",
		"Issue a one-time 8-digit activation code for one terminal: the technician types\nit at ACTIVATE, and hqctl serve answers the terminal's signed activation request\nwith a provision command carrying these merchant parameters.")
	statePath := fs.String("state", "", "HQ state file (JSON, created 0600 if missing) (required)")
	var q codeRequest
	fs.StringVar(&q.Serial, "serial", "", "terminal serial the code is bound to (required)")
	fs.StringVar(&q.TID, "tid", "", "terminal id, 8 characters (required)")
	fs.StringVar(&q.MID, "mid", "", "merchant id, 15 characters (required)")
	fs.StringVar(&q.MerchantName, "merchant-name", "", "merchant name, at most 40 characters")
	fs.StringVar(&q.Acquirer.Addr, "acquirer", "", "acquirer host HOST:PORT (required)")
	fs.BoolVar(&q.Acquirer.TLS, "acquirer-tls", false, "the terminal reaches the acquirer over TLS")
	tpdu := fs.String("tpdu", "6000030000", "TPDU, 10 hex digits starting 60")
	fs.DurationVar(&q.TTL, "ttl", 24*time.Hour, "how long the code may be used")
	jsonOut := fs.Bool("json", false, "print the code as one JSON object")
	if code, stop := parseFlags(fs, args, stdout, stderr); stop {
		return code
	}
	q.Acquirer.TPDU = remote.TPDU(*tpdu)
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hqctl activation-code: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *statePath == "" || q.Serial == "" || q.TID == "" || q.MID == "" || q.Acquirer.Addr == "" {
		fmt.Fprintln(stderr, "hqctl activation-code: --state, --serial, --tid, --mid and --acquirer are required")
		return exitUsage
	}
	if err := q.validate(); err != nil {
		fmt.Fprintf(stderr, "hqctl activation-code: %v\n", err)
		return exitUsage
	}
	rec, err := issueCode(*statePath, q, time.Now(), rand.Reader)
	if err != nil {
		fmt.Fprintf(stderr, "hqctl activation-code: %v\n", err)
		return exitFailed
	}
	if *jsonOut {
		b, _ := json.Marshal(struct {
			Serial    string    `json:"serial"`
			Code      string    `json:"code"`
			TID       string    `json:"tid"`
			MID       string    `json:"mid"`
			ExpiresAt time.Time `json:"expires_at"`
		}{rec.Serial, rec.Code, rec.TID, rec.MID, rec.ExpiresAt})
		fmt.Fprintf(stdout, "%s\n", b)
		return exitOK
	}
	fmt.Fprintf(stdout, "activation code for %s: %s (TID %s, MID %s, valid until %s, one use)\n",
		rec.Serial, rec.Code, rec.TID, rec.MID, rec.ExpiresAt.Format(time.RFC3339))
	return exitOK
}

// cmdTerminalState prints what the state file knows of one terminal: its
// last state (active, unactivated, tampered, provisioned, or unknown), as
// learnt by serve from the terminal's verified events. Scripts (build/demo.sh) use it to skip
// issuing a code for a terminal that is already active.
func cmdTerminalState(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("terminal-state", "--state FILE --serial S",
		"Print a terminal's last known state from the HQ state file (active,\nunactivated, tampered, provisioned, unknown).")
	statePath := fs.String("state", "", "HQ state file (required)")
	serial := fs.String("serial", "", "terminal serial (required)")
	if code, stop := parseFlags(fs, args, stdout, stderr); stop {
		return code
	}
	if *statePath == "" || *serial == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "hqctl terminal-state: --state and --serial are required")
		return exitUsage
	}
	state := "unknown"
	err := withLockedState(*statePath, func(st *hqState) (bool, error) {
		if t := st.Terminals[*serial]; t != nil {
			state = t.State
		}
		return false, nil
	})
	if err != nil {
		fmt.Fprintf(stderr, "hqctl terminal-state: %v\n", err)
		return exitFailed
	}
	fmt.Fprintln(stdout, state)
	return exitOK
}
