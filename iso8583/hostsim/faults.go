package hostsim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Faults are the misbehaviours the host can be told to show. The zero value
// is a healthy host. The host applies them after it has processed the
// request, so its ledger says what the host did, not what the terminal saw:
// a sale answered late, never answered (NoAnswer), cut off (Drop) or
// answered with a wrong MAC (BadMAC) is APPROVED in the ledger, and the
// terminal owes a reversal.
type Faults struct {
	// Delay is waited before answering (after processing).
	Delay time.Duration
	// NoAnswer: read the request, never answer, keep the connection open
	// until the client gives up.
	NoAnswer bool
	// Drop: close the connection after reading (and processing) the request.
	Drop bool
	// BadMAC: answer approved 0210/0410 with a wrong field 64.
	BadMAC bool
	// NotBalanced: settlement (0500) always answers flag 2, not balanced.
	NotBalanced bool
	// SignInAgain: set the processing requirement nibble on financial
	// responses (0210, 0410): header 60 31 03 31 00 00.
	SignInAgain bool
	// On limits the faults to some requests: entries are an MTI ("0200") or
	// an MTI and processing code ("0200:200000", a void). Empty: every
	// request.
	On []string
	// Count > 0 applies the faults to that many requests (those a fault
	// actually acts on), then heals: the faults are cleared. 0: forever.
	Count int
}

// active reports whether any fault is set.
func (f Faults) active() bool {
	return f.Delay > 0 || f.NoAnswer || f.Drop || f.BadMAC || f.NotBalanced || f.SignInAgain
}

// String is a short description for the ledger and logs.
func (f Faults) String() string {
	var s []string
	if f.Delay > 0 {
		s = append(s, "delay="+f.Delay.String())
	}
	for _, x := range []struct {
		on   bool
		name string
	}{{f.NoAnswer, "no-answer"}, {f.Drop, "drop"}, {f.BadMAC, "bad-mac"}, {f.NotBalanced, "not-balanced"}, {f.SignInAgain, "signin-again"}} {
		if x.on {
			s = append(s, x.name)
		}
	}
	return strings.Join(s, ",")
}

// matches reports whether the faults are scoped to this request.
func (f Faults) matches(mti, proc string) bool {
	if len(f.On) == 0 {
		return true
	}
	return slices.Contains(f.On, mti) || (proc != "" && slices.Contains(f.On, mti+":"+proc))
}

// forRequest returns the faults that act on a request of this MTI: delay,
// no-answer and drop act on every request; bad-mac and signin-again on
// financial ones (0200, 0400); not-balanced on settlement (0500).
func (f Faults) forRequest(mti, proc string) Faults {
	if !f.matches(mti, proc) {
		return Faults{}
	}
	out := Faults{Delay: f.Delay, NoAnswer: f.NoAnswer, Drop: f.Drop}
	switch mti {
	case "0200", "0400":
		out.BadMAC, out.SignInAgain = f.BadMAC, f.SignInAgain
	case "0500":
		out.NotBalanced = f.NotBalanced
	}
	return out
}

// faultsJSON is the wire form of Faults (control API, ledger): the delay as
// a Go duration string ("1.5s").
type faultsJSON struct {
	Delay       string   `json:"delay,omitempty"`
	NoAnswer    bool     `json:"no_answer,omitempty"`
	Drop        bool     `json:"drop,omitempty"`
	BadMAC      bool     `json:"bad_mac,omitempty"`
	NotBalanced bool     `json:"not_balanced,omitempty"`
	SignInAgain bool     `json:"signin_again,omitempty"`
	On          []string `json:"on,omitempty"`
	Count       int      `json:"count,omitempty"`
}

// MarshalJSON writes {"delay":"2s","no_answer":true,...,"on":["0200"],"count":1}.
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{NoAnswer: f.NoAnswer, Drop: f.Drop, BadMAC: f.BadMAC, NotBalanced: f.NotBalanced,
		SignInAgain: f.SignInAgain, On: f.On, Count: f.Count}
	if f.Delay > 0 {
		j.Delay = f.Delay.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form MarshalJSON writes; unknown keys are errors
// so a typo in a test does not silently mean "no fault".
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	out := Faults{NoAnswer: j.NoAnswer, Drop: j.Drop, BadMAC: j.BadMAC, NotBalanced: j.NotBalanced,
		SignInAgain: j.SignInAgain, On: j.On, Count: j.Count}
	if j.Delay != "" {
		d, err := time.ParseDuration(j.Delay)
		if err != nil || d < 0 {
			return fmt.Errorf("faults: delay %q: not a non-negative duration", j.Delay)
		}
		out.Delay = d
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*f = out
	return nil
}

// Validate checks On entries (MTI or MTI:processing code) and Count.
func (f Faults) Validate() error {
	for _, o := range f.On {
		mti, proc, hasProc := strings.Cut(o, ":")
		if len(mti) != 4 || !allDigits(mti) || (hasProc && (len(proc) != 6 || !allDigits(proc))) {
			return fmt.Errorf("faults: on %q: want MTI (0200) or MTI:processing code (0200:200000)", o)
		}
	}
	if f.Count < 0 {
		return fmt.Errorf("faults: count %d < 0", f.Count)
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
