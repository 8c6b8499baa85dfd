// Package otatest holds the test doubles of an over-the-air update: a
// private dbus-daemon and a mock of RAUC's Installer on it (the HAL edge:
// a real RAUC writes slots and talks to a bootloader).
package otatest

import (
	"os"
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/posagent/posagent/internal/dbustest"
	"github.com/posagent/posagent/internal/ota"
)

// PrivateBus starts a dbus-daemon of its own and returns its address; it
// stops with the test.
func PrivateBus(t testing.TB) string { t.Helper(); return dbustest.PrivateBus(t) }

// RAUC is a mock of RAUC's Installer: InstallBundle copies the bundle's
// bytes (what a real install would write to the inactive slot) and emits
// Completed; Mark records the marks.
type RAUC struct {
	conn *dbus.Conn

	mu        sync.Mutex
	fail      string   // LastError of the next install, "" = success
	installed [][]byte // the bundles installed, in order
	sources   []string
	marks     []string // "good booted", "bad booted"
	lastError string
}

// StartRAUC owns de.pengutronix.rauc on the bus at addr.
func StartRAUC(t testing.TB, addr string) *RAUC {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("mock rauc: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &RAUC{conn: conn}
	if err := conn.Export(installer{r}, ota.RAUCPath, ota.RAUCInterface); err != nil {
		t.Fatal(err)
	}
	if err := conn.Export(props{r}, ota.RAUCPath, "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(ota.RAUCService, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("mock rauc: request name: %v %v", reply, err)
	}
	return r
}

// FailNext makes the next install complete with an error whose LastError
// is msg.
func (r *RAUC) FailNext(msg string) {
	r.mu.Lock()
	r.fail = msg
	r.mu.Unlock()
}

// Installed returns the bytes of every bundle installed successfully.
func (r *RAUC) Installed() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.installed...)
}

// Sources returns the path of every InstallBundle call.
func (r *RAUC) Sources() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.sources...)
}

// Marks returns every Mark call as "STATE SLOT".
func (r *RAUC) Marks() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.marks...)
}

type installer struct{ r *RAUC }

// InstallBundle starts an install, as RAUC does: the call returns at
// once, Completed follows.
func (i installer) InstallBundle(source string, _ map[string]dbus.Variant) *dbus.Error {
	r := i.r
	r.mu.Lock()
	r.sources = append(r.sources, source)
	fail := r.fail
	r.fail = ""
	r.mu.Unlock()
	b, err := os.ReadFile(source)
	code := int32(0)
	switch {
	case fail != "":
		code = 1
	case err != nil:
		code, fail = 1, "Failed to open bundle: "+err.Error()
	}
	r.mu.Lock()
	r.lastError = fail
	if code == 0 {
		r.installed = append(r.installed, b)
	}
	r.mu.Unlock()
	go r.conn.Emit(ota.RAUCPath, ota.RAUCInterface+".Completed", code)
	return nil
}

// Install is the older method without args.
func (i installer) Install(source string) *dbus.Error {
	return i.InstallBundle(source, nil)
}

func (i installer) Mark(state, slot string) (string, string, *dbus.Error) {
	r := i.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.marks = append(r.marks, state+" "+slot)
	return "rootfs.1", "marked slot rootfs.1 as " + state, nil
}

type props struct{ r *RAUC }

func (p props) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	if iface == ota.RAUCInterface && name == "LastError" {
		return dbus.MakeVariant(p.r.lastError), nil
	}
	return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{name})
}
