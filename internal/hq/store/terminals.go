package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/posagent/posagent/internal/hq/wire"
)

// Terminal states as HQ knows them. The terminal's own lifecycle words
// (unactivated, active, unbinding, tampered) come from its status and
// events; HQ adds unknown (registered, never heard from) and provisioned
// (a provision command sent, no activated event yet).
const (
	TermUnknown     = "unknown"
	TermProvisioned = "provisioned"
)

// Terminal is one row of the fleet.
type Terminal = wire.Terminal

// ErrKeyMismatch: a serial is registered again with other device keys.
var ErrKeyMismatch = errors.New("serial already registered with another device key")

// RegisterDevice records a terminal's device keys (factory-init's output).
// Registering the same keys again changes nothing; other keys for a known
// serial are refused unless replace is set (a re-initialised unit).
func (s *Store) RegisterDevice(ctx context.Context, serial string, edPub ed25519.PublicKey, xPub []byte, replace bool, now time.Time) (created bool, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		var old []byte
		err := tx.tx.QueryRowContext(ctx, "SELECT ed25519_pub FROM terminals WHERE serial = $1"+s.forUpdate(), serial).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.tx.ExecContext(ctx,
				"INSERT INTO terminals (serial, ed25519_pub, x25519_pub, registered_at) VALUES ($1, $2, $3, $4)",
				serial, []byte(edPub), nullBytes(xPub), ms(now))
			created = err == nil
			return err
		case err != nil:
			return err
		case bytes.Equal(old, edPub):
			return nil
		case !replace:
			return fmt.Errorf("%s: %w", serial, ErrKeyMismatch)
		}
		_, err = tx.tx.ExecContext(ctx, "UPDATE terminals SET ed25519_pub = $2, x25519_pub = $3 WHERE serial = $1",
			serial, []byte(edPub), nullBytes(xPub))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("register %s: %w", serial, err)
	}
	return created, nil
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// DeviceKey returns the Ed25519 key of a registered terminal, or
// ErrNotFound.
func (s *Store) DeviceKey(ctx context.Context, serial string) (ed25519.PublicKey, error) {
	var pub []byte
	err := s.db.QueryRowContext(ctx, "SELECT ed25519_pub FROM terminals WHERE serial = $1", serial).Scan(&pub)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("device key %s: %w", serial, err)
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("device key %s: stored key is %d bytes", serial, len(pub))
	}
	return ed25519.PublicKey(pub), nil
}

const terminalCols = `serial, ed25519_pub, x25519_pub, state, online, tid, mid, merchant_name, batch_no, batch_count,
	version, clock, pending_reversal, disk_free_kib, status_at, last_event, last_seen, registered_at`

func scanTerminal(sc scanner) (Terminal, error) {
	var t Terminal
	var ed, x []byte
	var statusAt, lastSeen, reg int64
	err := sc.Scan(&t.Serial, &ed, &x, &t.State, &t.Online, &t.TID, &t.MID, &t.MerchantName, &t.BatchNo, &t.BatchCount,
		&t.Version, &t.Clock, &t.PendingReversal, &t.DiskFreeKiB, &statusAt, &t.LastEvent, &lastSeen, &reg)
	t.Ed25519Pub, t.X25519Pub = ed, x
	t.StatusAt, t.LastSeen, t.RegisteredAt = fromMS(statusAt), fromMS(lastSeen), fromMS(reg)
	return t, err
}

// Terminal returns one terminal, or ErrNotFound.
func (s *Store) Terminal(ctx context.Context, serial string) (Terminal, error) {
	t, err := scanTerminal(s.db.QueryRowContext(ctx, "SELECT "+terminalCols+" FROM terminals WHERE serial = $1", serial))
	return one(t, err, "terminal "+serial)
}

// Filter selects terminals.
type Filter = wire.Filter

func filterWhere(f Filter, first int) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", first+len(args)-1)))
	}
	if f.State != "" {
		add("state = $?", f.State)
	}
	if f.Online != nil {
		add("online = $?", *f.Online)
	}
	if f.TID != "" {
		add("tid = $?", f.TID)
	}
	if f.MID != "" {
		add("mid = $?", f.MID)
	}
	if f.Search != "" {
		p := likeEscape(f.Search)
		args = append(args, p+"%", "%"+p+"%")
		a, b := first+len(args)-2, first+len(args)-1
		conds = append(conds, fmt.Sprintf(`(serial LIKE $%d ESCAPE '\' OR tid LIKE $%d ESCAPE '\' OR mid LIKE $%d ESCAPE '\' OR merchant_name LIKE $%d ESCAPE '\')`, a, a, a, b))
	}
	if len(conds) == 0 {
		return "TRUE", nil
	}
	return strings.Join(conds, " AND "), args
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Terminals lists terminals matching f in serial order, after the serial
// after (keyset paging: fast at any depth), at most limit.
func (s *Store) Terminals(ctx context.Context, f Filter, after string, limit int) ([]Terminal, error) {
	return s.terminalPage(ctx, f, ">", after, "", limit)
}

// terminalPage lists terminals matching f whose serial compares (cmp) to
// key, in serial order (order "" or " DESC"), at most limit.
func (s *Store) terminalPage(ctx context.Context, f Filter, cmp, key, order string, limit int) ([]Terminal, error) {
	where, args := filterWhere(f, 1)
	args = append(args, key, limit)
	q := fmt.Sprintf("SELECT %s FROM terminals WHERE %s AND serial %s $%d ORDER BY serial%s LIMIT $%d", terminalCols, where, cmp, len(args)-1, order, len(args))
	out, err := queryAll(ctx, s.db, scanTerminal, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list terminals: %w", err)
	}
	return out, nil
}

// CountTerminals counts terminals by state among those matching f.
func (s *Store) CountTerminals(ctx context.Context, f Filter) (map[string]int, error) {
	where, args := filterWhere(f, 1)
	out, err := countBy(ctx, s.db, "SELECT state, COUNT(*) FROM terminals WHERE "+where+" GROUP BY state", args...)
	if err != nil {
		return nil, fmt.Errorf("count terminals: %w", err)
	}
	return out, nil
}

// SerialsMatching returns the serials matching f, in order.
func (s *Store) SerialsMatching(ctx context.Context, f Filter) ([]string, error) {
	where, args := filterWhere(f, 1)
	out, err := queryAll(ctx, s.db, scanString, "SELECT serial FROM terminals WHERE "+where+" ORDER BY serial", args...)
	if err != nil {
		return nil, fmt.Errorf("select terminals: %w", err)
	}
	return out, nil
}

// UnknownSerials returns those of serials that are not registered.
func (s *Store) UnknownSerials(ctx context.Context, serials []string) ([]string, error) {
	var unknown []string
	for chunk := range chunks(serials, 500) {
		ph, args := s.placeholders(chunk)
		have, err := queryAll(ctx, s.db, scanString, "SELECT serial FROM terminals WHERE serial IN ("+ph+")", args...)
		if err != nil {
			return nil, fmt.Errorf("look up serials: %w", err)
		}
		known := make(map[string]bool, len(have))
		for _, serial := range have {
			known[serial] = true
		}
		for _, serial := range chunk {
			if !known[serial] {
				unknown = append(unknown, serial)
			}
		}
	}
	return unknown, nil
}

func chunks(s []string, n int) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

func (s *Store) placeholders(vals []string) (string, []any) {
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	return s.params(1, len(vals)), args
}

// params is the placeholder list of n parameters numbered from first:
// "$1, $2, …" on PostgreSQL, "?, ?, …" on SQLite, whose parser and binder
// look every named or numbered parameter up in a list (quadratic in a
// statement of 3,000 of them, most of a 100-terminal job's creation);
// anonymous ones are bound by position. On SQLite the list must be the
// statement's only parameters, or come after numbered ones in order.
func (s *Store) params(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		if s.dialect == SQLite {
			b.WriteByte('?')
			continue
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(first + i))
	}
	return b.String()
}

// StatusUpdate is a terminal's status report (remote.md §Status payload).
type StatusUpdate struct {
	Online          bool
	State           string // "" in a Last Will: the state is kept
	TID             string
	BatchNo         string
	BatchCount      int
	Version         string
	Clock           string
	PendingReversal bool
	DiskFreeKiB     int64
	At              time.Time // the terminal's clock
	Raw             string    // the payload as received
	Full            bool      // false for the Will {"serial","online":false}: only online changes
}

// ApplyStatus records a status report. Retained statuses are delivered
// again on every HQ subscription, and two instances may handle two reports
// of one terminal out of order: a report older (by the terminal's "at")
// than the stored one changes nothing but last_seen.
func (tx *Tx) ApplyStatus(ctx context.Context, serial string, u StatusUpdate, now time.Time) error {
	var err error
	if !u.Full {
		_, err = tx.tx.ExecContext(ctx, "UPDATE terminals SET online = FALSE, last_seen = $2 WHERE serial = $1", serial, ms(now))
	} else {
		_, err = tx.tx.ExecContext(ctx, `UPDATE terminals SET
			online = $2, state = $3, tid = $4, batch_no = $5, batch_count = $6, version = $7, clock = $8,
			pending_reversal = $9, disk_free_kib = $10, status_at = $11, status_json = $12, last_seen = $13
			WHERE serial = $1 AND status_at <= $11`,
			serial, u.Online, u.State, u.TID, u.BatchNo, u.BatchCount, u.Version, u.Clock,
			u.PendingReversal, u.DiskFreeKiB, ms(u.At), u.Raw, ms(now))
		if err == nil {
			_, err = tx.tx.ExecContext(ctx, "UPDATE terminals SET last_seen = $2 WHERE serial = $1 AND last_seen < $2", serial, ms(now))
		}
	}
	if err != nil {
		return fmt.Errorf("status of %s: %w", serial, err)
	}
	return nil
}

// SetTerminalState records a state HQ learnt from a verified event or ack
// (activated, unbound, tampered, provisioned) with what taught it; mid and
// merchant are kept when empty.
func (tx *Tx) SetTerminalState(ctx context.Context, serial, state, tid, mid, merchant, event string, now time.Time) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE terminals SET state = $2,
		tid = CASE WHEN CAST($3 AS TEXT) = '' THEN tid ELSE $3 END,
		mid = CASE WHEN CAST($4 AS TEXT) = '' THEN mid ELSE $4 END,
		merchant_name = CASE WHEN CAST($5 AS TEXT) = '' THEN merchant_name ELSE $5 END,
		last_event = $6, last_seen = $7 WHERE serial = $1`,
		serial, state, tid, mid, merchant, event, ms(now))
	if err != nil {
		return fmt.Errorf("state of %s: %w", serial, err)
	}
	return nil
}

// Seen moves a terminal's last_seen forward.
func (tx *Tx) Seen(ctx context.Context, serial string, now time.Time) error {
	_, err := tx.tx.ExecContext(ctx, "UPDATE terminals SET last_seen = $2 WHERE serial = $1 AND last_seen < $2", serial, ms(now))
	return err
}
