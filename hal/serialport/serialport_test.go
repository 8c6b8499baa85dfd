package serialport

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/posagent/posagent/hal/internal/ptytest"
)

func TestIsTerminal(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want bool
	}{
		{ptytest.New(t).Path, true},
		{file, false},
		{fifo, false},
		{"/dev/null", false},
		{filepath.Join(dir, "missing"), false},
	}
	for _, tt := range tests {
		if got := IsTerminal(tt.path); got != tt.want {
			t.Errorf("IsTerminal(%s) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestLazy(t *testing.T) {
	p := ptytest.New(t)
	l := NewLazy(p.Path, 9600)
	defer l.Close()
	if _, err := l.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := l.Drain(); err != nil {
		t.Fatal(err)
	}
	p.Expect(t, []byte("abc"))

	missing := NewLazy(filepath.Join(t.TempDir(), "ttyUSB9"), 9600)
	if _, err := missing.Write([]byte("x")); err == nil {
		t.Fatal("write to a missing port succeeded")
	}
	if err := missing.Close(); err != nil {
		t.Fatal(err)
	}
}
