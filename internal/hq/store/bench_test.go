package store_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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
			b.ReportMetric(float64(p99(lat).Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkCreateJob: a 100-terminal job (listed serials, checked against
// the registry) created with 100,000 terminals in the database.
func BenchmarkCreateJob(b *testing.B) {
	for _, d := range []string{"sqlite", "postgres"} {
		b.Run(d, func(b *testing.B) {
			s := Open(b, d)
			fleetOf(b, s, 100_000)
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				serials := make([]string, 100)
				for k := range serials {
					serials[k] = fmt.Sprintf("BN-%06d", (i*100+k)%100_000)
				}
				start := time.Now()
				if unknown, err := s.UnknownSerials(ctx, serials); err != nil || len(unknown) > 0 {
					b.Fatal(err, unknown)
				}
				j := store.Job{ID: fmt.Sprintf("jb%d", i), Type: "unbind", Args: "{}", State: store.JobRunning, Signing: store.SignHQD,
					RequiredSigs: 1, RatePerMin: 60, MaxInflight: 10, AbortPct: 10, AbortMin: 20, CommandTTL: time.Hour, CreatedBy: "b", CreatedAt: t0}
				if err := s.CreateJob(ctx, j, serials, nil); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.ReportMetric(float64(p99(lat).Microseconds())/1000, "p99-ms")
		})
	}
}
