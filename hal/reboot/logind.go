package reboot

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/posagent/posagent/hal"
)

// The logind D-Bus API (org.freedesktop.login1(5)).
const (
	login1Dest   = "org.freedesktop.login1"
	login1Path   = dbus.ObjectPath("/org/freedesktop/login1")
	login1Reboot = "org.freedesktop.login1.Manager.Reboot"
)

// logindTimeout bounds the D-Bus call: logind answers once the reboot job
// is queued, long before the machine goes down.
const logindTimeout = 25 * time.Second

// Logind reboots through systemd-logind on the system bus:
// org.freedesktop.login1.Manager.Reboot(interactive=false). Unlike
// reboot(2) this is an orderly shutdown: systemd stops every service,
// syncs and unmounts, and honours inhibitor locks (an update being
// written, for one). logind lets a caller holding CAP_SYS_BOOT reboot
// without polkit, which is what the unit gives the posagent user.
//
// The call is made with godbus directly rather than go-systemd's login1
// package: login1.Conn.Reboot (v22.5.0) drops the reply, and a refused
// reboot (access denied, an inhibitor) must come back as an error so the
// daemon logs it and stays up.
type Logind struct {
	// Address is the D-Bus address of the bus logind is on; empty means
	// the system bus (DBUS_SYSTEM_BUS_ADDRESS, else the default socket).
	Address string
}

var _ hal.Rebooter = Logind{}

// Reboot asks logind to reboot. On success the reboot job is queued and
// systemd stops the agent with SIGTERM soon after.
func (l Logind) Reboot() error {
	// EXTERNAL auth with the numeric uid: no user-name lookup (which would
	// need a passwd entry or libc's NSS).
	auth := dbus.WithAuth(dbus.AuthExternal(strconv.Itoa(os.Getuid())))
	var conn *dbus.Conn
	var err error
	if l.Address == "" {
		conn, err = dbus.ConnectSystemBus(auth)
	} else {
		conn, err = dbus.Connect(l.Address, auth)
	}
	if err != nil {
		return fmt.Errorf("logind reboot: connect to the system bus: %w", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), logindTimeout)
	defer cancel()
	if err := conn.Object(login1Dest, login1Path).CallWithContext(ctx, login1Reboot, 0, false).Err; err != nil {
		return fmt.Errorf("logind reboot: %w", err)
	}
	return nil
}
