package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/storage/termstore"
	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/i18n"
)

// daemon is the imperative shell around the terminal core: it owns the
// stores and the ports, runs the one event loop that feeds the machine,
// and executes the machine's effects in order.
type daemon struct {
	cfg   Config
	log   *slog.Logger
	store *termstore.Store       // the core's state: identity and merchant stores
	ident *storage.IdentityStore // the remote channel's inbox, outbox and seen ids (store.Ident())
	se    hal.SecureElement
	dev   *hal.Devices
	m     *terminal.Machine
	acq   *acquirerWorker     // the one goroutine that talks to the acquirer
	upd   *updater            // the downloads and RAUC calls of an update (update.go)
	async chan terminal.Event // results of work done off the loop
	id    storage.Identity
	rl    *remoteLink
	// next holds events that effects produced synchronously (Wiped), fed
	// to the machine right after the current step.
	next []terminal.Event
	// lastStatus is the status the core last asked to publish.
	lastStatus terminal.Status
	// deciding is the inbox command being handled (decidingID its id),
	// until its first ack is written: that ack's transaction takes it out
	// of the inbox.
	deciding   *storage.InboxItem
	decidingID string
	sd         *sdNotifier // systemd READY/STATUS/STOPPING and watchdog (systemd.go); nil = none
	restart    idleRestart // a restart that waits for an idle moment (idle_restart.go)
	clock      wallClock
	disk       diskMeter
	diskKiB    int64              // the last free space read; -1 unknown
	failStops  *storage.FailStops // the core's count of fail-stops in a row; nil when it could not be made
	// clockWait: commands that wait for a trusted clock, acked
	// in_progress/clock-unsynced once.
	clockWait map[string]bool
	// waiting: the inbox commands (by sequence) that wait for a trusted
	// clock, skipped until it is.
	waiting map[uint64]bool
	// expiry: expires_at of the commands handed to the core, for the
	// record of their final ack.
	expiry map[string]time.Time

	exit int  // exit status once stop is set
	stop bool // the loop ends after the current step
}

// runDaemon runs posagentd until a signal or a reboot request. Logs go to
// stderr only: with console = "stdio", stdout carries screens and nothing
// else.
func runDaemon(cfg Config, stderr io.Writer) int {
	log := newLogger(stderr, cfg.LogLevel)
	fail := func(err error) int {
		fmt.Fprintf(stderr, "posagentd: %v\n", err)
		return exitError
	}
	d, err := openDaemon(cfg, log, system{})
	if err != nil {
		return fail(err)
	}
	defer func() {
		d.close()
		if d.exit == exitReboot {
			d.compactIdentity() // reboot = "exit": after the stores are closed
		}
	}()

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	d.restart.listen()
	defer d.restart.close()
	d.sd = startSystemd(log)
	defer d.sd.Stop() // STOPPING=1 before the stores close

	log.Info("posagentd started", slog.String("version", version), slog.String("running", cfg.runningVersion()),
		slog.String("serial", d.serial()), slog.String("state", d.m.Lifecycle().String()))
	return d.loop(sigs)
}

// openDaemon opens the daemon's dependencies (those sys leaves nil, from
// the config) and builds the machine from the stores.
func openDaemon(cfg Config, log *slog.Logger, sys system) (_ *daemon, err error) {
	d := &daemon{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	err = sys.open(cfg, log)
	d.se, d.store, d.dev, d.clock, d.disk = sys.SE, sys.Store, sys.Devices, sys.Clock, sys.Disk
	if d.store != nil {
		d.ident = d.store.Ident()
	}
	if err != nil {
		return nil, err
	}
	if d.id, err = d.ident.Identity(); err != nil {
		return nil, err
	}
	st, err := d.store.Load()
	if err != nil {
		return nil, err
	}
	st.WorkingKeys = d.se.HasKey(hal.MAK)
	st.FailStops = d.openFailStops()
	if st.TimeFloor.Before(buildTime) {
		st.TimeFloor = buildTime
	}
	lang, err := i18n.ParseLang(cfg.UI.Lang)
	if err != nil {
		return nil, fmt.Errorf("config: ui.lang: %w", err)
	}
	st.Version = cfg.runningVersion()
	d.m = terminal.New(st, checkPassword, terminal.WithLang(lang), terminal.WithUpdateSignIn(cfg.Update.SignInTimeout.Duration))
	if d.rl, err = newRemoteLink(cfg, log, d.id, d.ident); err != nil {
		return nil, err
	}
	d.diskKiB, d.clockWait = -1, map[string]bool{}
	d.waiting, d.expiry = map[uint64]bool{}, map[string]time.Time{}
	d.async = make(chan terminal.Event, 16)
	d.acq = startAcquirer(d.se, cfg.Acquirer.Timeout.Duration, log, d.async)
	if d.upd, err = newUpdater(cfg, log, d.async); err != nil {
		return nil, err
	}
	return d, nil
}

// openFailStops opens the core's count of fail-stops in a row and reads
// it. Without it every boot is a first attempt: the reboot loop the count
// stops is possible again, nothing else changes.
func (d *daemon) openFailStops() int {
	c, err := storage.OpenFailStops(d.cfg.DataDir)
	if err != nil {
		d.log.Warn("no fail-stop count", slog.String("err", err.Error()))
		return 0
	}
	d.failStops = c
	n, err := c.Load()
	if err != nil {
		d.log.Warn("fail-stop count", slog.String("err", err.Error()))
	}
	return n
}

// checkPassword adapts the store's KDF check to the core's checker; a
// malformed hash is a wrong password, never a crash.
func checkPassword(hash, pwd string) bool {
	ok, err := storage.CheckPassword(hash, pwd)
	return err == nil && ok
}

func (d *daemon) serial() string {
	id, err := d.ident.Identity()
	if err != nil {
		return ""
	}
	return id.Serial
}

func (d *daemon) close() {
	if d.acq != nil {
		d.acq.stop() // before the stores and the secure element go
		d.acq = nil
	}
	if d.upd != nil {
		d.upd.close()
		d.upd = nil
	}
	if d.rl != nil {
		var offline []byte
		if d.ident != nil {
			offline = d.statusPayload(d.lastStatus, false)
		}
		d.rl.close(offline)
		d.rl = nil
	}
	if d.dev != nil {
		if err := d.dev.Close(); err != nil {
			d.log.Warn("close devices", slog.String("err", err.Error()))
		}
	}
	if d.failStops != nil {
		_ = d.failStops.Close()
		d.failStops = nil
	}
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			d.log.Error("close stores", slog.String("err", err.Error()))
		}
		d.store, d.ident = nil, nil
	}
}

// loop is the one event loop that owns the machine.
func (d *daemon) loop(sigs <-chan os.Signal) int {
	keys := d.dev.Keypad.Keys()
	swipes := d.dev.CardReader.Swipes()
	tamper := d.dev.Tamper.Tampered()
	// Devices that report their problems as they come and go (the
	// screens say so: terminal/devices.go).
	var paper <-chan hal.PrinterStatus
	if pm, ok := d.dev.Printer.(hal.PrinterMonitor); ok {
		paper = pm.PrinterStatus()
	}
	var keypad <-chan bool
	if km, ok := d.dev.Keypad.(hal.KeypadMonitor); ok {
		keypad = km.KeypadPresent()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()

	d.rl.start()
	d.watchDisk() // the boot decision needs the free space (the storage hold)
	d.step(terminal.Boot{})
	if d.dev.DisplayFault != nil {
		// The adapter logged why; the console the screens fell back to
		// says so.
		d.step(terminal.DisplayStatus{Fault: true})
	}
	d.watch()
	for !d.stop {
		if d.restartDue() {
			return exitOK
		}
		d.sd.Running(d.m.Lifecycle()) // READY=1 after Boot's first screen; STATUS= on a change
		select {
		case sig := <-sigs:
			d.log.Info("stopping", slog.String("signal", sig.String()))
			return exitOK
		case k, ok := <-keys:
			if !ok {
				// The console's input ended (stdin closed): keep serving the
				// card reader, the acquirer and HQ without a keypad.
				d.log.Info("keypad input closed")
				keys = nil
				continue
			}
			d.step(terminal.KeyPressed{Key: k})
		case c, ok := <-swipes:
			if !ok {
				swipes = nil
				continue
			}
			d.step(terminal.CardSwiped{Card: c.Track2, Err: c.Err})
		case <-tamper:
			d.step(terminal.TamperDetected{})
		case st := <-paper:
			d.step(terminal.PrinterStatus{PaperOut: st == hal.PrinterPaperOut, Offline: st == hal.PrinterOffline,
				Unreadable: st == hal.PrinterUnreadable})
		case present := <-keypad:
			d.step(terminal.KeypadStatus{Missing: !present})
		case <-tick.C:
			d.watch()
			d.step(terminal.Tick{})
		case ev := <-d.async:
			d.step(ev)
		case <-d.rl.wake:
			d.processInbox()
		case <-d.restart.requests():
			d.requestRestart()
		case ack := <-d.sd.Probes():
			close(ack) // the watchdog's proof that this loop turns (systemd.go)
		}
	}
	return d.exit
}

// watch feeds what the daemon observes outside the ports: the free space
// of the data directory and the kernel's clock synchronisation.
func (d *daemon) watch() {
	d.watchDisk()
	if !d.m.ClockTrusted() && d.clock.Synced() {
		d.step(terminal.ClockSynced{})
	}
}

// watchDisk reads the free space of the data directory and tells the core
// when the figure crosses its threshold, or moves by a fair amount (the
// status reports it).
func (d *daemon) watchDisk() {
	kib, err := d.disk.FreeKiB()
	if err != nil {
		return
	}
	was := d.diskKiB
	d.diskKiB = kib
	if was < 0 || (was < terminal.MinFreeKiB) != (kib < terminal.MinFreeKiB) || abs(kib-was) >= 1024 {
		d.step(terminal.DiskFree{KiB: kib})
		if was >= 0 { // before Boot there is no status yet: Boot publishes it
			d.rl.setStatus(d.statusPayload(d.lastStatus, true))
		}
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// step feeds one event and executes the effects in order. A write that
// fails stops the list there (nothing that depends on it happens) and is
// fed back to the machine, which fails stop (a screen, a log line, a
// reboot). step reports false when a write failed.
func (d *daemon) step(ev terminal.Event) bool {
	ok := true
	trusted, holding := d.m.ClockTrusted(), d.m.Holding()
	defer func() {
		if (!trusted && d.m.ClockTrusted()) || (holding && !d.m.Holding()) {
			d.rl.wakeLoop() // commands waiting for a trusted clock, or for the storage hold, go on now
		}
	}()
	effs := d.m.Step(d.clock.Now(), ev)
	for len(effs) > 0 {
		var failed error
		for _, e := range effs {
			if err := d.do(e); err != nil {
				failed = err
				break
			}
			if d.stop {
				return ok
			}
		}
		effs = nil
		if failed != nil {
			ok = false
			d.log.Error("write failed", slog.String("err", failed.Error()))
			effs = d.m.Step(d.clock.Now(), terminal.PersistFailed{Err: failed})
		} else if len(d.next) > 0 {
			ev := d.next[0]
			d.next = d.next[1:]
			effs = d.m.Step(d.clock.Now(), ev)
		}
	}
	return ok
}

// do executes one effect. Only a failed Persist returns an error: a
// display or printer fault is logged and the flow goes on (the money is
// already safe on disk by then).
func (d *daemon) do(e terminal.Effect) error {
	ctx := context.Background()
	switch e := e.(type) {
	case terminal.Show:
		if err := d.dev.Display.Show(e.Screen); err != nil {
			d.log.Warn("display", slog.String("err", err.Error()))
		}
	case terminal.Print:
		// The transaction is on disk by now: a receipt that cannot print
		// changes nothing about it (REPRINT LAST prints it again).
		switch err := d.dev.Printer.Print(e.Receipt); {
		case err == nil:
		case errors.Is(err, hal.ErrPaperOut):
			// Kept by the printer, printed when paper is back; the
			// screen says PAPER OUT until then.
			d.log.Info("receipt waits for paper", slog.String("err", err.Error()))
			d.next = append(d.next, terminal.PrinterStatus{PaperOut: true})
		default:
			d.log.Warn("printer", slog.String("err", err.Error()))
		}
	case terminal.SetLED:
		if err := d.dev.LED.SetLED(e.State); err != nil {
			d.log.Debug("led", slog.String("err", err.Error()))
		}
	case terminal.Beep:
		if err := d.dev.Buzzer.Beep(e.For); err != nil {
			d.log.Debug("buzzer", slog.String("err", err.Error()))
		}
	case terminal.Log:
		d.log.LogAttrs(ctx, e.Level, e.Msg, e.Attrs...)
	case terminal.PublishStatus:
		d.lastStatus = e.Status
		d.rl.setStatus(d.statusPayload(e.Status, true))
	case terminal.SendAck:
		return d.sendAck(e)
	case terminal.PublishEvent:
		return d.publishEvent(e)
	case terminal.Wipe:
		d.next = append(d.next, terminal.Wiped{Err: d.wipe()})
	case terminal.Provision:
		d.next = append(d.next, d.provision(e))
	case terminal.ChangeSupervisorPwd:
		d.next = append(d.next, d.changeSupervisorPwd(e.New))
	case terminal.ZeroiseKeys:
		if err := d.se.ZeroiseKeys(); err != nil {
			d.log.Error("zeroise keys", slog.String("err", err.Error()))
		}
	case terminal.Persist:
		return d.persist(e.Ops)
	case terminal.PutFailStops:
		if d.failStops != nil {
			if err := d.failStops.Store(e.N); err != nil {
				d.log.Error("fail-stop count", slog.String("err", err.Error()))
			}
		}
	case terminal.Reboot:
		d.reboot()
	case terminal.SetClock:
		if err := d.clock.Set(e.At); err != nil {
			d.log.Error("set clock", slog.String("err", err.Error()))
		} else {
			d.log.Info("clock set from the sign-in answer", slog.Time("at", e.At))
		}
	case terminal.DownloadUpdate:
		d.upd.download(e)
	case terminal.InstallUpdate:
		d.upd.install(e)
	case terminal.MarkSlot:
		d.next = append(d.next, d.upd.mark(e.Good))
	case terminal.Exchange:
		// Off the loop: an exchange can take the whole acquirer timeout.
		if !d.acq.submit(e.Req) {
			d.next = append(d.next, terminal.AcquirerReply{ID: e.Req.ID, Err: errAcquirerBusy})
		}
	default:
		d.log.Error("unknown effect", slog.String("type", fmt.Sprintf("%T", e)))
	}
	return nil
}

// persist makes ops durable through the store adapter.
func (d *daemon) persist(ops []terminal.Op) error {
	if err := d.store.Apply(ops); err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	return nil
}

// changeSupervisorPwd hashes and stores a new supervisor password; the
// lock is reset with it (a right password resets it anyway).
func (d *daemon) changeSupervisorPwd(pwd string) terminal.SupervisorPwdStored {
	hash, err := storage.HashPassword(pwd)
	if err == nil {
		err = d.store.Apply([]terminal.Op{terminal.PutSupervisorPwd{Hash: hash}, terminal.PutPwdLock{}})
	}
	return terminal.SupervisorPwdStored{Hash: hash, Err: err}
}

// compactIdentity rewrites the closed identity store without its freed
// pages before a reboot, so nothing an unbind removed (a provision
// command's parameters in the inbox, delivered acks) stays readable in
// the file. A failure is logged: the store itself is intact either way.
func (d *daemon) compactIdentity() {
	idPath, _, _ := storage.Paths(d.cfg.DataDir)
	if err := storage.CompactIdentity(idPath); err != nil {
		d.log.Warn("compact identity store", slog.String("err", err.Error()))
	}
}

// reboot ends the loop with exit status 3 for reboot = "exit" (a supervisor
// restarts us), or asks the HAL for a real reboot after closing the stores.
func (d *daemon) reboot() {
	d.stop = true
	d.exit = exitReboot
	if d.cfg.HAL.Reboot == hal.RebootExit {
		d.log.Info("reboot requested: exiting with status 3")
		return
	}
	d.log.Info("rebooting")
	r := d.dev.Rebooter
	d.close() // stores closed and synced before the power goes
	d.dev = nil
	d.compactIdentity()
	if err := r.Reboot(); err != nil {
		d.log.Error("reboot", slog.String("err", err.Error()))
	}
}
