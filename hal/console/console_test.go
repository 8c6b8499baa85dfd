package console

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/posagent/posagent/hal"
)

// countingWriter records each Write call separately.
type countingWriter struct{ writes [][]byte }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, append([]byte(nil), p...))
	return len(p), nil
}

func TestRender(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"empty", nil, "\x1b[2J\x1b[H"},
		{"one", []string{"MAIN MENU"}, "\x1b[2J\x1b[HMAIN MENU"},
		{"menu", []string{"MAIN MENU", "1 SALE", "2 TRANSACTION MGMT"}, "\x1b[2J\x1b[HMAIN MENU\r\n1 SALE\r\n2 TRANSACTION MGMT"},
		{"blank middle", []string{"A", "", "B"}, "\x1b[2J\x1b[HA\r\n\r\nB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w countingWriter
			if err := Render(&w, hal.Screen{Lines: tt.lines}); err != nil {
				t.Fatal(err)
			}
			if len(w.writes) != 1 {
				t.Fatalf("%d Write calls, want 1", len(w.writes))
			}
			if got := string(w.writes[0]); got != tt.want {
				t.Fatalf("rendered %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRenderRejectsInvalid(t *testing.T) {
	var w countingWriter
	err := Render(&w, hal.Screen{Lines: []string{strings.Repeat("A", 22)}})
	if err == nil || len(w.writes) != 0 {
		t.Fatalf("Render(22 columns) = %v with %d writes, want error and nothing written", err, len(w.writes))
	}
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) - 1, nil }

func TestRenderShortWrite(t *testing.T) {
	if err := Render(shortWriter{}, hal.Screen{Lines: []string{"X"}}); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("Render = %v, want ErrShortWrite", err)
	}
}

func keysString(keys []hal.Key) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k.String())
	}
	return b.String()
}

const tick = "<timeout>"

func TestDecoder(t *testing.T) {
	// chunks are fed in order with no pause between them; the chunk tick
	// means EscTimeout passed with no byte (Timeout is called if pending).
	tests := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"digits", []string{"0123456789"}, "0 1 2 3 4 5 6 7 8 9"},
		{"CR", []string{"\r"}, "ENTER"},
		{"LF", []string{"\n"}, "ENTER"},
		{"CRLF is one Enter", []string{"1\r\n2"}, "1 ENTER 2"},
		{"CRLF split across reads", []string{"\r", "\n"}, "ENTER"},
		{"CR CR", []string{"\r\r"}, "ENTER ENTER"},
		{"LF LF", []string{"\n\n"}, "ENTER ENTER"},
		{"LF CR", []string{"\n\r"}, "ENTER ENTER"},
		{"CR x LF", []string{"\rx\n"}, "ENTER CANCEL ENTER"},
		{"x is Cancel", []string{"x"}, "CANCEL"},
		{"X is ignored", []string{"X"}, ""},
		{"lone ESC after timeout", []string{"\x1b", tick}, "CANCEL"},
		{"lone ESC pending without timeout", []string{"\x1b"}, ""},
		{"late [A after lone ESC", []string{"\x1b", tick, "[A"}, "CANCEL"},
		{"ESC then digit", []string{"\x1b5"}, "CANCEL 5"},
		{"ESC ESC", []string{"\x1b\x1b", tick}, "CANCEL CANCEL"},
		{"ESC then CR LF", []string{"\x1b\r\n"}, "CANCEL ENTER"},
		{"arrow up swallowed", []string{"\x1b[A"}, ""},
		{"arrow keys then digit", []string{"\x1b[A\x1b[B\x1b[C\x1b[D7"}, "7"},
		{"arrow split across reads", []string{"\x1b", "[", "A", tick}, ""},
		{"F5 with params swallowed", []string{"\x1b[15~1"}, "1"},
		{"SS3 F1 swallowed", []string{"\x1bOP2"}, "2"},
		{"SS3 keypad swallowed", []string{"\x1bOM"}, ""},
		{"unfinished CSI dropped on timeout", []string{"\x1b[1", tick, "2"}, "2"},
		{"CR aborts CSI", []string{"\x1b[1\r"}, "ENTER"},
		{"DEL and BS", []string{"\x7f\x08"}, "CLEAR CLEAR"},
		{"garbage ignored", []string{"abc XYZ\t\x00\x01\x03\xff~[O"}, ""},
		{"mixed", []string{"12\x7f3\r\n\x1b[Dx"}, "1 2 CLEAR 3 ENTER CANCEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			var keys []hal.Key
			for _, c := range tt.chunks {
				if c == tick {
					if d.Pending() {
						keys = d.Timeout(keys)
					}
					continue
				}
				for _, b := range []byte(c) {
					keys = d.Feed(keys, b)
				}
			}
			if got := keysString(keys); got != tt.want {
				t.Fatalf("keys %q, want %q", got, tt.want)
			}
		})
	}
}

// readKeys collects n keys or fails after a timeout.
func readKeys(t *testing.T, ch <-chan hal.Key, n int) string {
	t.Helper()
	var keys []hal.Key
	timeout := time.After(3 * time.Second)
	for len(keys) < n {
		select {
		case k, ok := <-ch:
			if !ok {
				t.Fatalf("keys channel closed after %q, want %d keys", keysString(keys), n)
			}
			keys = append(keys, k)
		case <-timeout:
			t.Fatalf("got %q, want %d keys", keysString(keys), n)
		}
	}
	return keysString(keys)
}

func expectNoKey(t *testing.T, ch <-chan hal.Key, d time.Duration) {
	t.Helper()
	select {
	case k, ok := <-ch:
		if ok {
			t.Fatalf("unexpected key %v", k)
		}
	case <-time.After(d):
	}
}

func TestConsoleEscTiming(t *testing.T) {
	r, w := io.Pipe()
	var out bytes.Buffer
	c := New(r, &out, nil, slog.New(slog.DiscardHandler))
	defer c.Close()

	// A lone ESC becomes Cancel by itself, after EscTimeout.
	start := time.Now()
	w.Write([]byte{0x1b})
	if got := readKeys(t, c.Keys(), 1); got != "CANCEL" {
		t.Fatalf("lone ESC gave %q", got)
	}
	if el := time.Since(start); el < EscTimeout {
		t.Fatalf("lone ESC delivered after %v, before EscTimeout %v", el, EscTimeout)
	}

	// An arrow key sent in one burst, even in separate writes, is swallowed.
	w.Write([]byte{0x1b})
	w.Write([]byte("[A"))
	w.Write([]byte("4"))
	if got := readKeys(t, c.Keys(), 1); got != "4" {
		t.Fatalf("ESC [ A 4 gave %q, want 4", got)
	}
	expectNoKey(t, c.Keys(), 2*EscTimeout)
}

func TestConsoleEOFClosesKeys(t *testing.T) {
	r, w := io.Pipe()
	c := New(r, io.Discard, nil, slog.New(slog.DiscardHandler))
	defer c.Close()
	w.Write([]byte("1\x1b"))
	w.Close()
	if got := readKeys(t, c.Keys(), 2); got != "1 CANCEL" {
		t.Fatalf("got %q, want 1 CANCEL (pending ESC flushed at EOF)", got)
	}
	select {
	case _, ok := <-c.Keys():
		if ok {
			t.Fatal("extra key after EOF")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("keys channel not closed at EOF")
	}
}

func TestStdioOverPipes(t *testing.T) {
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inW.Close()
	defer outR.Close()
	c, err := OpenStdio(inR, outW, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("OpenStdio on pipes: %v", err)
	}
	defer c.Close()

	if _, err := inW.Write([]byte("12\r\n\x7fx")); err != nil {
		t.Fatal(err)
	}
	if got := readKeys(t, c.Keys(), 5); got != "1 2 ENTER CLEAR CANCEL" {
		t.Fatalf("keys %q", got)
	}
	if err := c.Show(hal.Screen{Lines: []string{"AMOUNT", "0.12"}}); err != nil {
		t.Fatal(err)
	}
	want := "\x1b[2J\x1b[HAMOUNT\r\n0.12"
	buf := make([]byte, 100)
	n, err := io.ReadAtLeast(outR, buf, len(want))
	if err != nil || string(buf[:n]) != want {
		t.Fatalf("stdout got %q (%v), want %q", buf[:n], err, want)
	}
	inW.Close()
	select {
	case _, ok := <-c.Keys():
		if ok {
			t.Fatal("key after EOF")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("keys channel not closed at stdin EOF")
	}
}

func TestStdioRawModeOnTTY(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	before, err := unix.IoctlGetTermios(int(tty.Fd()), ioctlGetTermios)
	if err != nil {
		t.Fatal(err)
	}
	if before.Lflag&unix.ICANON == 0 || before.Iflag&unix.ICRNL == 0 {
		t.Fatalf("pty does not start in cooked mode: lflag %#x iflag %#x", before.Lflag, before.Iflag)
	}
	c, err := OpenStdio(tty, tty, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := unix.IoctlGetTermios(int(tty.Fd()), ioctlGetTermios)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Lflag&(unix.ICANON|unix.ECHO) != 0 || raw.Iflag&unix.ICRNL != 0 || raw.Lflag&unix.ISIG == 0 {
		t.Fatalf("not raw (ISIG kept): lflag %#x iflag %#x", raw.Lflag, raw.Iflag)
	}
	// In raw mode a CR arrives as CR, unbuffered, one key at a time.
	ptmx.Write([]byte("7\r"))
	if got := readKeys(t, c.Keys(), 2); got != "7 ENTER" {
		t.Fatalf("keys %q", got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := unix.IoctlGetTermios(int(tty.Fd()), ioctlGetTermios)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Fatalf("termios not restored: %+v, want %+v", after, before)
	}
}

func BenchmarkDecoder(b *testing.B) {
	in := []byte("0123456789\r\n\x1b[A\x7fx")
	keys := make([]hal.Key, 0, 64)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		var d Decoder
		keys = keys[:0]
		for _, c := range in {
			keys = d.Feed(keys, c)
		}
	}
}

func BenchmarkRender(b *testing.B) {
	s := hal.Screen{Lines: []string{"MAIN MENU", "1 SALE", "2 TRANSACTION MGMT", "3 SETTLEMENT", "4 SIGN IN", "5 TECHNICIAN"}}
	b.ReportAllocs()
	for b.Loop() {
		if err := Render(io.Discard, s); err != nil {
			b.Fatal(err)
		}
	}
}
