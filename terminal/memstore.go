package terminal

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// MemStore is the in-memory twin of the daemon's bbolt stores, like etcd
// raft's MemoryStorage: it keeps exactly what the bbolt adapter would have
// on disk, so transcripts can apply what the machine persists, restart a
// machine from it, and make a write fail. It is not safe for concurrent
// use.
type MemStore struct {
	// Base is the factory identity part of the state (serial, password
	// hashes, device key), returned by every Load.
	Base State
	// Fail, when set, is returned by the next Apply, which then writes
	// nothing (a full disk, an I/O error).
	Fail error

	// identity store
	pwdLock     PwdLock
	techLock    PwdLock
	supervisor  string
	intent      *UnbindIntent
	update      *UpdateIntent
	tampered    bool
	tidCounters map[string]Counters
	floor       time.Time

	// merchant store
	merchant *Merchant
	binding  *Binding
	counters Counters
	txns     map[BatchNo]map[STAN]Txn
	reversal *Reversal
	settling BatchNo
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty store with the factory identity base.
func NewMemStore(base State) *MemStore {
	return &MemStore{Base: base, supervisor: base.SupervisorPwdHash, pwdLock: base.PwdLock, techLock: base.TechPwdLock}
}

// Load returns what a reboot would find. A wipe in progress (the intent's
// stage is "wiping") reads no merchant data, as the bbolt adapter cannot:
// the data key may be destroyed already.
func (s *MemStore) Load() (State, error) {
	st := s.Base
	st.PwdLock = s.pwdLock
	st.TechPwdLock = s.techLock
	st.SupervisorPwdHash = s.supervisor
	st.Tampered = s.tampered
	st.TimeFloor = s.floor
	st.TIDCounters = maps.Clone(s.tidCounters)
	st.Merchant, st.Binding, st.Counters, st.Journal, st.Prev, st.PrevBatch, st.Reversal, st.Settling = Merchant{}, nil, Counters{}, nil, nil, 0, nil, 0
	if s.intent != nil {
		iv := *s.intent
		st.Intent = &iv
	}
	if s.update != nil {
		u := *s.update
		st.Update = &u
	}
	if st.Intent != nil && st.Intent.Stage == stageWiping {
		return st, nil
	}
	if s.merchant == nil {
		return st, nil
	}
	st.Merchant = *s.merchant
	if s.binding != nil {
		b := *s.binding
		st.Binding = &b
	}
	st.Counters = s.counters
	if st.Counters.Batch == 0 {
		st.Counters.Batch = 1
	}
	for _, b := range slices.Sorted(maps.Keys(s.txns)) {
		var list []Txn
		for _, stan := range slices.Sorted(maps.Keys(s.txns[b])) {
			list = append(list, s.txns[b][stan])
		}
		switch {
		case b == st.Counters.Batch:
			st.Journal = list
		case b > st.PrevBatch:
			st.Prev, st.PrevBatch = list, b
		}
	}
	if s.reversal != nil {
		rv := *s.reversal
		st.Reversal = &rv
	}
	st.Settling = s.settling
	return st, nil
}

// Apply writes ops, all or none (the bbolt adapter writes each store's
// part in one transaction; a failure there writes none of that part).
func (s *MemStore) Apply(ops []Op) error {
	if err := s.Fail; err != nil {
		s.Fail = nil
		return err
	}
	next := s.clone()
	for _, op := range ops {
		if err := next.apply(op); err != nil {
			return err
		}
	}
	*s = *next
	return nil
}

// WipeMerchant erases the merchant store, as the shell's wipe does.
func (s *MemStore) WipeMerchant() error {
	if err := s.Fail; err != nil {
		s.Fail = nil
		return err
	}
	s.merchant, s.binding, s.counters, s.txns, s.reversal, s.settling = nil, nil, Counters{}, nil, nil, 0
	return nil
}

// errBadOp is an op the store does not know: a programming error.
var errBadOp = errors.New("memstore: unknown op")

func (s *MemStore) clone() *MemStore {
	c := *s
	c.tidCounters = maps.Clone(s.tidCounters)
	c.txns = make(map[BatchNo]map[STAN]Txn, len(s.txns))
	for b, m := range s.txns {
		c.txns[b] = maps.Clone(m)
	}
	return &c
}

func (s *MemStore) apply(op Op) error {
	switch op := op.(type) {
	case PutPwdLock:
		s.pwdLock = op.Lock
	case PutTechPwdLock:
		s.techLock = op.Lock
	case PutSupervisorPwd:
		s.supervisor = op.Hash
	case PutIntent:
		iv := op.Intent
		s.intent = &iv
	case ClearIntentOp:
		s.intent = nil
	case PutUpdate:
		u := op.Intent
		s.update = &u
	case ClearUpdateOp:
		s.update = nil
	case SetTampered:
		s.tampered = op.On
	case PutTIDCounters:
		if s.tidCounters == nil {
			s.tidCounters = map[string]Counters{}
		}
		s.tidCounters[op.Key] = op.Counters
	case PutTimeFloor:
		if op.At.After(s.floor) {
			s.floor = op.At
		}
	case PutParams:
		m := op.Merchant
		s.merchant = &m
	case DeleteParams:
		s.merchant = nil
	case PutBinding:
		b := op.Binding
		s.binding = &b
	case PutCounters:
		s.counters = op.Counters
	case PutTxn:
		if s.txns[op.Txn.Batch] == nil {
			s.txns[op.Txn.Batch] = map[STAN]Txn{}
		}
		s.txns[op.Txn.Batch][op.Txn.STAN] = op.Txn
	case DeleteBatch:
		delete(s.txns, op.Batch)
	case PutReversal:
		rv := op.Reversal
		s.reversal = &rv
	case ClearReversal:
		s.reversal = nil
	case PutSettling:
		s.settling = op.Batch
	case ClearSettling:
		s.settling = 0
	default:
		return fmt.Errorf("%w %T", errBadOp, op)
	}
	return nil
}
