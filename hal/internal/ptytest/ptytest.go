// Package ptytest gives tests a real pseudo-terminal to stand in for a
// serial device: the adapter under test opens the slave by its path, as it
// would open /dev/ttyS2, and the test plays the device on the master.
package ptytest

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
)

// Pty is one pty pair. Master is the device side.
type Pty struct {
	Master *os.File
	Path   string // the slave path (/dev/pts/N) for the adapter to open
	slave  *os.File
	data   chan []byte
}

// New opens a pty pair closed at the end of the test. The test keeps the
// slave open too, so the master never reads EIO while the adapter reopens
// it.
func New(t testing.TB) *Pty {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	p := &Pty{Master: m, Path: s.Name(), slave: s, data: make(chan []byte, 64)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			if n > 0 {
				p.data <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				close(p.data)
				return
			}
		}
	}()
	t.Cleanup(func() {
		m.Close()
		s.Close()
	})
	return p
}

// Write writes b on the device side (as the device sending bytes).
func (p *Pty) Write(t testing.TB, b []byte) {
	t.Helper()
	if _, err := p.Master.Write(b); err != nil {
		t.Fatalf("write pty master: %v", err)
	}
}

// Expect reads from the master until it has read exactly len(want) bytes
// and checks they equal want.
func (p *Pty) Expect(t testing.TB, want []byte) {
	t.Helper()
	var got []byte
	deadline := time.After(5 * time.Second)
	for len(got) < len(want) {
		select {
		case b, ok := <-p.data:
			if !ok {
				t.Fatalf("pty master closed after %q, want %q", got, want)
			}
			got = append(got, b...)
		case <-deadline:
			t.Fatalf("pty master got %q, want %q", got, want)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("pty master got %q\nwant %q", got, want)
	}
}
