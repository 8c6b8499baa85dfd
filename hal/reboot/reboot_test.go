package reboot

import (
	"errors"
	"testing"

	"github.com/posagent/posagent/hal"
)

func TestNew(t *testing.T) {
	r, err := New(hal.RebootExit)
	if err != nil || !errors.Is(r.Reboot(), hal.ErrRebootExit) {
		t.Fatalf("exit mode: %v, %v", r, err)
	}
	if r, err := New(hal.RebootSyscall); err != nil || r != (Syscall{}) {
		t.Fatalf("syscall mode: %v, %v", r, err)
	}
	if r, err := New(hal.RebootSystemd); err != nil || r != (Logind{}) {
		t.Fatalf("systemd mode: %v, %v", r, err)
	}
	c := hal.DefaultConfig()
	c.Reboot = hal.RebootSystemd
	if err := c.Validate(); err != nil {
		t.Fatalf("reboot = %q refused by the config: %v", hal.RebootSystemd, err)
	}
	if _, err := New("halt"); err == nil {
		t.Fatal("unknown mode accepted")
	}
}
