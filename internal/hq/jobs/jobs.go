// Package jobs rolls commands out over many terminals: creation (a list of
// serials or a filter, rate, in-flight cap, abort threshold), collection of
// operators' signatures for commands whose policy needs them, and the
// runner every hqd instance runs. A job is stepped by the one instance that
// holds its lease; an instance that dies loses its leases when they run
// out and another instance carries the job on. Commands without a final
// ack are re-published (same envelope, same id) until they expire.
package jobs

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/posagent/posagent/internal/hq/command"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/internal/hq/wire"
	"github.com/posagent/posagent/terminal/remote"
)

// Publisher publishes a command envelope to a terminal.
type Publisher interface {
	Publish(topic string, payload []byte)
}

// Service creates jobs and collects signatures.
type Service struct {
	Store *store.Store
	// Signer is hqd's ops key for commands whose policy needs one
	// signature; nil: every job waits for operators' signatures.
	Signer *command.Signer
	// Policy is how many distinct signatures a type needs (the fleet's
	// policy, as terminals were told with hq_keys); absent types need 1.
	Policy map[string]int
	Log    *slog.Logger
}

// Request asks for a job (wire: hqctl sends it).
type Request = wire.JobRequest

// Defaults of a job request.
const (
	DefaultRate     = wire.DefaultRate
	DefaultInflight = wire.DefaultInflight
	DefaultAbortPct = wire.DefaultAbortPct
	DefaultAbortMin = wire.DefaultAbortMin
	DefaultTTL      = wire.DefaultTTL
)

// FieldError is a request field that is wrong, with what to do.
type FieldError struct {
	Field   string   `json:"field"`
	Message string   `json:"message"`
	Unknown []string `json:"unknown,omitempty"` // serials HQ does not know
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, a...)}
}

// Create validates a request and stores the job with its items (nothing is
// created when anything is wrong). A job whose type needs operators'
// signatures (the policy says more than one, or hq_keys, which needs a
// root key hqd never holds) starts in state signing with every command's
// payload built and waiting; otherwise it starts running and hqd signs
// each command when it sends it.
func (s *Service) Create(ctx context.Context, actor, source string, r Request, now time.Time) (store.Job, error) {
	switch remote.CommandType(r.Type) {
	case remote.TypeUnbind, remote.TypeStatus, remote.TypeHQKeys, remote.TypeUpdate:
	default:
		return store.Job{}, fieldErr("type", "%q: want unbind, status, hq_keys or update", r.Type)
	}
	if len(r.Args) == 0 || string(r.Args) == "null" {
		r.Args = json.RawMessage("{}")
	}
	var err error
	switch r.Type {
	case command.TypeHQKeys:
		err = command.CheckHQKeysArgs(r.Args)
	default:
		err = remote.CheckArgs(remote.CommandType(r.Type), r.Args)
	}
	if err != nil {
		return store.Job{}, fieldErr("args", "%v", err)
	}
	r.RatePerMin = orDefault(r.RatePerMin, DefaultRate)
	r.MaxInflight = orDefault(r.MaxInflight, DefaultInflight)
	r.AbortPct = orDefault(r.AbortPct, DefaultAbortPct)
	if r.AbortMin == 0 {
		r.AbortMin = DefaultAbortMin
	}
	switch {
	case r.RatePerMin < 1 || r.RatePerMin > 600_000:
		return store.Job{}, fieldErr("rate_per_min", "%d: want 1-600000 commands per minute", r.RatePerMin)
	case r.MaxInflight < 1:
		return store.Job{}, fieldErr("max_inflight", "%d: want at least 1", r.MaxInflight)
	case r.AbortPct < 1 || r.AbortPct > 100:
		return store.Job{}, fieldErr("abort_pct", "%d: want 1-100 (100: never abort)", r.AbortPct)
	case r.AbortMin < 1:
		return store.Job{}, fieldErr("abort_min", "%d: want at least 1", r.AbortMin)
	case len(r.Note) > 500:
		return store.Job{}, fieldErr("note", "at most 500 characters")
	}
	ttl := DefaultTTL
	if r.CommandTTL != "" {
		if ttl, err = time.ParseDuration(r.CommandTTL); err != nil || ttl <= 0 || ttl > command.MaxTTL {
			return store.Job{}, fieldErr("command_ttl", "%q: want a duration up to 168h", r.CommandTTL)
		}
	}
	serials, err := s.serials(ctx, r)
	if err != nil {
		return store.Job{}, err
	}
	if r.MinSignatures < 0 || r.MinSignatures > 16 {
		return store.Job{}, fieldErr("min_signatures", "%d: want 0-16", r.MinSignatures)
	}
	need := max(s.Policy[r.Type], r.MinSignatures, 1)
	signing := store.SignHQD
	if r.Type == command.TypeHQKeys || need > 1 || s.Signer == nil {
		signing = store.SignOperators
	}
	j := store.Job{ID: newJobID(now), Type: r.Type, Args: string(r.Args), State: store.JobRunning, Signing: signing, RequiredSigs: need,
		RatePerMin: r.RatePerMin, MaxInflight: r.MaxInflight, AbortPct: r.AbortPct, AbortMin: r.AbortMin, CommandTTL: ttl,
		CreatedBy: actor, CreatedAt: now, Note: r.Note}
	var prepared []store.PreparedCommand
	if signing == store.SignOperators {
		// Operators sign fixed payloads: the commands' validity must
		// cover the whole rollout, which cannot be stretched later
		// without signing again.
		if span := time.Duration(len(serials)) * time.Minute / time.Duration(r.RatePerMin); span+time.Hour > ttl {
			return store.Job{}, fieldErr("command_ttl", "%s is shorter than the rollout (%s at %d/min) plus an hour: raise it (at most 168h) or the rate",
				ttl, span.Round(time.Minute), r.RatePerMin)
		}
		j.State = store.JobSigning
		for _, serial := range serials {
			p, c, err := command.Payload(r.Type, serial, store.ItemCmdID(j.ID, serial), r.Args, now, ttl)
			if err != nil {
				return store.Job{}, fieldErr("args", "%v", err)
			}
			prepared = append(prepared, store.PreparedCommand{Serial: serial, Payload: p, IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt})
		}
	}
	detail, _ := json.Marshal(map[string]any{"type": r.Type, "args": r.Args, "terminals": len(serials), "rate_per_min": r.RatePerMin,
		"max_inflight": r.MaxInflight, "abort_pct": r.AbortPct, "signing": signing, "required_sigs": need})
	audit := store.AuditEntry{At: now, Actor: actor, Source: source, Action: "job.create", Target: j.ID, Detail: string(detail)}
	if err := s.Store.CreateJob(ctx, j, serials, prepared, audit); err != nil {
		return store.Job{}, err
	}
	j.Total = len(serials)
	return j, nil
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// serials resolves a request's terminals: the listed serials (each known,
// none twice) or the filter's matches.
func (s *Service) serials(ctx context.Context, r Request) ([]string, error) {
	if (len(r.Serials) == 0) == (r.Filter == nil) {
		return nil, fieldErr("serials", "give a list of serials or a filter, one of the two")
	}
	if r.Filter != nil {
		serials, err := s.Store.SerialsMatching(ctx, *r.Filter)
		if err != nil {
			return nil, err
		}
		if len(serials) == 0 {
			return nil, fieldErr("filter", "matches no terminal")
		}
		return serials, nil
	}
	seen := make(map[string]bool, len(r.Serials))
	var bad []string
	for _, serial := range r.Serials {
		if !remote.ValidSerial(serial) || seen[serial] {
			bad = append(bad, serial)
		}
		seen[serial] = true
	}
	if len(bad) > 0 {
		return nil, &FieldError{Field: "serials", Message: fmt.Sprintf("%d malformed or repeated serials", len(bad)), Unknown: bad}
	}
	unknown, err := s.Store.UnknownSerials(ctx, r.Serials)
	if err != nil {
		return nil, err
	}
	if len(unknown) > 0 {
		return nil, &FieldError{Field: "serials", Message: fmt.Sprintf("%d serials are not registered terminals", len(unknown)), Unknown: unknown}
	}
	return r.Serials, nil
}

func newJobID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "j" + now.UTC().Format("060102150405") + hex.EncodeToString(b[:])
}

// SignatureIn is one signature an operator made elsewhere.
type SignatureIn = wire.SignatureIn

// ErrSignature is a signature refused.
var ErrSignature = errors.New("signature refused")

// AddSignatures stores signatures an operator made on a signing job's
// commands. Each kid must be the operator's own, unrevoked key (root for
// hq_keys), each signature must verify over the stored payload, and one
// operator counts once per command however many keys they hold: a second
// signature is a second person. The job starts running once every command
// has the signatures its policy needs. A batch costs the same whatever
// the job's size: its commands and their signers are read in set-based
// queries, the signatures written in multi-row inserts, and completeness
// is one query, all in one transaction.
func (s *Service) AddSignatures(ctx context.Context, op store.Operator, source, jobID string, sigs []SignatureIn, now time.Time) (store.Job, error) {
	keys, err := s.Store.Keys(ctx)
	if err != nil {
		return store.Job{}, err
	}
	byKID := map[string]store.HQKey{}
	for _, k := range keys {
		byKID[k.KID] = k
	}
	ids := make([]string, 0, len(sigs))
	for _, in := range sigs {
		ids = append(ids, in.CmdID)
	}
	var (
		j       store.Job
		started bool
	)
	err = s.Store.InTx(ctx, func(tx *store.Tx) error {
		// The job's row first: batches on one job are decided one after
		// the other, so a command is counted complete once.
		var err error
		if j, err = tx.LockJob(ctx, jobID); err != nil {
			return err
		}
		if j.State != store.JobSigning {
			return fmt.Errorf("job %s is %s: %w", jobID, j.State, store.ErrJobState)
		}
		cmds, err := tx.CommandsToSign(ctx, ids)
		if err != nil {
			return err
		}
		signed := make(map[string]bool, len(sigs)) // commands this operator signs in this batch
		complete := 0                              // of them, those this batch gives every signature they need
		out := make([]store.Signature, 0, len(sigs))
		for _, in := range sigs {
			k, ok := byKID[in.KID]
			switch {
			case !ok || !k.RevokedAt.IsZero():
				return fmt.Errorf("%w: kid %s is not a registered, unrevoked HQ key", ErrSignature, in.KID)
			case k.OperatorID != op.ID:
				return fmt.Errorf("%w: kid %s is not %s's key", ErrSignature, in.KID, op.Name)
			case j.Type == command.TypeHQKeys && k.Role != store.KeyRoot:
				return fmt.Errorf("%w: hq_keys needs a root key, %s is %s", ErrSignature, in.KID, k.Role)
			}
			c := cmds[in.CmdID]
			if c == nil || c.JobID != jobID || c.State != store.CmdSigning {
				return fmt.Errorf("%w: %s is not a command of job %s waiting for signatures", ErrSignature, in.CmdID, jobID)
			}
			if !ed25519.Verify(k.Pub, c.Payload, in.Sig) {
				return fmt.Errorf("%w: the signature of %s on %s does not verify", ErrSignature, in.KID, in.CmdID)
			}
			if signed[in.CmdID] || slices.ContainsFunc(c.Signers, func(kid string) bool { return byKID[kid].OperatorID == op.ID }) {
				return fmt.Errorf("%w: %s has signed %s already (a second signature must be another person's)", ErrSignature, op.Name, in.CmdID)
			}
			signed[in.CmdID] = true
			if len(c.Signers)+1 == j.RequiredSigs {
				complete++
			}
			out = append(out, store.Signature{CmdID: in.CmdID, KID: in.KID, Sig: in.Sig, Operator: op.Name, AddedAt: now})
		}
		if err := tx.AddSignatures(ctx, out); err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]any{"signatures": len(sigs)})
		if err := tx.Audit(ctx, store.AuditEntry{At: now, Actor: op.Name, Source: source, Action: "job.sign", Target: jobID, Detail: string(detail)}); err != nil {
			return err
		}
		n, err := tx.AddSigned(ctx, jobID, complete)
		if err != nil || n < j.Total {
			return err
		}
		started, err = tx.SetJobState(ctx, jobID, store.JobSigning, store.JobRunning, now)
		return err
	})
	if err != nil {
		return j, err
	}
	if started {
		j.State = store.JobRunning
		s.Log.Info("job fully signed: running", "job", jobID)
	}
	return j, nil
}

// Progress is what an operator sees of a job.
type Progress = wire.Progress

// ProgressOf reads a job's progress.
func ProgressOf(ctx context.Context, st *store.Store, id string) (Progress, error) {
	j, err := st.Job(ctx, id)
	if err != nil {
		return Progress{}, err
	}
	c, err := st.JobCounts(ctx, id)
	if err != nil {
		return Progress{}, err
	}
	p := Progress{Job: j, Counts: c, Sent: c.Sent(), Done: c.Finished(), Failed: c.Bad(), Inflight: c.Inflight()}
	if j.State == store.JobRunning && c[store.ItemPending] > 0 {
		p.ETA = (time.Duration(c[store.ItemPending]) * time.Minute / time.Duration(max(j.RatePerMin, 1))).Round(time.Second).String()
	}
	return p, nil
}
