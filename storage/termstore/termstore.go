// Package termstore is the terminal core's Store over the two bbolt files
// of package storage: the identity store (never wiped) and the merchant
// store (sealed, wiped on unbind). It is the one place that knows which
// op goes to which file and how the core's records are serialised; the
// daemon sees only Load, Apply and WipeMerchant.
package termstore

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

// Keys of the identity store's key/value area owned by this adapter.
const (
	kvTampered    = "tampered"     // "1" while the tamper flag is set
	kvTIDCounters = "tid_counters" // JSON map terminal.TIDKey -> counters
	kvTimeFloor   = "time_floor"   // RFC 3339, the latest trusted time
	// KVUpdate is the update intent (JSON terminal.UpdateIntent); the
	// daemon writes it with an ack through PutUpdateTx.
	KVUpdate = "update_intent"
)

// Store is the open pair of stores. Not safe for concurrent use except
// through Ident, whose methods are (the MQTT side uses them).
type Store struct {
	ident     *storage.IdentityStore
	merch     *storage.MerchantStore // nil while a wipe is in progress
	merchPath string
	se        storage.Sealer
}

var _ terminal.Store = (*Store)(nil)

// Open opens the identity store and, unless an unbind is wiping it, the
// merchant store under dataDir, its values sealed by se.
func Open(dataDir string, se storage.Sealer) (_ *Store, err error) {
	idPath, merchPath, _ := storage.Paths(dataDir)
	s := &Store{merchPath: merchPath, se: se}
	if s.ident, err = storage.OpenIdentity(idPath); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	// A wipe in progress is only finished, never read: a power cut inside
	// storage.Wipe leaves a zeroed file that bbolt refuses, and
	// WipeMerchant erases the file by path when no store is open.
	iv, err := s.intent()
	if err != nil {
		return nil, err
	}
	if iv == nil || iv.Stage != terminal.StageWiping {
		if s.merch, err = storage.OpenMerchant(merchPath, se); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Ident is the identity store, for what is not the core's state: the
// inbox, the outbox and the seen command ids of the remote channel.
func (s *Store) Ident() *storage.IdentityStore { return s.ident }

// Close closes both stores.
func (s *Store) Close() error {
	var errs []error
	if s.merch != nil {
		errs = append(errs, s.merch.Close())
		s.merch = nil
	}
	if s.ident != nil {
		errs = append(errs, s.ident.Close())
		s.ident = nil
	}
	return errors.Join(errs...)
}

func (s *Store) intent() (*terminal.UnbindIntent, error) {
	raw, ok, err := s.ident.Intent()
	if err != nil || !ok {
		return nil, err
	}
	iv := new(terminal.UnbindIntent)
	if err := json.Unmarshal(raw, iv); err != nil {
		return nil, fmt.Errorf("unbind intent: %w", err)
	}
	if !iv.Stage.Valid() {
		return nil, fmt.Errorf("unbind intent %s: stage %q: %w", iv.CmdID, iv.Stage, storage.ErrCorrupt)
	}
	if _, err := remote.ParseUnsettledPolicy(string(iv.Unsettled)); err != nil {
		return nil, fmt.Errorf("unbind intent %s: %v: %w", iv.CmdID, err, storage.ErrCorrupt)
	}
	return iv, nil
}

func (s *Store) update() (*terminal.UpdateIntent, error) {
	raw, ok, err := s.ident.Get(KVUpdate)
	if err != nil || !ok {
		return nil, err
	}
	u := new(terminal.UpdateIntent)
	if err := json.Unmarshal(raw, u); err != nil {
		return nil, fmt.Errorf("update intent: %w", err)
	}
	if !u.Stage.Valid() {
		return nil, fmt.Errorf("update intent %s: stage %q: %w", u.CmdID, u.Stage, storage.ErrCorrupt)
	}
	return u, nil
}

// PutUpdateTx writes the update intent in tx (nil removes it): the
// daemon's ack transaction and the adapter's ops share it.
func PutUpdateTx(tx *storage.IdentityTx, u *terminal.UpdateIntent) error {
	if u == nil {
		return tx.Put(KVUpdate, nil)
	}
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return tx.Put(KVUpdate, b)
}

// Load reads the facts of both stores. The lifecycle is the core's
// decision (terminal.Resolve), not the store's.
func (s *Store) Load() (terminal.State, error) {
	id, err := s.ident.Identity()
	if err != nil {
		return terminal.State{}, err
	}
	lock, err := s.ident.PwdLock()
	if err != nil {
		return terminal.State{}, err
	}
	techLock, err := s.ident.TechPwdLock()
	if err != nil {
		return terminal.State{}, err
	}
	st := terminal.State{
		DeviceX25519Pub:   base64.StdEncoding.EncodeToString(id.DeviceX25519Pub),
		Serial:            id.Serial,
		TechPwdHash:       id.TechPwdHash,
		SupervisorPwdHash: id.SupervisorPwdHash,
		PwdLock:           pwdLockOf(lock),
		TechPwdLock:       pwdLockOf(techLock),
	}
	if _, st.Tampered, err = s.ident.Get(kvTampered); err != nil {
		return st, err
	}
	if st.Intent, err = s.intent(); err != nil {
		return st, err
	}
	if st.Update, err = s.update(); err != nil {
		return st, err
	}
	if raw, ok, err := s.ident.Get(kvTIDCounters); err != nil {
		return st, err
	} else if ok {
		if err := json.Unmarshal(raw, &st.TIDCounters); err != nil {
			return st, fmt.Errorf("TID counters: %w", err)
		}
	}
	if raw, ok, err := s.ident.Get(kvTimeFloor); err != nil {
		return st, err
	} else if ok {
		if st.TimeFloor, err = time.Parse(time.RFC3339, string(raw)); err != nil {
			return st, fmt.Errorf("time floor: %w", err)
		}
	}
	if s.merch == nil || (st.Intent != nil && st.Intent.Stage == terminal.StageWiping) {
		// The data key may be destroyed already: not read, only erased.
		return st, nil
	}
	if err := s.loadMerchant(&st); err != nil {
		return st, fmt.Errorf("load merchant store: %w", err)
	}
	return st, nil
}

func (s *Store) loadMerchant(st *terminal.State) error {
	return s.merch.View(func(tx *storage.MerchantTx) error {
		p, ok, err := tx.Params()
		if err != nil || !ok {
			return err
		}
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
		if raw, ok, err := tx.Reversal(); err != nil {
			return err
		} else if ok {
			st.Reversal = new(terminal.Reversal)
			if err := json.Unmarshal(raw, st.Reversal); err != nil {
				return fmt.Errorf("reversal slot: %w", err)
			}
		}
		return nil
	})
}

// Apply writes the identity ops in one fsynced transaction, then the
// merchant ops in another.
func (s *Store) Apply(ops []terminal.Op) error {
	var idOps, merchOps []terminal.Op
	for _, op := range ops {
		if terminal.IsIdentityOp(op) {
			idOps = append(idOps, op)
		} else {
			merchOps = append(merchOps, op)
		}
	}
	if len(idOps) > 0 {
		if err := s.applyIdentity(idOps); err != nil {
			return err
		}
	}
	if len(merchOps) == 0 {
		return nil
	}
	if s.merch == nil {
		return errors.New("persist: the merchant store is being wiped")
	}
	return s.merch.Update(func(tx *storage.MerchantTx) error {
		for _, op := range merchOps {
			if err := applyMerchant(tx, op); err != nil {
				return fmt.Errorf("persist %T: %w", op, err)
			}
		}
		return nil
	})
}

func (s *Store) applyIdentity(ops []terminal.Op) error {
	var counters map[string]terminal.Counters
	for _, op := range ops {
		if _, ok := op.(terminal.PutTIDCounters); ok {
			raw, found, err := s.ident.Get(kvTIDCounters)
			if err != nil {
				return err
			}
			counters = map[string]terminal.Counters{}
			if found {
				if err := json.Unmarshal(raw, &counters); err != nil {
					return fmt.Errorf("TID counters: %w", err)
				}
			}
			break
		}
	}
	// The floor only rises: a stale op never lowers it.
	var floor time.Time
	if raw, ok, err := s.ident.Get(kvTimeFloor); err != nil {
		return err
	} else if ok {
		floor, _ = time.Parse(time.RFC3339, string(raw))
	}
	return s.ident.Update(func(tx *storage.IdentityTx) error {
		for _, op := range ops {
			var err error
			switch op := op.(type) {
			case terminal.PutPwdLock:
				err = tx.SetPwdLock(storedPwdLock(op.Lock))
			case terminal.PutTechPwdLock:
				err = tx.SetTechPwdLock(storedPwdLock(op.Lock))
			case terminal.PutSupervisorPwd:
				err = tx.SetSupervisorPwdHash(op.Hash)
			case terminal.PutIntent:
				var b []byte
				if b, err = json.Marshal(op.Intent); err == nil {
					err = tx.PutIntent(b)
				}
			case terminal.ClearIntentOp:
				err = tx.ClearIntent()
			case terminal.PutUpdate:
				err = PutUpdateTx(tx, &op.Intent)
			case terminal.ClearUpdateOp:
				err = PutUpdateTx(tx, nil)
			case terminal.SetTampered:
				var v []byte
				if op.On {
					v = []byte("1")
				}
				err = tx.Put(kvTampered, v)
			case terminal.PutTIDCounters:
				counters[op.Key] = op.Counters
				var b []byte
				if b, err = json.Marshal(counters); err == nil {
					err = tx.Put(kvTIDCounters, b)
				}
			case terminal.PutTimeFloor:
				if op.At.After(floor) {
					floor = op.At
					err = tx.Put(kvTimeFloor, []byte(op.At.UTC().Format(time.RFC3339)))
				}
			default:
				err = errors.New("not an identity op")
			}
			if err != nil {
				return fmt.Errorf("persist %T: %w", op, err)
			}
		}
		return nil
	})
}

func applyMerchant(tx *storage.MerchantTx, op terminal.Op) error {
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

// WipeMerchant erases the merchant store (overwritten, removed, directory
// fsynced; by path when a power cut interrupted an earlier wipe) and opens
// a fresh, empty one. The caller destroys the data key first.
func (s *Store) WipeMerchant() (storage.WipeReport, error) {
	var rep storage.WipeReport
	var err error
	if s.merch != nil {
		rep, err = s.merch.Wipe()
		s.merch = nil
	} else {
		rep, err = storage.Wipe(s.merchPath)
	}
	if err != nil {
		return rep, fmt.Errorf("wipe merchant store: %w", err)
	}
	// A fresh, empty store: an activation that failed goes on without a
	// reboot, and a new data key is made only when something is sealed.
	if s.merch, err = storage.OpenMerchant(s.merchPath, s.se); err != nil {
		return rep, fmt.Errorf("reopen merchant store: %w", err)
	}
	return rep, nil
}

// pwdLockOf and storedPwdLock convert a password lockout between the core
// and the identity store (unix seconds, 0 = not locked).
func pwdLockOf(l storage.PwdLock) terminal.PwdLock {
	out := terminal.PwdLock{Fails: l.Failures}
	if l.LockedUntil != 0 {
		out.LockedUntil = time.Unix(l.LockedUntil, 0)
	}
	return out
}

func storedPwdLock(l terminal.PwdLock) storage.PwdLock {
	out := storage.PwdLock{Failures: l.Fails}
	if !l.LockedUntil.IsZero() {
		out.LockedUntil = l.LockedUntil.Unix()
	}
	return out
}
