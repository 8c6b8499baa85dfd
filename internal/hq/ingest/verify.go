// Package ingest takes what terminals publish (pos/v1/+/ack, evt, status),
// verifies it and records it in HQ's database: group commits of verified
// messages, each message acknowledged to the broker (PUBACK) only after the
// transaction that recorded it has committed. A message that is malformed
// or does not verify under the terminal's registered device key is counted
// (the rejects table and a counter), logged, acknowledged (a redelivery
// would not make it better) and never taken as truth.
package ingest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/terminal/remote"
)

// Reasons a message is refused (the rejects table's reason column).
const (
	RejTopic       = "bad-topic"       // not pos/v1/<serial>/{ack,evt,status}
	RejTooLarge    = "too-large"       // over remote.MaxEnvelope
	RejEnvelope    = "not-an-envelope" // not {kid,payload,sig}
	RejWrongKID    = "wrong-kid"       // kid is not dev-<serial of the topic>
	RejUnknown     = "unknown-device"  // serial not registered
	RejSignature   = "bad-signature"
	RejPayload     = "invalid-payload" // verified, but not a v1 ack/event/status
	RejSerial      = "serial-mismatch" // payload names another serial than the topic
	RejWrongTarget = "wrong-target"    // an ack from another terminal than the command's
)

// rejection is a refused message: why, and a detail for the log.
type rejection struct {
	reason string
	detail string
}

func (r *rejection) Error() string { return r.reason + ": " + r.detail }

func reject(reason, format string, a ...any) error {
	return &rejection{reason: reason, detail: fmt.Sprintf(format, a...)}
}

// keyCache holds registered device keys; a serial HQ does not know is
// remembered as unknown for a short while, so a flood from an unregistered
// client costs no database round trip per message.
type keyCache struct {
	st  *store.Store
	ttl time.Duration

	mu      sync.Mutex
	keys    map[string]ed25519.PublicKey
	unknown map[string]time.Time
}

func newKeyCache(st *store.Store) *keyCache {
	return &keyCache{st: st, ttl: 10 * time.Second, keys: map[string]ed25519.PublicKey{}, unknown: map[string]time.Time{}}
}

// lookup returns the key, nil for an unregistered serial, or a database
// error.
func (k *keyCache) lookup(ctx context.Context, serial string, now time.Time) (ed25519.PublicKey, error) {
	k.mu.Lock()
	if pub, ok := k.keys[serial]; ok {
		k.mu.Unlock()
		return pub, nil
	}
	if until, ok := k.unknown[serial]; ok && now.Before(until) {
		k.mu.Unlock()
		return nil, nil
	}
	k.mu.Unlock()
	pub, err := k.st.DeviceKey(ctx, serial)
	if errors.Is(err, store.ErrNotFound) {
		k.mu.Lock()
		if len(k.unknown) > 100_000 {
			clear(k.unknown)
		}
		k.unknown[serial] = now.Add(k.ttl)
		k.mu.Unlock()
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.keys[serial] = pub
	k.mu.Unlock()
	return pub, nil
}

// forget drops a serial (re-registered with new keys).
func (k *keyCache) forget(serial string) {
	k.mu.Lock()
	delete(k.keys, serial)
	delete(k.unknown, serial)
	k.mu.Unlock()
}

// verified is a message that passed every check.
type verified struct {
	serial   string
	kind     string
	envelope []byte // ack/evt: the envelope as received
	ack      remote.Ack
	event    remote.Event
	status   store.StatusUpdate
}

// verify checks one message. It returns a *rejection for a message to
// refuse, or another error when the database could not be asked (retry).
func (k *keyCache) verify(ctx context.Context, topic string, payload []byte, now time.Time) (verified, error) {
	serial, kind, ok := remote.ParseTopic(topic)
	if !ok || kind == remote.KindCmd {
		return verified{}, reject(RejTopic, "topic %q", topic)
	}
	v := verified{serial: serial, kind: kind}
	if len(payload) > remote.MaxEnvelope {
		return v, reject(RejTooLarge, "%d bytes", len(payload))
	}
	pub, err := k.lookup(ctx, serial, now)
	if err != nil {
		return v, err
	}
	if pub == nil {
		return v, reject(RejUnknown, "%s is not registered", serial)
	}
	if kind == remote.KindStatus {
		// remote.md: status is plain JSON, not an envelope; what vouches
		// for it is the broker's ACL (a terminal can only publish under
		// its own serial). It is checked for shape and serial.
		st, err := parseStatus(serial, payload)
		if err != nil {
			return v, err
		}
		v.status = st
		return v, nil
	}
	env, err := remote.Decode(payload)
	if err != nil {
		return v, reject(RejEnvelope, "%v", err)
	}
	if env.KID != remote.DeviceKID(serial) || len(env.Sigs) > 0 {
		return v, reject(RejWrongKID, "kid %q on the topic of %s", env.KID, serial)
	}
	if !ed25519.Verify(pub, env.Payload, env.Sig) {
		return v, reject(RejSignature, "signature of %s does not verify", env.KID)
	}
	v.envelope = payload
	switch kind {
	case remote.KindAck:
		a, err := remote.ParseAck(env.Payload)
		if err != nil {
			return v, reject(RejPayload, "%v", err)
		}
		switch {
		case a.Serial != serial:
			return v, reject(RejSerial, "ack for %q on the topic of %s", a.Serial, serial)
		case !remote.ValidID(a.CmdID) && !(a.CmdID == "" && a.State == remote.AckRejected):
			return v, reject(RejPayload, "cmd_id %q", a.CmdID)
		}
		switch a.State {
		case remote.AckRejected, remote.AckAccepted, remote.AckInProgress, remote.AckSucceeded, remote.AckFailed:
		default:
			return v, reject(RejPayload, "ack state %q", a.State)
		}
		v.ack = a
	case remote.KindEvt:
		e, err := remote.ParseEvent(env.Payload)
		if err != nil {
			return v, reject(RejPayload, "%v", err)
		}
		if e.Serial != serial {
			return v, reject(RejSerial, "event for %q on the topic of %s", e.Serial, serial)
		}
		if !remote.ValidID(e.ID) || e.Type == "" {
			return v, reject(RejPayload, "event id %q type %q", e.ID, e.Type)
		}
		v.event = e
	}
	return v, nil
}

// parseStatus reads a status payload. The Last Will carries only serial
// and online:false; a full status names the state. Unknown keys are
// ignored (remote.md: later versions may add some).
func parseStatus(serial string, payload []byte) (store.StatusUpdate, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		return store.StatusUpdate{}, reject(RejPayload, "status: %v", err)
	}
	var st struct {
		Serial          string    `json:"serial"`
		Online          *bool     `json:"online"`
		State           string    `json:"state"`
		TID             string    `json:"tid"`
		BatchNo         string    `json:"batch_no"`
		BatchCount      int       `json:"batch_count"`
		Version         string    `json:"version"`
		At              time.Time `json:"at"`
		Clock           string    `json:"clock"`
		PendingReversal bool      `json:"pending_reversal"`
		DiskFreeKiB     int64     `json:"disk_free_kib"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		return store.StatusUpdate{}, reject(RejPayload, "status: %v", err)
	}
	if st.Serial != serial {
		return store.StatusUpdate{}, reject(RejSerial, "status of %q on the topic of %s", st.Serial, serial)
	}
	if st.Online == nil {
		return store.StatusUpdate{}, reject(RejPayload, "status without online")
	}
	if _, full := raw["state"]; !full {
		if *st.Online {
			return store.StatusUpdate{}, reject(RejPayload, "online status without state")
		}
		return store.StatusUpdate{Online: false}, nil
	}
	switch st.State {
	case "unactivated", "active", "unbinding", "tampered":
	default:
		return store.StatusUpdate{}, reject(RejPayload, "status state %q", st.State)
	}
	if st.At.IsZero() {
		return store.StatusUpdate{}, reject(RejPayload, "status without at")
	}
	return store.StatusUpdate{Full: true, Online: *st.Online, State: st.State, TID: st.TID, BatchNo: st.BatchNo,
		BatchCount: st.BatchCount, Version: st.Version, Clock: st.Clock, PendingReversal: st.PendingReversal,
		DiskFreeKiB: st.DiskFreeKiB, At: st.At, Raw: string(bytes.TrimSpace(payload))}, nil
}
