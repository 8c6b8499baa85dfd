package main

// BenchmarkKeypadUnderFlood measures how fast the keypad is answered while
// HQ's side floods the command topic (issue: 4 × 1,500 re-sends of one
// signed command once froze the keypad for minutes): 6,000 re-sends of one
// answered command ("resends"), and the same with 200 distinct commands
// among them ("resends+distinct"), which fill the inbox (64), park the
// rest unacknowledged and are decided one per turn of the event loop,
// each with an fsync'd ack. A key press is timed from the keypad to the
// screen it brings; the same presses without a flood give the machine's
// own noise (idle-…).

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/terminal/remote"
)

func BenchmarkKeypadUnderFlood(b *testing.B) {
	b.Run("resends", func(b *testing.B) { benchKeypadUnderFlood(b, 0) })
	b.Run("resends+distinct", func(b *testing.B) { benchKeypadUnderFlood(b, 200) })
}

// benchKeypadUnderFlood floods with 6,000 messages, distinct of them new
// commands.
func benchKeypadUnderFlood(b *testing.B, distinct int) {
	tmk, _ := hex.DecodeString(hostsim.DefaultTMK)
	host := hostsim.New(hostsim.Config{TMK: tmk, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go host.Serve(ln)
	b.Cleanup(func() { host.Close() })
	broker := mosquittotest.Start(b, mosquittotest.Options{})
	hqPub, hqPriv, _ := ed25519.GenerateKey(nil)
	p := startInProcessMQTT(b, ln.Addr().String(), broker.URL(), hqPub)

	var mu sync.Mutex
	acks := map[string]int{}
	got := make(chan string, 1024)
	hq := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("hq-bench").
		SetOrderMatters(false).SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		env, err := remote.Decode(m.Payload())
		if err != nil {
			return
		}
		a, err := remote.ParseAck(env.Payload)
		if err != nil || !a.Final() {
			return
		}
		mu.Lock()
		acks[a.CmdID]++
		mu.Unlock()
		select {
		case got <- a.CmdID:
		default:
		}
	}))
	if tok := hq.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer hq.Disconnect(100)
	if tok := hq.Subscribe(remote.AckWildcard, 1, nil); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	seal := func(id string) []byte {
		now := time.Now().UTC().Truncate(time.Second)
		payload, _ := remote.Command{ID: id, Type: remote.TypeStatus, Serial: "PA-BENCH", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}.Payload()
		env, err := remote.Seal("hq-1", hqPriv, payload)
		if err != nil {
			b.Fatal(err)
		}
		return env
	}
	// waitAck waits for a final ack of id, publishing env again every
	// 2 s (a terminal that has only just connected may not have
	// subscribed yet, as HQ's re-sending covers in the field).
	waitAck := func(id string, env []byte) error {
		deadline := time.After(time.Minute)
		again := time.NewTicker(2 * time.Second)
		defer again.Stop()
		for {
			mu.Lock()
			n := acks[id]
			mu.Unlock()
			if n > 0 {
				return nil
			}
			select {
			case <-got:
			case <-again.C:
				hq.Publish(remote.CmdTopic("PA-BENCH"), 1, false, env)
			case <-deadline:
				return fmt.Errorf("no final ack of %s", id)
			}
		}
	}
	flooded := seal("status-flooded")
	hq.Publish(remote.CmdTopic("PA-BENCH"), 1, false, flooded).WaitTimeout(waitTimeout)
	if err := waitAck("status-flooded", flooded); err != nil {
		b.Fatal(err)
	}

	// The machine's own noise, for comparison: the same key presses for
	// two seconds without a flood.
	press := func(lat []time.Duration) []time.Duration {
		for _, k := range []struct{ key, screen string }{{"1", "AMOUNT"}, {"x", "MAIN MENU"}} {
			t0 := time.Now()
			p.keys(k.key)
			s := p.waitFor(k.screen)
			lat = append(lat, s.at.Sub(t0))
		}
		return lat
	}
	var base, lat []time.Duration
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		base = press(base)
	}
	b.ResetTimer()
	for n := range b.N {
		done := make(chan error, 1)
		last := fmt.Sprintf("status-last-%d", n)
		go func() {
			var toks []paho.Token
			for i := range 6000 {
				env := flooded
				if distinct > 0 && i%(6000/distinct) == 0 {
					env = seal(fmt.Sprintf("status-%d-%d", n, i))
				}
				toks = append(toks, hq.Publish(remote.CmdTopic("PA-BENCH"), 1, false, env))
				if len(toks) == 200 {
					for _, t := range toks {
						t.WaitTimeout(time.Minute)
					}
					toks = toks[:0]
				}
			}
			lastEnv := seal(last)
			hq.Publish(remote.CmdTopic("PA-BENCH"), 1, false, lastEnv).WaitTimeout(time.Minute)
			done <- waitAck(last, lastEnv)
		}()
		// Keys throughout the flood: 1 brings AMOUNT, Cancel MAIN MENU.
	keys:
		for {
			lat = press(lat)
			select {
			case err := <-done:
				if err != nil {
					b.Fatal(err)
				}
				break keys
			default:
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(base)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	q := func(l []time.Duration, f float64) float64 { return ms(l[min(len(l)-1, int(f*float64(len(l))))]) }
	b.ReportMetric(q(lat, 0.5), "p50-ms")
	b.ReportMetric(q(lat, 0.999), "p99.9-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(q(base, 0.999), "idle-p99.9-ms")
	b.ReportMetric(ms(base[len(base)-1]), "idle-max-ms")
	b.ReportMetric(float64(len(lat))/float64(b.N), "keys/flood")
	mu.Lock()
	defer mu.Unlock()
	if acks["status-flooded"] > 1+int(b.Elapsed().Seconds())+b.N {
		b.Errorf("%d acks of the flooded command: re-sends are not rate-limited", acks["status-flooded"])
	}
}
