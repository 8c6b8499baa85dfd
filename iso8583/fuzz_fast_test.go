package iso8583

import (
	"bytes"
	"testing"
)

// FuzzFastPath feeds arbitrary bytes to the fast-path decoder: no panic,
// an error is a *FieldError, the word-at-a-time loop and the
// field-by-field decoder agree, and an accepted frame packs back to the
// same bytes. The comparison with moov-io is FuzzUnpack in ./reference.
func FuzzFastPath(f *testing.F) {
	for _, g := range goldenSets(f) {
		f.Add(g.Frame)
	}
	buf := make([]byte, MaxFrameSize)
	f.Fuzz(func(t *testing.T, frame []byte) {
		checkUnpackAgree(t, frame)
		var m Message
		if err := m.Unpack(frame); err != nil {
			if _, ok := err.(*FieldError); !ok {
				t.Fatalf("Unpack error %T %v is not a *FieldError", err, err)
			}
			return
		}
		n, err := m.Pack(buf)
		if err != nil {
			t.Fatalf("Pack of an accepted frame: %v", err)
		}
		if !bytes.Equal(buf[:n], frame) {
			t.Fatalf("accepted frame does not round-trip:\n in %X\nout %X", frame, buf[:n])
		}
	})
}
