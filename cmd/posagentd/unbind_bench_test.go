package main

// BenchmarkUnbindFleet: a fleet of in-process terminals (each its own
// data_dir, identity and merchant stores, secure element, MQTT client and
// haltest devices; openDaemon + loop in a goroutine) on one real
// mosquitto, unbound all at once by one HQ paho client. The metric is the
// time from the first publish until HQ holds every terminal's final
// succeeded ack. The batches are empty: the benchmark measures the remote
// channel, the inbox/ack/intent fsyncs and the wipe, not the acquirer.
//
//	go test -run '^$' -bench UnbindFleet ./cmd/posagentd/

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/hal/haltest"
	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/terminal/remote"
	"golang.org/x/crypto/curve25519"
)

// fleetTerm is one in-process terminal of the fleet.
type fleetTerm struct {
	serial string
	d      *daemon
	sigs   chan os.Signal
	done   chan int
}

// fleetHQ counts the final acks of one fleet unbind; its handler only
// verifies and counts (paho's router must never block).
type fleetHQ struct {
	mu       sync.Mutex
	devKeys  map[string]ed25519.PublicKey
	want     map[string]string // cmd id -> serial
	final    map[string]string // cmd id -> final state
	online   map[string]bool
	all      chan struct{}
	bad      atomic.Int64
	closeAll sync.Once
}

func (h *fleetHQ) handle(_ paho.Client, m paho.Message) {
	serial, kind, ok := remote.ParseTopic(m.Topic())
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if kind == remote.KindStatus {
		var s remote.Status
		if json.Unmarshal(m.Payload(), &s) == nil {
			h.online[serial] = s.Online && s.State == "active"
		}
		return
	}
	env, err := remote.Open(m.Payload(), h.devKeys)
	if err != nil {
		h.bad.Add(1)
		return
	}
	a, err := remote.ParseAck(env.Payload)
	if err != nil || h.want[a.CmdID] != serial {
		h.bad.Add(1)
		return
	}
	if !a.Final() {
		return
	}
	if prev, ok := h.final[a.CmdID]; ok && prev != a.State {
		h.bad.Add(1) // contradiction
	}
	h.final[a.CmdID] = a.State
	if len(h.final) == len(h.want) {
		h.closeAll.Do(func() { close(h.all) })
	}
}

func (h *fleetHQ) onlineCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ok := range h.online {
		if ok {
			n++
		}
	}
	return n
}

func BenchmarkUnbindFleet(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { benchUnbindFleet(b, n) })
	}
}

func benchUnbindFleet(b *testing.B, n int) {
	b.StopTimer() // the broker, the host and the fleet are set up untimed
	// mosquitto's defaults (1000 queued, 20 in flight per client) would
	// drop or throttle the HQ client's share: it receives every ack of
	// the fleet.
	broker := mosquittotest.Start(b, mosquittotest.Options{ACL: true,
		ExtraConfig: "max_queued_messages 0\nmax_inflight_messages 0\nset_tcp_nodelay true"})
	tmk, _ := hostsim.ParseTMK(hostsim.DefaultTMK)
	host := hostsim.New(hostsim.Config{TMK: tmk, Logger: newLogger(io.Discard, "error")})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go host.Serve(ln)
	b.Cleanup(func() { host.Close() })

	hqPub, hqPriv, _ := ed25519.GenerateKey(nil)
	techHash, err := storage.HashPassword("8888")
	if err != nil {
		b.Fatal(err)
	}
	supHash, err := storage.HashPassword(defaultSupervisorPwd)
	if err != nil {
		b.Fatal(err)
	}

	var total time.Duration
	for iter := 0; iter < b.N; iter++ {
		b.StopTimer()
		hq := &fleetHQ{devKeys: map[string]ed25519.PublicKey{}, want: map[string]string{},
			final: map[string]string{}, online: map[string]bool{}, all: make(chan struct{})}
		terms := make([]*fleetTerm, n)
		base := b.TempDir()
		// Set up in parallel: each terminal is a few fsynced files.
		var wg sync.WaitGroup
		errs := make(chan error, n)
		sem := make(chan struct{}, 8)
		for i := range n {
			wg.Add(1)
			sem <- struct{}{}
			go func(i int) {
				defer wg.Done()
				defer func() { <-sem }()
				serial := fmt.Sprintf("PA-F%d-%05d", iter, i)
				t, pub, err := newFleetTerm(filepath.Join(base, serial), serial, broker.URL(), ln.Addr().String(),
					hqPub, techHash, supHash, i)
				if err != nil {
					errs <- err
					return
				}
				terms[i] = t
				hq.mu.Lock()
				hq.devKeys[remote.DeviceKID(serial)] = pub
				hq.mu.Unlock()
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}

		c := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).
			SetClientID(fmt.Sprintf("hq-bench-%d", iter)).SetUsername("hq").SetCleanSession(true).
			SetOrderMatters(false).SetDefaultPublishHandler(hq.handle).SetMaxResumePubInFlight(0))
		if tok := c.Connect(); !tok.WaitTimeout(remoteWait) || tok.Error() != nil {
			b.Fatalf("HQ connect: %v", tok.Error())
		}
		for _, topic := range []string{"pos/v1/+/ack", "pos/v1/+/status"} {
			if tok := c.Subscribe(topic, 1, hq.handle); !tok.WaitTimeout(remoteWait) || tok.Error() != nil {
				b.Fatalf("HQ subscribe: %v", tok.Error())
			}
		}
		for _, t := range terms {
			go func(t *fleetTerm) {
				code := t.d.loop(t.sigs)
				t.d.close()
				t.done <- code
			}(t)
		}
		// Every terminal online and active (its retained status) before
		// the clock starts.
		deadline := time.Now().Add(2 * time.Minute)
		for hq.onlineCount() < n {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d terminals online after 2 min", hq.onlineCount(), n)
			}
			time.Sleep(50 * time.Millisecond)
		}

		// Sign every command before the clock: HQ tools prepare a fleet
		// job, then send it.
		now := time.Now().UTC().Truncate(time.Second)
		envs := make([][]byte, n)
		for i, t := range terms {
			id := fmt.Sprintf("unbind-%s", t.serial)
			p, err := remote.Command{ID: id, Type: remote.TypeUnbind, Serial: t.serial, IssuedAt: now,
				ExpiresAt: now.Add(time.Hour), Args: json.RawMessage(`{"reason":"fleet","unsettled":"settle"}`)}.Payload()
			if err != nil {
				b.Fatal(err)
			}
			if envs[i], err = remote.Seal(hqKID, hqPriv, p); err != nil {
				b.Fatal(err)
			}
			hq.want[id] = t.serial
		}

		b.StartTimer()
		t0 := time.Now()
		toks := make([]paho.Token, n)
		for i, t := range terms {
			toks[i] = c.Publish(remote.CmdTopic(t.serial), 1, false, envs[i])
		}
		for _, tok := range toks {
			if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
				b.Fatalf("HQ publish: %v", tok.Error())
			}
		}
		select {
		case <-hq.all:
		case <-time.After(3 * time.Minute):
			hq.mu.Lock()
			got := len(hq.final)
			hq.mu.Unlock()
			b.Fatalf("%d of %d final acks after 3 min", got, n)
		}
		elapsed := time.Since(t0)
		b.StopTimer()
		total += elapsed

		for id, st := range hq.final {
			if st != remote.AckSucceeded {
				b.Errorf("%s: final ack %s", id, st)
			}
		}
		if bad := hq.bad.Load(); bad != 0 {
			b.Errorf("%d acks did not verify, named a wrong command or contradicted another", bad)
		}
		for _, t := range terms {
			select {
			case code := <-t.done:
				if code != exitReboot {
					b.Errorf("%s: loop ended with %d, want %d", t.serial, code, exitReboot)
				}
			case <-time.After(time.Minute):
				b.Fatalf("%s: loop still running after its final ack", t.serial)
			}
		}
		c.Disconnect(100)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s-to-all-acks")
}

// newFleetTerm creates a terminal's identity directly (no password
// hashing per terminal: the hashes are shared), provisions it with the
// posagentd provision command and opens its daemon on haltest devices.
func newFleetTerm(dir, serial, broker, acqAddr string, hqPub ed25519.PublicKey, techHash, supHash string, i int) (*fleetTerm, ed25519.PublicKey, error) {
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, err
	}
	edPub, edPriv, _ := ed25519.GenerateKey(nil)
	x := bytes.Repeat([]byte{byte(i) | 1}, 32)
	id := storage.Identity{Serial: serial, DeviceEd25519Priv: edPriv, DeviceEd25519Pub: edPub,
		HQKeys: map[string][]byte{hqKID: hqPub}, TechPwdHash: techHash, SupervisorPwdHash: supHash,
		CreatedAt: time.Now().UTC()}
	id.DeviceX25519Priv = x
	var err error
	if id.DeviceX25519Pub, err = curve25519.X25519(x, curve25519.Basepoint); err != nil {
		return nil, nil, err
	}
	idPath, _, _ := storage.Paths(dataDir)
	if err := storage.CreateIdentity(idPath, id); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", serial, err)
	}
	cfgPath := filepath.Join(dir, "pos.toml")
	cfgText := fmt.Sprintf("data_dir = %q\nlog_level = \"warn\"\n[hal]\nkind = \"sim\"\nconsole = \"stdio\"\nreboot = \"exit\"\n[mqtt]\nbroker = %q\n[acquirer]\ntimeout = \"5s\"\n", dataDir, broker)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return nil, nil, err
	}
	prov, _ := json.Marshal(map[string]any{"tid": fmt.Sprintf("8%07d", i), "mid": fmt.Sprintf("8980000%08d", i),
		"merchant_name": "FLEET", "acquirer": map[string]any{"addr": acqAddr, "tpdu": "6000030000"}, "tmk": hostsim.DefaultTMK})
	provPath := filepath.Join(dir, "prov.json")
	if err := os.WriteFile(provPath, prov, 0o600); err != nil {
		return nil, nil, err
	}
	var out, errb bytes.Buffer
	if code := run([]string{"provision", "--config", cfgPath, "--file", provPath}, &out, &errb); code != 0 {
		return nil, nil, fmt.Errorf("provision %s: %s", serial, errb.String())
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	devs, _ := haltest.Devices()
	d, err := openDaemon(cfg, newLogger(io.Discard, "warn"), system{Devices: devs})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", serial, err)
	}
	return &fleetTerm{serial: serial, d: d, sigs: make(chan os.Signal, 1), done: make(chan int, 1)}, edPub, nil
}
