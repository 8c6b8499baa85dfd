package store_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/store"
)

// TestSignaturesInBatches: a two-signature job over 1,200 terminals signed
// in batches of 500 by two operators (as hqctl job sign posts them). The
// job runs exactly when the last command gets its second signature; a
// second signature by the same person (another of their keys), a
// signature that does not verify and one on another job's command are
// refused and store nothing of their batch.
func TestSignaturesInBatches(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		serials := make([]string, 1200)
		for i := range serials {
			serials[i] = fmt.Sprintf("SG-%05d", i)
		}
		register(t, s, serials...)
		svc := &jobs.Service{Store: s, Policy: map[string]int{"unbind": 2}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		type signer struct {
			op   store.Operator
			kid  string
			priv ed25519.PrivateKey
		}
		mk := func(name string, kids ...string) []signer {
			o, err := s.CreateOperator(ctx, store.Operator{Name: name, Roles: []string{store.RoleRequester, store.RoleApprover}, CreatedAt: t0})
			if err != nil {
				t.Fatal(err)
			}
			var out []signer
			for _, kid := range kids {
				pub, priv, _ := ed25519.GenerateKey(rand.Reader)
				if err := s.AddKey(ctx, store.HQKey{KID: kid, Pub: pub, Role: store.KeyOps, OperatorID: o.ID, CreatedAt: t0}); err != nil {
					t.Fatal(err)
				}
				out = append(out, signer{o, kid, priv})
			}
			return out
		}
		alice, bob := mk("alice", "alice-1", "alice-2"), mk("bob", "bob-1")
		j, err := svc.Create(ctx, "alice", "test", jobs.Request{Type: "unbind", Serials: serials, RatePerMin: 600}, t0)
		if err != nil || j.State != store.JobSigning {
			t.Fatalf("create: %+v %v", j, err)
		}
		other, err := svc.Create(ctx, "alice", "test", jobs.Request{Type: "unbind", Serials: serials[:1], RatePerMin: 600}, t0)
		if err != nil {
			t.Fatal(err)
		}
		payloads := map[string][]byte{}
		for _, id := range []string{j.ID, other.ID} {
			cmds, err := s.SigningCommands(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cmds {
				payloads[c.ID] = c.Payload
			}
		}
		sign := func(sg signer, ids []string) []jobs.SignatureIn {
			out := make([]jobs.SignatureIn, len(ids))
			for i, id := range ids {
				out[i] = jobs.SignatureIn{CmdID: id, KID: sg.kid, Sig: ed25519.Sign(sg.priv, payloads[id])}
			}
			return out
		}
		ids := make([]string, len(serials))
		for i, serial := range serials {
			ids[i] = store.ItemCmdID(j.ID, serial)
		}
		batches := func(sg signer, want string) {
			t.Helper()
			for start := 0; start < len(ids); start += 500 {
				got, err := svc.AddSignatures(ctx, sg.op, "test", j.ID, sign(sg, ids[start:min(start+500, len(ids))]), t0)
				if err != nil {
					t.Fatalf("%s, batch at %d: %v", sg.kid, start, err)
				}
				last := start+500 >= len(ids)
				if st := map[bool]string{true: want, false: store.JobSigning}[last]; got.State != st {
					t.Fatalf("after %s's batch at %d: %s, want %s", sg.kid, start, got.State, st)
				}
			}
		}
		refused := func(what string, sg signer, in []jobs.SignatureIn) {
			t.Helper()
			if _, err := svc.AddSignatures(ctx, sg.op, "test", j.ID, in, t0); !errors.Is(err, jobs.ErrSignature) {
				t.Fatalf("%s: %v, want ErrSignature", what, err)
			}
		}
		batches(alice[0], store.JobSigning)
		// The same person again, with another key: refused, with the good
		// signatures of bob's in the same batch stored neither.
		refused("alice's second key", alice[1], sign(alice[1], ids[:1]))
		bad := sign(bob[0], ids[:2])
		bad[1].Sig = append([]byte{}, bad[0].Sig...)
		refused("a signature that does not verify", bob[0], bad)
		refused("another job's command", bob[0], sign(bob[0], []string{store.ItemCmdID(other.ID, serials[0])}))
		have, err := s.Signatures(ctx, ids[0])
		if err != nil || len(have) != 1 {
			t.Fatalf("signatures of %s after refused batches: %d %v", ids[0], len(have), err)
		}
		batches(bob[0], store.JobRunning)
		if j2, _ := s.Job(ctx, j.ID); j2.State != store.JobRunning {
			t.Fatalf("stored state %s", j2.State)
		}
	})
}

// TestCancelEndedJob: a job that ended (rejected by an approver, or
// cancelled) cannot be cancelled; the refusal says why and changes nothing.
func TestCancelEndedJob(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		register(t, s, "CX-0001")
		svc := &jobs.Service{Store: s, Policy: map[string]int{"unbind": 2}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		j, err := svc.Create(ctx, "alice", "test", jobs.Request{Type: "unbind", Serials: []string{"CX-0001"}}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RejectJob(ctx, j.ID, "no", store.AuditEntry{At: t0, Actor: "bob", Action: "job.reject", Target: j.ID}, t0); err != nil {
			t.Fatal(err)
		}
		_, err = s.CancelJob(ctx, j.ID, t0)
		if !errors.Is(err, store.ErrJobState) || err == nil {
			t.Fatalf("cancel of a rejected job: %v, want ErrJobState", err)
		}
		if got, _ := s.Job(ctx, j.ID); got.State != store.JobRejected {
			t.Fatalf("after the refused cancel: %s", got.State)
		}
		k, err := svc.Create(ctx, "alice", "test", jobs.Request{Type: "unbind", Serials: []string{"CX-0001"}}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := s.CancelJob(ctx, k.ID, t0); err != nil || c.State != store.JobCancelled {
			t.Fatalf("cancel of a signing job: %+v %v", c, err)
		}
		if _, err := s.CancelJob(ctx, k.ID, t0); !errors.Is(err, store.ErrJobState) {
			t.Fatalf("cancel twice: %v", err)
		}
	})
}
