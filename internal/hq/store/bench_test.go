package store_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/hq/command"
	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/store"
)

// fleetOf fills a store with n terminals in multi-row inserts.
func fleetOf(b *testing.B, s *store.Store, n int) {
	b.Helper()
	ctx := context.Background()
	key := make([]byte, 32)
	for start := 0; start < n; start += 500 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO terminals (serial, ed25519_pub, state, registered_at) VALUES ")
		var args []any
		for i := start; i < min(start+500, n); i++ {
			if i > start {
				sb.WriteString(", ")
			}
			k := len(args)
			fmt.Fprintf(&sb, "($%d, $%d, $%d, $%d)", k+1, k+2, k+3, k+4)
			args = append(args, fmt.Sprintf("BN-%06d", i), key, "active", t0.UnixMilli())
		}
		if _, err := s.DB().ExecContext(ctx, sb.String(), args...); err != nil {
			b.Fatal(err)
		}
	}
}

func p99(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)*99/100]
}

// BenchmarkIssueCode: one activation code issued (supersede + insert, one
// transaction) with 100,000 terminals in the database. Target p99 ≤ 10 ms.
func BenchmarkIssueCode(b *testing.B) {
	for _, d := range []string{"sqlite", "postgres"} {
		b.Run(d, func(b *testing.B) {
			s := Open(b, d)
			fleetOf(b, s, 100_000)
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				if _, err := s.IssueCode(ctx, store.Code{Serial: fmt.Sprintf("BN-%06d", i%100_000), TID: "10000001", MID: "100000000000001",
					AcquirerAddr: "127.0.0.1:5000", AcquirerTPDU: "6000030000", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}, rand.Reader); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportLatency(b, lat)
		})
	}
}

// BenchmarkCreateJob: a 100-terminal job (listed serials, checked against
// the registry in one set-based query per 500) created through the jobs
// service as hqd's API does, job + items + audit in one transaction, with
// 100,000 terminals in the database. Target p99 ≤ 10 ms.
func BenchmarkCreateJob(b *testing.B) {
	for _, d := range []string{"sqlite", "postgres"} {
		b.Run(d, func(b *testing.B) {
			s := Open(b, d)
			fleetOf(b, s, 100_000)
			svc := benchJobs(s)
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				serials := make([]string, 100)
				for k := range serials {
					serials[k] = fmt.Sprintf("BN-%06d", (i*100+k)%100_000)
				}
				start := time.Now()
				if _, err := svc.Create(ctx, "bench", "cli", jobs.Request{Type: "unbind", Serials: serials}, t0); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportLatency(b, lat)
		})
	}
}

// BenchmarkCreateJobFleet: one job over all 100,000 terminals (a filter),
// signed by hqd and, under a two-signature policy, with every command's
// payload built and stored for the operators to sign. Reports the time of
// one creation.
func BenchmarkCreateJobFleet(b *testing.B) {
	for _, d := range []string{"sqlite", "postgres"} {
		for _, need := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/signatures=%d", d, need), func(b *testing.B) {
				s := Open(b, d)
				fleetOf(b, s, 100_000)
				svc := benchJobs(s)
				svc.Policy = map[string]int{"unbind": need}
				ctx := context.Background()
				b.ResetTimer()
				for range b.N {
					j, err := svc.Create(ctx, "bench", "cli", jobs.Request{Type: "unbind", Filter: &store.Filter{Search: "BN-"},
						RatePerMin: 600_000, CommandTTL: "48h"}, t0)
					if err != nil || j.Total != 100_000 {
						b.Fatal(err, j.Total)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/job")
			})
		}
	}
}

func benchJobs(s *store.Store) *jobs.Service {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	return &jobs.Service{Store: s, Signer: &command.Signer{KID: "hq-ops", Priv: priv},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// reportLatency reports the mean and the p99 of per-operation latencies.
func reportLatency(b *testing.B, lat []time.Duration) {
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(len(lat))/1000, "mean-ms")
	b.ReportMetric(float64(p99(lat).Microseconds())/1000, "p99-ms")
}

// BenchmarkAddSignatures: batches of 1,000 signatures (as hqctl job sign
// posts them) on a two-signature job over 100,000 terminals, the second
// operator's, each batch checked and the job's completeness decided in one
// transaction. Reports the mean and p99 per batch.
func BenchmarkAddSignatures(b *testing.B) {
	for _, d := range []string{"sqlite", "postgres"} {
		b.Run(d, func(b *testing.B) {
			s := Open(b, d)
			fleetOf(b, s, 100_000)
			ctx := context.Background()
			svc := benchJobs(s)
			svc.Policy = map[string]int{"unbind": 2}
			j, err := svc.Create(ctx, "bench", "cli", jobs.Request{Type: "unbind", Filter: &store.Filter{Search: "BN-"},
				RatePerMin: 600_000, CommandTTL: "48h"}, t0)
			if err != nil {
				b.Fatal(err)
			}
			cmds, err := s.SigningCommands(ctx, j.ID)
			if err != nil {
				b.Fatal(err)
			}
			var ops []store.Operator
			var privs []ed25519.PrivateKey
			for _, name := range []string{"alice", "bob"} {
				o, err := s.CreateOperator(ctx, store.Operator{Name: name, Roles: []string{store.RoleRequester}, CreatedAt: t0})
				if err != nil {
					b.Fatal(err)
				}
				pub, priv, _ := ed25519.GenerateKey(rand.Reader)
				if err := s.AddKey(ctx, store.HQKey{KID: name, Pub: pub, Role: store.KeyOps, OperatorID: o.ID, CreatedAt: t0}); err != nil {
					b.Fatal(err)
				}
				ops, privs = append(ops, o), append(privs, priv)
			}
			batch := func(who, start int) time.Duration {
				in := make([]jobs.SignatureIn, 0, 1000)
				for _, c := range cmds[start:min(start+1000, len(cmds))] {
					in = append(in, jobs.SignatureIn{CmdID: c.ID, KID: ops[who].Name, Sig: ed25519.Sign(privs[who], c.Payload)})
				}
				t := time.Now()
				if _, err := svc.AddSignatures(ctx, ops[who], "cli", j.ID, in, t0); err != nil {
					b.Fatal(err)
				}
				return time.Since(t)
			}
			for start := 0; start < len(cmds); start += 1000 {
				batch(0, start)
			}
			lat := make([]time.Duration, 0, len(cmds)/1000)
			b.ResetTimer()
			for start := 0; start < len(cmds); start += 1000 {
				lat = append(lat, batch(1, start))
			}
			if got, _ := s.Job(ctx, j.ID); got.State != store.JobRunning {
				b.Fatalf("job %s after every signature", got.State)
			}
			reportLatency(b, lat)
		})
	}
}
