package store

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Operator roles (issue: back office). admin manages operators and keys;
// requester asks for unbinds and runs jobs; approver co-signs them;
// technician issues activation codes; viewer only reads.
const (
	RoleAdmin      = "admin"
	RoleRequester  = "requester"
	RoleApprover   = "approver"
	RoleTechnician = "technician"
	RoleViewer     = "viewer"
)

// Roles are every role, in order.
var Roles = []string{RoleAdmin, RoleRequester, RoleApprover, RoleTechnician, RoleViewer}

// Operator is an HQ operator.
type Operator struct {
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	Roles        []string  `json:"roles"`
	PasswordHash string    `json:"-"` // argon2id, PHC string form
	Locale       string    `json:"locale"`
	Disabled     bool      `json:"disabled"`
	FailedLogins int       `json:"failed_logins"`
	LockedUntil  time.Time `json:"locked_until,omitzero"`
	CreatedAt    time.Time `json:"created_at"`
}

// Has reports whether the operator holds role.
func (o Operator) Has(role string) bool { return slices.Contains(o.Roles, role) }

const operatorCols = "id, name, roles, password_hash, locale, disabled, failed_logins, locked_until, created_at"

func scanOperator(sc scanner) (Operator, error) {
	var o Operator
	var roles string
	var locked, created int64
	err := sc.Scan(&o.ID, &o.Name, &roles, &o.PasswordHash, &o.Locale, &o.Disabled, &o.FailedLogins, &locked, &created)
	if roles != "" {
		o.Roles = strings.Split(roles, ",")
	}
	o.LockedUntil, o.CreatedAt = fromMS(locked), fromMS(created)
	return o, err
}

// CreateOperator stores a new operator; the name is unique.
func (s *Store) CreateOperator(ctx context.Context, o Operator) (Operator, error) {
	for _, r := range o.Roles {
		if !slices.Contains(Roles, r) {
			return Operator{}, fmt.Errorf("operator %s: unknown role %q (want %s)", o.Name, r, strings.Join(Roles, ", "))
		}
	}
	if o.Locale == "" {
		o.Locale = "en"
	}
	err := s.db.QueryRowContext(ctx, `INSERT INTO operators (name, roles, password_hash, locale, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, o.Name, strings.Join(o.Roles, ","), o.PasswordHash, o.Locale, ms(o.CreatedAt)).Scan(&o.ID)
	if isUniqueViolation(err) {
		return Operator{}, fmt.Errorf("operator %q exists already", o.Name)
	}
	if err != nil {
		return Operator{}, fmt.Errorf("create operator %s: %w", o.Name, err)
	}
	return o, nil
}

// OperatorByName returns an operator, or ErrNotFound.
func (s *Store) OperatorByName(ctx context.Context, name string) (Operator, error) {
	o, err := scanOperator(s.db.QueryRowContext(ctx, "SELECT "+operatorCols+" FROM operators WHERE name = $1", name))
	return one(o, err, "operator "+name)
}

// Operators lists every operator by name.
func (s *Store) Operators(ctx context.Context) ([]Operator, error) {
	out, err := queryAll(ctx, s.db, scanOperator, "SELECT "+operatorCols+" FROM operators ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	return out, nil
}

// RecordLogin counts a failed login (locking the operator until lockUntil
// once failures reach maxFailures) or clears the count after a good one.
func (s *Store) RecordLogin(ctx context.Context, id int64, ok bool, maxFailures int, lockUntil time.Time) error {
	var err error
	if ok {
		_, err = s.db.ExecContext(ctx, "UPDATE operators SET failed_logins = 0, locked_until = 0 WHERE id = $1", id)
	} else {
		_, err = s.db.ExecContext(ctx, `UPDATE operators SET failed_logins = failed_logins + 1,
			locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END WHERE id = $1`, id, maxFailures, ms(lockUntil))
	}
	if err != nil {
		return fmt.Errorf("record login: %w", err)
	}
	return nil
}

// tokenHash is how a bearer token is kept: only its SHA-256, so a copy of
// the database does not hand out sessions. Tokens are 32 random bytes, so
// a plain hash (no salt, no stretching) is enough.
func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateToken stores an API token of an operator.
func (s *Store) CreateToken(ctx context.Context, operatorID int64, token, name string, now, expires time.Time) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO api_tokens (token_sha256, operator_id, name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
		tokenHash(token), operatorID, name, ms(now), ms(expires))
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// OperatorByToken returns the operator an unexpired token belongs to, or
// ErrNotFound.
func (s *Store) OperatorByToken(ctx context.Context, token string, now time.Time) (Operator, error) {
	o, err := scanOperator(s.db.QueryRowContext(ctx, `SELECT o.id, o.name, o.roles, o.password_hash, o.locale, o.disabled, o.failed_logins,
		o.locked_until, o.created_at FROM api_tokens t JOIN operators o ON o.id = t.operator_id
		WHERE t.token_sha256 = $1 AND t.expires_at > $2`, tokenHash(token), ms(now)))
	return one(o, err, "token")
}

// HQ key roles (remote.md §Keys and policy).
const (
	KeyRoot = "root"
	KeyOps  = "ops"
)

// HQKey is an HQ public key terminals know: root keys sign hq_keys, ops
// keys (one per operator, or hqd's own) sign every other command.
type HQKey struct {
	KID        string            `json:"kid"`
	Pub        ed25519.PublicKey `json:"pub"`
	Role       string            `json:"role"`
	OperatorID int64             `json:"operator_id,omitempty"`
	Operator   string            `json:"operator,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	RevokedAt  time.Time         `json:"revoked_at,omitzero"`
}

// AddKey records an HQ public key; operatorID 0 is a key of no operator
// (hqd's own ops key, an offline root key).
func (s *Store) AddKey(ctx context.Context, k HQKey) error {
	if k.Role != KeyRoot && k.Role != KeyOps {
		return fmt.Errorf("key %s: role %q, want root or ops", k.KID, k.Role)
	}
	if len(k.Pub) != ed25519.PublicKeySize {
		return fmt.Errorf("key %s: want a 32-byte Ed25519 public key", k.KID)
	}
	var op any
	if k.OperatorID != 0 {
		op = k.OperatorID
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO hq_keys (kid, pub, role, operator_id, created_at) VALUES ($1, $2, $3, $4, $5)",
		k.KID, []byte(k.Pub), k.Role, op, ms(k.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("key %s exists already", k.KID)
	}
	if err != nil {
		return fmt.Errorf("add key %s: %w", k.KID, err)
	}
	return nil
}

// RevokeKey marks a key revoked.
func (s *Store) RevokeKey(ctx context.Context, kid string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, "UPDATE hq_keys SET revoked_at = $2 WHERE kid = $1 AND revoked_at IS NULL", kid, ms(now))
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", kid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("key %s: %w (or revoked already)", kid, ErrNotFound)
	}
	return nil
}

// Keys lists the HQ keys.
func (s *Store) Keys(ctx context.Context) ([]HQKey, error) {
	out, err := queryAll(ctx, s.db, func(sc scanner) (HQKey, error) {
		var k HQKey
		var pub []byte
		var created int64
		var revoked sql.NullInt64
		err := sc.Scan(&k.KID, &pub, &k.Role, &k.OperatorID, &k.Operator, &created, &revoked)
		k.Pub, k.CreatedAt, k.RevokedAt = pub, fromMS(created), nullMS(revoked)
		return k, err
	}, `SELECT k.kid, k.pub, k.role, COALESCE(k.operator_id, 0), COALESCE(o.name, ''), k.created_at, k.revoked_at
		FROM hq_keys k LEFT JOIN operators o ON o.id = k.operator_id ORDER BY k.kid`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// Key returns one key, or ErrNotFound.
func (s *Store) Key(ctx context.Context, kid string) (HQKey, error) {
	keys, err := s.Keys(ctx)
	if err != nil {
		return HQKey{}, err
	}
	for _, k := range keys {
		if k.KID == kid {
			return k, nil
		}
	}
	return HQKey{}, ErrNotFound
}
