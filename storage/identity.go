package storage

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/curve25519"

	"github.com/posagent/posagent/internal/durable"
	"github.com/posagent/posagent/terminal/remote"
)

// Identity is the factory identity of a terminal, created once by
// `posagentd factory-init` and never wiped.
type Identity struct {
	Serial            string             `json:"serial"`
	DeviceEd25519Priv ed25519.PrivateKey `json:"device_ed25519_priv"`
	DeviceEd25519Pub  ed25519.PublicKey  `json:"device_ed25519_pub"`
	DeviceX25519Priv  []byte             `json:"device_x25519_priv"`     // 32 bytes
	DeviceX25519Pub   []byte             `json:"device_x25519_pub"`      // 32 bytes
	HQKeys            map[string][]byte  `json:"hq_keys"`                // ops keys: kid -> Ed25519 public key
	HQRootKeys        map[string][]byte  `json:"hq_root_keys,omitempty"` // root keys: kid -> Ed25519 public key
	Policy            map[string]int     `json:"policy,omitempty"`       // command type -> distinct signatures needed
	TechPwdHash       string             `json:"tech_pwd_hash"`          // PHC string (HashPassword)
	SupervisorPwdHash string             `json:"supervisor_pwd_hash"`
	CreatedAt         time.Time          `json:"created_at"`
}

// Validate checks that the identity is complete and its key pairs match.
func (id Identity) Validate() error {
	if _, err := remote.ParseSerial(id.Serial); err != nil {
		return err
	}
	if len(id.DeviceEd25519Priv) != ed25519.PrivateKeySize || len(id.DeviceEd25519Pub) != ed25519.PublicKeySize {
		return errors.New("device Ed25519 key pair has the wrong size")
	}
	if !bytes.Equal(id.DeviceEd25519Priv.Public().(ed25519.PublicKey), id.DeviceEd25519Pub) {
		return errors.New("device Ed25519 public key does not match the private key")
	}
	if len(id.DeviceX25519Priv) != curve25519.ScalarSize || len(id.DeviceX25519Pub) != curve25519.PointSize {
		return errors.New("device X25519 key pair has the wrong size")
	}
	pub, err := curve25519.X25519(id.DeviceX25519Priv, curve25519.Basepoint)
	if err != nil || !bytes.Equal(pub, id.DeviceX25519Pub) {
		return errors.New("device X25519 public key does not match the private key")
	}
	if err := id.FactoryKeyring().Validate(); err != nil {
		return err
	}
	if id.TechPwdHash == "" || id.SupervisorPwdHash == "" {
		return errors.New("technician and supervisor password hashes are required")
	}
	return nil
}

// FactoryKeyring is the HQ keys, roles and policy factory-init installed
// (remote.md "Keys and policy"); hq_keys commands change the store's
// keyring from there (IdentityStore.Keyring).
func (id Identity) FactoryKeyring() remote.Keyring {
	var k remote.Keyring
	for _, set := range []struct {
		keys map[string][]byte
		role remote.Role
	}{{id.HQRootKeys, remote.RoleRoot}, {id.HQKeys, remote.RoleOps}} {
		for kid, pub := range set.keys {
			k.Keys = append(k.Keys, remote.HQKey{KID: kid, Pub: pub, Role: set.role})
		}
	}
	slices.SortFunc(k.Keys, func(a, b remote.HQKey) int { return strings.Compare(a.KID, b.KID) })
	for t, n := range id.Policy {
		if k.Policy == nil {
			k.Policy = map[remote.CommandType]int{}
		}
		k.Policy[remote.CommandType(t)] = n
	}
	return k
}

// PwdLock is the password failure state (terminal.md: the third wrong
// password in a row locks for 5 minutes; both survive a restart). The
// supervisor and the technician password each have their own.
type PwdLock struct {
	Failures    int   `json:"failures"`
	LockedUntil int64 `json:"locked_until"` // unix seconds; 0 = not locked
}

// SeenCommand is a recorded remote command: every verified command's id
// with its final ack, rejected ones included (remote.md: recorded ids
// survive the wipe, and the same payload again gets the same final ack).
type SeenCommand struct {
	ID            string    `json:"id"`
	PayloadSHA256 [32]byte  `json:"payload_sha256"`
	Ack           []byte    `json:"ack"` // final ack envelope bytes, re-sent verbatim
	At            time.Time `json:"at"`
	// ExpiresAt is the command's expires_at, when it was readable.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// PruneAt is when the record may go. PutSeen sets it, when zero, to
	// the later of 30 days after ExpiresAt (remote.md) and At +
	// remote.RecordKept (which covers any command that passed the window
	// checks, and a record made on a clock that read far behind).
	PruneAt time.Time `json:"prune_at"`
}

// OutboxItem is a message waiting to reach the broker.
type OutboxItem struct {
	Seq     uint64
	Topic   string
	Payload []byte
}

// ErrIdentityExists is returned by CreateIdentity when a store is already
// at the path.
var ErrIdentityExists = errors.New("identity store already exists")

// ErrNoIdentity is returned by OpenIdentity when there is no identity.
var ErrNoIdentity = errors.New("no factory identity (run posagentd factory-init)")

var (
	bktIdentity  = []byte("identity")
	bktSeen      = []byte("seen")
	bktSeenPrune = []byte("seen_prune") // prune time (8 bytes) + id -> nil: what pruning walks
	bktOutbox    = []byte("outbox")
	bktInbox     = []byte("inbox") // sequence -> one verified-on-arrival command envelope
	bktKV        = []byte("kv")

	keyIdentity    = []byte("identity")
	keyPwdLock     = []byte("pwd_lock")
	keyTechPwdLock = []byte("tech_pwd_lock")
	keyIntent      = []byte("unbind_intent")
	keyKeyring     = []byte("hq_keyring")
)

// identityBuckets are every bucket of the identity store.
var identityBuckets = [][]byte{bktIdentity, bktSeen, bktSeenPrune, bktOutbox, bktInbox, bktKV}

// IdentityStore is the open identity store. Its methods are safe for
// concurrent use (bbolt serialises writers).
type IdentityStore struct {
	db   *bolt.DB
	path string
}

// CreateIdentity writes a new identity store at path. It refuses to
// overwrite an existing file. The store is built in a temporary file and
// linked into place (link(2) fails if the name exists, unlike rename), so
// a power cut leaves either no store or a complete one.
func CreateIdentity(path string, id Identity) (err error) {
	wrap := func(err error) error { return fmt.Errorf("create identity store %s: %w", path, err) }
	if err := id.Validate(); err != nil {
		return wrap(err)
	}
	if id.CreatedAt.IsZero() {
		id.CreatedAt = time.Now().UTC()
	}
	if _, err := os.Lstat(path); err == nil {
		return wrap(ErrIdentityExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return wrap(err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return wrap(err)
	}
	tmp, err := os.CreateTemp(dir, ".identity-*.tmp")
	if err != nil {
		return wrap(err)
	}
	tmpPath := tmp.Name()
	_ = tmp.Close()
	defer func() { _ = os.Remove(tmpPath) }() // after a successful link this only drops the temp name
	if err := os.Chmod(tmpPath, fileMode); err != nil {
		return wrap(err)
	}
	// bbolt initialises an empty file.
	db, err := openBolt("identity", tmpPath)
	if err != nil {
		return wrap(err)
	}
	raw, err := json.Marshal(id)
	if err != nil {
		_ = db.Close()
		return wrap(err)
	}
	err = update(db, "write identity", func(tx *bolt.Tx) error {
		for _, name := range identityBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		b := tx.Bucket(bktIdentity)
		if err := b.Put(keyIdentity, raw); err != nil {
			return err
		}
		lock, _ := json.Marshal(PwdLock{})
		return b.Put(keyPwdLock, lock)
	})
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return wrap(err)
	}
	if err := os.Link(tmpPath, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return wrap(ErrIdentityExists)
		}
		return wrap(err)
	}
	if err := os.Remove(tmpPath); err != nil {
		return wrap(err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return wrap(err)
	}
	return nil
}

// OpenIdentity opens the identity store at path. A missing file or a file
// without an identity is ErrNoIdentity; it never creates one.
func OpenIdentity(path string) (*IdentityStore, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open identity store %s: %w", path, ErrNoIdentity)
		}
		return nil, fmt.Errorf("open identity store %s: %w", path, err)
	}
	db, err := openBolt("identity", path)
	if err != nil {
		return nil, err
	}
	s := &IdentityStore{db: db, path: path}
	if _, err := s.Identity(); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open identity store %s: %w", path, err)
	}
	// Buckets added by a later version appear on the first open after an
	// upgrade; every method can then assume they exist.
	err = update(db, "open identity store", func(tx *bolt.Tx) error {
		for _, name := range identityBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return migrateInbox(tx)
	})
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Path is the store's file.
func (s *IdentityStore) Path() string { return s.path }

// Close closes the store.
func (s *IdentityStore) Close() error {
	if err := guard(s.db.Close); err != nil {
		return fmt.Errorf("close identity store %s: %w", s.path, err)
	}
	return nil
}

// Identity returns the factory identity.
func (s *IdentityStore) Identity() (Identity, error) {
	var id Identity
	err := view(s.db, "read identity", func(tx *bolt.Tx) error {
		b := tx.Bucket(bktIdentity)
		if b == nil {
			return ErrNoIdentity
		}
		raw := b.Get(keyIdentity)
		if raw == nil {
			return ErrNoIdentity
		}
		if err := json.Unmarshal(raw, &id); err != nil {
			return fmt.Errorf("%w: identity record: %v", ErrCorrupt, err)
		}
		return nil
	})
	return id, err
}

// SetSupervisorPwdHash replaces the supervisor password hash (PHC string).
func (s *IdentityStore) SetSupervisorPwdHash(hash string) error {
	if _, _, _, err := parsePHC(hash); err != nil {
		return fmt.Errorf("set supervisor password: %w", err)
	}
	return update(s.db, "set supervisor password", func(tx *bolt.Tx) error {
		b := tx.Bucket(bktIdentity)
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
	})
}

// PwdLock returns the supervisor password failure state.
func (s *IdentityStore) PwdLock() (PwdLock, error) {
	var l PwdLock
	err := view(s.db, "read password lock", func(tx *bolt.Tx) error {
		raw := tx.Bucket(bktIdentity).Get(keyPwdLock)
		if raw == nil {
			return nil
		}
		return json.Unmarshal(raw, &l)
	})
	return l, err
}

// SetPwdLock stores the supervisor password failure state.
func (s *IdentityStore) SetPwdLock(l PwdLock) error {
	raw, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return update(s.db, "write password lock", func(tx *bolt.Tx) error {
		return tx.Bucket(bktIdentity).Put(keyPwdLock, raw)
	})
}

// Intent returns the persisted unbind intent (the caller's bytes).
func (s *IdentityStore) Intent() ([]byte, bool, error) {
	return s.getIn(bktIdentity, keyIntent, "read unbind intent")
}

// PutIntent persists the unbind intent.
func (s *IdentityStore) PutIntent(v []byte) error {
	if len(v) == 0 {
		return errors.New("write unbind intent: empty intent")
	}
	return update(s.db, "write unbind intent", func(tx *bolt.Tx) error {
		return tx.Bucket(bktIdentity).Put(keyIntent, v)
	})
}

// ClearIntent removes the unbind intent (no error if there is none).
func (s *IdentityStore) ClearIntent() error {
	return update(s.db, "clear unbind intent", func(tx *bolt.Tx) error {
		return tx.Bucket(bktIdentity).Delete(keyIntent)
	})
}

type outboxRecord struct {
	Topic   string `json:"topic"`
	Payload []byte `json:"payload"`
}

// Enqueue appends a message to the durable outbox and returns its sequence
// number. Sequence numbers only grow (bbolt's persisted bucket sequence),
// so a Done for an old number can never drop a newer message.
func (s *IdentityStore) Enqueue(topic string, payload []byte) (uint64, error) {
	if topic == "" {
		return 0, errors.New("enqueue: empty topic")
	}
	raw, err := json.Marshal(outboxRecord{Topic: topic, Payload: payload})
	if err != nil {
		return 0, err
	}
	var seq uint64
	err = update(s.db, "enqueue", func(tx *bolt.Tx) error {
		b := tx.Bucket(bktOutbox)
		var err error
		if seq, err = b.NextSequence(); err != nil {
			return err
		}
		return b.Put(u64(seq), raw)
	})
	return seq, err
}

// Outbox returns the waiting messages, oldest first (keys are big-endian
// sequence numbers, so bbolt's byte order is their numeric order).
func (s *IdentityStore) Outbox() ([]OutboxItem, error) {
	var items []OutboxItem
	err := view(s.db, "read outbox", func(tx *bolt.Tx) error {
		return tx.Bucket(bktOutbox).ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("%w: outbox key %x", ErrCorrupt, k)
			}
			var r outboxRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("%w: outbox item %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
			}
			items = append(items, OutboxItem{Seq: binary.BigEndian.Uint64(k), Topic: r.Topic, Payload: r.Payload})
			return nil
		})
	})
	return items, err
}

// Done removes a delivered message (no error if it is already gone).
func (s *IdentityStore) Done(seq uint64) error {
	return update(s.db, "outbox done", func(tx *bolt.Tx) error {
		return tx.Bucket(bktOutbox).Delete(u64(seq))
	})
}

// Get reads a small value of the generic key/value area.
func (s *IdentityStore) Get(key string) ([]byte, bool, error) {
	if key == "" {
		return nil, false, errors.New("get: empty key")
	}
	return s.getIn(bktKV, []byte(key), "read "+key)
}

// Put writes a small value of the generic key/value area; a nil value
// deletes the key.
func (s *IdentityStore) Put(key string, v []byte) error {
	if key == "" || len(key) > bolt.MaxKeySize {
		return fmt.Errorf("put: bad key %q", key)
	}
	return update(s.db, "write "+key, func(tx *bolt.Tx) error {
		if v == nil {
			return tx.Bucket(bktKV).Delete([]byte(key))
		}
		return tx.Bucket(bktKV).Put([]byte(key), v)
	})
}

func (s *IdentityStore) getIn(bucket, key []byte, what string) ([]byte, bool, error) {
	var out []byte
	var ok bool
	err := view(s.db, what, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucket).Get(key); v != nil {
			out, ok = clone(v), true
		}
		return nil
	})
	return out, ok, err
}

func u64(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}
