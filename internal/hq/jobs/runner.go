package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/posagent/posagent/internal/hq/command"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/terminal/remote"
)

// Runner steps the jobs this instance holds and re-publishes commands
// without a final ack. Every hqd instance runs one.
type Runner struct {
	Store  *store.Store
	Pub    Publisher
	Signer *command.Signer // hqd's ops key; nil: only operator-signed jobs run
	Owner  string          // this instance's id (its MQTT client id)
	Log    *slog.Logger
	Tick   time.Duration // how often jobs are stepped (default 200 ms)
	Lease  time.Duration // job lease (default 15 s): how long a dead instance holds its jobs
	Resend time.Duration // re-publish a command without a final ack after this (default 60 s)
	Now    func() time.Time

	healthy atomic.Bool
}

func (r *Runner) defaults() {
	if r.Tick <= 0 {
		r.Tick = 200 * time.Millisecond
	}
	if r.Lease <= 0 {
		r.Lease = 15 * time.Second
	}
	if r.Resend <= 0 {
		r.Resend = time.Minute
	}
	if r.Now == nil {
		r.Now = time.Now
	}
}

// Healthy reports whether the last round reached the database.
func (r *Runner) Healthy() bool { return r.healthy.Load() }

// Run steps jobs until ctx ends, then gives up its leases.
func (r *Runner) Run(ctx context.Context) {
	r.defaults()
	r.healthy.Store(true)
	t := time.NewTicker(r.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := r.Store.ReleaseJobs(stop, r.Owner); err != nil {
				r.Log.Warn("jobs: could not release leases; they run out by themselves", "err", err)
			}
			cancel()
			return
		case <-t.C:
		}
		if err := r.Round(ctx); err != nil && ctx.Err() == nil {
			r.healthy.Store(false)
			r.Log.Error("jobs: round failed; retrying at the next tick", "err", err)
			continue
		}
		r.healthy.Store(true)
	}
}

// Round claims leases, steps each held job once and publishes re-sends.
func (r *Runner) Round(ctx context.Context) error {
	r.defaults()
	now := r.Now().UTC()
	ids, err := r.Store.ClaimJobs(ctx, r.Owner, now, r.Lease)
	if err != nil {
		return err
	}
	for _, id := range ids {
		j, c, out, err := r.Store.StepJob(ctx, r.Owner, id, now, r.Resend, r.build)
		if err != nil {
			return err
		}
		for _, o := range out {
			r.Pub.Publish(remote.CmdTopic(o.Serial), o.Envelope)
		}
		if j.State == store.JobAborted || j.State == store.JobDone {
			r.Log.Info("job "+j.State, "job", id, "note", j.Note, "succeeded", c[store.ItemSucceeded], "failed", c.Bad())
			detail, _ := json.Marshal(map[string]any{"counts": c, "note": j.Note})
			if err := r.Store.Audit(ctx, store.AuditEntry{At: now, Actor: "hqd", Source: r.Owner, Action: "job." + j.State, Target: id, Detail: string(detail)}); err != nil {
				return err
			}
		}
	}
	due, expired, err := r.Store.ClaimResends(ctx, now, r.Resend, 500)
	if err != nil {
		return err
	}
	for _, d := range due {
		r.Pub.Publish(remote.CmdTopic(d.Serial), d.Envelope)
	}
	if len(due) > 0 || expired > 0 {
		r.Log.Info("commands without a final ack", "republished", len(due), "expired", expired)
	}
	return nil
}

// build makes and stores the signed command of a job item as it is sent.
func (r *Runner) build(ctx context.Context, tx *store.Tx, j store.Job, it store.Item, now time.Time) (store.Command, error) {
	next := now.Add(r.Resend)
	switch j.Signing {
	case store.SignHQD:
		if r.Signer == nil {
			return store.Command{}, errors.New("job signed by hqd, but this instance has no signing key (signing.key_file)")
		}
		payload, c, err := command.Payload(j.Type, it.Serial, it.CmdID, json.RawMessage(j.Args), now, j.CommandTTL)
		if err != nil {
			return store.Command{}, err
		}
		env, err := remote.Seal(r.Signer.KID, r.Signer.Priv, payload)
		if err != nil {
			return store.Command{}, err
		}
		cmd := store.Command{ID: it.CmdID, Serial: it.Serial, Type: j.Type, JobID: j.ID, Payload: payload, Envelope: env, RequiredSigs: 1,
			State: store.CmdSent, IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, CreatedBy: j.CreatedBy, CreatedAt: now, SentAt: now,
			SendCount: 1, NextSendAt: next}
		return cmd, tx.InsertCommand(ctx, cmd)
	case store.SignOperators:
		sigs, err := tx.Signatures(ctx, it.CmdID)
		if err != nil {
			return store.Command{}, err
		}
		if len(sigs) < j.RequiredSigs {
			return store.Command{}, fmt.Errorf("%d of %d signatures", len(sigs), j.RequiredSigs)
		}
		var rs []remote.Signature
		for _, g := range sigs {
			rs = append(rs, remote.Signature{KID: g.KID, Sig: g.Sig})
		}
		c, err := commandOf(ctx, tx, it.CmdID)
		if err != nil {
			return store.Command{}, err
		}
		env, err := command.Assemble(c.Payload, rs)
		if err != nil {
			return store.Command{}, err
		}
		c.Envelope = env
		return c, tx.MarkSent(ctx, it.CmdID, env, now, next)
	}
	return store.Command{}, fmt.Errorf("job signing %q", j.Signing)
}

func commandOf(ctx context.Context, tx *store.Tx, id string) (store.Command, error) {
	return tx.Command(ctx, id)
}
