package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/posagent/posagent/internal/hq/wire"
)

// Job states.
const (
	JobSigning   = wire.JobSigning
	JobRunning   = wire.JobRunning
	JobAborted   = wire.JobAborted
	JobCancelled = wire.JobCancelled
	JobDone      = wire.JobDone
)

// Job item states.
const (
	ItemPending    = wire.ItemPending
	ItemSent       = wire.ItemSent
	ItemAccepted   = wire.ItemAccepted
	ItemInProgress = wire.ItemInProgress
	ItemSucceeded  = wire.ItemSucceeded
	ItemFailed     = wire.ItemFailed
	ItemRejected   = wire.ItemRejected
	ItemNoAnswer   = wire.ItemNoAnswer
	ItemCancelled  = wire.ItemCancelled
)

// ItemFinal reports whether a job item state is final.
func ItemFinal(state string) bool {
	switch state {
	case ItemSucceeded, ItemFailed, ItemRejected, ItemNoAnswer, ItemCancelled:
		return true
	}
	return false
}

// Signing modes of a job.
const (
	SignHQD       = wire.SignHQD
	SignOperators = wire.SignOperators
)

// Job is a rollout of one command type over many terminals.
type Job = wire.Job

const jobCols = `id, type, args, state, signing, required_sigs, rate_per_min, max_inflight, abort_pct, abort_min, command_ttl_ms,
	total, created_by, created_at, updated_at, finished_at, note, next_send_at, lease_owner, lease_until`

// jobByID reads one job; a transaction appends forUpdate to it.
const jobByID = "SELECT " + jobCols + " FROM jobs WHERE id = $1"

func scanJob(sc scanner) (Job, error) {
	var j Job
	var ttl, created, updated, next, lease int64
	var finished sql.NullInt64
	err := sc.Scan(&j.ID, &j.Type, &j.Args, &j.State, &j.Signing, &j.RequiredSigs, &j.RatePerMin, &j.MaxInflight, &j.AbortPct,
		&j.AbortMin, &ttl, &j.Total, &j.CreatedBy, &created, &updated, &finished, &j.Note, &next, &j.LeaseOwner, &lease)
	j.CommandTTL = time.Duration(ttl) * time.Millisecond
	j.CreatedAt, j.UpdatedAt, j.FinishedAt = fromMS(created), fromMS(updated), nullMS(finished)
	j.NextSendAt, j.LeaseUntil = fromMS(next), fromMS(lease)
	return j, err
}

// ItemCmdID is the command id of a job's item: <job>.<serial>, at most
// 24+1+32 characters, inside the 64 of remote.md's id syntax.
func ItemCmdID(jobID, serial string) string { return jobID + "." + serial }

// PreparedCommand is a command built at job creation (operator-signed
// jobs): the payload operators will sign.
type PreparedCommand struct {
	Serial    string
	Payload   []byte
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// CreateJob stores a job and its items (one per serial, in order) in one
// transaction: a job is never half-created. prepared, for an
// operator-signed job, holds each serial's command payload, stored as a
// command in state signing. The audit entries, if any, are written in the
// same transaction (one commit, one fsync, for the job and its record).
func (s *Store) CreateJob(ctx context.Context, j Job, serials []string, prepared []PreparedCommand, audit ...AuditEntry) error {
	j.Total = len(serials)
	if s.dialect == Postgres && len(serials) > 0 && len(serials) <= 500 && len(prepared) <= 500 {
		return s.createJobStatement(ctx, j, serials, prepared, audit)
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `INSERT INTO jobs (`+jobCols+`) VALUES
			($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULL, $16, $17, '', 0)`,
			j.ID, j.Type, j.Args, j.State, j.Signing, j.RequiredSigs, j.RatePerMin, j.MaxInflight, j.AbortPct, j.AbortMin,
			j.CommandTTL.Milliseconds(), j.Total, j.CreatedBy, ms(j.CreatedAt), ms(j.CreatedAt), j.Note, ms(j.CreatedAt))
		if err != nil {
			return err
		}
		// Multi-row inserts, one round trip per 500 rows, for the items
		// and for the commands operators will sign: set-based, never a
		// statement per terminal.
		items := make([][]any, len(serials))
		for i, serial := range serials {
			items[i] = []any{j.ID, serial, i, ItemCmdID(j.ID, serial), ItemPending, ms(j.CreatedAt)}
		}
		if err := tx.insertRows(ctx, "INSERT INTO job_items (job_id, serial, seq, cmd_id, state, updated_at) VALUES ", items); err != nil {
			return err
		}
		cmds := make([][]any, len(prepared))
		for i, p := range prepared {
			cmds[i] = []any{ItemCmdID(j.ID, p.Serial), p.Serial, j.Type, j.ID, p.Payload, j.RequiredSigs, CmdSigning,
				ms(p.IssuedAt), ms(p.ExpiresAt), j.CreatedBy, ms(j.CreatedAt)}
		}
		if err := tx.insertRows(ctx, `INSERT INTO commands (id, serial, type, job_id, payload, required_sigs, state, issued_at, expires_at,
			created_by, created_at) VALUES `, cmds); err != nil {
			return err
		}
		for _, e := range audit {
			if err := tx.Audit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.ID, err)
	}
	return nil
}

// createJobStatement is CreateJob in one PostgreSQL statement, for jobs
// of up to 500 terminals: the job, its audit entries and operator-signed
// commands in data-modifying WITH clauses, the items in the main INSERT
// (the foreign keys are checked at the statement's end, when the job's row
// is there). One round trip and its own transaction instead of a BEGIN,
// four INSERTs and a COMMIT, each of which waits for the backend to be
// scheduled on a loaded host.
func (s *Store) createJobStatement(ctx context.Context, j Job, serials []string, prepared []PreparedCommand, audit []AuditEntry) error {
	var b strings.Builder
	var args []any
	values := func(row ...any) {
		b.WriteString("(" + s.params(len(args)+1, len(row)) + ")")
		args = append(args, row...)
	}
	b.WriteString("WITH job AS (INSERT INTO jobs (" + jobCols + ") VALUES ")
	values(j.ID, j.Type, j.Args, j.State, j.Signing, j.RequiredSigs, j.RatePerMin, j.MaxInflight, j.AbortPct, j.AbortMin,
		j.CommandTTL.Milliseconds(), j.Total, j.CreatedBy, ms(j.CreatedAt), ms(j.CreatedAt), nil, j.Note, ms(j.CreatedAt), "", 0)
	b.WriteString(")")
	for i, e := range audit {
		fmt.Fprintf(&b, ", audit%d AS (INSERT INTO audit (at, actor, source, action, target, detail) VALUES ", i)
		values(ms(e.At), e.Actor, e.Source, e.Action, e.Target, e.Detail)
		b.WriteString(")")
	}
	if len(prepared) > 0 {
		b.WriteString(", cmds AS (INSERT INTO commands (id, serial, type, job_id, payload, required_sigs, state, issued_at, expires_at, created_by, created_at) VALUES ")
		for i, p := range prepared {
			if i > 0 {
				b.WriteString(", ")
			}
			values(ItemCmdID(j.ID, p.Serial), p.Serial, j.Type, j.ID, p.Payload, j.RequiredSigs, CmdSigning,
				ms(p.IssuedAt), ms(p.ExpiresAt), j.CreatedBy, ms(j.CreatedAt))
		}
		b.WriteString(")")
	}
	b.WriteString(" INSERT INTO job_items (job_id, serial, seq, cmd_id, state, updated_at) VALUES ")
	for i, serial := range serials {
		if i > 0 {
			b.WriteString(", ")
		}
		values(j.ID, serial, i, ItemCmdID(j.ID, serial), ItemPending, ms(j.CreatedAt))
	}
	if _, err := s.db.ExecContext(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("create job %s: %w", j.ID, err)
	}
	return nil
}

// insertRows runs a multi-row INSERT (head ends with "VALUES ") for rows
// of equal width, 500 rows a statement.
func (tx *Tx) insertRows(ctx context.Context, head string, rows [][]any) error {
	const perStmt = 500
	for start := 0; start < len(rows); start += perStmt {
		end := min(start+perStmt, len(rows))
		var b strings.Builder
		b.WriteString(head)
		args := make([]any, 0, (end-start)*len(rows[start]))
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			b.WriteString(tx.s.params(len(args)+1, len(rows[i])))
			b.WriteByte(')')
			args = append(args, rows[i]...)
		}
		if _, err := tx.tx.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// Job returns one job, or ErrNotFound.
func (s *Store) Job(ctx context.Context, id string) (Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, jobByID, id))
	return one(j, err, "job "+id)
}

// Jobs lists jobs, newest first.
func (s *Store) Jobs(ctx context.Context, limit int) ([]Job, error) {
	out, err := queryAll(ctx, s.db, scanJob, "SELECT "+jobCols+" FROM jobs ORDER BY created_at DESC, id LIMIT $1", limit)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

// Counts is a job's items by state.
type Counts = wire.Counts

func counts(ctx context.Context, q querier, jobID string) (Counts, error) {
	c, err := countBy(ctx, q, "SELECT state, COUNT(*) FROM job_items WHERE job_id = $1 GROUP BY state", jobID)
	if err != nil {
		return nil, fmt.Errorf("job %s counts: %w", jobID, err)
	}
	return c, nil
}

// JobCounts returns a job's items by state.
func (s *Store) JobCounts(ctx context.Context, jobID string) (Counts, error) {
	return counts(ctx, s.db, jobID)
}

// Item is one terminal of a job.
type Item = wire.Item

// JobItems lists a job's items in order after seq after, optionally of one
// state, at most limit.
func (s *Store) JobItems(ctx context.Context, jobID, state string, after, limit int) ([]Item, error) {
	page, args := itemPage(jobID, state, after, limit)
	out, err := queryAll(ctx, s.db, func(sc scanner) (Item, error) {
		var it Item
		var up int64
		var result string
		err := sc.Scan(&it.Serial, &it.Seq, &it.CmdID, &it.State, &it.Reason, &up, &result)
		it.UpdatedAt = fromMS(up)
		if result != "" && json.Valid([]byte(result)) {
			it.Result = json.RawMessage(result)
		}
		return it, err
	}, `SELECT i.serial, i.seq, i.cmd_id, i.state, i.reason, i.updated_at, COALESCE(c.result, '')
		FROM job_items i LEFT JOIN commands c ON c.id = i.cmd_id`+page, args...)
	if err != nil {
		return nil, fmt.Errorf("job %s items: %w", jobID, err)
	}
	return out, nil
}

// itemPage is the end of a query of a job's items (alias i) from WHERE
// on: the items after seq after, of one state when state is set, in
// order, at most limit.
func itemPage(jobID, state string, after, limit int) (string, []any) {
	q := " WHERE i.job_id = $1 AND i.seq > $2"
	args := []any{jobID, after, limit}
	if state != "" {
		q += " AND i.state = $4"
		args = append(args, state)
	}
	return q + " ORDER BY i.seq LIMIT $3", args
}

// setItemState moves a job item forward (never out of a final state).
func (tx *Tx) setItemState(ctx context.Context, cmdID, cmdState, reason string, now time.Time) error {
	state := cmdState
	if cmdState == CmdExpired {
		state = ItemNoAnswer
	}
	_, err := tx.tx.ExecContext(ctx, `UPDATE job_items SET state = $2, reason = $3, updated_at = $4
		WHERE cmd_id = $1 AND state NOT IN ('succeeded', 'failed', 'rejected', 'no_answer', 'cancelled')`,
		cmdID, state, reason, ms(now))
	if err != nil {
		return fmt.Errorf("job item %s: %w", cmdID, err)
	}
	return nil
}

// ClaimJobs renews this instance's leases and takes running jobs whose
// lease has run out (their instance died or stopped): a job is stepped by
// one instance at a time. It returns the ids of the jobs owner holds.
func (s *Store) ClaimJobs(ctx context.Context, owner string, now time.Time, lease time.Duration) ([]string, error) {
	var ids []string
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		ids, err = queryAll(ctx, tx.tx, scanString, `SELECT id FROM jobs WHERE state = $1 AND (lease_owner = $2 OR lease_until < $3)
			ORDER BY created_at`+s.skipLocked(), JobRunning, owner, ms(now))
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.tx.ExecContext(ctx, "UPDATE jobs SET lease_owner = $2, lease_until = $3 WHERE id = $1",
				id, owner, ms(now.Add(lease))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	return ids, nil
}

// ReleaseJobs gives up owner's leases (a clean stop), so another instance
// takes the jobs on at once.
func (s *Store) ReleaseJobs(ctx context.Context, owner string) error {
	_, err := s.db.ExecContext(ctx, "UPDATE jobs SET lease_owner = '', lease_until = 0 WHERE lease_owner = $1", owner)
	return err
}

// StepPlan is what a job step may do: send up to Send items.
type StepPlan struct {
	Job    Job
	Counts Counts
}

// Outbound is a command a job step stored and the caller publishes after
// the commit.
type Outbound struct {
	ID       string
	Serial   string
	Envelope []byte
}

// BuildFunc makes the signed command of one job item at send time; it runs
// inside the step's transaction.
type BuildFunc func(ctx context.Context, tx *Tx, j Job, it Item, now time.Time) (Command, error)

// StepJob runs one step of a job that owner holds: it checks the abort
// threshold and completion, then sends as many pending items as the rate
// (next_send_at) and the in-flight cap allow, each stored as a sent
// command before it is returned for publishing. A job another instance
// took over, or that is no longer running, is left alone.
func (s *Store) StepJob(ctx context.Context, owner, jobID string, now time.Time, resendInterval time.Duration, build BuildFunc) (Job, Counts, []Outbound, error) {
	var (
		j   Job
		c   Counts
		out []Outbound
	)
	err := s.InTx(ctx, func(tx *Tx) error {
		out = nil
		var err error
		j, err = scanJob(tx.tx.QueryRowContext(ctx, jobByID+s.forUpdate(), jobID))
		if err != nil {
			return err
		}
		if j.State != JobRunning || j.LeaseOwner != owner {
			return nil
		}
		if c, err = counts(ctx, tx.tx, jobID); err != nil {
			return err
		}
		if fin := c.Finished(); fin >= j.AbortMin && fin > 0 && c.Bad()*100 > j.AbortPct*fin {
			j.State = JobAborted
			j.Note = fmt.Sprintf("aborted: %d of %d finished failed (%.1f %%), over the %d %% threshold",
				c.Bad(), fin, float64(c.Bad())*100/float64(fin), j.AbortPct)
			_, err := tx.tx.ExecContext(ctx, "UPDATE jobs SET state = $2, note = $3, updated_at = $4 WHERE id = $1",
				jobID, j.State, j.Note, ms(now))
			return err
		}
		if c[ItemPending] == 0 && c.Inflight() == 0 {
			j.State, j.FinishedAt = JobDone, now
			_, err := tx.tx.ExecContext(ctx, "UPDATE jobs SET state = $2, finished_at = $3, updated_at = $3 WHERE id = $1",
				jobID, j.State, ms(now))
			return err
		}
		interval := time.Minute / time.Duration(max(j.RatePerMin, 1))
		next := j.NextSendAt
		// A job that waited (a restart, the cap) does not make up for
		// lost time in one burst: at most one second of sends at once.
		if floor := now.Add(-time.Second); next.Before(floor) {
			next = floor
		}
		room := j.MaxInflight - c.Inflight()
		n := 0
		for !next.After(now) && room-n > 0 {
			n++
			next = next.Add(interval)
		}
		if n == 0 || c[ItemPending] == 0 {
			return nil
		}
		items, err := pendingItems(ctx, tx, jobID, n)
		if err != nil {
			return err
		}
		for _, it := range items {
			cmd, err := build(ctx, tx, j, it, now)
			if err != nil {
				return fmt.Errorf("job %s item %s: %w", jobID, it.Serial, err)
			}
			if _, err := tx.tx.ExecContext(ctx, "UPDATE job_items SET state = $2, updated_at = $3 WHERE job_id = $1 AND serial = $4",
				jobID, ItemSent, ms(now), it.Serial); err != nil {
				return err
			}
			c[ItemPending]--
			c[ItemSent]++
			out = append(out, Outbound{ID: cmd.ID, Serial: cmd.Serial, Envelope: cmd.Envelope})
		}
		// Unused slots of this step are not kept for later.
		if len(items) < n {
			next = now.Add(interval)
		}
		_, err = tx.tx.ExecContext(ctx, "UPDATE jobs SET next_send_at = $2, updated_at = $3 WHERE id = $1", jobID, ms(next), ms(now))
		return err
	})
	if err != nil {
		return j, c, nil, fmt.Errorf("step job %s: %w", jobID, err)
	}
	return j, c, out, nil
}

func pendingItems(ctx context.Context, tx *Tx, jobID string, n int) ([]Item, error) {
	return queryAll(ctx, tx.tx, func(sc scanner) (Item, error) {
		var it Item
		var up int64
		err := sc.Scan(&it.Serial, &it.Seq, &it.CmdID, &it.State, &it.Reason, &up)
		it.UpdatedAt = fromMS(up)
		return it, err
	}, `SELECT serial, seq, cmd_id, state, reason, updated_at FROM job_items
		WHERE job_id = $1 AND state = $2 ORDER BY seq LIMIT $3`, jobID, ItemPending, n)
}

// ErrJobState: the job is not in a state that allows the change.
var ErrJobState = errors.New("not allowed in the job's state")

// CancelJob stops a job that is signing, running or aborted (one that
// ended, done, cancelled or rejected, is refused with ErrJobState): no more sends, pending items cancelled. Commands
// already sent keep being re-sent until their final ack or expiry (they may
// already be executing on the terminal; their outcome still matters).
func (s *Store) CancelJob(ctx context.Context, id string, now time.Time) (Job, error) {
	var j Job
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		if j, err = tx.lockJob(ctx, id); err != nil {
			return err
		}
		switch j.State {
		case JobSigning, JobRunning, JobAborted:
		default: // done, cancelled, rejected: it has ended, nothing is left to stop
			return fmt.Errorf("job %s is %s: it has ended and cannot be cancelled: %w", id, j.State, ErrJobState)
		}
		j.State = JobCancelled
		if _, err := tx.tx.ExecContext(ctx, "UPDATE jobs SET state = $2, updated_at = $3, finished_at = $3, lease_owner = '' WHERE id = $1",
			id, JobCancelled, ms(now)); err != nil {
			return err
		}
		if _, err := tx.tx.ExecContext(ctx, "UPDATE job_items SET state = $2, updated_at = $3 WHERE job_id = $1 AND state = $4",
			id, ItemCancelled, ms(now), ItemPending); err != nil {
			return err
		}
		_, err = tx.tx.ExecContext(ctx, "UPDATE commands SET state = $2, final_at = $3 WHERE job_id = $1 AND state = $4",
			id, CmdCancelled, ms(now), CmdSigning)
		return err
	})
	if err != nil {
		return Job{}, fmt.Errorf("cancel job %s: %w", id, err)
	}
	return j, nil
}

// ResumeJob sets an aborted job running again (an operator's decision,
// after looking at why it failed); abortPct > 0 replaces its threshold.
func (s *Store) ResumeJob(ctx context.Context, id string, abortPct int, now time.Time) (Job, error) {
	var j Job
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		if j, err = tx.lockJob(ctx, id); err != nil {
			return err
		}
		if j.State != JobAborted {
			return fmt.Errorf("job %s is %s, only an aborted job resumes: %w", id, j.State, ErrJobState)
		}
		if abortPct > 0 {
			j.AbortPct = abortPct
		}
		j.State = JobRunning
		_, err = tx.tx.ExecContext(ctx, "UPDATE jobs SET state = $2, abort_pct = $3, note = '', updated_at = $4, next_send_at = $4 WHERE id = $1",
			id, j.State, j.AbortPct, ms(now))
		return err
	})
	if err != nil {
		return Job{}, fmt.Errorf("resume job %s: %w", id, err)
	}
	return j, nil
}
