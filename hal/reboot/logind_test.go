package reboot

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"
	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/internal/dbustest"
)

func privateBus(t *testing.T) string { t.Helper(); return dbustest.PrivateBus(t) }

// mockLogind owns org.freedesktop.login1 on the bus and exports the one
// Manager method the agent calls.
type mockLogind struct {
	mu     sync.Mutex
	calls  []bool      // the interactive flag of each Reboot call
	refuse *dbus.Error // answered instead of success when set
}

func (m *mockLogind) Reboot(interactive bool) *dbus.Error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, interactive)
	return m.refuse
}

func startMockLogind(t *testing.T, addr string) *mockLogind {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("mock logind: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	m := &mockLogind{}
	if err := conn.Export(m, login1Path, "org.freedesktop.login1.Manager"); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(login1Dest, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("mock logind: request name: %v %v", reply, err)
	}
	return m
}

func (m *mockLogind) Calls() []bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]bool(nil), m.calls...)
}

func TestLogindReboot(t *testing.T) {
	addr := privateBus(t)
	m := startMockLogind(t, addr)

	if err := (Logind{Address: addr}).Reboot(); err != nil {
		t.Fatalf("reboot: %v", err)
	}
	if c := m.Calls(); len(c) != 1 || c[0] {
		t.Fatalf("logind got %v, want one Reboot(interactive=false)", c)
	}

	// The mode as the config names it reaches logind on the system bus,
	// which DBUS_SYSTEM_BUS_ADDRESS points at.
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	r, err := New(hal.RebootSystemd)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Reboot(); err != nil {
		t.Fatalf("reboot = %q: %v", hal.RebootSystemd, err)
	}
	if c := m.Calls(); len(c) != 2 {
		t.Fatalf("logind got %d calls, want 2", len(c))
	}

	// A refusal (no CAP_SYS_BOOT, no polkit rule, an inhibitor) comes back
	// as an error: the daemon logs it and stays up.
	m.mu.Lock()
	m.refuse = dbus.NewError("org.freedesktop.DBus.Error.AccessDenied", []any{"Interactive authentication required."})
	m.mu.Unlock()
	if err := (Logind{Address: addr}).Reboot(); err == nil || !strings.Contains(err.Error(), "Interactive authentication required") {
		t.Fatalf("refused reboot: %v", err)
	}
}

// No logind on the bus, or no bus at all: an error, never a hang.
func TestLogindAbsent(t *testing.T) {
	addr := privateBus(t)
	if err := (Logind{Address: addr}).Reboot(); err == nil || !strings.Contains(err.Error(), login1Dest) {
		t.Fatalf("no logind: %v", err)
	}
	if err := (Logind{Address: "unix:path=" + filepath.Join(t.TempDir(), "none")}).Reboot(); err == nil {
		t.Fatal("no bus: no error")
	}
}
