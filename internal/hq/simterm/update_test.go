package simterm_test

import (
	"crypto/ed25519"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/internal/hq/command"
	"github.com/posagent/posagent/internal/hq/simterm"
	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

// hq is the HQ side of the test: it signs commands and records the acks
// (verified with each terminal's device key) and statuses it receives.
type hq struct {
	t    *testing.T
	priv ed25519.PrivateKey
	f    *simterm.Fleet
	c    paho.Client

	mu     sync.Mutex
	acks   map[string][]remote.Ack // command id -> acks in arrival order
	status map[string][]remote.Status
}

func (h *hq) send(serial, id string, args any) {
	h.t.Helper()
	raw, _ := json.Marshal(args)
	payload, _, err := command.Payload(string(remote.TypeUpdate), serial, id, raw, time.Now(), time.Hour)
	if err != nil {
		h.t.Fatal(err)
	}
	env, err := remote.Seal("hq-ops", h.priv, payload)
	if err != nil {
		h.t.Fatal(err)
	}
	h.c.Publish(remote.CmdTopic(serial), 1, false, env).Wait()
}

func (h *hq) final(id string) remote.Ack {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		for _, a := range h.acks[id] {
			if a.Final() {
				h.mu.Unlock()
				return a
			}
		}
		h.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("no final ack for %s", id)
	return remote.Ack{}
}

func (h *hq) states(id string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, a := range h.acks[id] {
		out = append(out, a.State)
	}
	slices.Sort(out)
	return out
}

// TestUpdateWireShapes: the acks and statuses of a simterm's update are
// the real terminal's (terminal/update.go): accepted, in_progress with
// the stage downloaded once the bundle is in, an offline status at the
// reboot and the status with the running version after it, then
// succeeded with {"version","from"} or failed with the reason at the step
// the reason belongs to; an update to the running version succeeds at
// once; a second update while one runs is rejected wrong-state.
func TestUpdateWireShapes(t *testing.T) {
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	pub, priv, _ := ed25519.GenerateKey(nil)
	fails := map[string]string{"SIM-2": remote.ReasonBadHash, "SIM-3": remote.ReasonInstallFailed, "SIM-4": remote.ReasonRolledBack}
	f, err := simterm.New(simterm.Options{Broker: broker.URL(), Serials: []string{"SIM-1", "SIM-2", "SIM-3", "SIM-4", "SIM-5"}, PerConn: 5,
		HQKeys: map[string]simterm.HQKey{"hq-ops": {Pub: pub}}, Active: true, Version: "1.0.0",
		Update: simterm.UpdateSim{Download: 300 * time.Millisecond, Install: 50 * time.Millisecond, Reboot: 50 * time.Millisecond,
			Fail: func(serial, version string) string { return fails[serial] }}})
	if err != nil {
		t.Fatal(err)
	}
	h := &hq{t: t, priv: priv, f: f, acks: map[string][]remote.Ack{}, status: map[string][]remote.Status{}}
	h.c = paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("hq").SetOrderMatters(true))
	if tok := h.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer h.c.Disconnect(100)
	onMsg := func(_ paho.Client, m paho.Message) {
		serial, kind, _ := remote.ParseTopic(m.Topic())
		h.mu.Lock()
		defer h.mu.Unlock()
		switch kind {
		case remote.KindAck:
			env, err := remote.Open(m.Payload(), map[string]ed25519.PublicKey{remote.DeviceKID(serial): f.Terms[serial].Priv.Public().(ed25519.PublicKey)})
			if err != nil {
				t.Errorf("ack of %s does not verify: %v", serial, err)
				return
			}
			a, err := remote.ParseAck(env.Payload)
			if err != nil {
				t.Errorf("ack of %s: %v", serial, err)
				return
			}
			h.acks[a.CmdID] = append(h.acks[a.CmdID], a)
		case remote.KindStatus:
			s, err := remote.ParseStatus(m.Payload())
			if err != nil {
				t.Errorf("status of %s: %v", serial, err)
				return
			}
			h.status[serial] = append(h.status[serial], s)
		}
	}
	if tok := h.c.SubscribeMultiple(map[string]byte{remote.AckTopic("+"): 1, remote.StatusTopic("+"): 1}, onMsg); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if err := f.Connect(); err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	args := remote.UpdateArgs{URL: "https://updates.example.com/b.raucb", SHA256: strings.Repeat("ab", 32), Size: 1 << 20, Version: "1.1.0"}
	for _, s := range []string{"SIM-1", "SIM-2", "SIM-3", "SIM-4"} {
		h.send(s, "upd-"+s, args)
	}
	h.send("SIM-1", "upd-SIM-1-again", args) // while the first runs
	same := args
	same.Version = "1.0.0"
	h.send("SIM-5", "upd-SIM-5", same)

	type want struct {
		states          string // the acks' states, sorted
		reason, running string // the final ack's reason and result version
		rebooted        bool
		version         string // the terminal's version after
	}
	wants := map[string]want{
		"SIM-1": {"accepted in_progress succeeded", "", "1.1.0", true, "1.1.0"},
		"SIM-2": {"accepted failed", remote.ReasonBadHash, "1.0.0", false, "1.0.0"},
		"SIM-3": {"accepted failed in_progress", remote.ReasonInstallFailed, "1.0.0", false, "1.0.0"},
		"SIM-4": {"accepted failed in_progress", remote.ReasonRolledBack, "1.0.0", true, "1.0.0"},
	}
	for s, w := range wants {
		id := "upd-" + s
		fin := h.final(id)
		var res terminal.UpdateResult
		if err := json.Unmarshal(fin.Result, &res); err != nil || res.Version != w.running || res.From != "1.0.0" || fin.Reason != w.reason {
			t.Errorf("%s: final %s %q %s, want reason %q, version %s from 1.0.0", s, fin.State, fin.Reason, fin.Result, w.reason, w.running)
		}
		if got := strings.Join(h.states(id), " "); got != w.states {
			t.Errorf("%s: acks %s, want %s", s, got, w.states)
		}
		h.mu.Lock()
		for _, a := range h.acks[id] {
			if a.State == remote.AckInProgress && string(a.Result) != `{"stage":"`+string(terminal.UpdateReady)+`"}` {
				t.Errorf("%s: in_progress result %s", s, a.Result)
			}
		}
		h.mu.Unlock()
		if got := f.Terms[s].Version(); got != w.version {
			t.Errorf("%s runs %s, want %s", s, got, w.version)
		}
		// The reboot's statuses: offline, then online with the running
		// version (published before the final ack, on one connection).
		deadline := time.Now().Add(10 * time.Second)
		for {
			h.mu.Lock()
			st := append([]remote.Status(nil), h.status[s]...)
			h.mu.Unlock()
			offline := slices.ContainsFunc(st, func(x remote.Status) bool { return !x.Online })
			if len(st) > 0 && offline == w.rebooted && st[len(st)-1].Online && st[len(st)-1].Version == w.version {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s statuses %+v: want rebooted %v, last online on %s", s, st, w.rebooted, w.version)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if fin := h.final("upd-SIM-1-again"); fin.State != remote.AckRejected || fin.Reason != remote.ReasonWrongState {
		t.Errorf("a second update while one runs: %s %q, want rejected wrong-state", fin.State, fin.Reason)
	}
	var res terminal.UpdateResult
	if fin := h.final("upd-SIM-5"); fin.State != remote.AckSucceeded || json.Unmarshal(fin.Result, &res) != nil || res.Version != "1.0.0" ||
		res.From != "1.0.0" || strings.Join(h.states("upd-SIM-5"), " ") != "succeeded" {
		t.Errorf("an update to the running version: %s %s, acks %v", fin.State, fin.Result, h.states("upd-SIM-5"))
	}
	if got := f.UpdatesBegun(); got != 4 {
		t.Errorf("%d updates begun, want 4", got)
	}
}
