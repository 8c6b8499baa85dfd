package iso8583

import (
	"errors"
	"strconv"
)

// Sentinel errors. Decode errors come wrapped in a *FieldError that names the
// field and the byte offset in the frame (length prefix included); test them
// with errors.Is.
var (
	ErrShortFrame      = errors.New("short frame")
	ErrLengthMismatch  = errors.New("length prefix does not match frame size")
	ErrFrameTooLong    = errors.New("frame length over 2048")
	ErrBadBCD          = errors.New("bad BCD nibble")
	ErrBadPad          = errors.New("non-zero pad nibble")
	ErrLengthOverMax   = errors.New("length over field maximum")
	ErrUnknownField    = errors.New("field not in the acquirer profile")
	ErrSecondaryBitmap = errors.New("secondary bitmap bit set")
	ErrTruncated       = errors.New("field truncated")
	ErrTrailingBytes   = errors.New("bytes after the last field")
	ErrBadChar         = errors.New("character not allowed in field")
	ErrFieldLength     = errors.New("wrong field length")
	ErrBufferTooSmall  = errors.New("destination buffer too small")
	ErrBadMTI          = errors.New("MTI is not 4 BCD digits")
	ErrNoMAC           = errors.New("message carries no field 64")
)

// FieldError is a decode (or encode) fault located in a frame. Field 0 is the
// frame itself (length, TPDU, header, MTI), field 1 the bitmap. Offset counts
// bytes from the start of the frame, the 2-byte length included.
type FieldError struct {
	Field  int
	Offset int
	Err    error
}

func (e *FieldError) Error() string {
	var where string
	switch e.Field {
	case 0:
		where = "frame"
	case 1:
		where = "bitmap"
	default:
		where = "field " + strconv.Itoa(e.Field)
	}
	return "iso8583: " + where + " at offset " + strconv.Itoa(e.Offset) + ": " + e.Err.Error()
}

func (e *FieldError) Unwrap() error { return e.Err }

// fieldErr keeps the error construction out of the hot loops so they stay
// small enough to inline around it.
//
//go:noinline
func fieldErr(field, offset int, err error) error {
	return &FieldError{Field: field, Offset: offset, Err: err}
}
