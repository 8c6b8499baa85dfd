package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"golang.org/x/crypto/nacl/box"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/storage/termstore"
	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

// recordsPrunedPerAck bounds the recorded commands pruned with each new
// record: the work is spread over the writes that make records and never
// grows with the store.
const recordsPrunedPerAck = 16

// inboxRetry is how soon a command whose handling could not be written
// (a full or failing disk) is tried again. It stays in the inbox
// meanwhile, ahead of the ones behind it: commands are decided in order.
const inboxRetry = 2 * time.Second

// ReasonClockUnsynced is the reason of the in_progress ack of a command
// that waits for a trusted clock (spec/remote.md "Clock trust").
const ReasonClockUnsynced = remote.ReasonClockUnsynced

// What became of an inbox command.
type cmdOutcome int

const (
	cmdDone   cmdOutcome = iota // decided: it leaves the inbox
	cmdFailed                   // a write failed: it stays, tried again
	cmdWaits                    // it waits for a trusted clock: it stays
)

// processInbox decides on the oldest verified command in the inbox that
// does not wait for a trusted clock: one per turn of the event loop, so a
// key press never waits behind a queue of commands. A command leaves the
// inbox only once what it decided is written (in its ack's transaction):
// a power cut or a failed write replays it, and the recorded ids and the
// core make the replay harmless.
func (d *daemon) processInbox() {
	if d.m.Holding() {
		return // answering needs a write: the commands wait for the storage hold
	}
	if d.m.ClockTrusted() && len(d.waiting) > 0 {
		clear(d.waiting) // decided now, in their order
	}
	items, err := d.rl.queuedCommands()
	if err != nil {
		d.log.Error("inbox", slog.String("err", err.Error()))
		d.rl.wakeLoopAfter(inboxRetry)
		return
	}
	i := slices.IndexFunc(items, func(it storage.InboxItem) bool { return !d.waiting[it.Seq] })
	if i < 0 {
		return
	}
	it := items[i]
	d.deciding, d.decidingID = &it, ""
	outcome, err := d.handleCommand(it)
	removed := d.deciding == nil // an ack's transaction took it out
	d.deciding = nil
	switch {
	case outcome == cmdWaits:
		d.waiting[it.Seq] = true
	case outcome == cmdFailed && !removed:
		d.log.Error("command not decided: kept in the inbox, tried again", slog.Uint64("seq", it.Seq),
			slog.Any("err", err), slog.Duration("in", inboxRetry))
		d.rl.wakeLoopAfter(inboxRetry)
		return
	default:
		if outcome == cmdFailed {
			// Its ack is written (the decision stands); a later write of
			// the same step failed, which the core answers for.
			d.log.Error("command decided, a later write failed", slog.Uint64("seq", it.Seq), slog.Any("err", err))
		}
		if err := d.rl.commandDone(it, removed); err != nil {
			d.log.Error("inbox", slog.String("err", err.Error()))
			d.rl.wakeLoopAfter(inboxRetry)
			return
		}
	}
	if len(items) > i+1 {
		d.rl.wakeLoop() // the next one on a later turn
	}
}

// handleCommand runs spec/remote.md's check table on one queued command,
// against the keyring in force now (a key revoked since the command
// arrived makes it unknown: no ack), and acts on the verdict.
func (d *daemon) handleCommand(it storage.InboxItem) (cmdOutcome, error) {
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
			return cmdDone, nil
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
	cmd, v := checker.Check(payload, signers, d.clock.Now())
	d.decidingID = v.CmdID
	if seenErr != nil {
		return cmdFailed, fmt.Errorf("recorded ids: %w", seenErr)
	}
	rec := &commandRecord{sum: sha256.Sum256(payload), expires: cmd.ExpiresAt}
	done := func(err error) (cmdOutcome, error) {
		if err != nil {
			return cmdFailed, err
		}
		return cmdDone, nil
	}
	switch {
	case v.Resend:
		c, _, err := d.ident.Seen(cmd.ID)
		if err != nil {
			return cmdFailed, fmt.Errorf("recorded ids: %w", err)
		}
		d.rl.resendAck(cmd.ID, c.Ack)
		return cmdDone, nil
	case v.OnlyTime && !d.m.ClockTrusted():
		// Fails on the clock alone, and the clock is not trusted yet
		// (spec/remote.md "Clock trust"): it waits, in_progress once,
		// and is decided once the clock is trusted.
		if !d.clockWait[v.CmdID] {
			d.log.Info("command waits for a trusted clock", slog.String("id", v.CmdID), slog.String("would-be", v.Reason))
			d.deciding = nil // the command stays queued
			err := d.writeAck(remote.Ack{CmdID: v.CmdID, State: remote.AckInProgress, Reason: ReasonClockUnsynced}, nil, nil)
			if err != nil {
				return cmdFailed, err
			}
			d.clockWait[v.CmdID] = true
		}
		return cmdWaits, nil
	case !v.OK():
		delete(d.clockWait, v.CmdID)
		d.log.Warn("command rejected", slog.String("id", v.CmdID), slog.String("reason", v.Reason), slog.String("detail", v.Detail))
		// Recorded with its ack, so that the same bytes never get another
		// answer (spec/remote.md), except a replay: its id is another
		// command's record.
		if v.Reason == remote.ReasonReplayed {
			rec = nil
		}
		return done(d.writeAck(remote.Ack{CmdID: v.CmdID, State: remote.AckRejected, Reason: v.Reason}, rec, nil))
	}
	delete(d.clockWait, v.CmdID)
	if cmd.Type == remote.TypeHQKeys {
		return done(d.changeHQKeys(cmd, kr, rec))
	}
	rc, err := remoteCommand(cmd, rec.sum)
	if err != nil { // CheckCommand validated the args: cannot happen
		return cmdDone, err
	}
	d.expiry[cmd.ID] = cmd.ExpiresAt // for its record, whenever its final ack comes
	if !d.step(terminal.CommandReceived{Cmd: rc}) {
		return cmdFailed, errors.New("a write of the command's step failed")
	}
	return cmdDone, nil
}

// commandRecord is what a command's record keeps beside its final ack.
type commandRecord struct {
	sum     [32]byte  // SHA-256 of the payload
	expires time.Time // expires_at, when readable
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
		rc.Unsettled, rc.Reason = a.Unsettled, a.Reason
	case remote.TypeUpdate:
		a, err := cmd.Update()
		if err != nil {
			return rc, fmt.Errorf("update args: %w", err)
		}
		rc.Update = &terminal.UpdateCmd{URL: a.URL, SHA256: a.SHA256, Size: a.Size, Version: a.Version, When: a.When}
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
func (d *daemon) changeHQKeys(cmd remote.Command, kr remote.Keyring, rec *commandRecord) error {
	a, err := cmd.HQKeys()
	if err != nil {
		return fmt.Errorf("hq_keys args: %w", err)
	}
	next, err := kr.Apply(a)
	if err != nil { // Check ran Apply on this keyring: cannot happen
		return d.writeAck(remote.Ack{CmdID: cmd.ID, State: remote.AckRejected, Reason: remote.ReasonInvalid}, rec, nil)
	}
	res := next.Result()
	result, err := json.Marshal(res)
	if err != nil {
		return err
	}
	err = d.writeAck(remote.Ack{CmdID: cmd.ID, State: remote.AckSucceeded, Result: result}, rec,
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
	var rec *commandRecord
	if a.Seen {
		rec = &commandRecord{sum: a.PayloadHash, expires: d.expiry[a.CmdID]}
		delete(d.expiry, a.CmdID)
	}
	err := d.writeAck(remote.Ack{CmdID: a.CmdID, State: a.State, Reason: a.Reason, Result: a.Result}, rec,
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
			if a.SetUpdate != nil {
				if err := termstore.PutUpdateTx(tx, a.SetUpdate); err != nil {
					return err
				}
			}
			if a.ClearUpdate {
				if err := termstore.PutUpdateTx(tx, nil); err != nil {
					return err
				}
			}
			if a.ClearIntent {
				return tx.ClearIntent()
			}
			return nil
		})
	if err == nil && a.ClearUpdate && d.upd != nil {
		d.upd.dl.Remove() // the update ended: its bundle goes
	}
	return err
}

// writeAck signs an ack with the device key and writes it to the outbox
// in one fsynced transaction with also's changes and, when record is not
// nil, the command's record (id, payload hash, these ack bytes): a replay
// of the same payload gets these very bytes again.
func (d *daemon) writeAck(a remote.Ack, record *commandRecord, also func(tx *storage.IdentityTx) error) error {
	now := d.clock.Now().UTC()
	trusted := d.m.ClockTrusted()
	a.V, a.Serial, a.At = remote.Version, d.id.Serial, now
	env, err := remote.SealAck(d.id.DeviceEd25519Priv, a)
	var parts [][]byte // "unsettled" events that go just before it
	if errors.Is(err, remote.ErrTooLarge) {
		var rest json.RawMessage
		if rest, parts, err = d.sealUnsettledParts(a.Result, a.CmdID, now); err == nil {
			a.Result = rest
			env, err = remote.SealAck(d.id.DeviceEd25519Priv, a)
		}
	}
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
			if err := tx.PutSeen(storage.SeenCommand{ID: a.CmdID, PayloadSHA256: record.sum, Ack: env, At: now,
				ExpiresAt: record.expires}); err != nil {
				return err
			}
			// Records whose time has come go a few at a time with each new
			// one, and only on a trusted clock (storage.PruneSeen).
			if trusted {
				if _, err := tx.PruneSeen(now, recordsPrunedPerAck); err != nil {
					return err
				}
			}
		}
		for _, p := range parts {
			if _, err := tx.Enqueue(remote.EvtTopic(d.id.Serial), p); err != nil {
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

// publishEvent signs an event and puts it in the outbox (with the
// "unsettled" events of a list too long for it: unsettled.go).
func (d *daemon) publishEvent(e terminal.PublishEvent) error {
	now := d.clock.Now().UTC()
	id := e.ID
	if id == "" {
		id = d.id.Serial + "-" + strconv.FormatInt(now.UnixNano(), 36)
	}
	ev := remote.Event{V: remote.Version, ID: id, Serial: d.id.Serial, Type: e.Type, At: now, Data: e.Data}
	env, err := remote.SealEvent(d.id.DeviceEd25519Priv, ev)
	var parts [][]byte
	if errors.Is(err, remote.ErrTooLarge) {
		if ev.Data, parts, err = d.sealUnsettledParts(e.Data, id, now); err == nil {
			env, err = remote.SealEvent(d.id.DeviceEd25519Priv, ev)
		}
	}
	if err != nil {
		return fmt.Errorf("event: %w", err)
	}
	err = d.ident.Update(func(tx *storage.IdentityTx) error {
		for _, p := range append(parts, env) {
			if _, err := tx.Enqueue(remote.EvtTopic(d.id.Serial), p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("event %s: %w", e.Type, err)
	}
	d.rl.kickOutbox()
	return nil
}

// sealUnsettledParts splits obj's unsettled list (unsettled.go) and signs
// the parts; it fails with remote.ErrTooLarge when obj has no list to
// split.
func (d *daemon) sealUnsettledParts(obj json.RawMessage, of string, now time.Time) (json.RawMessage, [][]byte, error) {
	rest, parts, ok, err := splitUnsettled(obj, of)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, fmt.Errorf("%s: %w", of, remote.ErrTooLarge)
	}
	var envs [][]byte
	for i, p := range parts {
		env, err := remote.SealEvent(d.id.DeviceEd25519Priv, remote.Event{V: remote.Version, ID: unsettledPartID(of, i+1),
			Serial: d.id.Serial, Type: evtUnsettled, At: now, Data: p})
		if err != nil {
			return nil, nil, err
		}
		envs = append(envs, env)
	}
	d.log.Warn("unsettled list too long for one envelope: sent in events", slog.String("of", of), slog.Int("parts", len(envs)))
	return rest, envs, nil
}

// statusPayload is the retained status JSON of spec/remote.md.
func (d *daemon) statusPayload(s terminal.Status, online bool) []byte {
	st := remote.Status{Serial: d.id.Serial, Online: online, State: s.State.String(), TID: s.TID,
		BatchCount: s.BatchCount, BatchAmount: int64(s.BatchAmount), Version: d.cfg.runningVersion(), At: d.clock.Now().UTC(),
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
