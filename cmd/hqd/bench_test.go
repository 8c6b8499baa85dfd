package main

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/simterm"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/terminal/remote"
)

// BenchmarkIngestAcks: signed acks published by 1,000 terminals, verified
// and stored by two hqd instances on one PostgreSQL through the shared
// subscription. Reports acks/s from the first publish to the last row
// committed (target ≥ 2,000/s on 2 cores). Run with -benchtime 1x.
func BenchmarkIngestAcks(b *testing.B) {
	const terms, perTerm = 1000, 20
	l := newLab(b, "postgres", mosquittotest.Options{ExtraConfig: "max_queued_messages 200000\nmax_inflight_messages 1000\n"})
	a, c := l.start("a"), l.start("b")
	f, err := simterm.New(simterm.Options{Serials: serials("ING", terms)})
	if err != nil {
		b.Fatal(err)
	}
	l.register(a, f.Registry())
	_ = c
	var envs [][]byte
	var topics []string
	for i := range perTerm {
		for _, s := range serials("ING", terms) {
			env, _ := remote.SealAck(f.Terms[s].Priv, remote.Ack{CmdID: fmt.Sprintf("bench-%s-%d", s, i), Serial: s,
				State: remote.AckSucceeded, At: time.Now().UTC()})
			envs = append(envs, env)
			topics = append(topics, remote.AckTopic(s))
		}
	}
	st := openDB(b, l.db)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	const pubs = 4
	for p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := paho.NewClient(paho.NewClientOptions().AddBroker(l.broker.URL()).SetClientID(fmt.Sprintf("benchpub-%d", p)).SetMaxResumePubInFlight(5000))
			if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				b.Error(tok.Error())
				return
			}
			defer cl.Disconnect(100)
			var toks []paho.Token
			for i := p; i < len(envs); i += pubs {
				toks = append(toks, cl.Publish(topics[i], 1, false, envs[i]))
			}
			for _, tok := range toks {
				tok.Wait()
			}
		}()
	}
	wg.Wait()
	n := len(envs)
	for {
		var got int
		if err := st.DB().QueryRow("SELECT COUNT(*) FROM command_acks").Scan(&got); err != nil {
			b.Fatal(err)
		}
		if got >= n {
			break
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("%d of %d acks after 5 min", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/el.Seconds(), "acks/s")
	b.Logf("%d verified acks from %d terminals stored by 2 instances on PostgreSQL in %s: %.0f/s", n, terms, el.Round(time.Millisecond), float64(n)/el.Seconds())
}

// BenchmarkUnbindJob10k: a 10,000-terminal unbind job, every terminal with
// an open batch that it settles (an in-process acquirer holding each
// settlement 250 ms), at 12,000 commands/min with at most 100 settling at
// once, on SQLite and on PostgreSQL. Reports the wall time to the job's
// end and the peak of concurrent settlements. Run with -benchtime 1x.
func BenchmarkUnbindJob10k(b *testing.B) {
	for _, d := range []string{"sqlite", "postgres"} {
		b.Run(d, func(b *testing.B) {
			const n, rate, maxSettling = 10_000, 12_000, 100
			l := newLab(b, d, mosquittotest.Options{ExtraConfig: "max_queued_messages 200000\nmax_inflight_messages 1000\n"})
			a := l.start("a")
			acq := &simterm.Acquirer{Hold: 250 * time.Millisecond}
			prefix := "TENK" + d[:1]
			f, err := simterm.New(simterm.Options{Broker: l.broker.URL(), Serials: serials(prefix, n), PerConn: 200,
				HQKeys: map[string]simterm.HQKey{"hq-ops": {Pub: l.opsPub}}, Active: true, Batch: 5, Settler: acq})
			if err != nil {
				b.Fatal(err)
			}
			l.register(a, f.Registry())
			if err := f.Connect(); err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.ResetTimer()
			start := time.Now()
			var j store.Job
			if code := a.api("POST", "/api/v1/jobs", jobs.Request{Type: "unbind", Args: json.RawMessage(`{"reason":"bench"}`),
				Filter: &store.Filter{Search: prefix}, RatePerMin: rate, MaxInflight: maxSettling, AbortPct: 100}, &j); code != 201 {
				b.Fatalf("create job: %d", code)
			}
			var p jobs.Progress
			for {
				a.api("GET", "/api/v1/jobs/"+j.ID, nil, &p)
				if p.Job.State == store.JobDone {
					break
				}
				if time.Since(start) > 15*time.Minute {
					b.Fatalf("job not done after 15 min: %s", p.Line())
				}
				time.Sleep(200 * time.Millisecond)
			}
			el := time.Since(start)
			b.StopTimer()
			if p.Counts[store.ItemSucceeded] != n || acq.Peak() > maxSettling {
				b.Fatalf("%s; peak %d", p.Line(), acq.Peak())
			}
			b.ReportMetric(el.Seconds(), "s/job")
			b.ReportMetric(float64(n)/el.Minutes(), "unbinds/min")
			b.ReportMetric(float64(acq.Peak()), "peak-settling")
			b.Logf("%s: %d terminals unbound (each settled) in %s, %.0f/min, at %d/min set (floor %s), cap %d, peak concurrent settlements %d",
				d, n, el.Round(time.Millisecond), float64(n)/el.Minutes(), rate, (time.Duration(n) * time.Minute / rate).Round(time.Second), maxSettling, acq.Peak())
		})
	}
}
