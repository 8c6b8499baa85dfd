package main

// Power cuts (kill -9) at random points of a remote unbind: from the
// command's arrival through the accepted ack, the settlement, the wipe, the
// final ack and the exit, and again during the restarts that resume it.
// Whatever the point, the run must end unactivated with the batch settled
// at the host, nothing secret left under data_dir, and HQ must see exactly
// one outcome per command id (the same final ack may arrive twice).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/haltest"
	"github.com/posagent/posagent/hal/sesim"
	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

// remoteKillPoints is the number of kill -9s: -soak, else POSAGENT_SOAK,
// else 30.
func remoteKillPoints(t *testing.T) int {
	if *soakFlag > 0 {
		return *soakFlag
	}
	if s := os.Getenv("POSAGENT_SOAK"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("POSAGENT_SOAK=%q: want a positive number", s)
		}
		return n
	}
	return 30
}

func TestRemotePowerCutUnbind(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("POSAGENT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("POSAGENT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (POSAGENT_SEED=%d reproduces the kill points)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	want := remoteKillPoints(t)

	broker := brokerForTerms(t, mosquittotest.Options{})
	host := startRemoteHost(t)
	hq := newHQ(t)
	hq.connect(broker.URL(), nil)
	r := newRemoteTerm(t, host, hq, rtermOptions{Serial: "PA-CUT-0001", TID: "71000010", Broker: broker.URL()})

	// The first unbind runs uninterrupted: it measures how long the
	// sequence takes here, the span the kill points are drawn from.
	span := time.Duration(0)
	kills, runs := 0, 0
	stats := map[string]int{}
	for kills < want {
		runs++
		if runs > 1 {
			r.provision()
			r.Start()
			r.WaitScreen("MAIN MENU", remoteWait)
		}
		r.sell(1000 + 100*int64(runs)) // whole yuan: the host declines some endings (51, 55, 96)
		t0 := time.Now()
		id := hq.unbind(r.Serial, remote.UnsettledSettle, time.Hour)

		// Kill the daemon that received the command, then possibly the
		// ones that resume it, until one exits 3 on its own.
		killedThisRun := false
		for attempt := 0; ; attempt++ {
			if attempt > 20 {
				t.Fatalf("run %d: the unbind did not finish after 20 restarts", runs)
			}
			kill := false
			switch {
			case span == 0: // the measuring run
			case attempt == 0:
				kill = true
			default:
				kill = rng.IntN(3) == 0
			}
			if kill && r.killAt(rng, span) {
				kills++
				killedThisRun = true
				stats["kill after "+lastMilestone(r.lastLog())]++
				r.Start()
				continue
			}
			if kill {
				stats["exited before the kill"]++
			}
			// A kill after the wipe comes back unactivated at once (the
			// final ack already in the outbox): nothing left to reboot for.
			code := r.waitExitOrUnactivated(remoteWait)
			if code == stillUnactivated {
				stats["came back unactivated"]++
				r.Stop()
				break
			}
			if code != exitReboot {
				t.Fatalf("run %d: exit status %d, want %d; log:\n%s", runs, code, exitReboot, tail(r.lastLog(), 4000))
			}
			break
		}
		if span == 0 {
			span = time.Since(t0)
			t.Logf("an uninterrupted unbind takes %v from publish to exit", span)
		} else if stats["exited before the kill"] > 0 && r.exitSt == exitReboot && !killedThisRun {
			// Follow the machine's pace: an unbind that beat its kill point
			// says how long the sequence takes now.
			span = (span + time.Since(t0)) / 2
		}

		// Once more: NOT ACTIVATED, and the outbox reaches HQ.
		r.Start()
		r.WaitScreen("NOT ACTIVATED", remoteWait)
		hq.waitFor("succeeded ack of "+id, remoteWait, func() bool {
			return countStates(hq.acksOf(id))[remote.AckSucceeded] > 0
		})
		r.Stop()

		var final []byte
		for _, a := range hq.acksOf(id) {
			if !a.Verified {
				t.Errorf("run %d: unverified ack %+v", runs, a.Ack)
			}
			switch a.Ack.State {
			case remote.AckAccepted, remote.AckInProgress:
			case remote.AckSucceeded:
				if final != nil && !bytes.Equal(final, a.Ack.Result) {
					t.Errorf("run %d: two different succeeded results:\n%s\n%s", runs, final, a.Ack.Result)
				}
				final = a.Ack.Result
			default:
				t.Errorf("run %d: contradictory ack %s %s for %s", runs, a.Ack.State, a.Ack.Reason, id)
			}
		}
		assertWiped(t, r.DataDir, r.merchantSecrets(host))
		if t.Failed() {
			t.Fatalf("run %d failed; log of the last runs:\n%s", runs, tail(r.Logs(), 8000))
		}
	}

	// The host: every batch that holds a sale is settled and closed, and
	// every sale was approved once.
	ht := host.host.Ledger().Terminals[r.TID]
	if ht == nil {
		t.Fatal("the host never saw the terminal")
	}
	sales := 0
	for _, b := range ht.Batches {
		for _, x := range b.Transactions {
			if x.Type == hostsim.TypeSale && x.State == hostsim.StateApproved {
				sales++
			}
		}
		if len(b.Transactions) > 0 && (!b.Closed || b.Settlement == nil) {
			t.Errorf("host batch %s: %d transactions, closed=%v settlement=%+v: want settled", b.Number, len(b.Transactions), b.Closed, b.Settlement)
		}
	}
	if sales != runs {
		t.Errorf("host approved %d sales in %d runs", sales, runs)
	}
	t.Logf("%d kill points over %d unbinds: %v", kills, runs, stats)
}

// killPoint draws a kill delay after the publish: a third in the first
// quarter of the sequence (delivery, inbox, accepted ack), the rest spread
// over all of it and a little beyond.
func killPoint(rng *rand.Rand, span time.Duration) time.Duration {
	if rng.IntN(3) == 0 {
		return time.Duration(rng.Int64N(int64(span/4) + 1))
	}
	return time.Duration(rng.Int64N(int64(span*5/4) + 1))
}

// milestones are the log lines of an unbind, in order; lastMilestone
// names the last one a killed daemon wrote, for the statistics.
var milestones = []struct{ line, name string }{
	{"msg=command ", "command"},
	{"state=accepted", "accepted"},
	{"unbind: batch settled", "settled"},
	{"merchant data wiped", "wipe"},
	{"state=succeeded", "final ack"},
	{"reboot requested", "reboot"},
}

func lastMilestone(log string) string {
	last, at := "boot", -1
	for _, m := range milestones {
		if i := strings.LastIndex(log, m.line); i > at {
			last, at = m.name, i
		}
	}
	return last
}

// stillUnactivated is waitExitOrUnactivated's answer for a daemon that
// runs and shows NOT ACTIVATED.
const stillUnactivated = -100

// waitExitOrUnactivated waits until the daemon exits (its status) or shows
// NOT ACTIVATED while running (stillUnactivated).
func (r *rterm) waitExitOrUnactivated(timeout time.Duration) int {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			return r.exitSt
		default:
		}
		if _, ok := r.waitAny([]string{"NOT ACTIVATED"}, 50*time.Millisecond); ok {
			return stillUnactivated
		}
	}
	r.t.Fatalf("posagentd neither exited nor showed NOT ACTIVATED after %v; last screens:\n%s\nlog tail:\n%s", timeout, r.scr.Tail(5), tail(r.lastLog(), 3000))
	return -1
}

// killAt kills the daemon at a random point: half of the time a few
// milliseconds after a randomly chosen milestone of the unbind shows in
// its log, otherwise at a random delay within span. It reports false when
// the daemon exited first.
func (r *rterm) killAt(rng *rand.Rand, span time.Duration) bool {
	r.t.Helper()
	if rng.IntN(2) == 0 {
		m := milestones[rng.IntN(len(milestones))]
		// A resumed run may never write that line (it is past it): give
		// up after a few spans and kill anyway.
		deadline := time.Now().Add(time.Second + 3*span)
		for !strings.Contains(r.lastLog(), m.line) && time.Now().Before(deadline) {
			if !r.running() {
				return false
			}
			time.Sleep(500 * time.Microsecond)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Millisecond))))
	} else {
		select {
		case <-r.done:
		case <-time.After(killPoint(rng, span)):
		}
	}
	if !r.running() {
		return false
	}
	r.Kill9()
	return true
}

// TestRemoteResumeWipeOverZeroedFiles is the deterministic twin of two
// kill points the power-cut test found: a cut inside the wipe, after a
// file was zeroed and before it was removed. The next boot must not choke
// on the zeroed merchant store or a zeroed secure-element temp file: it
// finishes the wipe, writes the final ack and reboots.
func TestRemoteResumeWipeOverZeroedFiles(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "pos.toml")
	cfgText := fmt.Sprintf("data_dir = %q\n[hal]\nkind = \"sim\"\nconsole = \"stdio\"\nreboot = \"exit\"\n[mqtt]\nbroker = \"tcp://127.0.0.1:9\"\n", dataDir)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	pwd := filepath.Join(dir, "techpwd")
	if err := os.WriteFile(pwd, []byte("8888\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hq := newHQ(t)
	var out, errb bytes.Buffer
	if code := run([]string{"factory-init", "--data-dir", dataDir, "--serial", "PA-ZERO-1", "--hq-key", hq.keyArg(), "--tech-pwd-file", pwd}, &out, &errb); code != 0 {
		t.Fatalf("factory-init: %s", errb.String())
	}
	prov, _ := json.Marshal(map[string]any{"tid": "71000099", "mid": "898000071000099", "merchant_name": "ZERO",
		"acquirer": map[string]any{"addr": "127.0.0.1:9", "tpdu": "6000030000"}, "tmk": hostsim.DefaultTMK})
	provPath := filepath.Join(dir, "prov.json")
	if err := os.WriteFile(provPath, prov, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"provision", "--config", cfgPath, "--file", provPath}, &out, &errb); code != 0 {
		t.Fatalf("provision: %s", errb.String())
	}

	// The state a cut inside the wipe leaves: intent at "wiping", the
	// merchant store zeroed in place, a zeroed key file under its temp
	// name, the data key already gone.
	idPath, merchPath, sePath := storage.Paths(dataDir)
	ident, err := storage.OpenIdentity(idPath)
	if err != nil {
		t.Fatal(err)
	}
	iv, _ := json.Marshal(terminal.UnbindIntent{CmdID: "unbind-zero", Source: "remote", Unsettled: "settle",
		ExpiresAt: time.Now().Add(time.Hour), Stage: "wiping",
		Summary: &terminal.UnbindSummary{Settlement: "empty-batch", Batch: "000001", BindingRemoved: true, KeysZeroised: true}})
	if err := ident.PutIntent(iv); err != nil {
		t.Fatal(err)
	}
	ident.Close()
	for _, f := range []string{merchPath, filepath.Join(sePath, sesim.KeysFile)} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, make([]byte, fi.Size()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(filepath.Join(sePath, sesim.KeysFile), filepath.Join(sePath, sesim.KeysFile+".tmp")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(sePath, sesim.DataKeyFile))

	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	devs, _ := haltest.Devices()
	d, err := openDaemon(cfg, newLogger(io.Discard, "info"), system{Devices: devs})
	if err != nil {
		t.Fatalf("boot after a cut inside the wipe: %v", err)
	}
	code := d.loop(make(chan os.Signal))
	items, err := d.ident.Outbox()
	d.close()
	if code != exitReboot {
		t.Fatalf("loop ended with %d, want %d", code, exitReboot)
	}
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, it := range items {
		env, err := remote.Decode(it.Payload)
		if err != nil {
			continue
		}
		if a, err := remote.ParseAck(env.Payload); err == nil && a.CmdID == "unbind-zero" {
			states = append(states, a.State)
		}
	}
	if len(states) != 1 || states[0] != remote.AckSucceeded {
		t.Errorf("acks of the resumed unbind in the outbox: %v, want one succeeded", states)
	}
	// The store is gone or a fresh empty one (the shell reopens it for an
	// activation without a reboot): no merchant parameters either way.
	se, err := sesim.Open(sePath)
	if err != nil {
		t.Fatalf("secure element after the resumed wipe: %v", err)
	}
	ms, err := storage.OpenMerchant(merchPath, se)
	if err != nil {
		t.Fatalf("merchant store after the resumed wipe: %v", err)
	}
	if _, ok, err := ms.Params(); err != nil || ok {
		t.Errorf("merchant parameters after the resumed wipe: present=%v err=%v", ok, err)
	}
	ms.Close()
	if se.HasKey(hal.TMK) {
		t.Error("TMK still in the secure element")
	}
	tmk, _ := hostsim.ParseTMK(hostsim.DefaultTMK)
	assertWiped(t, dataDir, map[string][]byte{"TMK": tmk, "TID": []byte("71000099"), "MID": []byte("898000071000099")})
}
