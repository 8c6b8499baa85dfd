package escpos

import (
	"bytes"
	"errors"
	"testing"

	"github.com/posagent/posagent/hal"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"empty", nil, "\x1b@\x1bd\x04\x1dV\x01"},
		{"lines", []string{"MERCHANT", "CARD 622202*********0123", ""}, "\x1b@MERCHANT\nCARD 622202*********0123\n\n\x1bd\x04\x1dV\x01"},
		{"control bytes neutralised", []string{"A\x1bB\x1dV\x00"}, "\x1b@A?B?V?\n\x1bd\x04\x1dV\x01"},
		{"non-ASCII one ? per rune", []string{"¥12.00"}, "\x1b@?12.00\n\x1bd\x04\x1dV\x01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Encode(hal.Receipt{Lines: tt.lines})); got != tt.want {
				t.Fatalf("Encode = %q, want %q", got, tt.want)
			}
		})
	}
}

type drainWriter struct {
	bytes.Buffer
	writes, drains int
	err            error
}

func (w *drainWriter) Write(p []byte) (int, error) { w.writes++; return w.Buffer.Write(p) }
func (w *drainWriter) Drain() error                { w.drains++; return w.err }

func TestPrinter(t *testing.T) {
	var w drainWriter
	p := New(&w)
	if err := p.Print(hal.Receipt{Lines: []string{"X"}}); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 || w.drains != 1 || w.String() != "\x1b@X\n\x1bd\x04\x1dV\x01" {
		t.Fatalf("writes %d drains %d bytes %q", w.writes, w.drains, w.String())
	}
	w.err = errors.New("EIO")
	if err := p.Print(hal.Receipt{}); !errors.Is(err, w.err) {
		t.Fatalf("Print = %v, want drain error", err)
	}
}
