package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"golang.org/x/crypto/nacl/box"
	"log/slog"
	"strconv"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

// processInbox decides on the verified commands waiting in the inbox, in
// order: spec/remote.md's checks, then the core for the state check and
// the execution. An item leaves the inbox only after the step that acted
// on it has run, so a power cut in between replays it (the core and the
// seen-id check make the replay harmless); an item whose step failed to
// write stays, and so does one that waits for a trusted clock.
func (d *daemon) processInbox() {
	if d.m.Holding() {
		return // answering needs a write: the commands wait for the storage hold
	}
	items, err := d.rl.inboxList()
	if err != nil {
		d.log.Error("inbox", slog.String("err", err.Error()))
		return
	}
	for _, payload := range items {
		if d.stop {
			return
		}
		switch d.handleCommand(payload) {
		case cmdFailed:
			// A write the command's step needed failed: it stays in the
			// inbox for the next boot (the core fails stop).
			return
		case cmdWaits:
			continue
		}
		if err := d.rl.inboxRemove(payload); err != nil {
			d.log.Error("inbox", slog.String("err", err.Error()))
			return
		}
	}
}

// What became of an inbox command.
type cmdOutcome int

const (
	cmdDone   cmdOutcome = iota // decided: it leaves the inbox
	cmdFailed                   // a write failed: it stays
	cmdWaits                    // it waits for a trusted clock: it stays
)

// handleCommand decides on one command.
func (d *daemon) handleCommand(payload []byte) cmdOutcome {
	now := d.clock.Now()
	seen := func(id string) ([32]byte, bool) {
		c, ok, err := d.ident.Seen(id)
		if err != nil {
			d.log.Error("seen ids", slog.String("err", err.Error()))
			return [32]byte{}, false
		}
		return c.PayloadSHA256, ok
	}
	cmd, v := remote.CheckCommand(payload, d.id.Serial, now, seen)
	switch {
	case v.Resend:
		c, _, err := d.ident.Seen(cmd.ID)
		if err != nil {
			d.log.Error("seen ids", slog.String("err", err.Error()))
			return cmdFailed
		}
		d.log.Info("command replayed: final ack re-sent", slog.String("id", cmd.ID))
		if _, err := d.ident.Enqueue(remote.AckTopic(d.id.Serial), c.Ack); err != nil {
			d.log.Error("outbox", slog.String("err", err.Error()))
			return cmdFailed
		}
		d.rl.kickOutbox()
		return cmdDone
	case (v.Reason == remote.ReasonExpired || v.Reason == remote.ReasonNotYetValid) && !d.m.ClockTrusted():
		// The clock is not trusted yet (spec/remote.md "Clock trust"): the
		// command waits, decided once it is.
		if !d.clockWait[v.CmdID] {
			d.log.Info("command waits for a trusted clock", slog.String("id", v.CmdID), slog.String("would-be", v.Reason))
			if err := d.sendAck(terminal.SendAck{CmdID: v.CmdID, State: terminal.AckInProgress, Reason: ReasonClockUnsynced}); err != nil {
				d.log.Error("ack", slog.String("err", err.Error()))
				return cmdFailed
			}
			d.clockWait[v.CmdID] = true
		}
		return cmdWaits
	case !v.OK():
		d.log.Warn("command rejected", slog.String("id", v.CmdID), slog.String("reason", v.Reason), slog.String("detail", v.Detail))
		if err := d.sendAck(terminal.SendAck{CmdID: v.CmdID, State: terminal.AckRejected, Reason: v.Reason}); err != nil {
			d.log.Error("ack", slog.String("err", err.Error()))
			return cmdFailed
		}
		return cmdDone
	}
	rc := terminal.RemoteCommand{ID: cmd.ID, Type: cmd.Type, ExpiresAt: cmd.ExpiresAt, PayloadHash: sha256.Sum256(payload)}
	if cmd.Type == "unbind" {
		a, err := cmd.Unbind()
		if err != nil { // CheckCommand validated the args: cannot happen
			d.log.Error("unbind args", slog.String("err", err.Error()))
			return cmdDone
		}
		rc.Unsettled, rc.Reason = a.Unsettled, a.Reason
	}
	if cmd.Type == "provision" {
		a, err := cmd.Provision()
		if err != nil {
			d.log.Error("provision args", slog.String("err", err.Error()))
			return cmdDone
		}
		rc.Provision = &terminal.ProvisionCmd{Activation: a.Activation, Sealed: a.TMKSealed, KCV: a.TMKKCV,
			Merchant: terminal.Merchant{TID: a.TID, MID: a.MID, Name: a.MerchantName,
				AcquirerAddr: a.Acquirer.Addr, AcquirerTLS: a.Acquirer.TLS, TPDU: a.Acquirer.TPDU}}
	}
	if !d.step(terminal.CommandReceived{Cmd: rc}) {
		return cmdFailed
	}
	return cmdDone
}

// ReasonClockUnsynced is the reason of the in_progress ack of a command
// that waits for a trusted clock (spec/remote.md "Clock trust").
const ReasonClockUnsynced = "clock-unsynced"

// sendAck signs the ack and writes it to the outbox together with the
// identity-store changes that go with it, in one fsynced transaction.
func (d *daemon) sendAck(a terminal.SendAck) error {
	payload, err := json.Marshal(remote.Ack{V: 1, CmdID: a.CmdID, Serial: d.id.Serial, State: a.State,
		Reason: a.Reason, At: d.clock.Now().UTC(), Result: a.Result})
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	env, err := d.rl.sign(payload)
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	err = d.ident.Update(func(tx *storage.IdentityTx) error {
		if a.SetIntent != nil {
			b, err := json.Marshal(a.SetIntent)
			if err != nil {
				return err
			}
			if err := tx.PutIntent(b); err != nil {
				return err
			}
		}
		if a.ClearIntent {
			if err := tx.ClearIntent(); err != nil {
				return err
			}
		}
		if a.Seen {
			if err := tx.PutSeen(storage.SeenCommand{ID: a.CmdID, PayloadSHA256: a.PayloadHash, Ack: env, At: d.clock.Now().UTC()}); err != nil {
				return err
			}
		}
		_, err := tx.Enqueue(remote.AckTopic(d.id.Serial), env)
		return err
	})
	if err != nil {
		return fmt.Errorf("ack %s %s: %w", a.CmdID, a.State, err)
	}
	d.log.Info("ack", slog.String("id", a.CmdID), slog.String("state", a.State), slog.String("reason", a.Reason))
	d.rl.kickOutbox()
	return nil
}

// publishEvent signs an event and puts it in the outbox.
func (d *daemon) publishEvent(e terminal.PublishEvent) error {
	now := d.clock.Now().UTC()
	id := e.ID
	if id == "" {
		id = d.id.Serial + "-" + strconv.FormatInt(now.UnixNano(), 36)
	}
	payload, err := json.Marshal(remote.Event{V: 1, ID: id,
		Serial: d.id.Serial, Type: e.Type, At: now, Data: e.Data})
	if err != nil {
		return fmt.Errorf("event: %w", err)
	}
	env, err := d.rl.sign(payload)
	if err != nil {
		return fmt.Errorf("event: %w", err)
	}
	if _, err := d.ident.Enqueue(remote.EvtTopic(d.id.Serial), env); err != nil {
		return fmt.Errorf("event %s: %w", e.Type, err)
	}
	d.rl.kickOutbox()
	return nil
}

// statusPayload is the retained status JSON of spec/remote.md.
func (d *daemon) statusPayload(s terminal.Status, online bool) []byte {
	st := remote.Status{Serial: d.id.Serial, Online: online, State: s.State.String(), TID: s.TID,
		BatchCount: s.BatchCount, Version: version, At: d.clock.Now().UTC(),
		Clock: "unsynced", PendingReversal: s.PendingReversal}
	if s.ClockTrusted {
		st.Clock = "synced"
	}
	if d.diskKiB >= 0 {
		kib := d.diskKiB
		st.DiskFreeKiB = &kib
	}
	if s.BatchNo != 0 {
		st.BatchNo = s.BatchNo.String()
	}
	b, _ := json.Marshal(st)
	return b
}

// wipe erases the merchant data: keys zeroised and the data key destroyed
// in the secure element first (after that the sealed store is unreadable
// even if the rest fails), then the store overwritten, removed and its
// directory fsynced. It can run again after a power cut at any point.
func (d *daemon) wipe() error {
	if err := d.se.ZeroiseKeys(); err != nil {
		return fmt.Errorf("zeroise keys: %w", err)
	}
	if err := d.se.DestroyDataKey(); err != nil {
		return fmt.Errorf("destroy data key: %w", err)
	}
	rep, err := d.store.WipeMerchant()
	if err != nil {
		return err
	}
	d.log.Info("merchant data wiped", slog.Int("txns", rep.Txns), slog.Bool("binding", rep.Binding), slog.Bool("keys", !d.se.HasKey(hal.TMK)))
	return nil
}

// provision unseals the TMK of a provision command with the device's
// X25519 key (NaCl anonymous box) and installs it in the secure element
// with its check value. Nothing is installed when the seal or the KCV is
// bad; the core stores the merchant parameters when the activation ends.
func (d *daemon) provision(p terminal.Provision) terminal.Provisioned {
	var pub, priv [32]byte
	copy(pub[:], d.id.DeviceX25519Pub)
	copy(priv[:], d.id.DeviceX25519Priv)
	tmk, ok := box.OpenAnonymous(nil, p.Sealed, &pub, &priv)
	clear(priv[:])
	if !ok || len(tmk) != 16 {
		d.log.Warn("provision: TMK seal does not open", slog.String("id", p.CmdID))
		return terminal.Provisioned{Reason: remote.ReasonBadSeal}
	}
	defer clear(tmk)
	if err := d.se.InstallTMK(tmk, p.KCV); err != nil {
		d.log.Warn("provision: TMK refused", slog.String("id", p.CmdID), slog.String("err", err.Error()))
		return terminal.Provisioned{Reason: remote.ReasonBadKCV, Err: err}
	}
	return terminal.Provisioned{}
}
