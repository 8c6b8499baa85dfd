package jobs_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/hq/command"
	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/terminal/remote"
)

// An update job is created like an unbind job: the args checked with the
// terminal's own parser, the rollout controls stored with it; a policy of
// two signatures for update makes it wait for operators.
func TestCreateUpdateJob(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "hq.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	serials := []string{"PA-UPD-0001", "PA-UPD-0002", "PA-UPD-0003"}
	for _, s := range serials {
		pub, _, _ := ed25519.GenerateKey(nil)
		if _, err := st.RegisterDevice(ctx, s, pub, make([]byte, 32), false, now); err != nil {
			t.Fatal(err)
		}
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	svc := &jobs.Service{Store: st, Signer: &command.Signer{KID: "hq-ops", Priv: priv}, Log: slog.New(slog.DiscardHandler)}
	args := json.RawMessage(`{"url":"https://updates.example.com/posagent-1.1.0.raucb","sha256":"` + strings.Repeat("ab", 32) +
		`","size":1048576,"version":"1.1.0","when":"after-settlement"}`)
	req := jobs.Request{Type: "update", Args: args, Serials: serials, RatePerMin: 30, MaxInflight: 2, AbortPct: 5, AbortMin: 2, Note: "1.1.0 to the pilot stores"}
	j, err := svc.Create(ctx, "ops", "test", req, now)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if j.Type != "update" || j.State != store.JobRunning || j.Total != 3 || j.RatePerMin != 30 || j.MaxInflight != 2 || j.AbortPct != 5 || j.AbortMin != 2 {
		t.Fatalf("job %+v", j)
	}
	got, err := st.Job(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := remote.ParseUpdateArgs(json.RawMessage(got.Args)); err != nil || a.Version != "1.1.0" || a.When != remote.UpdateAfterSettlement {
		t.Fatalf("stored args %s: %+v %v", got.Args, a, err)
	}
	items, err := st.JobItems(ctx, j.ID, "", -1, 10)
	if err != nil || len(items) != 3 {
		t.Fatalf("items %+v %v", items, err)
	}

	// Args a terminal would refuse are refused here, before anything is
	// stored.
	for _, bad := range []string{
		`{"url":"http://updates.example.com/b","sha256":"` + strings.Repeat("ab", 32) + `","size":1,"version":"1.1.0"}`,
		`{"url":"https://updates.example.com/b","sha256":"abc","size":1,"version":"1.1.0"}`,
		`{"url":"https://updates.example.com/b","sha256":"` + strings.Repeat("ab", 32) + `","size":0,"version":"1.1.0"}`,
		`{"url":"https://updates.example.com/b","sha256":"` + strings.Repeat("ab", 32) + `","size":1}`,
	} {
		req.Args = json.RawMessage(bad)
		_, err := svc.Create(ctx, "ops", "test", req, now)
		var fe *jobs.FieldError
		if !errors.As(err, &fe) || fe.Field != "args" {
			t.Errorf("args %s: err %v, want a field error on args", bad, err)
		}
	}

	// update=2 in the fleet's policy: the job waits for two operators.
	svc.Policy = map[string]int{"update": 2}
	req.Args = args
	j, err = svc.Create(ctx, "ops", "test", req, now)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != store.JobSigning || j.RequiredSigs != 2 {
		t.Fatalf("job with update=2: state %s, %d signatures; want signing, 2", j.State, j.RequiredSigs)
	}
}
