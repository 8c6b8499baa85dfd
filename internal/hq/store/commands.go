package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/posagent/posagent/internal/hq/wire"
)

// Command states (wire: hqd's API carries them).
const (
	CmdSigning    = wire.CmdSigning
	CmdSent       = wire.CmdSent
	CmdAccepted   = wire.CmdAccepted
	CmdInProgress = wire.CmdInProgress
	CmdSucceeded  = wire.CmdSucceeded
	CmdFailed     = wire.CmdFailed
	CmdRejected   = wire.CmdRejected
	CmdExpired    = wire.CmdExpired
	CmdCancelled  = wire.CmdCancelled
)

// CmdFinal reports whether a command state is final.
func CmdFinal(state string) bool {
	switch state {
	case CmdSucceeded, CmdFailed, CmdRejected, CmdExpired, CmdCancelled:
		return true
	}
	return false
}

// Command is one signed command HQ sent or will send.
type Command = wire.Command

const commandCols = `id, serial, type, job_id, payload, envelope, required_sigs, state, reason, result, issued_at, expires_at,
	created_by, created_at, sent_at, send_count, next_send_at, final_at`

func scanCommand(sc scanner) (Command, error) {
	var c Command
	var job sql.NullString
	var issued, expires, created int64
	var sent, next, final sql.NullInt64
	err := sc.Scan(&c.ID, &c.Serial, &c.Type, &job, &c.Payload, &c.Envelope, &c.RequiredSigs, &c.State, &c.Reason, &c.Result,
		&issued, &expires, &c.CreatedBy, &created, &sent, &c.SendCount, &next, &final)
	c.JobID = job.String
	c.IssuedAt, c.ExpiresAt, c.CreatedAt = fromMS(issued), fromMS(expires), fromMS(created)
	c.SentAt, c.NextSendAt, c.FinalAt = nullMS(sent), nullMS(next), nullMS(final)
	return c, err
}

// InsertCommand stores a new command. A command in state sent is stored
// before it is published (persist, then send): next_send_at says when it
// is published again if no final ack has come.
func (tx *Tx) InsertCommand(ctx context.Context, c Command) error {
	var job any
	if c.JobID != "" {
		job = c.JobID
	}
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO commands (`+commandCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		c.ID, c.Serial, c.Type, job, c.Payload, nullBytes(c.Envelope), c.RequiredSigs, c.State, c.Reason, c.Result,
		ms(c.IssuedAt), ms(c.ExpiresAt), c.CreatedBy, ms(c.CreatedAt), optMS(c.SentAt), c.SendCount, optMS(c.NextSendAt), optMS(c.FinalAt))
	if err != nil {
		return fmt.Errorf("store command %s: %w", c.ID, err)
	}
	return nil
}

// Command returns one command, or ErrNotFound.
func (s *Store) Command(ctx context.Context, id string) (Command, error) {
	c, err := scanCommand(s.db.QueryRowContext(ctx, "SELECT "+commandCols+" FROM commands WHERE id = $1", id))
	return one(c, err, "command "+id)
}

// CommandsOf lists a terminal's commands, newest first.
func (s *Store) CommandsOf(ctx context.Context, serial string, limit int) ([]Command, error) {
	out, err := queryAll(ctx, s.db, scanCommand, "SELECT "+commandCols+" FROM commands WHERE serial = $1 ORDER BY created_at DESC LIMIT $2", serial, limit)
	if err != nil {
		return nil, fmt.Errorf("commands of %s: %w", serial, err)
	}
	return out, nil
}

// AckRecord is one verified ack as stored.
type AckRecord struct {
	CmdID      string    `json:"cmd_id"`
	Serial     string    `json:"serial"`
	State      string    `json:"state"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
	ReceivedAt time.Time `json:"received_at"`
	Envelope   []byte    `json:"envelope"`
}

const ackCols = "cmd_id, serial, state, reason, at, received_at, envelope"

func scanAck(sc scanner) (AckRecord, error) {
	var a AckRecord
	var at, rcv int64
	err := sc.Scan(&a.CmdID, &a.Serial, &a.State, &a.Reason, &at, &rcv, &a.Envelope)
	a.At, a.ReceivedAt = fromMS(at), fromMS(rcv)
	return a, err
}

// Acks returns every ack of a command in arrival order.
func (s *Store) Acks(ctx context.Context, cmdID string) ([]AckRecord, error) {
	out, err := queryAll(ctx, s.db, scanAck, "SELECT "+ackCols+" FROM command_acks WHERE cmd_id = $1 ORDER BY id", cmdID)
	if err != nil {
		return nil, fmt.Errorf("acks of %s: %w", cmdID, err)
	}
	return out, nil
}

// WrongTargetError: a verified ack names a command HQ sent to another
// terminal. The caller refuses the message; the transaction may go on (the
// stored ack row is rolled back with it only if the caller aborts).
type WrongTargetError struct{ CmdID, From, Target string }

func (e *WrongTargetError) Error() string {
	return fmt.Sprintf("ack of %s from %s: the command was for %s", e.CmdID, e.From, e.Target)
}

// AckOutcome says what a verified ack changed.
type AckOutcome struct {
	Duplicate bool   // the same envelope was stored before: nothing changed
	Known     bool   // the command is HQ's (a job's or the API's)
	JobID     string // the job of the command, if any
	Type      string // the command's type
	From, To  string // the command's state before and after
}

// ApplyAck stores a verified ack (every ack of a command is kept, each
// envelope once: MQTT delivers at least once) and moves the command and
// its job item. States only move forward: a final state is never left, and
// an accepted that arrives after the final ack (two instances, out of
// order) changes nothing.
func (tx *Tx) ApplyAck(ctx context.Context, cmdID, serial, state, reason, result string, at time.Time, envelope []byte, now time.Time) (AckOutcome, error) {
	var out AckOutcome
	var job sql.NullString
	var cmdSerial string
	err := tx.tx.QueryRowContext(ctx, "SELECT serial, state, job_id, type FROM commands WHERE id = $1"+tx.s.forUpdate(), cmdID).
		Scan(&cmdSerial, &out.From, &job, &out.Type)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// A command HQ did not record (hqctl send): the ack is kept,
		// nothing else moves.
	case err != nil:
		return out, fmt.Errorf("ack of %s: %w", cmdID, err)
	case cmdSerial != serial:
		return out, &WrongTargetError{CmdID: cmdID, From: serial, Target: cmdSerial}
	default:
		out.Known, out.JobID, out.To = true, job.String, out.From
	}
	sum := sha256.Sum256(envelope)
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO command_acks (cmd_id, serial, state, reason, at, received_at, env_sha256, envelope)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (cmd_id, env_sha256) DO NOTHING`,
		cmdID, serial, state, reason, ms(at), ms(now), sum[:], envelope)
	if err != nil {
		return out, fmt.Errorf("store ack of %s: %w", cmdID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		out.Duplicate = true
		return out, nil
	}
	if !out.Known || CmdFinal(out.From) {
		return out, nil
	}
	out.To = state
	if CmdFinal(state) {
		_, err = tx.tx.ExecContext(ctx, "UPDATE commands SET state = $2, reason = $3, result = $4, final_at = $5, next_send_at = NULL WHERE id = $1",
			cmdID, state, reason, result, ms(now))
	} else {
		_, err = tx.tx.ExecContext(ctx, "UPDATE commands SET state = $2, reason = $3 WHERE id = $1", cmdID, state, reason)
	}
	if err != nil {
		return out, fmt.Errorf("ack of %s: %w", cmdID, err)
	}
	if out.JobID != "" {
		if err := tx.setItemState(ctx, cmdID, state, reason, now); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Resend is a command to publish again.
type Resend struct {
	ID       string
	Serial   string
	Envelope []byte
}

// ClaimResends takes the commands due for re-publishing at now (at most
// limit; on PostgreSQL rows another instance is taking are skipped) and
// moves their next_send_at by interval, or, for those past expires_at
// without a final ack, marks them expired (job item: no answer). The
// caller publishes what is returned.
func (s *Store) ClaimResends(ctx context.Context, now time.Time, interval time.Duration, limit int) (due []Resend, expired int, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		due, expired = nil, 0
		type row struct {
			r       Resend
			expires int64
			job     sql.NullString
		}
		list, err := queryAll(ctx, tx.tx, func(sc scanner) (row, error) {
			var r row
			err := sc.Scan(&r.r.ID, &r.r.Serial, &r.r.Envelope, &r.expires, &r.job)
			return r, err
		}, `SELECT id, serial, envelope, expires_at, job_id FROM commands
			WHERE next_send_at IS NOT NULL AND next_send_at <= $1 ORDER BY next_send_at LIMIT $2`+s.skipLocked(), ms(now), limit)
		if err != nil {
			return err
		}
		for _, r := range list {
			if ms(now) > r.expires {
				if _, err := tx.tx.ExecContext(ctx, "UPDATE commands SET state = $2, final_at = $3, next_send_at = NULL WHERE id = $1",
					r.r.ID, CmdExpired, ms(now)); err != nil {
					return err
				}
				if r.job.Valid {
					if err := tx.setItemState(ctx, r.r.ID, ItemNoAnswer, "no final ack before expires_at", now); err != nil {
						return err
					}
				}
				expired++
				continue
			}
			next := min(ms(now.Add(interval)), r.expires+1)
			if _, err := tx.tx.ExecContext(ctx, "UPDATE commands SET next_send_at = $2, send_count = send_count + 1 WHERE id = $1",
				r.r.ID, next); err != nil {
				return err
			}
			due = append(due, r.r)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("claim re-sends: %w", err)
	}
	return due, expired, nil
}

// MarkSent records that a command (stored in state signing, now fully
// signed) is published: its envelope, state sent and when to re-send.
func (tx *Tx) MarkSent(ctx context.Context, id string, envelope []byte, now, nextSend time.Time) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE commands SET envelope = $2, state = $3, sent_at = $4, send_count = send_count + 1,
		next_send_at = $5 WHERE id = $1`, id, envelope, CmdSent, ms(now), ms(nextSend))
	if err != nil {
		return fmt.Errorf("command %s sent: %w", id, err)
	}
	return nil
}

// Command returns one command inside the transaction, or ErrNotFound.
func (tx *Tx) Command(ctx context.Context, id string) (Command, error) {
	c, err := scanCommand(tx.tx.QueryRowContext(ctx, "SELECT "+commandCols+" FROM commands WHERE id = $1", id))
	return one(c, err, "command "+id)
}
