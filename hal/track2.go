package hal

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Track2 is the decoded track-2 image of a magnetic-stripe card
// (ISO/IEC 7813): ;PAN=YYMM<service code><discretionary data>?
//
// Its String and LogValue mask the PAN (first 6 and last 4 digits), so a
// careless log call or %v cannot leak it.
type Track2 struct {
	PAN           string
	Expiry        string // YYMM
	ServiceCode   string // 3 digits
	Discretionary string
	Raw           string // PAN=YYMM... without the sentinels: the ISO 8583 field 35 content
}

// ISO/IEC 7813 track 2 holds 40 characters including the start sentinel, the
// end sentinel and the LRC, which leaves 37 data characters.
const maxTrack2Data = 37

// Errors returned (wrapped) by ParseTrack2, for errors.Is.
var (
	ErrTrack2Format = errors.New("bad track 2 format")
	ErrTrack2PAN    = errors.New("bad track 2 PAN")
)

// ParseTrack2 parses one line of a card reader: ;<PAN>=<YYMM><svc><disc>?
// with any trailing CR/LF. The PAN is 12 to 19 digits; the Luhn check digit
// is not verified (test cards often fail it, and the acquirer decides).
// The error never contains the PAN.
func ParseTrack2(line string) (Track2, error) {
	line = strings.TrimRight(line, "\r\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return Track2{}, fmt.Errorf("%w: empty line", ErrTrack2Format)
	}
	if line[0] != ';' {
		return Track2{}, fmt.Errorf("%w: no start sentinel ';'", ErrTrack2Format)
	}
	end := strings.IndexByte(line, '?')
	if end < 0 {
		return Track2{}, fmt.Errorf("%w: no end sentinel '?'", ErrTrack2Format)
	}
	if end != len(line)-1 {
		return Track2{}, fmt.Errorf("%w: %d characters after the end sentinel", ErrTrack2Format, len(line)-1-end)
	}
	raw := line[1:end]
	if len(raw) > maxTrack2Data {
		return Track2{}, fmt.Errorf("%w: %d data characters, at most %d", ErrTrack2Format, len(raw), maxTrack2Data)
	}
	pan, rest, ok := strings.Cut(raw, "=")
	if !ok {
		return Track2{}, fmt.Errorf("%w: no field separator '='", ErrTrack2Format)
	}
	if len(pan) < 12 || len(pan) > 19 {
		return Track2{}, fmt.Errorf("%w: %d digits, want 12 to 19", ErrTrack2PAN, len(pan))
	}
	if !allDigits(pan) {
		return Track2{}, fmt.Errorf("%w: not all digits", ErrTrack2PAN)
	}
	if len(rest) < 7 {
		return Track2{}, fmt.Errorf("%w: %d characters after '=', want expiry YYMM and a 3-digit service code", ErrTrack2Format, len(rest))
	}
	if !allDigits(rest) {
		return Track2{}, fmt.Errorf("%w: non-digit after '='", ErrTrack2Format)
	}
	exp := rest[:4]
	if mm := exp[2:]; mm < "01" || mm > "12" {
		return Track2{}, fmt.Errorf("%w: expiry month %s", ErrTrack2Format, mm)
	}
	return Track2{
		PAN:           pan,
		Expiry:        exp,
		ServiceCode:   rest[4:7],
		Discretionary: rest[7:],
		Raw:           raw,
	}, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String shows the masked PAN only.
func (t Track2) String() string { return "Track2{" + MaskPAN(t.PAN) + "}" }

// GoString masks too, so %#v is as safe as %v.
func (t Track2) GoString() string { return t.String() }

// LogValue implements slog.LogValuer: the masked PAN and the service code;
// never the full PAN, the expiry or the discretionary data.
func (t Track2) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("pan", MaskPAN(t.PAN)),
		slog.String("service_code", t.ServiceCode),
	)
}

// MaskPAN keeps at most the first 6 and the last 4 digits of pan, with '*'
// in between (PCI DSS 3.4 display rule). A PAN shorter than 12 characters
// keeps only its last 4; one of 4 or fewer is masked entirely.
func MaskPAN(pan string) string {
	n := len(pan)
	switch {
	case n >= 12:
		return pan[:6] + strings.Repeat("*", n-10) + pan[n-4:]
	case n > 4:
		return strings.Repeat("*", n-4) + pan[n-4:]
	default:
		return strings.Repeat("*", n)
	}
}

// CardEvent is one swipe: a parsed Track2, or Err for an unreadable swipe
// (the terminal shows an error and asks to swipe again).
type CardEvent struct {
	Track2 Track2
	Err    error
}

// CardReader delivers swipes. The channel is closed when the reader is
// closed.
type CardReader interface {
	Swipes() <-chan CardEvent
}
