// Package link carries acquirer frames (spec/acquirer.md §Frame) over TCP or
// TLS: reading and writing length-prefixed frames, and a Client that does one
// request/response exchange and says, when it fails, whether the request may
// have reached the host (and so whether the caller owes a reversal).
package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	// MaxBody is the largest length value accepted: acquirer.md refuses a
	// frame whose length value exceeds 2,048.
	MaxBody = 2048
	// MaxFrame is the size of a buffer that holds any acceptable frame,
	// length prefix included.
	MaxFrame = 2 + MaxBody
	// MinBody is the smallest length value of a frame: TPDU 5 + header 6 +
	// MTI 2 + primary bitmap 8.
	MinBody = 5 + 6 + 2 + 8
)

var (
	// ErrFrameTooLarge: the length prefix announces more than MaxBody bytes.
	ErrFrameTooLarge = errors.New("frame length over 2048")
	// ErrFrameTooShort: the length prefix announces fewer than MinBody bytes,
	// too few for TPDU, header, MTI and bitmap.
	ErrFrameTooShort = errors.New("frame length under 21 (TPDU+header+MTI+bitmap)")
	// ErrShortBuffer: the caller's buffer cannot hold the announced frame.
	ErrShortBuffer = errors.New("buffer too small for frame")
	// ErrBadLength: a frame to write whose prefix disagrees with its size.
	ErrBadLength = errors.New("frame length prefix does not match its size")
)

// ReadFrame reads one frame (2-byte big-endian length, then that many bytes)
// into buf and returns the number of bytes of the whole frame, length prefix
// included, so buf[:n] is the frame. It refuses a length value over MaxBody
// or under MinBody without reading the body. A stream that ends before the
// first byte returns io.EOF; one that ends inside a frame returns
// io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, buf []byte) (int, error) {
	if len(buf) < 2 {
		return 0, ErrShortBuffer
	}
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(buf[:2]))
	switch {
	case n > MaxBody:
		return 0, fmt.Errorf("%w: length value %d", ErrFrameTooLarge, n)
	case n < MinBody:
		return 0, fmt.Errorf("%w: length value %d", ErrFrameTooShort, n)
	case len(buf) < 2+n:
		return 0, fmt.Errorf("%w: need %d bytes, have %d", ErrShortBuffer, 2+n, len(buf))
	}
	if _, err := io.ReadFull(r, buf[2:2+n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("frame body of %d bytes: %w", n, err)
	}
	return 2 + n, nil
}

// CheckFrame validates a frame that already carries its length prefix: the
// prefix matches the size and lies within [MinBody, MaxBody].
func CheckFrame(frame []byte) error {
	if len(frame) < 2 {
		return fmt.Errorf("%w: %d bytes", ErrFrameTooShort, len(frame))
	}
	n := int(binary.BigEndian.Uint16(frame[:2]))
	switch {
	case n != len(frame)-2:
		return fmt.Errorf("%w: prefix %d, body %d bytes", ErrBadLength, n, len(frame)-2)
	case n > MaxBody:
		return fmt.Errorf("%w: length value %d", ErrFrameTooLarge, n)
	case n < MinBody:
		return fmt.Errorf("%w: length value %d", ErrFrameTooShort, n)
	}
	return nil
}

// WriteFrame writes a frame that already carries its length prefix, in one
// Write call (so a TCP segment is not split by us), after CheckFrame.
func WriteFrame(w io.Writer, frame []byte) error {
	if err := CheckFrame(frame); err != nil {
		return err
	}
	_, err := w.Write(frame)
	return err
}

// PutLength writes the length prefix of frame (frame[0:2] = len(frame)-2,
// big-endian).
func PutLength(frame []byte) error {
	if len(frame) < 2+MinBody {
		return fmt.Errorf("%w: %d bytes", ErrFrameTooShort, len(frame))
	}
	if len(frame)-2 > MaxBody {
		return fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(frame))
	}
	binary.BigEndian.PutUint16(frame[:2], uint16(len(frame)-2))
	return nil
}
