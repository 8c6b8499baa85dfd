package terminal

import (
	"fmt"
	"github.com/posagent/posagent/hal"
	"log/slog"
)

// Amount is money in fen (1/100 yuan). Integer arithmetic only: a payments
// terminal never rounds.
type Amount int64

// String formats the amount as yuan with two decimals ("123.45").
func (a Amount) String() string {
	sign := ""
	if a < 0 {
		sign = "-"
		a = -a
	}
	return fmt.Sprintf("%s%d.%02d", sign, a/100, a%100)
}

// STAN is the system trace audit number, which is also the voucher number
// printed on the receipt (ISO 8583 field 11), 000001–999999.
type STAN uint32

// String is the 6-digit wire form.
func (s STAN) String() string { return fmt.Sprintf("%06d", uint32(s)) }

// Next returns the STAN after s: 999999 wraps to 000001 (acquirer.md
// §Terminal rules).
func (s STAN) Next() STAN {
	if s >= 999999 {
		return 1
	}
	return s + 1
}

// BatchNo is the settlement batch number (field 60.2), 000001–999999.
type BatchNo uint32

// String is the 6-digit wire form.
func (b BatchNo) String() string { return fmt.Sprintf("%06d", uint32(b)) }

// Next returns the batch number after b, wrapping like the STAN.
func (b BatchNo) Next() BatchNo {
	if b >= 999999 {
		return 1
	}
	return b + 1
}

// PAN is a primary account number. Its String and LogValue are masked to
// the first 6 and last 4 digits, so a careless fmt or slog call cannot leak
// it; Digits gives the clear value to the few places that need it (the wire
// and the encrypted journal).
type PAN string

// Digits returns the clear PAN.
func (p PAN) Digits() string { return string(p) }

// String returns the masked PAN (6+4).
func (p PAN) String() string { return hal.MaskPAN(string(p)) }

// LogValue implements slog.LogValuer with the masked PAN.
func (p PAN) LogValue() slog.Value { return slog.StringValue(hal.MaskPAN(string(p))) }
