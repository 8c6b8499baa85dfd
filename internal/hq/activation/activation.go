// Package activation is HQ's activation service: it answers a verified
// activation_request whose one-time code is good with a signed provision
// command carrying a fresh TMK sealed to the terminal's X25519 key
// (box.SealAnonymous), after handing the TMK to the acquirer. remote.md
// has no negative answer to an activation request: a refused one gets
// nothing (the terminal shows NO ANSWER FROM HQ after its 120 s wait); the
// refusal is in HQ's log and audit trail.
//
// It runs inside the ingest transaction that records the request, so the
// code is marked used, the provision command stored and the request
// acknowledged to the broker together: two instances handling two
// deliveries of one request send one provision (the second finds the code
// used by that very request and sends the stored envelope again).
package activation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"golang.org/x/crypto/nacl/box"

	"github.com/posagent/posagent/internal/hq/command"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/iso8583/mac"
	"github.com/posagent/posagent/terminal/remote"
)

// AcquirerKeys hands a terminal's TMK to the acquirer (in the lab, the
// acquirer simulator's keys file; in production an HSM key exchange).
type AcquirerKeys interface {
	SetKey(tid string, tmk []byte) error
}

// Service answers activation requests.
type Service struct {
	Signer       command.Signer
	Acquirer     AcquirerKeys
	Rand         io.Reader
	ProvisionTTL time.Duration // validity of a provision command (default 10 min)
	MaxAge       time.Duration // refuse requests older than this (default 10 min)
	Resend       time.Duration // re-publish an unanswered provision after this (default 30 s)
	Log          *slog.Logger
}

// More refusals, beside store.Refuse*.
const (
	RefuseInvalid = "invalid-request"
	RefuseStale   = "stale-request"
)

// HandleEvent answers one activation_request (ingest.EventHandler).
func (s *Service) HandleEvent(ctx context.Context, tx *store.Tx, ev remote.Event, dup bool, now time.Time) ([]store.Outbound, error) {
	serial := ev.Serial
	var req remote.ActivationRequest
	if err := json.Unmarshal(ev.Data, &req); err != nil || !isDigits(req.Code, 8) || len(req.X25519Pub) != 32 {
		return nil, s.refuse(ctx, tx, ev, RefuseInvalid, "want an 8-digit code and a 32-byte x25519_pub", now)
	}
	if age := now.Sub(ev.At); !ev.At.IsZero() && age > s.maxAge() {
		return nil, s.refuse(ctx, tx, ev, RefuseStale,
			fmt.Sprintf("sent %s ago, the terminal waits 120 s; the code is kept", age.Round(time.Second)), now)
	}
	m, err := tx.MatchCode(ctx, serial, req.Code, ev.ID, now)
	if err != nil {
		return nil, err
	}
	if m.Dup {
		s.Log.Info("activation request delivered again: provision sent again", "serial", serial, "request", ev.ID, "provision", m.Code.ProvisionID)
		return []store.Outbound{{ID: m.Code.ProvisionID, Serial: serial, Envelope: m.Code.Provision}}, nil
	}
	if m.Refusal != "" {
		detail := ""
		if m.Revoked {
			detail = fmt.Sprintf("%d wrong codes: the pending code of %s is revoked; issue a new one", store.MaxCodeAttempts, serial)
		}
		return nil, s.refuse(ctx, tx, ev, m.Refusal, detail, now)
	}
	c := m.Code
	provID := fmt.Sprintf("prov-%s-%d", serial, now.UnixNano())
	env, payload, cmd, err := s.provision(serial, c, ev.ID, provID, req.X25519Pub, now)
	if err != nil {
		return nil, err
	}
	if err := tx.UseCode(ctx, c.ID, ev.ID, provID, env, now); err != nil {
		return nil, err // ErrCodeTaken: another instance won; the batch is retried and finds Dup
	}
	if err := tx.InsertCommand(ctx, store.Command{ID: provID, Serial: serial, Type: string(remote.TypeProvision), Payload: payload, Envelope: env,
		RequiredSigs: 1, State: store.CmdSent, IssuedAt: cmd.IssuedAt, ExpiresAt: cmd.ExpiresAt, CreatedBy: "hqd", CreatedAt: now,
		SentAt: now, SendCount: 1, NextSendAt: now.Add(s.resend())}); err != nil {
		return nil, err
	}
	if err := tx.SetTerminalState(ctx, serial, store.TermProvisioned, c.TID, c.MID, c.MerchantName, "provision "+provID, now); err != nil {
		return nil, err
	}
	detail, _ := json.Marshal(map[string]string{"request": ev.ID, "provision": provID, "tid": c.TID, "mid": c.MID, "acquirer": c.AcquirerAddr})
	if err := tx.Audit(ctx, store.AuditEntry{At: now, Actor: "hqd", Source: "mqtt", Action: "activation.answer", Target: serial, Detail: string(detail)}); err != nil {
		return nil, err
	}
	s.Log.Info("activation request answered", "serial", serial, "request", ev.ID, "provision", provID, "tid", c.TID)
	return []store.Outbound{{ID: provID, Serial: serial, Envelope: env}}, nil
}

func (s *Service) refuse(ctx context.Context, tx *store.Tx, ev remote.Event, why, detail string, now time.Time) error {
	s.Log.Warn("activation request refused; nothing sent (the terminal shows NO ANSWER FROM HQ)",
		"serial", ev.Serial, "request", ev.ID, "reason", why, "detail", detail)
	d, _ := json.Marshal(map[string]string{"request": ev.ID, "reason": why, "detail": detail})
	return tx.Audit(ctx, store.AuditEntry{At: now, Actor: "hqd", Source: "mqtt", Action: "activation.refuse", Target: ev.Serial, Detail: string(d)})
}

// provision builds the signed provision command of an activation: a fresh
// random TMK (odd DES parity, as HSMs import it), sealed to the terminal's
// X25519 key, with its KCV. The TMK reaches the acquirer before the
// command exists anywhere but in memory, and is zeroised after.
func (s *Service) provision(serial string, c store.Code, reqID, provID string, x25519Pub []byte, now time.Time) (env, payload []byte, cmd remote.Command, err error) {
	tmk := make([]byte, 16)
	defer clear(tmk)
	if _, err := io.ReadFull(s.Rand, tmk); err != nil {
		return nil, nil, cmd, fmt.Errorf("generate TMK: %w", err)
	}
	SetOddParity(tmk)
	var pk [32]byte
	copy(pk[:], x25519Pub)
	sealed, err := box.SealAnonymous(nil, tmk, &pk, s.Rand)
	if err != nil {
		return nil, nil, cmd, fmt.Errorf("seal TMK: %w", err)
	}
	args, err := json.Marshal(remote.ProvisionArgs{TID: remote.TID(c.TID), MID: remote.MID(c.MID), MerchantName: c.MerchantName,
		Acquirer:  remote.Acquirer{Addr: c.AcquirerAddr, TLS: c.AcquirerTLS, TPDU: remote.TPDU(c.AcquirerTPDU)},
		TMKSealed: sealed, TMKKCV: mac.TMKKCV(tmk), Activation: reqID})
	if err != nil {
		return nil, nil, cmd, fmt.Errorf("provision args: %w", err)
	}
	payload, cmd, err = command.Payload(string(remote.TypeProvision), serial, provID, args, now, s.provTTL())
	if err != nil {
		return nil, nil, cmd, err
	}
	env, err = remote.Seal(s.Signer.KID, s.Signer.Priv, payload)
	if err != nil {
		return nil, nil, cmd, err
	}
	if s.Acquirer == nil {
		return nil, nil, cmd, errors.New("no acquirer key hand-off configured")
	}
	if err := s.Acquirer.SetKey(c.TID, tmk); err != nil {
		return nil, nil, cmd, fmt.Errorf("hand the TMK of %s to the acquirer: %w", c.TID, err)
	}
	return env, payload, cmd, nil
}

func (s *Service) provTTL() time.Duration {
	if s.ProvisionTTL > 0 {
		return s.ProvisionTTL
	}
	return 10 * time.Minute
}

func (s *Service) maxAge() time.Duration {
	if s.MaxAge > 0 {
		return s.MaxAge
	}
	return 10 * time.Minute
}

func (s *Service) resend() time.Duration {
	if s.Resend > 0 {
		return s.Resend
	}
	return 30 * time.Second
}

// SetOddParity sets each byte's low bit so the byte has odd parity, the
// DES key convention (FIPS 46-3) that HSMs check on key import.
func SetOddParity(k []byte) {
	for i, b := range k {
		b &^= 1
		ones := 0
		for v := b; v != 0; v >>= 1 {
			ones += int(v & 1)
		}
		if ones%2 == 0 {
			b |= 1
		}
		k[i] = b
	}
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
