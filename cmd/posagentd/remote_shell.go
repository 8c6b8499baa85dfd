package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"golang.org/x/crypto/nacl/box"
	"log/slog"
	"strconv"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

// inboxRetry is how soon a command whose handling could not be written
// (a full or failing disk) is tried again. It stays first in the inbox
// meanwhile: commands are decided in order.
const inboxRetry = 2 * time.Second

// processInbox decides on the oldest verified command waiting in the
// inbox: one per turn of the event loop, so a key press never waits behind
// a queue of commands. A command leaves the inbox only once what it
// decided is written (its ack in the outbox, the state it changed on
// disk): a power cut or a failed write replays it, and the recorded ids
// and the core make the replay harmless.
func (d *daemon) processInbox() {
	it, ok, err := d.rl.nextCommand()
	if err != nil {
		d.log.Error("inbox", slog.String("err", err.Error()))
		d.rl.wakeLoopAfter(inboxRetry)
		return
	}
	if !ok {
		return
	}
	d.deciding, d.decidingID = &it, ""
	err = d.handleCommand(it)
	removed := d.deciding == nil // an ack's transaction took it out
	d.deciding = nil
	if err != nil && !removed {
		d.log.Error("command not decided: kept in the inbox, tried again", slog.Uint64("seq", it.Seq),
			slog.String("err", err.Error()), slog.Duration("in", inboxRetry))
		d.rl.wakeLoopAfter(inboxRetry)
		return
	}
	if err != nil {
		// Its ack is written (the decision stands); a later write of the
		// same step failed, which the core answers for.
		d.log.Error("command decided, a later write failed", slog.Uint64("seq", it.Seq), slog.String("err", err.Error()))
	}
	more, err := d.rl.commandDone(it, removed)
	if err != nil {
		d.log.Error("inbox", slog.String("err", err.Error()))
		d.rl.wakeLoopAfter(inboxRetry)
		return
	}
	if more {
		d.rl.wakeLoop() // the next one on a later turn
	}
}

// handleCommand runs spec/remote.md's check table on one queued command,
// against the keyring in force now (a key revoked since the command
// arrived makes it unknown: no ack), and acts on the verdict. It returns an
// error only when what it decided could not be written.
func (d *daemon) handleCommand(it storage.InboxItem) error {
	kr := d.rl.keyring()
	checker := remote.Checker{Serial: d.id.Serial, Keys: &kr}
	var payload []byte
	var signers []string
	if it.Envelope == nil {
		// Queued by a version without key roles and verified then: it is
		// decided by the rules it was accepted under (no policy).
		payload, checker.Keys = it.LegacyPayload, nil
	} else {
		env, kids, err := remote.OpenSigners(it.Envelope, kr.PublicKeys())
		if err != nil {
			n := d.rl.Unverified.Add(1)
			d.log.Warn("command dropped unverified", slog.String("err", err.Error()), slog.Int64("unverified_total", n))
			return nil
		}
		payload, signers = env.Payload, kids
	}
	var seenErr error
	checker.Seen = func(id string) ([32]byte, bool) {
		c, ok, err := d.ident.Seen(id)
		if err != nil {
			seenErr = err
		}
		return c.PayloadSHA256, ok
	}
	now := time.Now()
	cmd, v := checker.Check(payload, signers, now)
	d.decidingID = v.CmdID
	if seenErr != nil {
		return fmt.Errorf("recorded ids: %w", seenErr)
	}
	sum := sha256.Sum256(payload)
	switch {
	case v.Resend:
		c, _, err := d.ident.Seen(cmd.ID)
		if err != nil {
			return fmt.Errorf("recorded ids: %w", err)
		}
		d.rl.resendAck(cmd.ID, c.Ack)
		return nil
	case !v.OK():
		d.log.Warn("command rejected", slog.String("id", v.CmdID), slog.String("reason", v.Reason), slog.String("detail", v.Detail))
		// Recorded with its ack, so that the same bytes never get another
		// answer (spec/remote.md), except a replay: its id is another
		// command's record.
		var record *[32]byte
		if v.Reason != remote.ReasonReplayed {
			record = &sum
		}
		return d.writeAck(remote.Ack{CmdID: v.CmdID, State: remote.AckRejected, Reason: v.Reason}, record, nil)
	}
	if cmd.Type == remote.TypeHQKeys {
		return d.changeHQKeys(cmd, kr, sum)
	}
	rc, err := remoteCommand(cmd, sum)
	if err != nil { // CheckCommand validated the args: cannot happen
		return err
	}
	d.stepErr = nil
	d.step(terminal.CommandReceived{Cmd: rc})
	return d.stepErr
}

// remoteCommand is the core's view of a command that passed the checks.
func remoteCommand(cmd remote.Command, sum [32]byte) (terminal.RemoteCommand, error) {
	rc := terminal.RemoteCommand{ID: cmd.ID, Type: string(cmd.Type), ExpiresAt: cmd.ExpiresAt, PayloadHash: sum}
	switch cmd.Type {
	case remote.TypeUnbind:
		a, err := cmd.Unbind()
		if err != nil {
			return rc, fmt.Errorf("unbind args: %w", err)
		}
		rc.Unsettled, rc.Reason = string(a.Unsettled), a.Reason
	case remote.TypeProvision:
		a, err := cmd.Provision()
		if err != nil {
			return rc, fmt.Errorf("provision args: %w", err)
		}
		rc.Provision = &terminal.ProvisionCmd{Activation: a.Activation, Sealed: a.TMKSealed, KCV: a.TMKKCV,
			Merchant: terminal.Merchant{TID: string(a.TID), MID: string(a.MID), Name: a.MerchantName,
				AcquirerAddr: a.Acquirer.Addr, AcquirerTLS: a.Acquirer.TLS, TPDU: string(a.Acquirer.TPDU)}}
	}
	return rc, nil
}

// changeHQKeys executes an hq_keys command (spec/remote.md "Keys and
// policy"): the new keyring, the command's record and its succeeded ack
// (the key ids by role and the policy now in force) in one transaction,
// then the keyring in force for every envelope from here on. It fits
// every lifecycle state and has nothing to do with the merchant, so the
// core never sees it.
func (d *daemon) changeHQKeys(cmd remote.Command, kr remote.Keyring, sum [32]byte) error {
	a, err := cmd.HQKeys()
	if err != nil {
		return fmt.Errorf("hq_keys args: %w", err)
	}
	next, err := kr.Apply(a)
	if err != nil { // Check ran Apply on this keyring: cannot happen
		return d.writeAck(remote.Ack{CmdID: cmd.ID, State: remote.AckRejected, Reason: remote.ReasonInvalid}, &sum, nil)
	}
	res := next.Result()
	result, err := json.Marshal(res)
	if err != nil {
		return err
	}
	err = d.writeAck(remote.Ack{CmdID: cmd.ID, State: remote.AckSucceeded, Result: result}, &sum,
		func(tx *storage.IdentityTx) error { return tx.PutKeyring(next) })
	if err != nil {
		return err
	}
	d.rl.setKeyring(next)
	d.log.Info("HQ keys changed", slog.String("id", cmd.ID), slog.Any("root", res.Keys[remote.RoleRoot]),
		slog.Any("ops", res.Keys[remote.RoleOps]), slog.Any("policy", res.Policy))
	return nil
}

// sendAck writes an ack the core asked for, with the identity-store
// changes that go with it (the record of a final ack, the unbind intent).
func (d *daemon) sendAck(a terminal.SendAck) error {
	var record *[32]byte
	if a.Seen {
		record = &a.PayloadHash
	}
	return d.writeAck(remote.Ack{CmdID: a.CmdID, State: a.State, Reason: a.Reason, Result: a.Result}, record,
		func(tx *storage.IdentityTx) error {
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
				return tx.ClearIntent()
			}
			return nil
		})
}

// writeAck signs an ack with the device key and writes it to the outbox
// in one fsynced transaction with also's changes and, when record is not
// nil, the command's record (id, payload hash, these ack bytes): a replay
// of the same payload gets these very bytes again.
func (d *daemon) writeAck(a remote.Ack, record *[32]byte, also func(tx *storage.IdentityTx) error) error {
	now := time.Now().UTC()
	a.V, a.Serial, a.At = remote.Version, d.id.Serial, now
	env, err := remote.SealAck(d.id.DeviceEd25519Priv, a)
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	deciding := d.deciding
	if a.CmdID != d.decidingID {
		deciding = nil // an ack of another command than the one in hand
	}
	err = d.ident.Update(func(tx *storage.IdentityTx) error {
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		if deciding != nil {
			if err := tx.InboxDone(deciding.Seq); err != nil {
				return err
			}
		}
		if record != nil && a.CmdID != "" {
			if err := tx.PutSeen(storage.SeenCommand{ID: a.CmdID, PayloadSHA256: *record, Ack: env, At: now}); err != nil {
				return err
			}
		}
		_, err := tx.Enqueue(remote.AckTopic(d.id.Serial), env)
		return err
	})
	if err != nil {
		return fmt.Errorf("ack %s %s: %w", a.CmdID, a.State, err)
	}
	if deciding != nil {
		d.deciding = nil
	}
	d.log.Info("ack", slog.String("id", a.CmdID), slog.String("state", a.State), slog.String("reason", a.Reason))
	d.rl.kickOutbox()
	return nil
}

// publishEvent signs an event and puts it in the outbox.
func (d *daemon) publishEvent(e terminal.PublishEvent) error {
	now := time.Now().UTC()
	id := e.ID
	if id == "" {
		id = d.id.Serial + "-" + strconv.FormatInt(now.UnixNano(), 36)
	}
	env, err := remote.SealEvent(d.id.DeviceEd25519Priv, remote.Event{V: remote.Version, ID: id,
		Serial: d.id.Serial, Type: e.Type, At: now, Data: e.Data})
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
		BatchCount: s.BatchCount, Version: version, At: time.Now().UTC()}
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
	var rep storage.WipeReport
	var err error
	if d.merch != nil {
		rep, err = d.merch.Wipe()
		d.merch = nil
	} else {
		_, path, _ := storage.Paths(d.cfg.DataDir)
		rep, err = storage.Wipe(path)
	}
	if err != nil {
		return fmt.Errorf("wipe merchant store: %w", err)
	}
	// A fresh, empty store: an activation that failed goes on without a
	// reboot, and a new data key is made only when something is sealed.
	_, path, _ := storage.Paths(d.cfg.DataDir)
	if d.merch, err = storage.OpenMerchant(path, d.se); err != nil {
		return fmt.Errorf("reopen merchant store: %w", err)
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

// wipeInProgress reports whether the persisted unbind intent is at the
// wiping stage (terminal.UnbindIntent.Stage), read before the merchant
// store is opened.
func (d *daemon) wipeInProgress() (bool, error) {
	raw, ok, err := d.ident.Intent()
	if err != nil || !ok {
		return false, err
	}
	var iv terminal.UnbindIntent
	if err := json.Unmarshal(raw, &iv); err != nil {
		return false, fmt.Errorf("unbind intent: %w", err)
	}
	return iv.Stage == "wiping", nil
}
