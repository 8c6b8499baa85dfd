package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/posagent/posagent/internal/hq/wire"
)

// Activation code states.
const (
	CodePending    = "pending"
	CodeUsed       = "used"
	CodeRevoked    = "revoked"    // too many wrong codes from its serial
	CodeSuperseded = "superseded" // a newer code was issued for the serial
)

// Refusal words of an activation request (HQ's log and audit trail; the
// terminal gets no answer, remote.md has no negative reply).
const (
	RefuseUnknownCode = "unknown-code"
	RefuseWrongSerial = "wrong-serial"
	RefuseExpired     = "code-expired"
	RefuseUsed        = "code-used"
	RefuseRevoked     = "code-revoked"
	RefuseSuperseded  = "code-superseded"
)

// MaxCodeAttempts is how many wrong codes a serial may present while it has
// a pending code; the next wrong one revokes it. Eight digits are 10^8
// guesses, but a request costs an attacker nothing once they hold a device
// key, so the guesses are capped.
const MaxCodeAttempts = 5

// Code is one activation code.
type Code = wire.Code

const codeCols = `id, code, serial, tid, mid, merchant_name, acquirer_addr, acquirer_tls, acquirer_tpdu, issued_at, expires_at,
	issued_by, status, attempts, used_at, activation_id, provision_id, provision_env`

func scanCode(sc scanner) (Code, error) {
	var c Code
	var issued, expires int64
	var used sql.NullInt64
	var act, prov sql.NullString
	err := sc.Scan(&c.ID, &c.Code, &c.Serial, &c.TID, &c.MID, &c.MerchantName, &c.AcquirerAddr, &c.AcquirerTLS, &c.AcquirerTPDU,
		&issued, &expires, &c.IssuedBy, &c.Status, &c.Attempts, &used, &act, &prov, &c.Provision)
	c.IssuedAt, c.ExpiresAt, c.UsedAt = fromMS(issued), fromMS(expires), nullMS(used)
	c.ActivationID, c.ProvisionID = act.String, prov.String
	return c, err
}

// IssueCode stores c (Code, ID, Status and Attempts are set here) as the
// serial's pending code: earlier pending codes of the serial are
// superseded, so only the last code handed to a technician works. The code
// is drawn from random (crypto/rand in use) and unique among pending codes.
func (s *Store) IssueCode(ctx context.Context, c Code, random io.Reader) (Code, error) {
	limit := big.NewInt(100_000_000)
	for range 20 {
		n, err := rand.Int(random, limit)
		if err != nil {
			return Code{}, fmt.Errorf("activation code: %w", err)
		}
		c.Code = fmt.Sprintf("%08d", n.Int64())
		c.Status = CodePending
		args := []any{c.Code, c.Serial, c.TID, c.MID, c.MerchantName, c.AcquirerAddr, c.AcquirerTLS, c.AcquirerTPDU,
			ms(c.IssuedAt), ms(c.ExpiresAt), c.IssuedBy, c.Status, CodeSuperseded}
		if s.dialect == Postgres {
			// One statement, one round trip and its own transaction: the
			// supersede runs to completion first (the INSERT reads its
			// count), so the new pending row never meets the old one in
			// the one-pending-code-per-serial index. Four round trips
			// (BEGIN, UPDATE, INSERT, COMMIT) each waking the backend
			// made the tail on a loaded host.
			err = s.db.QueryRowContext(ctx, `WITH old AS (
				UPDATE activation_codes SET status = $13 WHERE serial = $2 AND status = $12 RETURNING 1)
				INSERT INTO activation_codes
				(code, serial, tid, mid, merchant_name, acquirer_addr, acquirer_tls, acquirer_tpdu, issued_at, expires_at, issued_by, status)
				SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM (SELECT COUNT(*) FROM old) AS superseded RETURNING id`,
				args...).Scan(&c.ID)
		} else {
			err = s.InTx(ctx, func(tx *Tx) error {
				if _, err := tx.tx.ExecContext(ctx, "UPDATE activation_codes SET status = $2 WHERE serial = $1 AND status = $3",
					c.Serial, CodeSuperseded, CodePending); err != nil {
					return err
				}
				return tx.tx.QueryRowContext(ctx, `INSERT INTO activation_codes
					(code, serial, tid, mid, merchant_name, acquirer_addr, acquirer_tls, acquirer_tpdu, issued_at, expires_at, issued_by, status)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`, args[:12]...).Scan(&c.ID)
			})
		}
		if isUniqueViolation(err) {
			continue // the draw clashed with another pending code: draw again
		}
		if err != nil {
			return Code{}, fmt.Errorf("issue activation code for %s: %w", c.Serial, err)
		}
		return c, nil
	}
	return Code{}, errors.New("activation code: no free code after 20 draws")
}

// Codes lists codes, newest first: of one serial when serial is set, at
// most limit.
func (s *Store) Codes(ctx context.Context, serial string, limit int) ([]Code, error) {
	q, args := "SELECT "+codeCols+" FROM activation_codes ORDER BY id DESC LIMIT $1", []any{limit}
	if serial != "" {
		q, args = "SELECT "+codeCols+" FROM activation_codes WHERE serial = $1 ORDER BY id DESC LIMIT $2", []any{serial, limit}
	}
	out, err := queryAll(ctx, s.db, scanCode, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list codes: %w", err)
	}
	return out, nil
}

// CodeMatch is the decision on an activation request.
type CodeMatch struct {
	Code    Code   // the matched code (zero for a refusal)
	Dup     bool   // this very request used it already: send Code.Provision again
	Refusal string // "" when the request may be answered
	Revoked bool   // this refusal revoked the serial's pending code
}

// MatchCode decides an activation request (serial, typed code, request id)
// at now, inside the transaction that will mark the code used: on
// PostgreSQL the serial's pending code row stays locked until the
// transaction ends, so two instances handling two deliveries of one
// request decide one after the other. A wrong code counts against the
// serial's pending code, which is revoked at MaxCodeAttempts.
func (tx *Tx) MatchCode(ctx context.Context, serial, typed, reqID string, now time.Time) (CodeMatch, error) {
	cands, err := queryAll(ctx, tx.tx, scanCode, "SELECT "+codeCols+` FROM activation_codes
		WHERE serial = $1 AND (status = $2 OR activation_id = $3) ORDER BY id DESC`+tx.s.forUpdate(),
		serial, CodePending, reqID)
	if err != nil {
		return CodeMatch{}, fmt.Errorf("match code: %w", err)
	}
	var pending *Code
	for i, c := range cands {
		// Constant time: the comparison must not tell a prober how many
		// leading digits were right.
		same := subtle.ConstantTimeCompare([]byte(c.Code), []byte(typed)) == 1
		switch {
		case same && c.Status == CodeUsed && c.ActivationID == reqID && len(c.Provision) > 0:
			return CodeMatch{Code: c, Dup: true}, nil
		case c.Status == CodePending:
			if same {
				if !now.Before(c.ExpiresAt) {
					return CodeMatch{Refusal: RefuseExpired}, nil
				}
				return CodeMatch{Code: c}, nil
			}
			pending = &cands[i]
		}
	}
	// Refused: name why for HQ's log (the terminal learns nothing).
	var m CodeMatch
	var owner, status string
	err = tx.tx.QueryRowContext(ctx, "SELECT serial, status FROM activation_codes WHERE code = $1 ORDER BY (serial = $2) DESC, id DESC LIMIT 1",
		typed, serial).Scan(&owner, &status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		m.Refusal = RefuseUnknownCode
	case err != nil:
		return CodeMatch{}, fmt.Errorf("match code: %w", err)
	case owner != serial:
		m.Refusal = RefuseWrongSerial
	default:
		m.Refusal = map[string]string{CodeUsed: RefuseUsed, CodeRevoked: RefuseRevoked, CodeSuperseded: RefuseSuperseded}[status]
		if m.Refusal == "" {
			m.Refusal = RefuseUnknownCode
		}
	}
	if pending != nil && (m.Refusal == RefuseUnknownCode || m.Refusal == RefuseWrongSerial) {
		attempts := pending.Attempts + 1
		status := CodePending
		if attempts >= MaxCodeAttempts {
			status, m.Revoked = CodeRevoked, true
		}
		if _, err := tx.tx.ExecContext(ctx, "UPDATE activation_codes SET attempts = $2, status = $3 WHERE id = $1",
			pending.ID, attempts, status); err != nil {
			return CodeMatch{}, fmt.Errorf("count wrong code: %w", err)
		}
	}
	return m, nil
}

// ErrCodeTaken: the pending code was used by another request in the
// meantime (another instance won the race).
var ErrCodeTaken = errors.New("activation code no longer pending")

// UseCode marks a pending code used by an activation request, with the
// provision command sent in answer. Exactly one request can do this: the
// update names the pending state.
func (tx *Tx) UseCode(ctx context.Context, id int64, reqID, provID string, provision []byte, now time.Time) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE activation_codes SET status = $2, used_at = $3, activation_id = $4,
		provision_id = $5, provision_env = $6 WHERE id = $1 AND status = $7`,
		id, CodeUsed, ms(now), reqID, provID, provision, CodePending)
	if err != nil {
		return fmt.Errorf("use code: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrCodeTaken
	}
	return nil
}
