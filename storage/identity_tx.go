package storage

import (
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// IdentityTx is one atomic, fsynced write to the identity store. The
// unbind sequence needs it: the accepted ack goes into the outbox in the
// same transaction as the intent, and the final ack in the same one as the
// seen-command record and the intent's removal, so a power cut can never
// leave an intent without its ack or a final ack without its record.
type IdentityTx struct{ tx *bolt.Tx }

// Update runs fn in one read-write transaction, committed (fsynced) when
// fn returns nil and rolled back otherwise.
func (s *IdentityStore) Update(fn func(tx *IdentityTx) error) error {
	return update(s.db, "identity update", func(tx *bolt.Tx) error { return fn(&IdentityTx{tx}) })
}

// PutIntent persists the unbind intent.
func (t *IdentityTx) PutIntent(v []byte) error {
	if len(v) == 0 {
		return errors.New("write unbind intent: empty intent")
	}
	return t.tx.Bucket(bktIdentity).Put(keyIntent, v)
}

// ClearIntent removes the unbind intent.
func (t *IdentityTx) ClearIntent() error { return t.tx.Bucket(bktIdentity).Delete(keyIntent) }

// Enqueue appends a message to the durable outbox.
func (t *IdentityTx) Enqueue(topic string, payload []byte) (uint64, error) {
	if topic == "" {
		return 0, errors.New("enqueue: empty topic")
	}
	raw, err := json.Marshal(outboxRecord{Topic: topic, Payload: payload})
	if err != nil {
		return 0, err
	}
	b := t.tx.Bucket(bktOutbox)
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	return seq, b.Put(u64(seq), raw)
}

// Put writes (nil: deletes) a value of the generic key/value area.
func (t *IdentityTx) Put(key string, v []byte) error {
	if key == "" || len(key) > bolt.MaxKeySize {
		return fmt.Errorf("put: bad key %q", key)
	}
	if v == nil {
		return t.tx.Bucket(bktKV).Delete([]byte(key))
	}
	return t.tx.Bucket(bktKV).Put([]byte(key), v)
}

// SetPwdLock stores the supervisor password failure state.
func (t *IdentityTx) SetPwdLock(l PwdLock) error {
	raw, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bktIdentity).Put(keyPwdLock, raw)
}

// SetSupervisorPwdHash replaces the supervisor password hash (PHC string).
func (t *IdentityTx) SetSupervisorPwdHash(hash string) error {
	if _, _, _, err := parsePHC(hash); err != nil {
		return fmt.Errorf("set supervisor password: %w", err)
	}
	b := t.tx.Bucket(bktIdentity)
	if b == nil || b.Get(keyIdentity) == nil {
		return ErrNoIdentity
	}
	var id Identity
	if err := json.Unmarshal(b.Get(keyIdentity), &id); err != nil {
		return fmt.Errorf("%w: identity record: %v", ErrCorrupt, err)
	}
	id.SupervisorPwdHash = hash
	raw, err := json.Marshal(id)
	if err != nil {
		return err
	}
	return b.Put(keyIdentity, raw)
}
