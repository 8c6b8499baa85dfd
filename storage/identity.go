package storage

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/posagent/posagent/internal/durable"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/curve25519"
)

// Identity is the factory identity of a terminal, created once by
// `posagentd factory-init` and never wiped.
type Identity struct {
	Serial            string             `json:"serial"`
	DeviceEd25519Priv ed25519.PrivateKey `json:"device_ed25519_priv"`
	DeviceEd25519Pub  ed25519.PublicKey  `json:"device_ed25519_pub"`
	DeviceX25519Priv  []byte             `json:"device_x25519_priv"` // 32 bytes
	DeviceX25519Pub   []byte             `json:"device_x25519_pub"`  // 32 bytes
	HQKeys            map[string][]byte  `json:"hq_keys"`            // kid -> Ed25519 public key
	TechPwdHash       string             `json:"tech_pwd_hash"`      // PHC string (HashPassword)
	SupervisorPwdHash string             `json:"supervisor_pwd_hash"`
	CreatedAt         time.Time          `json:"created_at"`
}

// serialRE is remote.md's serial syntax: it is part of MQTT topic names.
var serialRE = regexp.MustCompile(`^[A-Za-z0-9-]{4,32}$`)

// Validate checks that the identity is complete and its key pairs match.
func (id Identity) Validate() error {
	if !serialRE.MatchString(id.Serial) {
		return fmt.Errorf("serial %q is not [A-Za-z0-9-]{4,32}", id.Serial)
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
	if len(id.HQKeys) == 0 {
		return errors.New("no HQ key")
	}
	for kid, k := range id.HQKeys {
		if kid == "" || len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("HQ key %q: want a non-empty kid and a %d-byte Ed25519 public key", kid, ed25519.PublicKeySize)
		}
	}
	if id.TechPwdHash == "" || id.SupervisorPwdHash == "" {
		return errors.New("technician and supervisor password hashes are required")
	}
	return nil
}

// PwdLock is the supervisor password failure state (terminal.md: the third
// wrong password in a row locks for 5 minutes; both survive a restart).
type PwdLock struct {
	Failures    int   `json:"failures"`
	LockedUntil int64 `json:"locked_until"` // unix seconds; 0 = not locked
}

// SeenCommand is an executed remote command (remote.md: seen ids survive
// the wipe and a re-sent id with the same payload gets the same final ack).
type SeenCommand struct {
	ID            string    `json:"id"`
	PayloadSHA256 [32]byte  `json:"payload_sha256"`
	Ack           []byte    `json:"ack"` // final ack envelope bytes, re-sent verbatim
	At            time.Time `json:"at"`
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
	bktIdentity = []byte("identity")
	bktSeen     = []byte("seen")
	bktOutbox   = []byte("outbox")
	bktKV       = []byte("kv")

	keyIdentity = []byte("identity")
	keyPwdLock  = []byte("pwd_lock")
	keyIntent   = []byte("unbind_intent")
)

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
		for _, name := range [][]byte{bktIdentity, bktSeen, bktOutbox, bktKV} {
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
		for _, name := range [][]byte{bktSeen, bktOutbox, bktKV} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
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

// Seen returns the executed command with this id, if any.
func (s *IdentityStore) Seen(id string) (SeenCommand, bool, error) {
	var c SeenCommand
	var ok bool
	if id == "" {
		return c, false, nil
	}
	err := view(s.db, "read seen command", func(tx *bolt.Tx) error {
		raw := tx.Bucket(bktSeen).Get([]byte(id))
		if raw == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(raw, &c)
	})
	return c, ok, err
}

// PutSeen records an executed command (replacing an earlier record of the
// same id, e.g. when its final ack is known).
func (s *IdentityStore) PutSeen(c SeenCommand) error {
	if c.ID == "" || len(c.ID) > bolt.MaxKeySize {
		return fmt.Errorf("put seen command: bad id %q", c.ID)
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return update(s.db, "write seen command", func(tx *bolt.Tx) error {
		return tx.Bucket(bktSeen).Put([]byte(c.ID), raw)
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
