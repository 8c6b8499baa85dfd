package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/posagent/posagent/internal/hq/wire"
)

// AuditEntry is one line of the audit trail.
type AuditEntry = wire.AuditEntry

// Audit appends an entry (in the caller's transaction, so the trail and the
// change it records commit together).
func (tx *Tx) Audit(ctx context.Context, e AuditEntry) error {
	return audit(ctx, tx.tx, e)
}

// Audit appends an entry on its own.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	return audit(ctx, s.db, e)
}

func audit(ctx context.Context, q querier, e AuditEntry) error {
	_, err := q.ExecContext(ctx, "INSERT INTO audit (at, actor, source, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
		ms(e.At), e.Actor, e.Source, e.Action, e.Target, e.Detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditQuery filters the trail; zero fields match everything.
type AuditQuery struct {
	Actor  string
	Action string // prefix: "job." matches every job action
	Target string
	Since  time.Time
	Before int64 // entries with a smaller id (paging backwards)
	Limit  int
}

// AuditTrail returns entries newest first.
func (s *Store) AuditTrail(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	where := "TRUE"
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where += fmt.Sprintf(" AND "+cond, len(args))
	}
	if q.Actor != "" {
		add("actor = $%d", q.Actor)
	}
	if q.Action != "" {
		add(`action LIKE $%d ESCAPE '\'`, likeEscape(q.Action)+"%")
	}
	if q.Target != "" {
		add("target = $%d", q.Target)
	}
	if !q.Since.IsZero() {
		add("at >= $%d", ms(q.Since))
	}
	if q.Before > 0 {
		add("id < $%d", q.Before)
	}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	args = append(args, q.Limit)
	out, err := queryAll(ctx, s.db, func(sc scanner) (AuditEntry, error) {
		var e AuditEntry
		var at int64
		err := sc.Scan(&e.ID, &at, &e.Actor, &e.Source, &e.Action, &e.Target, &e.Detail)
		e.At = fromMS(at)
		return e, err
	}, fmt.Sprintf("SELECT id, at, actor, source, action, target, detail FROM audit WHERE %s ORDER BY id DESC LIMIT $%d", where, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("audit trail: %w", err)
	}
	return out, nil
}

// Reject records a message from the broker that was not taken as truth
// (malformed, unverifiable, from an unknown device): counted and kept for
// the operator, its content never stored.
type Reject struct {
	At     time.Time `json:"at"`
	Topic  string    `json:"topic"`
	Kind   string    `json:"kind"`   // ack, evt, status
	Reason string    `json:"reason"` // not-an-envelope, bad-signature, …
	Detail string    `json:"detail"`
	Size   int       `json:"size"`
}

// AddReject records a refused message.
func (tx *Tx) AddReject(ctx context.Context, r Reject) error {
	_, err := tx.tx.ExecContext(ctx, "INSERT INTO rejects (at, topic, kind, reason, detail, size) VALUES ($1, $2, $3, $4, $5, $6)",
		ms(r.At), r.Topic, r.Kind, r.Reason, r.Detail, r.Size)
	if err != nil {
		return fmt.Errorf("record reject: %w", err)
	}
	return nil
}

// RejectCounts counts the refused messages by reason.
func (s *Store) RejectCounts(ctx context.Context) (map[string]int, error) {
	out, err := countBy(ctx, s.db, "SELECT reason, COUNT(*) FROM rejects GROUP BY reason")
	if err != nil {
		return nil, fmt.Errorf("reject counts: %w", err)
	}
	return out, nil
}

// AddEvent stores a verified terminal event once (serial, id); it reports
// false for a duplicate delivery.
func (tx *Tx) AddEvent(ctx context.Context, serial, id, typ string, at time.Time, envelope []byte, now time.Time) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO events (serial, id, type, at, received_at, envelope) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (serial, id) DO NOTHING`, serial, id, typ, ms(at), ms(now), envelope)
	if err != nil {
		return false, fmt.Errorf("store event %s/%s: %w", serial, id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// EventCount counts the stored events of a type (tests, benchmarks).
func (s *Store) EventCount(ctx context.Context, typ string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events WHERE type = $1", typ).Scan(&n)
	return n, err
}

// Signature is one operator's signature on a command payload.
type Signature struct {
	CmdID    string    `json:"cmd_id"`
	KID      string    `json:"kid"`
	Sig      []byte    `json:"sig"`
	Operator string    `json:"operator"`
	AddedAt  time.Time `json:"added_at"`
}

// AddSignature stores a verified signature of a command waiting for
// signatures; the same kid twice is refused by the primary key.
func (tx *Tx) AddSignature(ctx context.Context, sg Signature) error {
	_, err := tx.tx.ExecContext(ctx, "INSERT INTO command_signatures (cmd_id, kid, sig, operator, added_at) VALUES ($1, $2, $3, $4, $5)",
		sg.CmdID, sg.KID, sg.Sig, sg.Operator, ms(sg.AddedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("command %s: kid %s has signed already", sg.CmdID, sg.KID)
	}
	if err != nil {
		return fmt.Errorf("store signature of %s: %w", sg.CmdID, err)
	}
	return nil
}

// Signatures returns a command's signatures in the order they were added.
func (tx *Tx) Signatures(ctx context.Context, cmdID string) ([]Signature, error) {
	return signatures(ctx, tx.tx, cmdID)
}

// Signatures returns a command's signatures in the order they were added.
func (s *Store) Signatures(ctx context.Context, cmdID string) ([]Signature, error) {
	return signatures(ctx, s.db, cmdID)
}

func signatures(ctx context.Context, q querier, cmdID string) ([]Signature, error) {
	out, err := queryAll(ctx, q, func(sc scanner) (Signature, error) {
		var sg Signature
		var at int64
		err := sc.Scan(&sg.CmdID, &sg.KID, &sg.Sig, &sg.Operator, &at)
		sg.AddedAt = fromMS(at)
		return sg, err
	}, "SELECT cmd_id, kid, sig, operator, added_at FROM command_signatures WHERE cmd_id = $1 ORDER BY added_at, kid", cmdID)
	if err != nil {
		return nil, fmt.Errorf("signatures of %s: %w", cmdID, err)
	}
	return out, nil
}

// SigningCommands lists a job's commands that wait for signatures, in item
// order, with the kids that signed each.
func (s *Store) SigningCommands(ctx context.Context, jobID string) ([]Command, error) {
	out, err := queryAll(ctx, s.db, scanCommand, "SELECT "+commandCols+" FROM commands WHERE job_id = $1 AND state = $2 ORDER BY id", jobID, CmdSigning)
	if err != nil {
		return nil, fmt.Errorf("job %s commands: %w", jobID, err)
	}
	return out, nil
}

// SetJobState moves a job between states (signing → running once every
// command carries its signatures).
func (tx *Tx) SetJobState(ctx context.Context, id, from, to string, now time.Time) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, "UPDATE jobs SET state = $2, updated_at = $3, next_send_at = $3 WHERE id = $1 AND state = $4", id, to, ms(now), from)
	if err != nil {
		return false, fmt.Errorf("job %s: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// SigningCommand is what checking a batch of signatures needs of one
// command: its payload, state, and the kids that signed it so far.
type SigningCommand struct {
	ID      string
	JobID   string
	State   string
	Payload []byte
	Signers []string // kids, in no particular order
}

// CommandsToSign returns the commands of ids (those that exist) with the
// kids that signed each: two set-based queries per 500 ids, in the
// caller's transaction, whatever the size of their job.
func (tx *Tx) CommandsToSign(ctx context.Context, ids []string) (map[string]*SigningCommand, error) {
	out := make(map[string]*SigningCommand, len(ids))
	for chunk := range chunks(ids, 500) {
		ph, args := tx.s.placeholders(chunk)
		err := eachRow(ctx, tx.tx, func(rows *sql.Rows) error {
			c := &SigningCommand{}
			if err := rows.Scan(&c.ID, &c.JobID, &c.State, &c.Payload); err != nil {
				return err
			}
			out[c.ID] = c
			return nil
		}, "SELECT id, COALESCE(job_id, ''), state, payload FROM commands WHERE id IN ("+ph+")", args...)
		if err != nil {
			return nil, fmt.Errorf("commands to sign: %w", err)
		}
		err = eachRow(ctx, tx.tx, func(rows *sql.Rows) error {
			var id, kid string
			if err := rows.Scan(&id, &kid); err != nil {
				return err
			}
			if c := out[id]; c != nil {
				c.Signers = append(c.Signers, kid)
			}
			return nil
		}, "SELECT cmd_id, kid FROM command_signatures WHERE cmd_id IN ("+ph+")", args...)
		if err != nil {
			return nil, fmt.Errorf("signatures so far: %w", err)
		}
	}
	return out, nil
}

// AddSignatures stores verified signatures in multi-row inserts; a kid
// that signed a command already is refused by the primary key.
func (tx *Tx) AddSignatures(ctx context.Context, sigs []Signature) error {
	rows := make([][]any, len(sigs))
	for i, sg := range sigs {
		rows[i] = []any{sg.CmdID, sg.KID, sg.Sig, sg.Operator, ms(sg.AddedAt)}
	}
	err := tx.insertRows(ctx, "INSERT INTO command_signatures (cmd_id, kid, sig, operator, added_at) VALUES ", rows)
	if isUniqueViolation(err) {
		return fmt.Errorf("a kid has signed one of these commands already: %w", err)
	}
	if err != nil {
		return fmt.Errorf("store signatures: %w", err)
	}
	return nil
}

// LockJob reads a job and holds its row for the rest of the transaction
// (PostgreSQL; SQLite's immediate transaction holds the database), so
// that batches of signatures on one job are decided one after the other.
func (tx *Tx) LockJob(ctx context.Context, id string) (Job, error) {
	j, err := scanJob(tx.tx.QueryRowContext(ctx, jobByID+tx.s.forUpdate(), id))
	return one(j, err, "job "+id)
}

// lockJob is LockJob for the callers that say which job failed.
func (tx *Tx) lockJob(ctx context.Context, id string) (Job, error) {
	return found(scanJob(tx.tx.QueryRowContext(ctx, jobByID+tx.s.forUpdate(), id)))
}

// AddSigned counts n more commands of a job as having every signature
// they require and returns how many have, now.
func (tx *Tx) AddSigned(ctx context.Context, jobID string, n int) (int, error) {
	var signed int
	if err := tx.tx.QueryRowContext(ctx, "UPDATE jobs SET signed = signed + $2 WHERE id = $1 RETURNING signed", jobID, n).Scan(&signed); err != nil {
		return 0, fmt.Errorf("job %s signed commands: %w", jobID, err)
	}
	return signed, nil
}
