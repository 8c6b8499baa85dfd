package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/hq/store"
)

// fleet fills a store with n terminals in multi-row inserts: a realistic
// mix of states, TIDs, MIDs, merchant names (every 1,000th a bookshop)
// and statuses as received.
func fleet(b testing.TB, st *store.Store, n int) {
	b.Helper()
	ctx := context.Background()
	key := make([]byte, 32)
	states := []string{"active", "active", "active", "active", "unactivated", "unknown", "unbinding", "tampered"}
	now := time.Now().UnixMilli()
	for start := 0; start < n; start += 400 {
		var sb strings.Builder
		sb.WriteString(`INSERT INTO terminals (serial, ed25519_pub, state, online, tid, mid, merchant_name, batch_no, batch_count,
			version, clock, status_at, status_json, last_seen, registered_at) VALUES `)
		var args []any
		for i := start; i < min(start+400, n); i++ {
			if i > start {
				sb.WriteString(", ")
			}
			k := len(args)
			fmt.Fprintf(&sb, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)",
				k+1, k+2, k+3, k+4, k+5, k+6, k+7, k+8, k+9, k+10, k+11, k+12, k+13, k+14, k+15)
			merchant := fmt.Sprintf("Shop %d", i)
			if i%1000 == 0 {
				merchant = fmt.Sprintf("Harbour Books %d", i)
			}
			serial := fmt.Sprintf("BF-%06d", i)
			state := states[i%len(states)]
			args = append(args, serial, key, state, i%3 != 0, fmt.Sprintf("%08d", 10_000_000+i), fmt.Sprintf("8980000%08d", i),
				merchant, "000001", i%7, "1.4.2", "synced", now,
				fmt.Sprintf(`{"serial":%q,"online":true,"state":%q,"batch_count":%d}`, serial, state, i%7), now-int64(i), now)
		}
		if _, err := st.DB().ExecContext(ctx, sb.String(), args...); err != nil {
			b.Fatal(err)
		}
	}
}

func pct(d []time.Duration, p int) float64 {
	slices.Sort(d)
	return float64(d[min(len(d)-1, len(d)*p/100)].Microseconds()) / 1000
}

// BenchmarkFleetPage: the fleet page (the whole HTTP request as a browser
// makes it: session, keyset page, counts by state, statuses, rendering)
// with 100,000 terminals in the database, on SQLite and PostgreSQL: the
// first page, a page deep in the fleet, a state filter, the online
// filter, a serial prefix, a merchant-name search that matches 1 in
// 1,000, and the live refresh of the rows.
func BenchmarkFleetPage(b *testing.B) {
	for _, d := range []string{"sqlite", "postgres"} {
		b.Run(d, func(b *testing.B) {
			bo := newBO(b, boOptions{dialect: d})
			fleet(b, bo.st, 100_000)
			bo.operator("viewer", "viewer-password", store.RoleViewer)
			c := bo.client()
			c.login("viewer", "viewer-password")
			for _, tc := range []struct{ name, query, want string }{
				{"first", "", "BF-000049"},
				{"deep", "after=BF-090000", "BF-090050"},
				{"state", "state=tampered", "BF-000399"},
				{"online", "online=false&after=BF-050000", "BF-050148"},
				{"prefix", "q=BF-0777", "BF-077749"},
				{"merchant", "q=Harbour", "BF-049000"},
				{"live", "state=active&partial=rows", "BF-000048"},
			} {
				b.Run(tc.name, func(b *testing.B) {
					lat := make([]time.Duration, 0, b.N)
					for b.Loop() {
						start := time.Now()
						resp, err := c.http.Get(bo.srv.URL + "/fleet?" + tc.query)
						if err != nil {
							b.Fatal(err)
						}
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						lat = append(lat, time.Since(start))
						if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tc.want) {
							b.Fatalf("%s: %d, no %s in the page", tc.query, resp.StatusCode, tc.want)
						}
					}
					b.ReportMetric(pct(lat, 50), "p50-ms")
					b.ReportMetric(pct(lat, 99), "p99-ms")
				})
			}
		})
	}
}
