package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// restartSignal asks the agent to restart into a new binary at its next
// idle moment. The package's postinst sends it after an upgrade
// (systemctl kill --kill-whom=main --signal=SIGHUP posagentd.service; the
// SysV script's reload does the same), so an upgrade never cuts a sale at
// the acquirer, an owed reversal, a settlement or a cashier's open flow:
// the core says when it is idle (terminal.Machine.Idle), the agent then
// stops cleanly (exit 0) and its supervisor (Restart=always, or the init
// script's respawn loop) starts the new binary.
const restartSignal = syscall.SIGHUP

// idleRestart is the restart request the loop carries until the core is
// idle.
type idleRestart struct {
	sigs    chan os.Signal // nil: not listening (in-process tests)
	pending bool
}

// listen starts catching restartSignal (its default action would kill the
// agent on the spot).
func (r *idleRestart) listen() {
	r.sigs = make(chan os.Signal, 1)
	signal.Notify(r.sigs, restartSignal)
}

func (r *idleRestart) close() {
	if r.sigs != nil {
		signal.Stop(r.sigs)
	}
}

// requests is the loop's select case; nil (never ready) when not listening.
func (r *idleRestart) requests() <-chan os.Signal { return r.sigs }

// requestRestart records a restart request; the loop carries it out at the
// next idle moment.
func (d *daemon) requestRestart() {
	if d.restart.pending {
		return
	}
	d.restart.pending = true
	d.log.Info("restart requested: waiting until idle", slog.Bool("idle", d.m.Idle()))
}

// restartDue reports whether the loop should stop now for a requested
// restart: only when the core is idle.
func (d *daemon) restartDue() bool {
	if !d.restart.pending || !d.m.Idle() {
		return false
	}
	d.log.Info("idle: stopping for the requested restart")
	return true
}
