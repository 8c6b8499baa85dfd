package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/simterm"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

// updateFleet is newFleet for update tests: active terminals running
// version that answer update commands as sim says.
func updateFleet(t *testing.T, l *lab, in *instance, prefix string, n int, version string, sim simterm.UpdateSim) *simterm.Fleet {
	t.Helper()
	return l.fleet(t, in, simterm.Options{Serials: serials(prefix, n), PerConn: 20, Active: true, Version: version, Update: sim})
}

// updateArgs are the args of an update to version (the bundle is never
// fetched by a simterm).
func updateArgs(version string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"url":"https://updates.example.com/posagent-%s.raucb","sha256":"%s","size":1048576,"version":%q}`,
		version, strings.Repeat("ab", 32), version))
}

// seqOf is the number at the end of a serial made by serials.
func seqOf(serial string) int {
	n, _ := strconv.Atoi(serial[strings.LastIndexByte(serial, '-')+1:])
	return n
}

// TestUpdateJobRollout: an update job over 200 light terminals (each one
// accepts, downloads, installs and reboots in simulated time and acks as
// the real terminal does) at 1,200/min with at most 8 in flight; hqd is
// killed (kill -9) and restarted mid-job and carries it on. Every terminal
// is updated exactly once, never more than 8 at once as the terminals
// measure it, the job's counts and items say succeeded with the version
// the terminal reported, and the fleet's statuses show the new version.
// A second job, to a version a third of the terminals roll back from,
// stops at its 10 % abort threshold and sends nothing more; its counts
// match what the terminals did, and the terminals that failed run the
// version before.
func TestUpdateJobRollout(t *testing.T) {
	eachDB(t, func(t *testing.T, dialect string) {
		const n, inflightCap = 200, 8
		l := newLab(t, dialect, mosquittotest.Options{ExtraConfig: "max_queued_messages 100000\n"})
		a := l.start("a")
		prefix := "UPD" + dialect[:1]
		sim := simterm.UpdateSim{Download: 150 * time.Millisecond, Install: 150 * time.Millisecond, Reboot: 150 * time.Millisecond,
			Fail: func(serial, version string) string {
				if version == "1.2.0" && seqOf(serial)%3 == 0 {
					return remote.ReasonRolledBack
				}
				return ""
			}}
		f := updateFleet(t, l, a, prefix, n, "1.0.0", sim)

		create := func(version string) store.Job {
			t.Helper()
			var j store.Job
			if code := a.api("POST", "/api/v1/jobs", jobs.Request{Type: string(remote.TypeUpdate), Args: updateArgs(version),
				Filter: &store.Filter{Search: prefix}, RatePerMin: 1200, MaxInflight: inflightCap, AbortPct: 10, AbortMin: 10}, &j); code != 201 {
				t.Fatalf("create job: %d %+v", code, j)
			}
			if j.Total != n {
				t.Fatalf("job over %d terminals, want %d", j.Total, n)
			}
			return j
		}
		progress := func(id string) jobs.Progress {
			t.Helper()
			var p jobs.Progress
			if code := a.api("GET", "/api/v1/jobs/"+id, nil, &p); code != 200 {
				t.Fatalf("job show: %d", code)
			}
			return p
		}
		items := func(id string) []store.Item {
			t.Helper()
			var out struct{ Items []store.Item }
			if code := a.api("GET", "/api/v1/jobs/"+id+"/items?limit=1000", nil, &out); code != 200 {
				t.Fatalf("job items: %d", code)
			}
			return out.Items
		}
		versions := func() map[string]string {
			t.Helper()
			var out struct{ Terminals []store.Terminal }
			if code := a.api("GET", "/api/v1/terminals?limit=1000&search="+prefix, nil, &out); code != 200 || len(out.Terminals) != n {
				t.Fatalf("terminals: %d, %d of %d", code, len(out.Terminals), n)
			}
			m := map[string]string{}
			for _, tr := range out.Terminals {
				m[tr.Serial] = tr.Version
			}
			return m
		}

		// The rollout, with a kill -9 of hqd in the middle.
		j := create("1.1.0")
		eventually(t, 60*time.Second, "40 sent", func() bool { return progress(j.ID).Sent >= 40 })
		a.kill()
		if p := f.UpdatesBegun(); p >= n {
			t.Fatalf("%d updates begun before the restart: nothing left to resume", p)
		}
		a.run()
		eventually(t, 180*time.Second, "the job done", func() bool { return progress(j.ID).Job.State == store.JobDone })
		p := progress(j.ID)
		if p.Counts[store.ItemSucceeded] != n || p.Done != n || p.Failed != 0 || p.Inflight != 0 {
			t.Fatalf("job 1 progress %+v", p)
		}
		if got := f.UpdatesBegun(); got != n {
			t.Fatalf("%d updates begun by %d terminals: a command was executed twice or never", got, n)
		}
		peak := f.UpdatePeak()
		if peak > inflightCap {
			t.Fatalf("peak of terminals updating at once %d, over the cap of %d", peak, inflightCap)
		}
		if peak < 2 {
			t.Fatalf("peak of terminals updating at once %d: the rollout never overlapped, the cap was not exercised", peak)
		}
		for _, it := range items(j.ID) {
			var r terminal.UpdateResult
			if err := json.Unmarshal(it.Result, &r); err != nil || it.State != store.ItemSucceeded || r.Version != "1.1.0" || r.From != "1.0.0" {
				t.Fatalf("item %+v (result %s): want succeeded with version 1.1.0 from 1.0.0", it, it.Result)
			}
			if got := f.Terms[it.Serial].Updates(); got != 1 {
				t.Fatalf("%s accepted %d updates", it.Serial, got)
			}
		}
		eventually(t, 30*time.Second, "every status on 1.1.0", func() bool {
			for _, v := range versions() {
				if v != "1.1.0" {
					return false
				}
			}
			return true
		})
		t.Logf("%s: 200 terminals updated across a kill -9 of hqd, peak %d in flight (cap %d)", dialect, peak, inflightCap)

		// A bad version: every third terminal rolls back; the job stops
		// at its threshold.
		j2 := create("1.2.0")
		eventually(t, 60*time.Second, "the job aborted", func() bool { return progress(j2.ID).Job.State == store.JobAborted })
		p = progress(j2.ID)
		if p.Sent >= n || p.Done < 10 || p.Failed*100 <= 10*p.Done {
			t.Fatalf("abort at the threshold: %+v", p)
		}
		time.Sleep(1500 * time.Millisecond)
		if q := progress(j2.ID); q.Sent != p.Sent {
			t.Fatalf("sent after the abort: %d -> %d", p.Sent, q.Sent)
		}
		eventually(t, 30*time.Second, "in-flight updates final", func() bool { return progress(j2.ID).Inflight == 0 })
		p = progress(j2.ID)
		var wantOK, wantFailed int
		for _, it := range items(j2.ID) {
			tm := f.Terms[it.Serial]
			bad := seqOf(it.Serial)%3 == 0
			switch {
			case it.State == store.ItemPending:
				if tm.Updates() != 1 || tm.Version() != "1.1.0" {
					t.Fatalf("%s never sent the update: %d updates, on %s", it.Serial, tm.Updates(), tm.Version())
				}
				continue
			case tm.Updates() != 2:
				t.Fatalf("%s (%s) accepted %d updates, want 2", it.Serial, it.State, tm.Updates())
			}
			var r terminal.UpdateResult
			_ = json.Unmarshal(it.Result, &r)
			if bad {
				wantFailed++
				if it.State != store.ItemFailed || it.Reason != remote.ReasonRolledBack || r.Version != "1.1.0" || r.From != "1.1.0" || tm.Version() != "1.1.0" {
					t.Fatalf("rolled-back item %+v (result %s), terminal on %s", it, it.Result, tm.Version())
				}
			} else {
				wantOK++
				if it.State != store.ItemSucceeded || r.Version != "1.2.0" || r.From != "1.1.0" || tm.Version() != "1.2.0" {
					t.Fatalf("item %+v (result %s), terminal on %s", it, it.Result, tm.Version())
				}
			}
		}
		if p.Counts[store.ItemSucceeded] != wantOK || p.Counts[store.ItemFailed] != wantFailed || p.Failed != wantFailed ||
			p.Counts[store.ItemPending] != n-wantOK-wantFailed {
			t.Fatalf("job 2 counts %+v, the terminals say %d succeeded, %d failed", p.Counts, wantOK, wantFailed)
		}
		if got := f.UpdatesBegun(); got != int64(n+p.Sent) {
			t.Fatalf("%d updates begun, want %d (job 1) + %d (job 2 sent)", got, n, p.Sent)
		}
		if f.UpdatePeak() > inflightCap {
			t.Fatalf("peak of terminals updating at once %d, over the cap of %d", f.UpdatePeak(), inflightCap)
		}
		eventually(t, 30*time.Second, "statuses: the failed terminals on 1.1.0, the others sent on 1.2.0", func() bool {
			for s, v := range versions() {
				if v != f.Terms[s].Version() {
					return false
				}
			}
			return true
		})
		t.Logf("%s: job 2 %s after %d sent, %d succeeded, %d failed", dialect, p.Job.Note, p.Sent, wantOK, wantFailed)
	})
}
