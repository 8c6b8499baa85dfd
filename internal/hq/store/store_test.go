package store_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/hq/pgtest"
	"github.com/posagent/posagent/internal/hq/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// eachDB runs the same test on SQLite and on PostgreSQL.
func eachDB(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, d := range []string{"sqlite", "postgres"} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, Open(t, d))
		})
	}
}

// Open opens a fresh store of dialect d.
func Open(t testing.TB, d string) *store.Store {
	t.Helper()
	url := "sqlite://" + filepath.Join(t.TempDir(), "hq.db")
	if d == "postgres" {
		url = pgtest.NewDB(t)
	}
	s, err := store.Open(context.Background(), url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func register(t *testing.T, s *store.Store, serials ...string) {
	t.Helper()
	for _, serial := range serials {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		if _, err := s.RegisterDevice(context.Background(), serial, pub, bytes.Repeat([]byte{7}, 32), false, t0); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrationsSameVersions(t *testing.T) {
	list := func(dir string) []string {
		var names []string
		err := fs.WalkDir(os.DirFS("migrations/"+dir), ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				names = append(names, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	a, b := list("sqlite"), list("postgres")
	if !slices.Equal(a, b) || len(a) == 0 {
		t.Fatalf("migrations differ: sqlite %v, postgres %v", a, b)
	}
}

func TestParseURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"sqlite:///var/lib/hqd/hq.db", "sqlite"},
		{"sqlite://hq.db", "sqlite"},
		{"postgres://u:p@localhost/hq", "postgres"},
		{"postgresql://localhost/hq", "postgres"},
		{"mysql://x", ""},
		{"sqlite://", ""},
		{"sqlite:///x.db?mode=ro", ""},
	} {
		d, _, err := store.ParseURL(c.in)
		if string(d) != c.want || (err != nil) != (c.want == "") {
			t.Errorf("ParseURL(%q) = %q, %v; want %q", c.in, d, err, c.want)
		}
	}
	if _, _, err := store.ParseURL("mysql://u:secret@h/x"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error must not show the password: %v", err)
	}
}

func TestRegisterAndStatus(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		created, err := s.RegisterDevice(ctx, "T-0001", pub, nil, false, t0)
		if err != nil || !created {
			t.Fatalf("register: %v %v", created, err)
		}
		if created, err := s.RegisterDevice(ctx, "T-0001", pub, nil, false, t0); err != nil || created {
			t.Fatalf("same keys again: %v %v", created, err)
		}
		other, _, _ := ed25519.GenerateKey(rand.Reader)
		if _, err := s.RegisterDevice(ctx, "T-0001", other, nil, false, t0); !errors.Is(err, store.ErrKeyMismatch) {
			t.Fatalf("other key: %v", err)
		}
		got, err := s.DeviceKey(ctx, "T-0001")
		if err != nil || !got.Equal(pub) {
			t.Fatalf("device key: %v", err)
		}
		if _, err := s.DeviceKey(ctx, "T-0404"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
		newer := store.StatusUpdate{Full: true, Online: true, State: "active", TID: "10000001", BatchNo: "000007", BatchCount: 3,
			Version: "1.0", Clock: "synced", DiskFreeKiB: 512, At: t0.Add(time.Minute), Raw: "{}"}
		older := newer
		older.State, older.At = "unactivated", t0
		err = s.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.ApplyStatus(ctx, "T-0001", newer, t0.Add(time.Minute)); err != nil {
				return err
			}
			return tx.ApplyStatus(ctx, "T-0001", older, t0.Add(2*time.Minute))
		})
		if err != nil {
			t.Fatal(err)
		}
		term, err := s.Terminal(ctx, "T-0001")
		if err != nil {
			t.Fatal(err)
		}
		if term.State != "active" || term.BatchCount != 3 || !term.Online || term.Clock != "synced" || !term.LastSeen.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("an older status must not overwrite a newer one: %+v", term)
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error {
			return tx.ApplyStatus(ctx, "T-0001", store.StatusUpdate{}, t0.Add(3*time.Minute))
		}); err != nil {
			t.Fatal(err)
		}
		if term, _ := s.Terminal(ctx, "T-0001"); term.Online || term.State != "active" {
			t.Fatalf("will: %+v", term)
		}
		register(t, s, "T-0002", "X-0003")
		on := false
		list, err := s.Terminals(ctx, store.Filter{Online: &on, Search: "T-"}, "", 10)
		if err != nil || len(list) != 2 || list[0].Serial != "T-0001" {
			t.Fatalf("filter: %v %+v", err, list)
		}
		page, _ := s.Terminals(ctx, store.Filter{}, "T-0001", 10)
		if len(page) != 2 || page[0].Serial != "T-0002" {
			t.Fatalf("paging: %+v", page)
		}
		unknown, err := s.UnknownSerials(ctx, []string{"T-0001", "NOPE-1", "X-0003"})
		if err != nil || !slices.Equal(unknown, []string{"NOPE-1"}) {
			t.Fatalf("unknown serials: %v %v", unknown, err)
		}
	})
}

func TestActivationCodes(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		register(t, s, "T-0001", "T-0002")
		issue := func(serial string) store.Code {
			c, err := s.IssueCode(ctx, store.Code{Serial: serial, TID: "10000001", MID: "100000000000001", AcquirerAddr: "127.0.0.1:5000",
				AcquirerTPDU: "6000030000", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		first := issue("T-0001")
		second := issue("T-0001")
		other := issue("T-0002")
		match := func(serial, code, req string) store.CodeMatch {
			var m store.CodeMatch
			if err := s.InTx(ctx, func(tx *store.Tx) error {
				var err error
				m, err = tx.MatchCode(ctx, serial, code, req, t0.Add(time.Minute))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return m
		}
		if m := match("T-0001", first.Code, "r1"); m.Refusal != store.RefuseSuperseded {
			t.Fatalf("superseded code: %+v", m)
		}
		if m := match("T-0001", other.Code, "r1"); m.Refusal != store.RefuseWrongSerial {
			t.Fatalf("another serial's code: %+v", m)
		}
		m := match("T-0001", second.Code, "r1")
		if m.Refusal != "" || m.Code.ID != second.ID {
			t.Fatalf("good code: %+v", m)
		}
		use := func(id int64, req string) error {
			return s.InTx(ctx, func(tx *store.Tx) error { return tx.UseCode(ctx, id, req, "prov-1", []byte("env"), t0) })
		}
		if err := use(second.ID, "r1"); err != nil {
			t.Fatal(err)
		}
		if err := use(second.ID, "r2"); !errors.Is(err, store.ErrCodeTaken) {
			t.Fatalf("second use: %v", err)
		}
		if m := match("T-0001", second.Code, "r1"); !m.Dup || string(m.Code.Provision) != "env" {
			t.Fatalf("same request again: %+v", m)
		}
		if m := match("T-0001", second.Code, "r2"); m.Refusal != store.RefuseUsed {
			t.Fatalf("another request with a used code: %+v", m)
		}
		// Wrong codes revoke the pending one at the limit.
		third := issue("T-0001")
		for i := 1; i <= store.MaxCodeAttempts; i++ {
			m := match("T-0001", "00000000", "r9")
			if m.Refusal != store.RefuseUnknownCode && m.Refusal != store.RefuseWrongSerial {
				t.Fatalf("wrong code: %+v", m)
			}
			if m.Revoked != (i == store.MaxCodeAttempts) {
				t.Fatalf("attempt %d: revoked %v", i, m.Revoked)
			}
		}
		if m := match("T-0001", third.Code, "r3"); m.Refusal != store.RefuseRevoked {
			t.Fatalf("revoked: %+v", m)
		}
		// An expired code.
		c4, _ := s.IssueCode(ctx, store.Code{Serial: "T-0002", TID: "1", MID: "1", AcquirerAddr: "a:1", AcquirerTPDU: "6000030000",
			IssuedAt: t0, ExpiresAt: t0.Add(time.Second)}, rand.Reader)
		if m := match("T-0002", c4.Code, "r4"); m.Refusal != store.RefuseExpired {
			t.Fatalf("expired: %+v", m)
		}
		codes, err := s.Codes(ctx, "T-0001", 10)
		if err != nil || len(codes) != 3 || codes[0].Status != store.CodeRevoked || codes[1].Status != store.CodeUsed {
			t.Fatalf("codes: %v %+v", err, codes)
		}
	})
}

// TestCodeUsedOnce races many goroutines (many connections) to use one
// pending code: exactly one wins.
func TestCodeUsedOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		register(t, s, "T-0001")
		c, err := s.IssueCode(ctx, store.Code{Serial: "T-0001", TID: "1", MID: "1", AcquirerAddr: "a:1", AcquirerTPDU: "6000030000",
			IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := string(rune('a' + i))
				err := s.InTx(ctx, func(tx *store.Tx) error {
					m, err := tx.MatchCode(ctx, "T-0001", c.Code, req, t0)
					if err != nil || m.Refusal != "" || m.Dup {
						return errors.New("refused")
					}
					return tx.UseCode(ctx, m.Code.ID, req, "prov-"+req, []byte("x"), t0)
				})
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d requests used one code", wins)
		}
	})
}

func TestJobsAndAcks(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		serials := []string{"T-0001", "T-0002", "T-0003", "T-0004", "T-0005"}
		register(t, s, serials...)
		j := store.Job{ID: "j1", Type: "unbind", Args: `{}`, State: store.JobRunning, Signing: store.SignHQD, RequiredSigs: 1,
			RatePerMin: 60, MaxInflight: 2, AbortPct: 40, AbortMin: 3, CommandTTL: time.Hour, CreatedBy: "op", CreatedAt: t0}
		if err := s.CreateJob(ctx, j, serials, nil); err != nil {
			t.Fatal(err)
		}
		build := func(ctx context.Context, tx *store.Tx, j store.Job, it store.Item, now time.Time) (store.Command, error) {
			c := store.Command{ID: it.CmdID, Serial: it.Serial, Type: j.Type, JobID: j.ID, Payload: []byte("p"), Envelope: []byte("env-" + it.Serial),
				RequiredSigs: 1, State: store.CmdSent, IssuedAt: now, ExpiresAt: now.Add(j.CommandTTL), CreatedAt: now, SentAt: now,
				SendCount: 1, NextSendAt: now.Add(time.Minute)}
			return c, tx.InsertCommand(ctx, c)
		}
		// Nobody holds the lease yet: a step does nothing.
		if _, _, out, err := s.StepJob(ctx, "a", "j1", t0, time.Minute, build); err != nil || len(out) != 0 {
			t.Fatalf("step without lease: %v %v", out, err)
		}
		ids, err := s.ClaimJobs(ctx, "a", t0, 10*time.Second)
		if err != nil || !slices.Equal(ids, []string{"j1"}) {
			t.Fatalf("claim: %v %v", ids, err)
		}
		if ids, _ := s.ClaimJobs(ctx, "b", t0.Add(time.Second), 10*time.Second); len(ids) != 0 {
			t.Fatalf("b took a held lease: %v", ids)
		}
		// The rate is 1/s: the first step sends one.
		_, c, out, err := s.StepJob(ctx, "a", "j1", t0, time.Minute, build)
		if err != nil || len(out) != 1 || out[0].Serial != "T-0001" || c.Sent() != 1 {
			t.Fatalf("step 1: %v %+v %v", err, out, c)
		}
		// 3 s later: two more allowed by the rate, one by the cap of 2.
		_, _, out, _ = s.StepJob(ctx, "a", "j1", t0.Add(3*time.Second), time.Minute, build)
		if len(out) != 1 || out[0].Serial != "T-0002" {
			t.Fatalf("step 2 (cap 2): %+v", out)
		}
		ack := func(serial, state, reason string, at time.Time) store.AckOutcome {
			var o store.AckOutcome
			err := s.InTx(ctx, func(tx *store.Tx) error {
				var err error
				o, err = tx.ApplyAck(ctx, store.ItemCmdID("j1", serial), serial, state, reason, `{"ok":1}`, at, []byte(serial+state+reason), at)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return o
		}
		if o := ack("T-0001", "succeeded", "", t0.Add(4*time.Second)); !o.Known || o.JobID != "j1" || o.To != "succeeded" {
			t.Fatalf("ack: %+v", o)
		}
		if o := ack("T-0001", "succeeded", "", t0.Add(4*time.Second)); !o.Duplicate {
			t.Fatalf("same envelope again: %+v", o)
		}
		if o := ack("T-0001", "accepted", "", t0.Add(5*time.Second)); o.To != "succeeded" {
			t.Fatalf("a late accepted moved a final command: %+v", o)
		}
		acks, _ := s.Acks(ctx, store.ItemCmdID("j1", "T-0001"))
		if len(acks) != 2 {
			t.Fatalf("every ack is kept once: %d", len(acks))
		}
		ack("T-0002", "failed", "settlement-failed", t0.Add(5*time.Second))
		_, _, out, _ = s.StepJob(ctx, "a", "j1", t0.Add(6*time.Second), time.Minute, build)
		if len(out) != 2 {
			t.Fatalf("step 3: %+v", out)
		}
		ack("T-0003", "rejected", "wrong-state", t0.Add(7*time.Second))
		// 2 bad of 3 finished = 66 % > 40 %: aborted.
		j2, c, out, err := s.StepJob(ctx, "a", "j1", t0.Add(8*time.Second), time.Minute, build)
		if err != nil || j2.State != store.JobAborted || len(out) != 0 || c.Bad() != 2 {
			t.Fatalf("abort: %v %+v %v %+v", err, j2, c, out)
		}
		// Re-sends: T-0004's command is due after a minute.
		due, expired, err := s.ClaimResends(ctx, t0.Add(7*time.Second+time.Minute), time.Minute, 10)
		if err != nil || expired != 0 || len(due) != 1 || due[0].Serial != "T-0004" || string(due[0].Envelope) != "env-T-0004" {
			t.Fatalf("re-sends: %v %d %+v", err, expired, due)
		}
		due, expired, _ = s.ClaimResends(ctx, t0.Add(2*time.Hour), time.Minute, 10)
		if len(due) != 0 || expired != 1 {
			t.Fatalf("expiry: %d %+v", expired, due)
		}
		if _, err := s.ResumeJob(ctx, "j1", 90, t0.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		s.ClaimJobs(ctx, "a", t0.Add(3*time.Hour), 10*time.Second)
		_, _, out, _ = s.StepJob(ctx, "a", "j1", t0.Add(3*time.Hour), time.Minute, build)
		if len(out) != 1 || out[0].Serial != "T-0005" {
			t.Fatalf("resumed: %+v", out)
		}
		if _, err := s.CancelJob(ctx, "j1", t0.Add(4*time.Hour)); err != nil {
			t.Fatal(err)
		}
		c, _ = s.JobCounts(ctx, "j1")
		if c[store.ItemNoAnswer] != 1 || c[store.ItemSucceeded] != 1 || c[store.ItemSent] != 1 {
			t.Fatalf("counts: %v", c)
		}
	})
}

func TestAuditAppendOnly(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.Audit(ctx, store.AuditEntry{At: t0, Actor: "alice", Source: "127.0.0.1", Action: "job.create", Target: "j1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB().Exec("UPDATE audit SET actor = 'mallory'"); err == nil {
			t.Fatal("audit row updated")
		}
		if _, err := s.DB().Exec("DELETE FROM audit"); err == nil {
			t.Fatal("audit row deleted")
		}
		got, err := s.AuditTrail(ctx, store.AuditQuery{Action: "job."})
		if err != nil || len(got) != 1 || got[0].Actor != "alice" {
			t.Fatalf("trail: %v %+v", err, got)
		}
	})
}
