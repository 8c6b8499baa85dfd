package store

// What the back office (internal/hq/web) needs of the database beyond the
// API's: browser sessions, an operator's settings, the review of a
// request (rejection), and the joined reads of its pages. Kept in a file
// of its own so the two sides of hqd can change without stepping on each
// other.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/posagent/posagent/internal/hq/wire"
)

// JobRejected is a signing job an approver refused: nothing of it was
// ever sent, and nothing will be.
const JobRejected = wire.JobRejected

// Session is a browser session of an operator.
type Session struct {
	Operator  Operator
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateSession stores a session under the SHA-256 of its id (a copy of
// the database hands out no session).
func (s *Store) CreateSession(ctx context.Context, operatorID int64, id, csrf, remoteAddr string, now, expires time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (id_sha256, operator_id, csrf, created_at, expires_at, remote_addr)
		VALUES ($1, $2, $3, $4, $5, $6)`, tokenHash(id), operatorID, csrf, ms(now), ms(expires), remoteAddr)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	// Expired sessions of everyone go with each login.
	if _, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE expires_at <= $1", ms(now)); err != nil {
		return fmt.Errorf("prune sessions: %w", err)
	}
	return nil
}

// SessionByID returns an unexpired session and its operator, or
// ErrNotFound.
func (s *Store) SessionByID(ctx context.Context, id string, now time.Time) (Session, error) {
	var ss Session
	var created, expires int64
	var roles string
	var locked, opCreated int64
	o := &ss.Operator
	err := s.db.QueryRowContext(ctx, `SELECT s.csrf, s.created_at, s.expires_at,
		o.id, o.name, o.roles, o.password_hash, o.locale, o.disabled, o.failed_logins, o.locked_until, o.created_at
		FROM sessions s JOIN operators o ON o.id = s.operator_id WHERE s.id_sha256 = $1 AND s.expires_at > $2`,
		tokenHash(id), ms(now)).Scan(&ss.CSRF, &created, &expires,
		&o.ID, &o.Name, &roles, &o.PasswordHash, &o.Locale, &o.Disabled, &o.FailedLogins, &locked, &opCreated)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("session: %w", err)
	}
	if roles != "" {
		o.Roles = strings.Split(roles, ",")
	}
	o.LockedUntil, o.CreatedAt = fromMS(locked), fromMS(opCreated)
	ss.CreatedAt, ss.ExpiresAt = fromMS(created), fromMS(expires)
	return ss, nil
}

// ExtendSession moves a session's expiry (an idle timeout that slides
// while the operator works).
func (s *Store) ExtendSession(ctx context.Context, id string, expires time.Time) error {
	_, err := s.db.ExecContext(ctx, "UPDATE sessions SET expires_at = $2 WHERE id_sha256 = $1", tokenHash(id), ms(expires))
	if err != nil {
		return fmt.Errorf("extend session: %w", err)
	}
	return nil
}

// DeleteSession ends a session (logout).
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE id_sha256 = $1", tokenHash(id)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteOperatorSessions ends every session of an operator (disabled,
// roles or password changed).
func (s *Store) DeleteOperatorSessions(ctx context.Context, operatorID int64) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE operator_id = $1", operatorID); err != nil {
		return fmt.Errorf("delete sessions: %w", err)
	}
	return nil
}

// OperatorByID returns an operator, or ErrNotFound.
func (s *Store) OperatorByID(ctx context.Context, id int64) (Operator, error) {
	o, err := scanOperator(s.db.QueryRowContext(ctx, "SELECT "+operatorCols+" FROM operators WHERE id = $1", id))
	return one(o, err, fmt.Sprintf("operator %d", id))
}

// SetOperatorLocale records the language an operator chose.
func (s *Store) SetOperatorLocale(ctx context.Context, id int64, locale string) error {
	if _, err := s.db.ExecContext(ctx, "UPDATE operators SET locale = $2 WHERE id = $1", id, locale); err != nil {
		return fmt.Errorf("operator locale: %w", err)
	}
	return nil
}

// UpdateOperator sets an operator's roles and whether it is disabled.
func (s *Store) UpdateOperator(ctx context.Context, id int64, roles []string, disabled bool) error {
	for _, r := range roles {
		if !slices.Contains(Roles, r) {
			return fmt.Errorf("unknown role %q", r)
		}
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE operators SET roles = $2, disabled = $3 WHERE id = $1", id, strings.Join(roles, ","), disabled); err != nil {
		return fmt.Errorf("update operator: %w", err)
	}
	return nil
}

// SetOperatorPassword replaces an operator's password hash and lifts a
// lockout.
func (s *Store) SetOperatorPassword(ctx context.Context, id int64, hash string) error {
	if _, err := s.db.ExecContext(ctx, "UPDATE operators SET password_hash = $2, failed_logins = 0, locked_until = 0 WHERE id = $1", id, hash); err != nil {
		return fmt.Errorf("operator password: %w", err)
	}
	return nil
}

// RejectJob is an approver's refusal of a job waiting for signatures, in
// one transaction with its audit entry: the job becomes rejected with the
// note, its items and unsent commands cancelled. Nothing of it was sent.
func (s *Store) RejectJob(ctx context.Context, id, note string, a AuditEntry, now time.Time) (Job, error) {
	var j Job
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		if j, err = tx.lockJob(ctx, id); err != nil {
			return err
		}
		if j.State != JobSigning {
			return fmt.Errorf("job %s is %s, only a job waiting for signatures is rejected: %w", id, j.State, ErrJobState)
		}
		j.State, j.Note, j.FinishedAt = JobRejected, note, now
		if _, err := tx.tx.ExecContext(ctx, "UPDATE jobs SET state = $2, note = $3, updated_at = $4, finished_at = $4 WHERE id = $1",
			id, JobRejected, note, ms(now)); err != nil {
			return err
		}
		if _, err := tx.tx.ExecContext(ctx, "UPDATE job_items SET state = $2, updated_at = $3 WHERE job_id = $1 AND state = $4",
			id, ItemCancelled, ms(now), ItemPending); err != nil {
			return err
		}
		if _, err := tx.tx.ExecContext(ctx, "UPDATE commands SET state = $2, final_at = $3 WHERE job_id = $1 AND state = $4",
			id, CmdCancelled, ms(now), CmdSigning); err != nil {
			return err
		}
		return tx.Audit(ctx, a)
	})
	if err != nil {
		return Job{}, fmt.Errorf("reject job %s: %w", id, err)
	}
	return j, nil
}

// JobSigner is one operator's signatures on a job's commands.
type JobSigner struct {
	Operator string
	KID      string
	Count    int
	First    time.Time
	Last     time.Time
}

// JobSigners lists who signed a job's commands, first signer first.
func (s *Store) JobSigners(ctx context.Context, jobID string) ([]JobSigner, error) {
	out, err := queryAll(ctx, s.db, func(sc scanner) (JobSigner, error) {
		var g JobSigner
		var first, last int64
		err := sc.Scan(&g.Operator, &g.KID, &g.Count, &first, &last)
		g.First, g.Last = fromMS(first), fromMS(last)
		return g, err
	}, `SELECT g.operator, g.kid, COUNT(*), MIN(g.added_at), MAX(g.added_at)
		FROM command_signatures g JOIN commands c ON c.id = g.cmd_id WHERE c.job_id = $1
		GROUP BY g.operator, g.kid ORDER BY MIN(g.added_at), g.operator`, jobID)
	if err != nil {
		return nil, fmt.Errorf("signers of %s: %w", jobID, err)
	}
	return out, nil
}

// ToSign is a command payload an operator has not signed yet.
type ToSign struct {
	CmdID   string
	Serial  string
	Payload []byte
}

// UnsignedBy lists, in command id order after after, the commands of a
// signing job that operator has not signed, at most limit.
func (s *Store) UnsignedBy(ctx context.Context, jobID, operator, after string, limit int) ([]ToSign, error) {
	out, err := queryAll(ctx, s.db, func(sc scanner) (ToSign, error) {
		var u ToSign
		err := sc.Scan(&u.CmdID, &u.Serial, &u.Payload)
		return u, err
	}, `SELECT c.id, c.serial, c.payload FROM commands c
		WHERE c.job_id = $1 AND c.state = $2 AND c.id > $3
		AND NOT EXISTS (SELECT 1 FROM command_signatures g WHERE g.cmd_id = c.id AND g.operator = $4)
		ORDER BY c.id LIMIT $5`, jobID, CmdSigning, after, operator, limit)
	if err != nil {
		return nil, fmt.Errorf("unsigned commands of %s: %w", jobID, err)
	}
	return out, nil
}

// CountUnsignedBy counts the commands of a signing job that operator has
// not signed.
func (s *Store) CountUnsignedBy(ctx context.Context, jobID, operator string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM commands c WHERE c.job_id = $1 AND c.state = $2
		AND NOT EXISTS (SELECT 1 FROM command_signatures g WHERE g.cmd_id = c.id AND g.operator = $3)`,
		jobID, CmdSigning, operator).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("unsigned commands of %s: %w", jobID, err)
	}
	return n, nil
}

// JobTerminal is one terminal of a job with what HQ knows of it: the item,
// its command and the terminal's last status.
type JobTerminal struct {
	Item
	Terminal   Terminal
	StatusJSON string // the terminal's last status as received
	CmdState   string
	SentAt     time.Time
	SendCount  int
	FinalAt    time.Time
	Result     string // the final ack's result JSON
}

// JobTerminals lists a job's terminals in item order after seq after (of
// one item state when state is set), at most limit, in one query.
func (s *Store) JobTerminals(ctx context.Context, jobID, state string, after, limit int) ([]JobTerminal, error) {
	q := `SELECT i.serial, i.seq, i.cmd_id, i.state, i.reason, i.updated_at,
		COALESCE(t.state, ''), COALESCE(t.online, FALSE), COALESCE(t.tid, ''), COALESCE(t.mid, ''), COALESCE(t.merchant_name, ''),
		COALESCE(t.batch_no, ''), COALESCE(t.batch_count, 0), COALESCE(t.version, ''), COALESCE(t.clock, ''),
		COALESCE(t.pending_reversal, FALSE), COALESCE(t.status_at, 0), COALESCE(t.status_json, ''), COALESCE(t.last_seen, 0),
		COALESCE(c.state, ''), c.sent_at, COALESCE(c.send_count, 0), c.final_at, COALESCE(c.result, '')
		FROM job_items i LEFT JOIN terminals t ON t.serial = i.serial LEFT JOIN commands c ON c.id = i.cmd_id`
	page, args := itemPage(jobID, state, after, limit)
	out, err := queryAll(ctx, s.db, func(sc scanner) (JobTerminal, error) {
		var jt JobTerminal
		var up, statusAt, lastSeen int64
		var sent, final sql.NullInt64
		t := &jt.Terminal
		err := sc.Scan(&jt.Serial, &jt.Seq, &jt.CmdID, &jt.State, &jt.Reason, &up,
			&t.State, &t.Online, &t.TID, &t.MID, &t.MerchantName, &t.BatchNo, &t.BatchCount, &t.Version, &t.Clock,
			&t.PendingReversal, &statusAt, &jt.StatusJSON, &lastSeen,
			&jt.CmdState, &sent, &jt.SendCount, &final, &jt.Result)
		t.Serial = jt.Serial
		jt.UpdatedAt, t.StatusAt, t.LastSeen = fromMS(up), fromMS(statusAt), fromMS(lastSeen)
		jt.SentAt, jt.FinalAt = nullMS(sent), nullMS(final)
		return jt, err
	}, q+page, args...)
	if err != nil {
		return nil, fmt.Errorf("terminals of job %s: %w", jobID, err)
	}
	return out, nil
}

// AcksOf returns the acks of several commands, each command's in arrival
// order.
func (s *Store) AcksOf(ctx context.Context, cmdIDs []string) (map[string][]AckRecord, error) {
	out := map[string][]AckRecord{}
	for chunk := range chunks(cmdIDs, 500) {
		ph, args := s.placeholders(chunk)
		err := eachRow(ctx, s.db, func(rows *sql.Rows) error {
			a, err := scanAck(rows)
			if err != nil {
				return err
			}
			out[a.CmdID] = append(out[a.CmdID], a)
			return nil
		}, "SELECT "+ackCols+" FROM command_acks WHERE cmd_id IN ("+ph+") ORDER BY id", args...)
		if err != nil {
			return nil, fmt.Errorf("acks: %w", err)
		}
	}
	return out, nil
}

// TerminalsBefore lists terminals matching f whose serial sorts before
// before, in serial order: the page before a keyset page (at most limit).
func (s *Store) TerminalsBefore(ctx context.Context, f Filter, before string, limit int) ([]Terminal, error) {
	out, err := s.terminalPage(ctx, f, "<", before, " DESC", limit)
	slices.Reverse(out)
	return out, err
}

// StatusJSONOf returns the last status payloads of serials as received
// (the back office reads keys the columns do not hold, e.g. an open
// batch's amount).
func (s *Store) StatusJSONOf(ctx context.Context, serials []string) (map[string]string, error) {
	out := map[string]string{}
	for chunk := range chunks(serials, 500) {
		ph, args := s.placeholders(chunk)
		err := eachRow(ctx, s.db, func(rows *sql.Rows) error {
			var serial, js string
			if err := rows.Scan(&serial, &js); err != nil {
				return err
			}
			out[serial] = js
			return nil
		}, "SELECT serial, status_json FROM terminals WHERE serial IN ("+ph+")", args...)
		if err != nil {
			return nil, fmt.Errorf("status of terminals: %w", err)
		}
	}
	return out, nil
}

// JobsOfType lists jobs of one type, newest first, at most limit.
func (s *Store) JobsOfType(ctx context.Context, typ string, limit int) ([]Job, error) {
	out, err := queryAll(ctx, s.db, scanJob, "SELECT "+jobCols+" FROM jobs WHERE type = $1 ORDER BY created_at DESC, id LIMIT $2", typ, limit)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}
