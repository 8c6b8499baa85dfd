package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/pgtest"
	"github.com/posagent/posagent/internal/hq/simterm"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/terminal/remote"
)

// eachDB runs the same suite on SQLite and on a throwaway PostgreSQL.
func eachDB(t *testing.T, fn func(t *testing.T, dialect string)) {
	for _, d := range []string{"sqlite", "postgres"} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

func openDB(t testing.TB, url string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newFleet makes light terminals, registers them with hqd (as the factory
// would, before they ever connect) and connects them.
func newFleet(t *testing.T, l *lab, in *instance, prefix string, n, perConn int, active bool, settler simterm.Settler) *simterm.Fleet {
	t.Helper()
	return l.fleet(t, in, simterm.Options{Serials: serials(prefix, n), PerConn: perConn, Active: active, Batch: 3, Settler: settler})
}

// TestActivationTwoInstances: two hqd instances on one mosquitto answer
// 500 activation requests; one is killed with kill -9 half-way and
// restarted; every code is used once and every request answered by
// exactly one provision command.
func TestActivationTwoInstances(t *testing.T) {
	eachDB(t, func(t *testing.T, dialect string) {
		const n = 500
		l := newLab(t, dialect, mosquittotest.Options{})
		a, b := l.start("a"), l.start("b")
		f := newFleet(t, l, a, "ACT"+dialect[:1], n, 25, false, nil)
		codes := map[string]string{}
		for i, s := range serials("ACT"+dialect[:1], n) {
			var c store.Code
			if code := b.api("POST", "/api/v1/codes", map[string]any{"serial": s, "tid": fmt.Sprintf("%08d", i),
				"mid": "100000000000001", "acquirer": "127.0.0.1:15000"}, &c); code != 201 {
				t.Fatalf("issue code: %d %+v", code, c)
			}
			codes[s] = c.Code
		}
		var mu sync.Mutex
		provisions := map[string]map[string]bool{}
		ask := func(list []string) {
			for _, s := range list {
				if _, err := f.Terms[s].RequestActivation(codes[s]); err != nil {
					t.Fatal(err)
				}
			}
		}
		all := serials("ACT"+dialect[:1], n)
		var wg sync.WaitGroup
		for _, s := range all {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					id, err := f.Terms[s].WaitProvision(120 * time.Second)
					if err != nil {
						return
					}
					mu.Lock()
					if provisions[s] == nil {
						provisions[s] = map[string]bool{}
					}
					provisions[s][id] = true
					mu.Unlock()
				}
			}()
		}
		ask(all[:n/2])
		time.Sleep(300 * time.Millisecond)
		a.kill() // kill -9 mid-way
		ask(all[n/2:])
		time.Sleep(time.Second)
		a.run() // the supervisor restarts it, same client id: its session's messages come back
		eventually(t, 120*time.Second, "every terminal active", func() bool {
			for _, s := range all {
				if f.Terms[s].State() != "active" {
					return false
				}
			}
			return true
		})
		time.Sleep(500 * time.Millisecond)
		st := openDB(t, l.db)
		var provs, distinct, used, distinctReq int
		db := st.DB()
		if err := db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT serial) FROM commands WHERE type = 'provision'").Scan(&provs, &distinct); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT activation_id) FROM activation_codes WHERE status = 'used'").Scan(&used, &distinctReq); err != nil {
			t.Fatal(err)
		}
		if provs != n || distinct != n || used != n || distinctReq != n {
			t.Fatalf("provisions %d for %d serials, codes used %d by %d requests; want %d each", provs, distinct, used, distinctReq, n)
		}
		mu.Lock()
		for s, ids := range provisions {
			if len(ids) != 1 {
				t.Errorf("%s got %d different provision commands", s, len(ids))
			}
		}
		mu.Unlock()
		keys, _ := os.ReadFile(l.acqKeys)
		var m map[string]string
		if err := json.Unmarshal(keys, &m); err != nil || len(m) != n {
			t.Fatalf("acquirer keys: %d TIDs, %v", len(m), err)
		}
		t.Logf("%s: 500 activations answered once each across a kill -9 (a: %d log lines, b: %d)", dialect,
			strings.Count(a.logs(), "\n"), strings.Count(b.logs(), "\n"))
	})
}

// TestUnbindJobAbortAndResume: a 1,000-terminal unbind job at 300/min with
// an acquirer that fails 20 % of settlements; hqd is killed (kill -9) and
// restarted mid-job and the job carries on without sending anything twice;
// it aborts at its 10 % threshold, sends nothing more, resumes on request
// and is cancelled.
func TestUnbindJobAbortAndResume(t *testing.T) {
	eachDB(t, func(t *testing.T, dialect string) {
		const n = 1000
		l := newLab(t, dialect, mosquittotest.Options{ExtraConfig: "max_queued_messages 100000\n"})
		a := l.start("a")
		acq := &simterm.Acquirer{Hold: 300 * time.Millisecond, FailEvery: 5}
		prefix := "UNB" + dialect[:1]
		f := newFleet(t, l, a, prefix, n, 50, true, acq)
		var j store.Job
		if code := a.api("POST", "/api/v1/jobs", jobs.Request{Type: "unbind", Args: json.RawMessage(`{"reason":"test"}`),
			Filter: &store.Filter{Search: prefix}, RatePerMin: 300, MaxInflight: 10, AbortPct: 10, AbortMin: 20}, &j); code != 201 {
			t.Fatalf("create job: %d %+v", code, j)
		}
		if j.Total != n {
			t.Fatalf("job over %d terminals, want %d", j.Total, n)
		}
		progress := func(in *instance) jobs.Progress {
			var p jobs.Progress
			if code := in.api("GET", "/api/v1/jobs/"+j.ID, nil, &p); code != 200 {
				t.Fatalf("job show: %d", code)
			}
			return p
		}
		eventually(t, 30*time.Second, "8 sent", func() bool { return progress(a).Sent >= 8 })
		a.kill()
		before := f.Commands.Load()
		a.run()
		eventually(t, 60*time.Second, "the job aborted", func() bool { return progress(a).Job.State == store.JobAborted })
		p := progress(a)
		if p.Sent >= n || p.Failed*100 <= 10*p.Done || p.Done < 20 {
			t.Fatalf("abort at the threshold: %+v", p)
		}
		t.Logf("%s: aborted after %d sent, %d done, %d failed (%s); commands seen by terminals before the restart: %d",
			dialect, p.Sent, p.Done, p.Failed, p.Job.Note, before)
		time.Sleep(1500 * time.Millisecond)
		if q := progress(a); q.Sent != p.Sent {
			t.Fatalf("sent after the abort: %d -> %d", p.Sent, q.Sent)
		}
		// In-flight unbinds end; each terminal settled once, never more than the cap at once.
		eventually(t, 30*time.Second, "in-flight commands final", func() bool { return progress(a).Inflight == 0 })
		p = progress(a)
		if int(acq.Count()) != p.Counts[store.ItemSucceeded]+p.Counts[store.ItemFailed] {
			t.Fatalf("settlements %d, finished unbinds %d: a terminal settled twice or a command was sent twice", acq.Count(), p.Done)
		}
		if acq.Peak() > 10 {
			t.Fatalf("peak concurrent settlements %d over the cap of 10", acq.Peak())
		}
		var r store.Job
		if code := a.api("POST", "/api/v1/jobs/"+j.ID+"/resume", map[string]int{"abort_pct": 100}, &r); code != 200 || r.State != store.JobRunning {
			t.Fatalf("resume: %d %+v", code, r)
		}
		eventually(t, 30*time.Second, "sending again", func() bool { return progress(a).Sent > p.Sent+3 })
		if code := a.api("POST", "/api/v1/jobs/"+j.ID+"/cancel", nil, &r); code != 200 || r.State != store.JobCancelled {
			t.Fatalf("cancel: %d %+v", code, r)
		}
		q := progress(a)
		if q.Counts[store.ItemCancelled] == 0 || q.Counts[store.ItemPending] != 0 {
			t.Fatalf("cancelled job: %+v", q.Counts)
		}
	})
}

// TestBadInputNeverTruth: malformed and unverifiable acks, events and
// statuses are counted and refused; nothing they say is stored.
func TestBadInputNeverTruth(t *testing.T) {
	eachDB(t, func(t *testing.T, dialect string) {
		l := newLab(t, dialect, mosquittotest.Options{})
		a := l.start("a")
		f := newFleet(t, l, a, "BAD"+dialect[:1], 2, 1, true, nil)
		eventually(t, 10*time.Second, "status ingested", func() bool {
			var tr struct{ Terminal store.Terminal }
			a.api("GET", "/api/v1/terminals/BAD"+dialect[:1]+"-00000", nil, &tr)
			return tr.Terminal.State == "active"
		})
		serial := "BAD" + dialect[:1] + "-00000"
		other := f.Terms["BAD"+dialect[:1]+"-00001"]
		c := paho.NewClient(paho.NewClientOptions().AddBroker(l.broker.URL()).SetClientID("mallory"))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		defer c.Disconnect(100)
		pub := func(topic string, payload []byte) {
			tok := c.Publish(topic, 1, false, payload)
			tok.Wait()
		}
		// Signed by another terminal's key under this one's kid.
		fakeAck, _ := remote.SealAck(other.Priv, remote.Ack{CmdID: "x1", Serial: serial, State: "succeeded", At: time.Now()})
		fakeEvt, _ := remote.SealEvent(other.Priv, remote.Event{ID: "e1", Serial: serial, Type: remote.EvtUnbound, At: time.Now()})
		_, mallory, _ := ed25519.GenerateKey(nil)
		unknownDev, _ := remote.SealEvent(mallory, remote.Event{ID: "e2", Serial: "NOPE-1", Type: remote.EvtTamper, At: time.Now()})
		pub(remote.AckTopic(serial), []byte("not json"))
		pub(remote.AckTopic(serial), fakeAck)
		pub(remote.EvtTopic(serial), fakeEvt)
		pub(remote.EvtTopic("NOPE-1"), unknownDev)
		pub(remote.StatusTopic(serial), []byte(`{"serial":"`+serial+`","online":true,"state":"exploded","at":"2026-01-01T00:00:00Z"}`))
		pub(remote.StatusTopic(serial), []byte(`{"serial":"SOMEONE-ELSE","online":true,"state":"unactivated","at":"2030-01-01T00:00:00Z"}`))
		pub(remote.EvtTopic(serial), []byte(strings.Repeat("x", remote.MaxEnvelope+1)))
		var fleet struct {
			Rejected map[string]int `json:"rejected_messages"`
		}
		eventually(t, 10*time.Second, "7 rejects counted", func() bool {
			a.api("GET", "/api/v1/fleet", nil, &fleet)
			n := 0
			for _, v := range fleet.Rejected {
				n += v
			}
			return n == 7
		})
		want := map[string]int{"not-an-envelope": 1, "bad-signature": 2, "unknown-device": 1, "invalid-payload": 1, "serial-mismatch": 1, "too-large": 1}
		for k, v := range want {
			if fleet.Rejected[k] != v {
				t.Errorf("rejects %s = %d, want %d (all: %v)", k, fleet.Rejected[k], v, fleet.Rejected)
			}
		}
		var tr struct{ Terminal store.Terminal }
		a.api("GET", "/api/v1/terminals/"+serial, nil, &tr)
		if tr.Terminal.State != "active" {
			t.Fatalf("a refused message changed the terminal: %+v", tr.Terminal)
		}
		st := openDB(t, l.db)
		var acks, evts int
		st.DB().QueryRow("SELECT COUNT(*) FROM command_acks").Scan(&acks)
		st.DB().QueryRow("SELECT COUNT(*) FROM events").Scan(&evts)
		if acks != 0 || evts != 0 {
			t.Fatalf("refused messages stored as truth: %d acks, %d events", acks, evts)
		}
	})
}

// TestDatabaseDownHealth: with PostgreSQL stopped, /healthz fails and a
// status that arrives is not acknowledged to the broker; once the database
// is back it is recorded (not lost). Not parallel: it stops the test
// binary's shared cluster.
func TestDatabaseDownHealth(t *testing.T) {
	l := newLab(t, "postgres", mosquittotest.Options{})
	a := l.start("a")
	f := newFleet(t, l, a, "HLT", 1, 1, true, nil)
	var h map[string]string
	if code := a.api("GET", "/healthz", nil, &h); code != 200 {
		t.Fatalf("healthz: %d %v", code, h)
	}
	c := pgtest.Shared(t)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = c.Start()
		}
	}()
	eventually(t, 15*time.Second, "healthz 503", func() bool { return a.api("GET", "/healthz", nil, &h) == 503 })
	// A status arrives while the database is away.
	term := f.Terms["HLT-00000"]
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(l.broker.URL()).SetClientID("probe"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	st := fmt.Sprintf(`{"serial":%q,"online":true,"state":"active","tid":"T1","batch_no":"000009","batch_count":42,"version":"x","at":%q,"clock":"synced"}`,
		term.Serial, time.Now().UTC().Add(time.Minute).Format(time.RFC3339))
	cl.Publish(remote.StatusTopic(term.Serial), 1, false, []byte(st)).Wait()
	time.Sleep(2 * time.Second)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	eventually(t, 30*time.Second, "healthz 200 again", func() bool { return a.api("GET", "/healthz", nil, &h) == 200 })
	eventually(t, 30*time.Second, "the status recorded", func() bool {
		var tr struct{ Terminal store.Terminal }
		a.api("GET", "/api/v1/terminals/"+term.Serial, nil, &tr)
		return tr.Terminal.BatchCount == 42
	})
}
