package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posagent/posagent/terminal/remote"
)

// The identity store's part of the remote channel (spec/remote.md): the
// HQ keyring, the recorded command ids with their final acks, and the
// inbox of commands between their PUBACK and the event loop's decision.
// All of it survives the wipe.

// Keyring returns the HQ keys, roles and policy in force: the last one an
// hq_keys command stored, or the factory's.
func (s *IdentityStore) Keyring() (remote.Keyring, error) {
	var k remote.Keyring
	var stored bool
	err := view(s.db, "read HQ keyring", func(tx *bolt.Tx) error {
		raw := tx.Bucket(bktIdentity).Get(keyKeyring)
		if raw == nil {
			return nil
		}
		stored = true
		if err := json.Unmarshal(raw, &k); err != nil {
			return fmt.Errorf("%w: HQ keyring: %v", ErrCorrupt, err)
		}
		return nil
	})
	if err != nil || stored {
		return k, err
	}
	id, err := s.Identity()
	if err != nil {
		return k, err
	}
	return id.FactoryKeyring(), nil
}

// PutKeyring stores the keyring an hq_keys command set.
func (t *IdentityTx) PutKeyring(k remote.Keyring) error {
	if err := k.Validate(); err != nil {
		return fmt.Errorf("write HQ keyring: %w", err)
	}
	raw, err := json.Marshal(k)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bktIdentity).Put(keyKeyring, raw)
}

// TechPwdLock returns the technician password failure state.
func (s *IdentityStore) TechPwdLock() (PwdLock, error) {
	var l PwdLock
	err := view(s.db, "read technician password lock", func(tx *bolt.Tx) error {
		raw := tx.Bucket(bktIdentity).Get(keyTechPwdLock)
		if raw == nil {
			return nil
		}
		return json.Unmarshal(raw, &l)
	})
	return l, err
}

// SetTechPwdLock stores the technician password failure state.
func (s *IdentityStore) SetTechPwdLock(l PwdLock) error {
	return s.Update(func(tx *IdentityTx) error { return tx.SetTechPwdLock(l) })
}

// SetTechPwdLock stores the technician password failure state.
func (t *IdentityTx) SetTechPwdLock(l PwdLock) error {
	raw, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bktIdentity).Put(keyTechPwdLock, raw)
}

// Seen returns the recorded command with this id, if any.
func (s *IdentityStore) Seen(id string) (SeenCommand, bool, error) {
	var c SeenCommand
	var ok bool
	if id == "" {
		return c, false, nil
	}
	err := view(s.db, "read recorded command", func(tx *bolt.Tx) error {
		raw := tx.Bucket(bktSeen).Get([]byte(id))
		if raw == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(raw, &c)
	})
	return c, ok, err
}

// PutSeen records a command with its final ack (replacing an earlier
// record of the same id).
func (s *IdentityStore) PutSeen(c SeenCommand) error {
	return s.Update(func(tx *IdentityTx) error { return tx.PutSeen(c) })
}

// PutSeen records a command with its final ack.
func (t *IdentityTx) PutSeen(c SeenCommand) error {
	if c.ID == "" || len(c.ID) > 64 {
		return fmt.Errorf("record command: bad id %q", c.ID)
	}
	if c.At.IsZero() {
		return fmt.Errorf("record command %s: no time", c.ID)
	}
	if c.PruneAt.IsZero() {
		c.PruneAt = c.At.Add(remote.RecordKept)
		if !c.ExpiresAt.IsZero() {
			if after := c.ExpiresAt.Add(remote.RecordAfterExpiry); after.After(c.PruneAt) {
				c.PruneAt = after
			}
		}
	}
	seen, index := t.tx.Bucket(bktSeen), t.tx.Bucket(bktSeenPrune)
	if old := seen.Get([]byte(c.ID)); old != nil {
		var o SeenCommand
		if json.Unmarshal(old, &o) == nil {
			if err := index.Delete(pruneKey(o.PruneAt, o.ID)); err != nil {
				return err
			}
		}
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := seen.Put([]byte(c.ID), raw); err != nil {
		return err
	}
	return index.Put(pruneKey(c.PruneAt, c.ID), nil)
}

// ReplaceSeenAck replaces a recorded command's final ack with next, if the
// stored one is still old (what was delivered); it reports whether it did.
// The daemon uses it to drop what an ack reported about the merchant
// (result.unsettled) once the ack has reached the broker.
func (t *IdentityTx) ReplaceSeenAck(id string, old, next []byte) (bool, error) {
	b := t.tx.Bucket(bktSeen)
	raw := b.Get([]byte(id))
	if raw == nil {
		return false, nil
	}
	var c SeenCommand
	if err := json.Unmarshal(raw, &c); err != nil {
		return false, fmt.Errorf("%w: recorded command %s: %v", ErrCorrupt, id, err)
	}
	if !bytes.Equal(c.Ack, old) {
		return false, nil
	}
	c.Ack = next
	out, err := json.Marshal(c)
	if err != nil {
		return false, err
	}
	return true, b.Put([]byte(id), out)
}

// PruneSeen removes the records whose prune time is before now and
// returns how many went. now must come from a trusted clock: a clock
// running ahead would drop records of commands that are still valid,
// which could then be executed again.
func (s *IdentityStore) PruneSeen(now time.Time) (int, error) {
	var n int
	err := s.Update(func(tx *IdentityTx) error {
		var err error
		n, err = tx.PruneSeen(now, -1)
		return err
	})
	return n, err
}

// PruneSeen removes up to limit (-1: all) records due before now, oldest
// first, by walking the prune index (see IdentityStore.PruneSeen).
func (t *IdentityTx) PruneSeen(now time.Time, limit int) (int, error) {
	seen, index := t.tx.Bucket(bktSeen), t.tx.Bucket(bktSeenPrune)
	var due [][]byte
	c := index.Cursor()
	for k, _ := c.First(); k != nil && len(due) != limit; k, _ = c.Next() {
		if len(k) < 8 {
			return 0, fmt.Errorf("%w: prune index key %x", ErrCorrupt, k)
		}
		if int64(binary.BigEndian.Uint64(k[:8])) >= now.UnixNano() {
			break
		}
		due = append(due, clone(k))
	}
	for _, k := range due {
		if err := index.Delete(k); err != nil {
			return 0, err
		}
		if err := seen.Delete(k[8:]); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

// pruneKey orders the index by prune time; times before 1970 (none a
// record has) clamp to 0.
func pruneKey(at time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(max(at.UnixNano(), 0)))
	return append(k, id...)
}

// InboxItem is a command waiting for the event loop. Envelope is the
// signed envelope as it arrived (verified on arrival and again when it is
// handled, against the keyring then in force). LegacyPayload is a payload
// a version before the keyring queued, verified then and kept as is.
type InboxItem struct {
	Seq           uint64
	Envelope      []byte
	LegacyPayload []byte
}

type inboxRecord struct {
	Envelope []byte `json:"env,omitempty"`
	Payload  []byte `json:"payload,omitempty"`
}

// ErrInboxFull is returned by InboxAdd when the inbox holds max commands.
var ErrInboxFull = errors.New("inbox full")

// InboxAdd queues one envelope (fsynced) unless max are queued already,
// and returns its sequence number. Each command is its own key: adding and
// removing one never rewrites the others.
func (s *IdentityStore) InboxAdd(envelope []byte, maxItems int) (uint64, error) {
	if len(envelope) == 0 {
		return 0, errors.New("inbox add: empty envelope")
	}
	raw, err := json.Marshal(inboxRecord{Envelope: envelope})
	if err != nil {
		return 0, err
	}
	var seq uint64
	err = update(s.db, "inbox add", func(tx *bolt.Tx) error {
		b := tx.Bucket(bktInbox)
		n := 0
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if n++; n >= maxItems {
				return ErrInboxFull
			}
		}
		var err error
		if seq, err = b.NextSequence(); err != nil {
			return err
		}
		return b.Put(u64(seq), raw)
	})
	return seq, err
}

// Inbox returns the queued commands, oldest first.
func (s *IdentityStore) Inbox() ([]InboxItem, error) {
	var items []InboxItem
	err := view(s.db, "read inbox", func(tx *bolt.Tx) error {
		return tx.Bucket(bktInbox).ForEach(func(k, v []byte) error {
			it, err := inboxItem(k, v)
			if err != nil {
				return err
			}
			items = append(items, it)
			return nil
		})
	})
	return items, err
}

// InboxFirst returns the oldest queued command.
func (s *IdentityStore) InboxFirst() (InboxItem, bool, error) {
	var it InboxItem
	var ok bool
	err := view(s.db, "read inbox", func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bktInbox).Cursor().First()
		if k == nil {
			return nil
		}
		var err error
		it, err = inboxItem(k, v)
		ok = err == nil
		return err
	})
	return it, ok, err
}

// InboxDone removes a handled command (no error if it is gone already).
func (s *IdentityStore) InboxDone(seq uint64) error {
	return update(s.db, "inbox done", func(tx *bolt.Tx) error { return tx.Bucket(bktInbox).Delete(u64(seq)) })
}

// InboxDone removes a handled command in the transaction: with the ack
// that decides it, so a command is never both answered and still queued,
// nor gone before its answer is written.
func (t *IdentityTx) InboxDone(seq uint64) error { return t.tx.Bucket(bktInbox).Delete(u64(seq)) }

func inboxItem(k, v []byte) (InboxItem, error) {
	if len(k) != 8 {
		return InboxItem{}, fmt.Errorf("%w: inbox key %x", ErrCorrupt, k)
	}
	var r inboxRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return InboxItem{}, fmt.Errorf("%w: inbox item %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
	}
	return InboxItem{Seq: binary.BigEndian.Uint64(k), Envelope: r.Envelope, LegacyPayload: r.Payload}, nil
}

// legacyInboxKey is where versions before the inbox bucket kept the whole
// inbox as one JSON array of verified payloads (in the kv area).
var legacyInboxKey = []byte("inbox")

// migrateInbox moves a legacy inbox into the inbox bucket, one key per
// command, in its order. It runs at open, in the transaction that creates
// the buckets.
func migrateInbox(tx *bolt.Tx) error {
	kv := tx.Bucket(bktKV)
	raw := kv.Get(legacyInboxKey)
	if raw == nil {
		return nil
	}
	var payloads [][]byte
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &payloads); err != nil {
			return fmt.Errorf("%w: legacy inbox: %v", ErrCorrupt, err)
		}
	}
	b := tx.Bucket(bktInbox)
	for _, p := range payloads {
		rec, err := json.Marshal(inboxRecord{Payload: p})
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(u64(seq), rec); err != nil {
			return err
		}
	}
	return kv.Delete(legacyInboxKey)
}

// Done removes a delivered outbox message in the transaction.
func (t *IdentityTx) Done(seq uint64) error { return t.tx.Bucket(bktOutbox).Delete(u64(seq)) }
