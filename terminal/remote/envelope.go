package remote

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxEnvelope is the largest envelope accepted, in bytes (remote.md:
// "Envelopes over 16 KiB are refused unread").
const MaxEnvelope = 16 << 10

// Envelope failures. None of them gets an ack: an unverified message gets no
// reply (remote.md §Command payload), only a log line and a counter, so each
// is a distinct sentinel the caller can count.
var (
	ErrTooLarge     = errors.New("envelope over 16 KiB")
	ErrNotJSON      = errors.New("envelope is not JSON {kid,payload,sig} or {payload,sigs}")
	ErrUnknownKID   = errors.New("envelope kid unknown")
	ErrBadSignature = errors.New("envelope signature does not verify")
)

// Envelope wraps every cmd, ack and evt payload. Payload and signatures
// travel as standard base64 (encoding/json's []byte encoding), and every
// signature covers the exact payload bytes: there is no JSON
// canonicalisation, so the payload is never re-encoded between signing and
// verifying.
//
// An envelope carries either one signature (KID + Sig) or several (Sigs,
// remote.md: a command co-signed by several HQ operators), never both.
type Envelope struct {
	KID     string      `json:"kid,omitempty"`
	Payload []byte      `json:"payload"`
	Sig     []byte      `json:"sig,omitempty"`
	Sigs    []Signature `json:"sigs,omitempty"`
}

// Signature is one entry of a multi-signature envelope.
type Signature struct {
	KID string `json:"kid"`
	Sig []byte `json:"sig"`
}

// Signatures returns the envelope's signatures in the order they appear,
// one entry for a single-signature envelope.
func (e Envelope) Signatures() []Signature {
	if len(e.Sigs) > 0 {
		return e.Sigs
	}
	return []Signature{{KID: e.KID, Sig: e.Sig}}
}

// Signer is one key that signs an envelope.
type Signer struct {
	KID  string
	Priv ed25519.PrivateKey
}

// Seal signs payload with priv and returns the envelope JSON
// {"kid":…,"payload":…,"sig":…}.
func Seal(kid string, priv ed25519.PrivateKey, payload []byte) ([]byte, error) {
	if err := checkSigner(Signer{KID: kid, Priv: priv}); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return marshal(Envelope{KID: kid, Payload: payload, Sig: ed25519.Sign(priv, payload)})
}

// SealMulti signs payload with every signer and returns the envelope JSON
// {"payload":…,"sigs":[{"kid":…,"sig":…},…]}; one signer gives the same
// multi-signature form (use Seal for the single form).
func SealMulti(payload []byte, signers ...Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, errors.New("seal: no signer")
	}
	e := Envelope{Payload: payload}
	seen := make(map[string]bool, len(signers))
	for _, s := range signers {
		if err := checkSigner(s); err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		if seen[s.KID] {
			return nil, fmt.Errorf("seal: kid %q twice", s.KID)
		}
		seen[s.KID] = true
		e.Sigs = append(e.Sigs, Signature{KID: s.KID, Sig: ed25519.Sign(s.Priv, payload)})
	}
	return marshal(e)
}

// AddSignature co-signs an existing envelope: it returns the multi-signature
// form with the envelope's signatures, in order, and one more by s over the
// same payload bytes. A kid that already signed is refused (a second
// signature by the same key is not a second person).
func AddSignature(raw []byte, s Signer) ([]byte, error) {
	e, err := Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("co-sign: %w", err)
	}
	if err := checkSigner(s); err != nil {
		return nil, fmt.Errorf("co-sign: %w", err)
	}
	sigs := append([]Signature(nil), e.Signatures()...)
	for _, g := range sigs {
		if g.KID == s.KID {
			return nil, fmt.Errorf("co-sign: kid %q has already signed", s.KID)
		}
	}
	sigs = append(sigs, Signature{KID: s.KID, Sig: ed25519.Sign(s.Priv, e.Payload)})
	return marshal(Envelope{Payload: e.Payload, Sigs: sigs})
}

func checkSigner(s Signer) error {
	if s.KID == "" {
		return errors.New("empty kid")
	}
	if len(s.Priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("kid %q: private key is %d bytes, want %d", s.KID, len(s.Priv), ed25519.PrivateKeySize)
	}
	return nil
}

func marshal(e Envelope) ([]byte, error) {
	raw, err := json.Marshal(e)
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
// malformed input with the same sentinels as Open: an envelope needs a
// payload and either kid+sig or a non-empty sigs list whose entries each
// have a kid and a sig, never both forms.
func Decode(raw []byte) (Envelope, error) {
	if len(raw) > MaxEnvelope {
		return Envelope{}, fmt.Errorf("%d bytes: %w", len(raw), ErrTooLarge)
	}
	var e Envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if e.Payload == nil {
		return Envelope{}, fmt.Errorf("%w: payload is required", ErrNotJSON)
	}
	single := e.KID != "" || e.Sig != nil
	switch {
	case single && e.Sigs != nil:
		return Envelope{}, fmt.Errorf("%w: kid+sig and sigs together", ErrNotJSON)
	case single:
		if e.KID == "" || e.Sig == nil {
			return Envelope{}, fmt.Errorf("%w: kid and sig are required together", ErrNotJSON)
		}
	case len(e.Sigs) == 0:
		return Envelope{}, fmt.Errorf("%w: kid+sig or sigs is required", ErrNotJSON)
	default:
		for i, s := range e.Sigs {
			if s.KID == "" || s.Sig == nil {
				return Envelope{}, fmt.Errorf("%w: sigs[%d] needs kid and sig", ErrNotJSON, i)
			}
		}
	}
	return e, nil
}

// Open checks the size before reading anything, parses the envelope and
// verifies it against keys: it verifies when at least one signature by a
// kid in keys is valid over the exact payload bytes (remote.md). An
// envelope none of whose kids is known fails with ErrUnknownKID; one whose
// known kids' signatures all fail, with ErrBadSignature.
func Open(raw []byte, keys map[string]ed25519.PublicKey) (Envelope, error) {
	e, _, err := OpenSigners(raw, keys)
	return e, err
}

// OpenSigners is Open that also returns the distinct kids whose signatures
// verified, in the order they appear: what a signature policy counts.
func OpenSigners(raw []byte, keys map[string]ed25519.PublicKey) (Envelope, []string, error) {
	e, err := Decode(raw)
	if err != nil {
		return Envelope{}, nil, err
	}
	var valid []string
	known := false
	for _, s := range e.Signatures() {
		pub, ok := keys[s.KID]
		if !ok || len(pub) != ed25519.PublicKeySize {
			continue
		}
		known = true
		if len(s.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, e.Payload, s.Sig) {
			continue
		}
		if !slices.Contains(valid, s.KID) {
			valid = append(valid, s.KID)
		}
	}
	switch {
	case len(valid) > 0:
		return e, valid, nil
	case !known:
		return Envelope{}, nil, fmt.Errorf("kids %s: %w", kidList(e), ErrUnknownKID)
	default:
		return Envelope{}, nil, fmt.Errorf("kids %s: %w", kidList(e), ErrBadSignature)
	}
}

func kidList(e Envelope) string {
	var b strings.Builder
	for i, s := range e.Signatures() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(s.KID))
	}
	return b.String()
}
