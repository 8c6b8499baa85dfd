package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/linuxhw"
	"github.com/posagent/posagent/hal/sesim"
	"github.com/posagent/posagent/hal/simhw"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/terminal"
)

// daemon is the imperative shell around the terminal core: it owns the
// stores and the ports, runs the one event loop that feeds the machine,
// and executes the machine's effects in order.
type daemon struct {
	cfg   Config
	log   *slog.Logger
	ident *storage.IdentityStore
	merch *storage.MerchantStore
	se    hal.SecureElement
	dev   *hal.Devices
	m     *terminal.Machine
	acq   *acquirerLink
	async chan terminal.Event // results of work done off the loop
	id    storage.Identity
	rl    *remoteLink
	// next holds events that effects produced synchronously (Wiped), fed
	// to the machine right after the current step.
	next []terminal.Event
	// lastStatus is the status the core last asked to publish.
	lastStatus terminal.Status
	sd         *sdNotifier // systemd READY/STATUS/STOPPING and watchdog (systemd.go); nil = none
	restart    idleRestart // a restart that waits for an idle moment (idle_restart.go)

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
	d, err := openDaemon(cfg, log, nil)
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

	log.Info("posagentd started", slog.String("version", version),
		slog.String("serial", d.serial()), slog.String("state", d.m.Lifecycle().String()))
	return d.loop(sigs)
}

// openDaemon opens the stores and the ports. dev, when not nil, replaces
// the adapter named by the config (in-process tests and benchmarks pass
// haltest fakes).
func openDaemon(cfg Config, log *slog.Logger, dev *hal.Devices) (_ *daemon, err error) {
	d := &daemon{cfg: cfg, log: log, dev: dev}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	idPath, merchPath, sePath := storage.Paths(cfg.DataDir)
	if d.ident, err = storage.OpenIdentity(idPath); err != nil {
		return nil, err
	}
	if d.se, err = sesim.Open(sePath); err != nil {
		return nil, fmt.Errorf("secure element %s: %w", sePath, err)
	}
	// A wipe in progress is only finished, never read: a power cut inside
	// storage.Wipe leaves a zeroed file that bbolt refuses, and wipe()
	// erases the file by path when d.merch is nil.
	if wiping, err := d.wipeInProgress(); err != nil {
		return nil, err
	} else if !wiping {
		if d.merch, err = storage.OpenMerchant(merchPath, d.se); err != nil {
			return nil, err
		}
	}
	switch {
	case d.dev != nil:
	case cfg.HAL.Kind == hal.KindSim:
		d.dev, err = simhw.Open(cfg.HAL, cfg.DataDir)
	default:
		d.dev, err = linuxhw.Open(cfg.HAL)
	}
	if err != nil {
		return nil, fmt.Errorf("hal %s: %w", cfg.HAL.Kind, err)
	}
	if d.id, err = d.ident.Identity(); err != nil {
		return nil, err
	}
	st, err := d.loadState()
	if err != nil {
		return nil, err
	}
	d.m = terminal.New(st, checkPassword)
	if d.rl, err = newRemoteLink(cfg, log, d.id, d.ident); err != nil {
		return nil, err
	}
	d.acq = &acquirerLink{se: d.se, timeout: cfg.Acquirer.Timeout.Duration}
	d.async = make(chan terminal.Event, 16)
	return d, nil
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

// loadState works out the machine's starting state from the stores, in one
// place: tampered beats an unbind in progress, which beats active.
func (d *daemon) loadState() (terminal.State, error) {
	id, err := d.ident.Identity()
	if err != nil {
		return terminal.State{}, err
	}
	lock, err := d.ident.PwdLock()
	if err != nil {
		return terminal.State{}, err
	}
	st := terminal.State{
		DeviceX25519Pub:   base64.StdEncoding.EncodeToString(id.DeviceX25519Pub),
		Serial:            id.Serial,
		TechPwdHash:       id.TechPwdHash,
		SupervisorPwdHash: id.SupervisorPwdHash,
		PwdLock:           terminal.PwdLock{Fails: lock.Failures},
	}
	if lock.LockedUntil != 0 {
		st.PwdLock.LockedUntil = time.Unix(lock.LockedUntil, 0)
	}
	_, tampered, err := d.ident.Get(kvTampered)
	if err != nil {
		return st, err
	}
	rawIntent, unbinding, err := d.ident.Intent()
	if err != nil {
		return st, err
	}
	if unbinding {
		st.Intent = new(terminal.UnbindIntent)
		if err := json.Unmarshal(rawIntent, st.Intent); err != nil {
			return st, fmt.Errorf("unbind intent: %w", err)
		}
	}
	var active bool
	if st.Intent == nil || st.Intent.Stage != "wiping" {
		// A wipe in progress may have destroyed the data key already:
		// the merchant data is not read again, only erased.
		if active, err = d.loadMerchant(&st); err != nil {
			return st, err
		}
	}
	if active && st.Binding == nil && st.Intent == nil {
		// Parameters without a binding: an activation a power cut stopped
		// before the settlement card. The core erases it at boot.
		active, st.Incomplete = false, true
	}
	switch {
	case tampered:
		st.Lifecycle = terminal.Tampered
	case unbinding:
		st.Lifecycle = terminal.Unbinding
	case active:
		st.Lifecycle = terminal.Active
	default:
		st.Lifecycle = terminal.Unactivated
	}
	return st, nil
}

// loadMerchant reads the merchant data into st; active is false when the
// terminal has no merchant parameters.
func (d *daemon) loadMerchant(st *terminal.State) (active bool, err error) {
	err = d.merch.View(func(tx *storage.MerchantTx) error {
		p, ok, err := tx.Params()
		if err != nil || !ok {
			return err
		}
		active = true
		if err := json.Unmarshal(p, &st.Merchant); err != nil {
			return fmt.Errorf("merchant parameters: %w", err)
		}
		c, err := tx.Counters()
		if err != nil {
			return err
		}
		st.Counters = terminal.Counters{STAN: terminal.STAN(c.STAN), Batch: terminal.BatchNo(c.Batch)}
		if st.Counters.Batch == 0 {
			st.Counters.Batch = 1
		}
		batches, err := tx.Batches()
		if err != nil {
			return err
		}
		for _, b := range batches {
			entries, err := tx.Txns(b)
			if err != nil {
				return err
			}
			var list []terminal.Txn
			for _, e := range entries {
				var t terminal.Txn
				if err := json.Unmarshal(e.Rec, &t); err != nil {
					return fmt.Errorf("journal record %d/%d: %w", b, e.STAN, err)
				}
				list = append(list, t)
			}
			switch {
			case terminal.BatchNo(b) == st.Counters.Batch:
				st.Journal = list
			case terminal.BatchNo(b) > st.PrevBatch:
				st.Prev, st.PrevBatch = list, terminal.BatchNo(b)
			}
		}
		if raw, ok, err := tx.Settling(); err != nil {
			return err
		} else if ok {
			b, err := strconv.ParseUint(string(raw), 10, 32)
			if err != nil {
				return fmt.Errorf("settlement marker %q: %w", raw, err)
			}
			st.Settling = terminal.BatchNo(b)
		}
		if raw, ok, err := tx.Binding(); err != nil {
			return err
		} else if ok {
			st.Binding = new(terminal.Binding)
			if err := json.Unmarshal(raw, st.Binding); err != nil {
				return fmt.Errorf("settlement-card binding: %w", err)
			}
		}
		rv, ok, err := tx.Reversal()
		if err != nil {
			return err
		}
		if ok {
			st.Reversal = new(terminal.Reversal)
			if err := json.Unmarshal(rv, st.Reversal); err != nil {
				return fmt.Errorf("reversal slot: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("load merchant store: %w", err)
	}
	// Without a MAK the first financial message signs in first.
	st.NeedSignIn = active && !d.se.HasKey(hal.MAK)
	return active, nil
}

// kvTampered marks, in the identity store, that the tamper input fired; it
// survives the wipe and only technician activation clears it.
const kvTampered = "tampered"

func (d *daemon) close() {
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
	if d.merch != nil {
		if err := d.merch.Close(); err != nil {
			d.log.Error("close merchant store", slog.String("err", err.Error()))
		}
	}
	if d.ident != nil {
		if err := d.ident.Close(); err != nil {
			d.log.Error("close identity store", slog.String("err", err.Error()))
		}
	}
}

// loop is the one event loop that owns the machine.
func (d *daemon) loop(sigs <-chan os.Signal) int {
	keys := d.dev.Keypad.Keys()
	swipes := d.dev.CardReader.Swipes()
	tamper := d.dev.Tamper.Tampered()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()

	d.rl.start()
	d.step(terminal.Boot{})
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
		case <-tick.C:
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

// step feeds one event and executes the effects in order. A Persist that
// fails stops the list there (nothing that depends on it happens) and is
// fed back to the machine.
func (d *daemon) step(ev terminal.Event) {
	effs := d.m.Step(time.Now(), ev)
	for len(effs) > 0 {
		var failed error
		for _, e := range effs {
			if err := d.do(e); err != nil {
				failed = err
				break
			}
			if d.stop {
				return
			}
		}
		effs = nil
		if failed != nil {
			effs = d.m.Step(time.Now(), terminal.PersistFailed{Err: failed})
		} else if len(d.next) > 0 {
			ev := d.next[0]
			d.next = d.next[1:]
			effs = d.m.Step(time.Now(), ev)
		}
	}
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
		if err := d.dev.Printer.Print(e.Receipt); err != nil {
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
	case terminal.Reboot:
		d.reboot()
	case terminal.Exchange:
		// Off the loop: an exchange can take the whole acquirer timeout.
		// The core keeps one in flight, so acquirerLink's buffers are free.
		go func(q terminal.Request) { d.async <- d.acq.do(context.Background(), q) }(e.Req)
	default:
		d.log.Error("unknown effect", slog.String("type", fmt.Sprintf("%T", e)))
	}
	return nil
}

// persist writes ops: merchant ops in one fsynced transaction, identity
// ops each in their own.
func (d *daemon) persist(ops []terminal.Op) error {
	var merchantOps []terminal.Op
	for _, op := range ops {
		var err error
		switch op := op.(type) {
		case terminal.PutPwdLock:
			l := storage.PwdLock{Failures: op.Lock.Fails}
			if !op.Lock.LockedUntil.IsZero() {
				l.LockedUntil = op.Lock.LockedUntil.Unix()
			}
			err = d.ident.SetPwdLock(l)
		case terminal.PutSupervisorPwd:
			err = d.ident.SetSupervisorPwdHash(op.Hash)
		case terminal.PutIntent:
			var b []byte
			if b, err = json.Marshal(op.Intent); err == nil {
				err = d.ident.PutIntent(b)
			}
		case terminal.ClearIntentOp:
			err = d.ident.ClearIntent()
		case terminal.SetTampered:
			var v []byte
			if op.On {
				v = []byte("1")
			}
			err = d.ident.Put(kvTampered, v)
		default:
			merchantOps = append(merchantOps, op)
		}
		if err != nil {
			return fmt.Errorf("persist %T: %w", op, err)
		}
	}
	if len(merchantOps) == 0 {
		return nil
	}
	if d.merch == nil {
		return errors.New("merchant store is wiped")
	}
	return d.merch.Update(func(tx *storage.MerchantTx) error {
		for _, op := range merchantOps {
			if err := applyMerchantOp(tx, op); err != nil {
				return fmt.Errorf("persist %T: %w", op, err)
			}
		}
		return nil
	})
}

func applyMerchantOp(tx *storage.MerchantTx, op terminal.Op) error {
	switch op := op.(type) {
	case terminal.PutTxn:
		b, err := json.Marshal(op.Txn)
		if err != nil {
			return err
		}
		return tx.PutTxn(uint32(op.Txn.Batch), uint32(op.Txn.STAN), b)
	case terminal.PutCounters:
		return tx.PutCounters(storage.Counters{STAN: uint32(op.Counters.STAN), Batch: uint32(op.Counters.Batch)})
	case terminal.PutReversal:
		b, err := json.Marshal(op.Reversal)
		if err != nil {
			return err
		}
		return tx.PutReversal(b)
	case terminal.ClearReversal:
		return tx.ClearReversal()
	case terminal.DeleteBatch:
		_, err := tx.DeleteBatch(uint32(op.Batch))
		return err
	case terminal.PutParams:
		b, err := json.Marshal(op.Merchant)
		if err != nil {
			return err
		}
		return tx.PutParams(b)
	case terminal.DeleteParams:
		return tx.DeleteParams()
	case terminal.PutSettling:
		return tx.PutSettling([]byte(op.Batch.String()))
	case terminal.ClearSettling:
		return tx.ClearSettling()
	case terminal.PutBinding:
		b, err := json.Marshal(op.Binding)
		if err != nil {
			return err
		}
		return tx.PutBinding(b)
	}
	return fmt.Errorf("unknown store op %T", op)
}

// changeSupervisorPwd hashes and stores a new supervisor password; the
// lock is reset with it (a right password resets it anyway).
func (d *daemon) changeSupervisorPwd(pwd string) terminal.SupervisorPwdStored {
	hash, err := storage.HashPassword(pwd)
	if err == nil {
		err = d.ident.SetSupervisorPwdHash(hash)
	}
	if err == nil {
		err = d.ident.SetPwdLock(storage.PwdLock{})
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
	d.dev, d.merch, d.ident = nil, nil, nil
	d.compactIdentity()
	if err := r.Reboot(); err != nil {
		d.log.Error("reboot", slog.String("err", err.Error()))
	}
}
