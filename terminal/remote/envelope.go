package remote

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
)

// MaxEnvelope is the largest envelope accepted, in bytes (remote.md:
// "Envelopes over 16 KiB are refused unread").
const MaxEnvelope = 16 << 10

// Envelope failures. None of them gets an ack: an unverified message gets no
// reply (remote.md §Command payload), only a log line and a counter, so each
// is a distinct sentinel the caller can count.
var (
	ErrTooLarge     = errors.New("envelope over 16 KiB")
	ErrNotJSON      = errors.New("envelope is not JSON {kid,payload,sig}")
	ErrUnknownKID   = errors.New("envelope kid unknown")
	ErrBadSignature = errors.New("envelope signature does not verify")
)

// Envelope wraps every cmd, ack and evt payload. Payload and Sig travel as
// standard base64 (encoding/json's []byte encoding), and the signature covers
// the exact payload bytes: there is no JSON canonicalisation, so the payload
// is never re-encoded between signing and verifying.
type Envelope struct {
	KID     string `json:"kid"`
	Payload []byte `json:"payload"`
	Sig     []byte `json:"sig"`
}

// Seal signs payload with priv and returns the envelope JSON
// {"kid":…,"payload":…,"sig":…}.
func Seal(kid string, priv ed25519.PrivateKey, payload []byte) ([]byte, error) {
	if kid == "" {
		return nil, errors.New("seal: empty kid")
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("seal: private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	raw, err := json.Marshal(Envelope{KID: kid, Payload: payload, Sig: ed25519.Sign(priv, payload)})
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if len(raw) > MaxEnvelope {
		return nil, fmt.Errorf("seal: %d-byte envelope: %w", len(raw), ErrTooLarge)
	}
	return raw, nil
}

// Decode parses an envelope without verifying it (HQ tools use it to show
// what arrived; a terminal must use Open). It refuses oversized and
// malformed input with the same sentinels as Open.
func Decode(raw []byte) (Envelope, error) {
	if len(raw) > MaxEnvelope {
		return Envelope{}, fmt.Errorf("%d bytes: %w", len(raw), ErrTooLarge)
	}
	var e Envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if e.KID == "" || e.Payload == nil || e.Sig == nil {
		return Envelope{}, fmt.Errorf("%w: kid, payload and sig are required", ErrNotJSON)
	}
	return e, nil
}

// Open checks the size before reading anything, parses the envelope, looks
// its kid up in keys and verifies the signature over the exact payload bytes.
func Open(raw []byte, keys map[string]ed25519.PublicKey) (Envelope, error) {
	e, err := Decode(raw)
	if err != nil {
		return Envelope{}, err
	}
	pub, ok := keys[e.KID]
	if !ok || len(pub) != ed25519.PublicKeySize {
		return Envelope{}, fmt.Errorf("kid %q: %w", e.KID, ErrUnknownKID)
	}
	if len(e.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, e.Payload, e.Sig) {
		return Envelope{}, fmt.Errorf("kid %q: %w", e.KID, ErrBadSignature)
	}
	return e, nil
}
