package ota

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/godbus/dbus/v5"
)

// RAUC's D-Bus names (rauc's src/de.pengutronix.rauc.Installer.xml).
const (
	RAUCService   = "de.pengutronix.rauc"
	RAUCPath      = dbus.ObjectPath("/")
	RAUCInterface = "de.pengutronix.rauc.Installer"
)

// RAUC is a client of RAUC's Installer on a D-Bus bus.
type RAUC struct {
	conn *dbus.Conn
	obj  dbus.BusObject
}

// DialRAUC connects to the bus at address ("" is the system bus, or
// DBUS_SYSTEM_BUS_ADDRESS).
func DialRAUC(address string) (*RAUC, error) {
	auth := dbus.WithAuth(dbus.AuthExternal(strconv.Itoa(os.Getuid())))
	var conn *dbus.Conn
	var err error
	if address == "" {
		conn, err = dbus.ConnectSystemBus(auth)
	} else {
		conn, err = dbus.Connect(address, auth)
	}
	if err != nil {
		return nil, fmt.Errorf("rauc: connect to the bus: %w", err)
	}
	return &RAUC{conn: conn, obj: conn.Object(RAUCService, RAUCPath)}, nil
}

// Close closes the bus connection.
func (r *RAUC) Close() error { return r.conn.Close() }

// Install asks RAUC to install the bundle at path into the inactive slot
// and waits for its Completed signal: 0 is success, anything else fails
// with RAUC's LastError.
func (r *RAUC) Install(ctx context.Context, path string) error {
	match := []dbus.MatchOption{dbus.WithMatchObjectPath(RAUCPath), dbus.WithMatchInterface(RAUCInterface),
		dbus.WithMatchMember("Completed")}
	if err := r.conn.AddMatchSignalContext(ctx, match...); err != nil {
		return fmt.Errorf("rauc: watch Completed: %w", err)
	}
	defer r.conn.RemoveMatchSignal(match...)
	sigs := make(chan *dbus.Signal, 8)
	r.conn.Signal(sigs)
	defer r.conn.RemoveSignal(sigs)
	call := r.obj.CallWithContext(ctx, RAUCInterface+".InstallBundle", 0, path, map[string]dbus.Variant{})
	if call.Err != nil {
		return fmt.Errorf("rauc: InstallBundle: %w", call.Err)
	}
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("rauc: waiting for the install: %w", ctx.Err())
		case s, ok := <-sigs:
			if !ok {
				return errors.New("rauc: the bus connection closed during the install")
			}
			if s.Name != RAUCInterface+".Completed" || len(s.Body) != 1 {
				continue
			}
			code, _ := s.Body[0].(int32)
			if code == 0 {
				return nil
			}
			msg := r.lastError(ctx)
			return fmt.Errorf("rauc: install completed with %d: %s", code, msg)
		}
	}
}

func (r *RAUC) lastError(ctx context.Context) string {
	var v dbus.Variant
	err := r.obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, RAUCInterface, "LastError").Store(&v)
	if err != nil {
		return "LastError unreadable: " + err.Error()
	}
	s, _ := v.Value().(string)
	return s
}

// Mark marks the booted slot "good" or "bad".
func (r *RAUC) Mark(ctx context.Context, state string) error {
	var slot, msg string
	if err := r.obj.CallWithContext(ctx, RAUCInterface+".Mark", 0, state, "booted").Store(&slot, &msg); err != nil {
		return fmt.Errorf("rauc: mark booted %s: %w", state, err)
	}
	return nil
}
