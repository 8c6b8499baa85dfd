package storage

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Sealer encrypts and authenticates the merchant store's values. The secure
// element implements it (AES-256-GCM under a data key that never leaves the
// SE and is destroyed on unbind: crypto-erase).
type Sealer interface {
	Seal(plaintext, additionalData []byte) ([]byte, error)
	Open(sealed, additionalData []byte) ([]byte, error)
}

// Counters are the persisted STAN and batch number (acquirer.md "Terminal
// rules": the STAN is persisted before the request is sent).
type Counters struct {
	STAN  uint32
	Batch uint32
}

// TxnEntry is one journal record, as the caller serialised it.
type TxnEntry struct {
	Batch uint32
	STAN  uint32
	Rec   []byte
}

// Bucket and key names. They are not sensitive; values are all sealed with
// additional data naming bucket and key, so a value moved to another slot
// (a swapped journal record, a reversal image copied over the binding)
// fails authentication instead of being believed.
var (
	bktState   = []byte("state")
	bktJournal = []byte("journal")

	keyParams   = []byte("params")
	keyBinding  = []byte("binding")
	keyCounters = []byte("counters")
	keyReversal = []byte("reversal")
	keySettling = []byte("settling")
)

// adPrefix versions the additional-data format.
const adPrefix = "posagent/merchant/v1\x00"

func additionalData(bucket, key []byte) []byte {
	ad := make([]byte, 0, len(adPrefix)+len(bucket)+1+len(key))
	ad = append(ad, adPrefix...)
	ad = append(ad, bucket...)
	ad = append(ad, 0)
	return append(ad, key...)
}

// MerchantStore is the open merchant store.
type MerchantStore struct {
	db   *bolt.DB
	path string
	se   Sealer
}

// OpenMerchant opens the merchant store at path, creating an empty one (and
// its directory, 0700) if missing. Values are sealed and opened by se.
func OpenMerchant(path string, se Sealer) (*MerchantStore, error) {
	if se == nil {
		return nil, fmt.Errorf("open merchant store %s: no sealer", path)
	}
	db, err := openBolt("merchant", path)
	if err != nil {
		return nil, err
	}
	err = update(db, "open merchant store", func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bktState, bktJournal} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = guard(db.Close)
		return nil, err
	}
	return &MerchantStore{db: db, path: path, se: se}, nil
}

// Path is the store's file.
func (s *MerchantStore) Path() string { return s.path }

// Close closes the store.
func (s *MerchantStore) Close() error {
	if err := guard(s.db.Close); err != nil {
		return fmt.Errorf("close merchant store %s: %w", s.path, err)
	}
	return nil
}

// MerchantTx is one transaction on the merchant store, read-only inside
// View, read-write inside Update.
type MerchantTx struct {
	tx *bolt.Tx
	se Sealer
}

// Update runs fn in one read-write transaction: all its writes are
// committed, and fsynced, together when fn returns nil, or none when it
// returns an error. Use it to commit a response and clear the reversal
// slot atomically.
func (s *MerchantStore) Update(fn func(tx *MerchantTx) error) error {
	return update(s.db, "update merchant store", func(tx *bolt.Tx) error {
		return fn(&MerchantTx{tx: tx, se: s.se})
	})
}

// View runs fn in one read-only transaction (a consistent snapshot).
func (s *MerchantStore) View(fn func(tx *MerchantTx) error) error {
	return view(s.db, "read merchant store", func(tx *bolt.Tx) error {
		return fn(&MerchantTx{tx: tx, se: s.se})
	})
}

func (t *MerchantTx) get(bucket, key []byte) ([]byte, bool, error) {
	b := t.tx.Bucket(bucket)
	if b == nil {
		return nil, false, nil
	}
	sealed := b.Get(key)
	if sealed == nil {
		return nil, false, nil
	}
	plain, err := t.se.Open(clone(sealed), additionalData(bucket, key))
	if err != nil {
		return nil, false, fmt.Errorf("unseal %s/%s: %w", bucket, printable(key), err)
	}
	return plain, true, nil
}

func (t *MerchantTx) put(bucket, key, plain []byte) error {
	if plain == nil {
		plain = []byte{}
	}
	sealed, err := t.se.Seal(plain, additionalData(bucket, key))
	if err != nil {
		return fmt.Errorf("seal %s/%s: %w", bucket, printable(key), err)
	}
	b, err := t.tx.CreateBucketIfNotExists(bucket)
	if err != nil {
		return err
	}
	return b.Put(key, sealed)
}

func (t *MerchantTx) del(bucket, key []byte) error {
	b := t.tx.Bucket(bucket)
	if b == nil {
		return nil
	}
	return b.Delete(key)
}

// printable names a key in an error: fixed names as text, journal keys as
// batch/STAN.
func printable(key []byte) string {
	if len(key) == 8 {
		b, n := splitTxnKey(key)
		return fmt.Sprintf("%06d/%06d", b, n)
	}
	return string(key)
}

// Params returns the merchant parameters record.
func (t *MerchantTx) Params() ([]byte, bool, error) { return t.get(bktState, keyParams) }

// PutParams stores the merchant parameters record.
func (t *MerchantTx) PutParams(v []byte) error { return t.put(bktState, keyParams, v) }

// DeleteParams removes the merchant parameters (an activation that
// failed on a terminal that had none).
func (t *MerchantTx) DeleteParams() error { return t.del(bktState, keyParams) }

// Binding returns the settlement-card binding record.
func (t *MerchantTx) Binding() ([]byte, bool, error) { return t.get(bktState, keyBinding) }

// PutBinding stores the settlement-card binding record.
func (t *MerchantTx) PutBinding(v []byte) error { return t.put(bktState, keyBinding, v) }

// DeleteBinding removes the settlement-card binding (no error if absent).
func (t *MerchantTx) DeleteBinding() error { return t.del(bktState, keyBinding) }

// Counters returns the STAN and batch counters; zero values if never set.
func (t *MerchantTx) Counters() (Counters, error) {
	raw, ok, err := t.get(bktState, keyCounters)
	if err != nil || !ok {
		return Counters{}, err
	}
	if len(raw) != 8 {
		return Counters{}, fmt.Errorf("%w: counters record is %d bytes", ErrCorrupt, len(raw))
	}
	return Counters{STAN: binary.BigEndian.Uint32(raw), Batch: binary.BigEndian.Uint32(raw[4:])}, nil
}

// PutCounters stores the STAN and batch counters.
func (t *MerchantTx) PutCounters(c Counters) error {
	var raw [8]byte
	binary.BigEndian.PutUint32(raw[:], c.STAN)
	binary.BigEndian.PutUint32(raw[4:], c.Batch)
	return t.put(bktState, keyCounters, raw[:])
}

// txnKey orders the journal by batch then STAN (big-endian sorts
// numerically under bbolt's byte order).
func txnKey(batch, stan uint32) []byte {
	var k [8]byte
	binary.BigEndian.PutUint32(k[:], batch)
	binary.BigEndian.PutUint32(k[4:], stan)
	return k[:]
}

func splitTxnKey(k []byte) (batch, stan uint32) {
	return binary.BigEndian.Uint32(k), binary.BigEndian.Uint32(k[4:])
}

// PutTxn writes (or replaces) the journal record of (batch, stan).
func (t *MerchantTx) PutTxn(batch, stan uint32, rec []byte) error {
	return t.put(bktJournal, txnKey(batch, stan), rec)
}

// Txn returns the journal record of (batch, stan).
func (t *MerchantTx) Txn(batch, stan uint32) ([]byte, bool, error) {
	return t.get(bktJournal, txnKey(batch, stan))
}

// Txns returns the journal records of a batch in STAN order. (STAN wraps
// from 999999 to 000001; a batch that spans the wrap lists the wrapped
// STANs first, so a caller that needs the chronological order sorts by
// its record's own time.)
func (t *MerchantTx) Txns(batch uint32) ([]TxnEntry, error) {
	b := t.tx.Bucket(bktJournal)
	if b == nil {
		return nil, nil
	}
	var out []TxnEntry
	prefix := txnKey(batch, 0)[:4]
	c := b.Cursor()
	for k, v := c.Seek(prefix); len(k) == 8 && [4]byte(k[:4]) == [4]byte(prefix); k, v = c.Next() {
		plain, err := t.se.Open(clone(v), additionalData(bktJournal, k))
		if err != nil {
			return nil, fmt.Errorf("unseal %s/%s: %w", bktJournal, printable(k), err)
		}
		bn, sn := splitTxnKey(k)
		out = append(out, TxnEntry{Batch: bn, STAN: sn, Rec: plain})
	}
	return out, nil
}

// Batches returns the batch numbers that have journal records, ascending.
func (t *MerchantTx) Batches() ([]uint32, error) {
	b := t.tx.Bucket(bktJournal)
	if b == nil {
		return nil, nil
	}
	var out []uint32
	c := b.Cursor()
	for k, _ := c.First(); k != nil; {
		if len(k) != 8 {
			return nil, fmt.Errorf("%w: journal key %x", ErrCorrupt, k)
		}
		bn, _ := splitTxnKey(k)
		out = append(out, bn)
		if bn == ^uint32(0) {
			break
		}
		k, _ = c.Seek(txnKey(bn+1, 0))
	}
	return out, nil
}

// DeleteBatch removes every journal record of a batch (the previous closed
// batch, once the next settlement closes the current one).
func (t *MerchantTx) DeleteBatch(batch uint32) (int, error) {
	b := t.tx.Bucket(bktJournal)
	if b == nil {
		return 0, nil
	}
	prefix := txnKey(batch, 0)[:4]
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); len(k) == 8 && [4]byte(k[:4]) == [4]byte(prefix); k, _ = c.Next() {
		keys = append(keys, clone(k))
	}
	// Deleting while iterating a bbolt cursor skips keys; collect first.
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// Reversal returns the pending reversal image, if any.
func (t *MerchantTx) Reversal() ([]byte, bool, error) { return t.get(bktState, keyReversal) }

// PutReversal stores the pending reversal image.
func (t *MerchantTx) PutReversal(v []byte) error { return t.put(bktState, keyReversal, v) }

// ClearReversal removes the pending reversal (no error if none).
func (t *MerchantTx) ClearReversal() error { return t.del(bktState, keyReversal) }

// Settling returns the settlement-in-progress marker, if any.
func (t *MerchantTx) Settling() ([]byte, bool, error) { return t.get(bktState, keySettling) }

// PutSettling stores the settlement-in-progress marker: set with the
// settlement's STAN, cleared when the batch closes, so a settlement cut
// short (the host may have closed the batch) is resumed, not forgotten.
func (t *MerchantTx) PutSettling(v []byte) error { return t.put(bktState, keySettling, v) }

// ClearSettling removes the marker (no error if none).
func (t *MerchantTx) ClearSettling() error { return t.del(bktState, keySettling) }

// Single-operation helpers, each one fsynced transaction.

// Params returns the merchant parameters record.
func (s *MerchantStore) Params() (v []byte, ok bool, err error) {
	err = s.View(func(t *MerchantTx) error { v, ok, err = t.Params(); return err })
	return v, ok, err
}

// PutParams stores the merchant parameters record.
func (s *MerchantStore) PutParams(v []byte) error {
	return s.Update(func(t *MerchantTx) error { return t.PutParams(v) })
}

// Binding returns the settlement-card binding record.
func (s *MerchantStore) Binding() (v []byte, ok bool, err error) {
	err = s.View(func(t *MerchantTx) error { v, ok, err = t.Binding(); return err })
	return v, ok, err
}

// PutBinding stores the settlement-card binding record.
func (s *MerchantStore) PutBinding(v []byte) error {
	return s.Update(func(t *MerchantTx) error { return t.PutBinding(v) })
}

// DeleteBinding removes the settlement-card binding.
func (s *MerchantStore) DeleteBinding() error {
	return s.Update(func(t *MerchantTx) error { return t.DeleteBinding() })
}

// Counters returns the STAN and batch counters.
func (s *MerchantStore) Counters() (c Counters, err error) {
	err = s.View(func(t *MerchantTx) error { c, err = t.Counters(); return err })
	return c, err
}

// PutCounters stores the STAN and batch counters.
func (s *MerchantStore) PutCounters(c Counters) error {
	return s.Update(func(t *MerchantTx) error { return t.PutCounters(c) })
}

// PutTxn writes the journal record of (batch, stan).
func (s *MerchantStore) PutTxn(batch, stan uint32, rec []byte) error {
	return s.Update(func(t *MerchantTx) error { return t.PutTxn(batch, stan, rec) })
}

// Txn returns the journal record of (batch, stan).
func (s *MerchantStore) Txn(batch, stan uint32) (v []byte, ok bool, err error) {
	err = s.View(func(t *MerchantTx) error { v, ok, err = t.Txn(batch, stan); return err })
	return v, ok, err
}

// Txns returns the journal records of a batch in STAN order.
func (s *MerchantStore) Txns(batch uint32) (out []TxnEntry, err error) {
	err = s.View(func(t *MerchantTx) error { out, err = t.Txns(batch); return err })
	return out, err
}

// DeleteBatch removes every journal record of a batch and returns how many.
func (s *MerchantStore) DeleteBatch(batch uint32) (n int, err error) {
	err = s.Update(func(t *MerchantTx) error { n, err = t.DeleteBatch(batch); return err })
	return n, err
}

// Reversal returns the pending reversal image, if any.
func (s *MerchantStore) Reversal() (v []byte, ok bool, err error) {
	err = s.View(func(t *MerchantTx) error { v, ok, err = t.Reversal(); return err })
	return v, ok, err
}

// PutReversal stores the pending reversal image.
func (s *MerchantStore) PutReversal(v []byte) error {
	return s.Update(func(t *MerchantTx) error { return t.PutReversal(v) })
}

// ClearReversal removes the pending reversal.
func (s *MerchantStore) ClearReversal() error {
	return s.Update(func(t *MerchantTx) error { return t.ClearReversal() })
}
