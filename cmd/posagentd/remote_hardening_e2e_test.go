package main

// End-to-end tests of the remote channel's hardening (issue "Remote channel
// hardening", spec/remote.md): old commands stay dead (recorded ids,
// retained commands ignored), floods cost nothing (duplicates, oversized
// packets), and the technician password locks. Real mosquitto, real
// posagentd processes.

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/terminal/remote"
)

// logCount waits until the daemon's current log holds at least n lines
// containing s, and returns the count.
func (r *rterm) logCount(s string, n int, timeout time.Duration) int {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := strings.Count(r.lastLog(), s)
		if c >= n {
			return c
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("log: %d of %q after %v, want %d; log tail:\n%s", c, s, timeout, n, tail(r.lastLog(), 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probe sends a status command and waits for its final ack: every command
// published before it has been handled (one command goroutine, in order).
func (h *hqSide) probe(serial string) {
	h.t.Helper()
	id := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	h.publish(serial, h.seal(h.command(serial, remote.TypeStatus, id, nil, time.Hour)))
	if a := h.waitFinal(id, remoteWait); a.Ack.State != remote.AckSucceeded {
		h.t.Fatalf("probe %s: %s %s", id, a.Ack.State, a.Ack.Reason)
	}
}

// TestRemoteReplayAfterReactivation: an unbind rejected wrong-state while
// the unit was unactivated is recorded with its rejection; replayed byte
// for byte once the unit is active again, it gets the stored rejected ack
// (the same bytes) and wipes nothing.
func TestRemoteReplayAfterReactivation(t *testing.T) {
	t.Parallel()
	broker := brokerForTerms(t, mosquittotest.Options{})
	host := startRemoteHost(t)
	hq := newHQ(t)
	hq.connect(broker.URL(), nil)
	const serial = "PA-REPLAY-01"
	r := newRemoteTerm(t, host, hq, rtermOptions{Serial: serial, TID: "71000011", Broker: broker.URL(), Unactivated: true})
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.Online && s.State == "unactivated" })

	id := "unbind-captured-1"
	env := hq.seal(hq.command(serial, remote.TypeUnbind, id, remote.UnbindArgs{Unsettled: remote.UnsettledForce}, 24*time.Hour))
	hq.publish(serial, env)
	first := hq.waitFinal(id, remoteWait)
	if first.Ack.State != remote.AckRejected || first.Ack.Reason != remote.ReasonWrongState {
		t.Fatalf("unbind while unactivated: %s %s, want rejected wrong-state", first.Ack.State, first.Ack.Reason)
	}

	// Reactivated (the bench way), with a sale in the batch.
	r.Stop()
	r.provision()
	r.Start()
	r.WaitScreen("MAIN MENU", remoteWait)
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.Online && s.State == "active" })
	r.sell(4200)

	hq.publish(serial, env) // the captured envelope, byte for byte
	hq.waitFor("the replayed unbind's ack", remoteWait, func() bool { return len(hq.acksOf(id)) >= 2 })
	again := hq.acksOf(id)[1]
	if !bytes.Equal(again.Raw, first.Raw) {
		t.Errorf("replay answered %s %s, want the stored rejected ack byte for byte:\n got %s\nwant %s",
			again.Ack.State, again.Ack.Reason, again.Raw, first.Raw)
	}
	hq.probe(serial)
	if n := len(hq.acksOf(id)); n != 2 {
		t.Errorf("%d acks for the replayed unbind, want 2 (the rejection, its re-send)", n)
	}
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.State == "active" && s.BatchCount == 1 })
	r.sell(4300) // still active, still selling
	if host.host.Ledger().Batch(r.TID, "000001") == nil {
		t.Error("the host has no batch: the replay wiped the terminal")
	}
}

// TestRemoteRetainedCommandIgnored: a validly signed unbind left retained
// on the cmd topic gets no ack and changes nothing when the terminal
// connects, then or after a restart.
func TestRemoteRetainedCommandIgnored(t *testing.T) {
	t.Parallel()
	broker := brokerForTerms(t, mosquittotest.Options{})
	host := startRemoteHost(t)
	hq := newHQ(t)
	hq.connect(broker.URL(), nil)
	const serial = "PA-RETAIN-01"
	r := newRemoteTerm(t, host, hq, rtermOptions{Serial: serial, TID: "71000012", Broker: broker.URL()})
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.Online && s.State == "active" })
	r.sell(1500)
	r.Stop()

	id := "unbind-retained-1"
	env := hq.seal(hq.command(serial, remote.TypeUnbind, id, remote.UnbindArgs{Unsettled: remote.UnsettledForce}, 24*time.Hour))
	tok := hq.c.Publish(remote.CmdTopic(serial), 1, true, env)
	if !tok.WaitTimeout(remoteWait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	// A fresh session sees the retained message on SUBSCRIBE, with the
	// retain flag: that is how it came back to wipe terminals.
	clearSession(t, broker.URL(), serial)

	for run := 1; run <= 2; run++ {
		r.Start()
		r.WaitScreen("MAIN MENU", remoteWait)
		r.logCount("command ignored: retained", 1, remoteWait)
		hq.probe(serial)
		if got := hq.acksOf(id); len(got) != 0 {
			t.Fatalf("run %d: the retained unbind was answered: %s %s", run, got[0].Ack.State, got[0].Ack.Reason)
		}
		hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.State == "active" && s.BatchCount == 1 })
		r.Stop()
	}
}

// clearSession drops a client id's persistent session on the broker (a
// CleanSession connection under its id), as a terminal replaced or
// reprovisioned on the bench starts over.
func clearSession(t *testing.T, url, serial string) {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(remote.ClientID(serial)).
		SetUsername(serial).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(remoteWait) || tok.Error() != nil {
		t.Fatalf("clear session: %v", tok.Error())
	}
	c.Disconnect(100)
}

// TestRemoteFloodOfResends: 6,000 re-sends of one command (at QoS 1, as
// fast as the broker takes them) are acknowledged at the MQTT level and
// not stored: the identity store stays under 1 MiB, the command's stored
// ack is re-sent at most about once a second, and the terminal keeps
// selling. The keypad's latency under the same flood is a benchmark
// (BenchmarkKeypadUnderFlood).
func TestRemoteFloodOfResends(t *testing.T) {
	t.Parallel()
	broker := brokerForTerms(t, mosquittotest.Options{})
	host := startRemoteHost(t)
	hq := newHQ(t)
	hq.connect(broker.URL(), nil)
	const serial = "PA-FLOOD-01"
	r := newRemoteTerm(t, host, hq, rtermOptions{Serial: serial, TID: "71000013", Broker: broker.URL()})
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.Online && s.State == "active" })

	id := "status-flooded"
	env := hq.seal(hq.command(serial, remote.TypeStatus, id, nil, time.Hour))
	hq.publish(serial, env)
	hq.waitFinal(id, remoteWait)

	const resends = 6000
	start := time.Now()
	toks := make([]paho.Token, 0, 200)
	for i := 0; i < resends; i++ {
		toks = append(toks, hq.c.Publish(remote.CmdTopic(serial), 1, false, env))
		if len(toks) == cap(toks) {
			for _, tok := range toks {
				if !tok.WaitTimeout(remoteWait) || tok.Error() != nil {
					t.Fatalf("flood publish: %v", tok.Error())
				}
			}
			toks = toks[:0]
		}
	}
	hq.probe(serial) // after every re-send was handled
	took := time.Since(start)
	r.sell(2500)

	acks := len(hq.acksOf(id))
	if limit := 2 + int(took.Seconds()/answeredWindow.Seconds()) + 1; acks > limit {
		t.Errorf("%d acks of the flooded command in %v, want at most %d (one re-send per %v)", acks, took, limit, answeredWindow)
	}
	fi, err := os.Stat(filepath.Join(r.DataDir, "identity.db"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() >= 1<<20 {
		t.Errorf("identity.db is %d bytes after %d re-sends, want under 1 MiB", fi.Size(), resends)
	}
	t.Logf("%d re-sends handled in %v; %d acks; identity.db %d bytes", resends, took.Round(time.Millisecond), acks, fi.Size())
	if strings.Contains(r.lastLog(), "inbox full") || strings.Contains(r.lastLog(), "command not stored") {
		t.Error("re-sends of an answered command were queued")
	}

	// Nothing of the flood waits in the inbox: a restart is straight back
	// to MAIN MENU and the keypad answers.
	r.Stop()
	s, err := storage.OpenIdentity(filepath.Join(r.DataDir, "identity.db"))
	if err != nil {
		t.Fatal(err)
	}
	items, err := s.Inbox()
	s.Close()
	if err != nil || len(items) != 0 {
		t.Fatalf("inbox after the flood: %d items, %v", len(items), err)
	}
	r.Start()
	r.WaitScreen("MAIN MENU", remoteWait)
	r.sell(2600)
}

// vmHWM is a process's peak resident set size, from /proc.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// TestRemoteHugePublish: two unsigned 150 MB messages on the cmd topic
// (the test broker has no size limit; the shipped profile would refuse
// them) never reach the daemon's memory: its peak RSS stays under 32 MiB,
// and a command after them is answered.
func TestRemoteHugePublish(t *testing.T) {
	t.Parallel()
	if os.Getenv("POSAGENT_TEST_DAEMON_WRAPPER") != "" {
		t.Log("under an emulator the daemon's /proc is the emulator's; the RSS bound is checked natively")
	}
	broker := brokerForTerms(t, mosquittotest.Options{})
	host := startRemoteHost(t)
	hq := newHQ(t)
	hq.connect(broker.URL(), nil)
	const serial = "PA-HUGE-01"
	r := newRemoteTerm(t, host, hq, rtermOptions{Serial: serial, TID: "71000014", Broker: broker.URL()})
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.Online && s.State == "active" })

	huge := bytes.Repeat([]byte("A"), 150<<20)
	for i := range 2 {
		tok := hq.c.Publish(remote.CmdTopic(serial), 1, false, huge)
		if !tok.WaitTimeout(2*time.Minute) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	huge = nil
	r.logCount("packet over the size limit discarded unread", 2, 2*time.Minute)
	hq.probe(serial)
	peak := vmHWM(t, r.cmd.Process.Pid)
	t.Logf("posagentd peak RSS %.1f MiB after two 150 MB publishes", float64(peak)/(1<<20))
	if os.Getenv("POSAGENT_TEST_DAEMON_WRAPPER") == "" && peak >= 32<<20 {
		t.Errorf("posagentd peak RSS %d bytes, want under 32 MiB", peak)
	}
	r.sell(1000)
}

// TestTechPasswordLockSurvivesRestart: three wrong technician passwords
// lock it (LOCKED, even for the right one), and a restart does not unlock
// it.
func TestTechPasswordLockSurvivesRestart(t *testing.T) {
	t.Parallel()
	sim := startAcqSim(t)
	h := NewTerm(t, sim, TermOptions{TID: "71000015"})
	h.WaitScreen("MAIN MENU", waitTimeout)
	for i, pwd := range []string{"1111", "2222", "3333"} {
		h.Keys("5")
		h.WaitScreen("TECH PWD", waitTimeout)
		h.Keys(pwd + "\r")
		if i < 2 {
			h.WaitScreen("WRONG PWD", waitTimeout)
			h.Keys("x") // Cancel: does not reset the counter
			h.WaitScreen("MAIN MENU", waitTimeout)
		}
	}
	h.WaitScreen("LOCKED", waitTimeout)
	h.Stop()
	h.Restart()
	h.Keys("5")
	h.WaitScreen("TECH PWD", waitTimeout)
	h.Keys("8888\r") // the right one
	s := h.WaitScreen("LOCKED", waitTimeout)
	if strings.Contains(s, "UNBIND") {
		t.Fatalf("the TECHNICIAN menu opened during the lock: %q", s)
	}
	if strings.Count(h.Logs(), "wrong technician password") != 3 {
		t.Error("wrong technician passwords are not logged")
	}
}

// keysResult decodes an hq_keys ack's result.
func keysResult(t *testing.T, a hqAck) remote.KeysResult {
	t.Helper()
	var r remote.KeysResult
	if err := json.Unmarshal(a.Ack.Result, &r); err != nil {
		t.Fatalf("hq_keys result %s: %v", a.Ack.Result, err)
	}
	return r
}

// TestRemoteKeyRotation: a root-signed hq_keys adds hq-2 and revokes
// hq-1; hq-2's commands are accepted from then on, hq-1's get no ack (it
// is unknown), an ops key cannot rotate keys, and the keyring survives a
// restart. Sent with hqctl hq-keys, as an operator would.
func TestRemoteKeyRotation(t *testing.T) {
	t.Parallel()
	buildHQCtl(t)
	broker := brokerForTerms(t, mosquittotest.Options{})
	host := startRemoteHost(t)
	hq := newHQ(t)
	hq.connect(broker.URL(), nil)
	const serial = "PA-ROTATE-01"
	rootArg := hq.newKey("root-1")
	r := newRemoteTerm(t, host, hq, rtermOptions{Serial: serial, TID: "71000016", Broker: broker.URL(),
		FactoryArgs: []string{"--hq-key", hq.keyArg(), "--hq-root-key", rootArg}})
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.Online && s.State == "active" })

	// An ops key cannot change the keys.
	byOps := "keys-by-ops"
	hq.publish(serial, hq.sealAs(hq.command(serial, remote.TypeHQKeys, byOps,
		map[string]any{"add": []map[string]string{{"kid": "evil", "pub": b64(hq.pub), "role": "root"}}}, time.Hour), hqKID))
	if a := hq.waitFinal(byOps, remoteWait); a.Ack.State != remote.AckRejected || a.Ack.Reason != remote.ReasonInsufficientSigs {
		t.Fatalf("hq_keys signed by an ops key: %s %s, want rejected insufficient-signatures", a.Ack.State, a.Ack.Reason)
	}

	// The rotation, with hqctl.
	dir := t.TempDir()
	rootKey := filepath.Join(dir, "root-1.key")
	if err := os.WriteFile(rootKey, []byte(b64(hq.keys["root-1"].Seed())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	newArg := hq.newKey("hq-2")
	_, pub, _ := strings.Cut(newArg, "=")
	out := hqctl(t, "hq-keys", "--broker", broker.URL(), "--key", rootKey, "--device-keys", r.DevKeys, "--serial", serial,
		"--add", "hq-2="+pub+":ops", "--revoke", hqKID, "--wait", remoteWait.String())
	if !strings.Contains(out, serial+"  succeeded  keys=") || strings.Contains(out, "UNVERIFIED") {
		t.Fatalf("hqctl hq-keys: %q", out)
	}
	var rotation hqAck
	for _, a := range hq.acksFrom(serial) {
		if strings.HasPrefix(a.Ack.CmdID, "hq_keys-") && a.Ack.Final() {
			rotation = a
		}
	}
	res := keysResult(t, rotation)
	if strings.Join(res.Keys[remote.RoleOps], ",") != "hq-2" || strings.Join(res.Keys[remote.RoleRoot], ",") != "root-1" {
		t.Fatalf("keys after the rotation: %+v", res)
	}

	check := func(when string) {
		t.Helper()
		newID := fmt.Sprintf("status-hq2-%d", time.Now().UnixNano())
		hq.publish(serial, hq.sealAs(hq.command(serial, remote.TypeStatus, newID, nil, time.Hour), "hq-2"))
		if a := hq.waitFinal(newID, remoteWait); a.Ack.State != remote.AckSucceeded {
			t.Fatalf("%s: a command signed by the new key: %s %s", when, a.Ack.State, a.Ack.Reason)
		}
		dropped := strings.Count(r.lastLog(), "command dropped unverified")
		oldID := fmt.Sprintf("status-hq1-%d", time.Now().UnixNano())
		hq.publish(serial, hq.sealAs(hq.command(serial, remote.TypeStatus, oldID, nil, time.Hour), hqKID))
		r.logCount("command dropped unverified", dropped+1, remoteWait)
		newProbe := fmt.Sprintf("status-hq2-probe-%d", time.Now().UnixNano())
		hq.publish(serial, hq.sealAs(hq.command(serial, remote.TypeStatus, newProbe, nil, time.Hour), "hq-2"))
		hq.waitFinal(newProbe, remoteWait)
		if got := hq.acksOf(oldID); len(got) != 0 {
			t.Fatalf("%s: a command signed by the revoked key was answered: %s %s", when, got[0].Ack.State, got[0].Ack.Reason)
		}
	}
	check("after the rotation")
	r.Stop()
	r.Start()
	r.WaitScreen("MAIN MENU", remoteWait)
	check("after a restart")

	// Keys and policy live with the factory identity: the wipe of an
	// unbind (signed by the new key) leaves them as they are.
	unbind := "unbind-by-hq2"
	hq.publish(serial, hq.sealAs(hq.command(serial, remote.TypeUnbind, unbind, remote.UnbindArgs{Unsettled: remote.UnsettledForce}, time.Hour), "hq-2"))
	if a := hq.waitFinal(unbind, remoteWait); a.Ack.State != remote.AckSucceeded {
		t.Fatalf("unbind signed by the new key: %s %s", a.Ack.State, a.Ack.Reason)
	}
	checkUnbound(t, r, host)
	check("after the wipe")
}

// TestRemoteTwoSignaturePolicy: with factory-init --require unbind=2, an
// unbind signed by one operator is rejected insufficient-signatures and
// changes nothing; the same command co-signed by a second operator
// (hqctl sign, then hqctl sign --cosign, then hqctl send) runs.
func TestRemoteTwoSignaturePolicy(t *testing.T) {
	t.Parallel()
	buildHQCtl(t)
	broker := brokerForTerms(t, mosquittotest.Options{})
	host := startRemoteHost(t)
	hq := newHQ(t)
	hq.connect(broker.URL(), nil)
	const serial = "PA-TWOSIG-01"
	secondArg := hq.newKey("hq-2")
	r := newRemoteTerm(t, host, hq, rtermOptions{Serial: serial, TID: "71000017", Broker: broker.URL(),
		FactoryArgs: []string{"--hq-key", hq.keyArg(), "--hq-key", secondArg, "--require", "unbind=2"}})
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.Online && s.State == "active" })
	r.sell(12345)

	one := "unbind-one-sig"
	hq.publish(serial, hq.seal(hq.command(serial, remote.TypeUnbind, one, remote.UnbindArgs{Unsettled: remote.UnsettledSettle}, time.Hour)))
	if a := hq.waitFinal(one, remoteWait); a.Ack.State != remote.AckRejected || a.Ack.Reason != remote.ReasonInsufficientSigs {
		t.Fatalf("unbind with one signature: %s %s, want rejected insufficient-signatures", a.Ack.State, a.Ack.Reason)
	}
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.State == "active" && s.BatchCount == 1 })

	dir := t.TempDir()
	keyFile := func(kid string) string {
		p := filepath.Join(dir, kid+".key")
		if err := os.WriteFile(p, []byte(b64(hq.keys[kid].Seed())+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := hqctl(t, "sign", "--key", keyFile(hqKID), "--serial", serial, "--type", "unbind", "--id", "unbind-two-sig",
		"--args", `{"reason":"merchant left","unsettled":"settle"}`, "--ttl", "1h")
	envFile := filepath.Join(dir, "unbind.json")
	if err := os.WriteFile(envFile, []byte(first), 0o600); err != nil {
		t.Fatal(err)
	}
	both := hqctl(t, "sign", "--cosign", envFile, "--key", keyFile("hq-2"))
	if err := os.WriteFile(envFile, []byte(both), 0o600); err != nil {
		t.Fatal(err)
	}
	out := hqctl(t, "send", "--broker", broker.URL(), "--serial", serial, "--in", envFile, "--device-keys", r.DevKeys,
		"--wait", remoteWait.String())
	if !strings.Contains(out, serial+"  succeeded") || !strings.Contains(out, "binding_removed=true") {
		t.Fatalf("co-signed unbind: %q", out)
	}
	checkUnbound(t, r, host)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestRemoteSessionTakeover: on the shipped broker profile, a second
// terminal's certificate asking for this terminal's client id (with a
// clean session, which would discard the queue) gets a session of its
// own: the unbind queued for this terminal while it was offline reaches
// it, and not the intruder.
func TestRemoteSessionTakeover(t *testing.T) {
	t.Parallel()
	broker := mosquittotest.Start(t, mosquittotest.Options{Profile: "../../build/mosquitto/mosquitto.conf"})
	host := startRemoteHost(t)
	hq := newHQ(t)
	hq.connect(broker.HQURL(), broker.ClientTLSConfig("hq"))
	const serial = "PA-TAKE-0001"
	cert, key := broker.ClientCert(serial)
	r := newRemoteTerm(t, host, hq, rtermOptions{Serial: serial, TID: "71000018", Broker: broker.TLSURL(),
		CAFile: broker.CAFile(), Cert: cert, Key: key})
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.Online && s.State == "active" })
	r.sell(12345)
	r.Stop()

	id := hq.unbind(serial, remote.UnsettledSettle, time.Hour) // queued in the terminal's session

	const evil = "PA-EVIL-0009"
	for _, clean := range []bool{true, false} {
		in := &intruder{msgs: make(chan paho.Message, 64)}
		o := paho.NewClientOptions().AddBroker(broker.TLSURL()).SetClientID(remote.ClientID(serial)).SetUsername(serial).
			SetCleanSession(clean).SetTLSConfig(broker.ClientTLSConfig(evil)).SetConnectTimeout(5 * time.Second).
			SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { in.msgs <- m })
		in.c = paho.NewClient(o)
		if tok := in.c.Connect(); !tok.WaitTimeout(remoteWait) || tok.Error() != nil {
			t.Fatalf("intruder connect: %v", tok.Error())
		}
		in.c.Subscribe(remote.CmdTopic(serial), 1, nil).WaitTimeout(remoteWait)
		select {
		case m := <-in.msgs:
			t.Fatalf("the intruder (clean session %v) received %s", clean, m.Topic())
		case <-time.After(time.Second):
		}
		in.c.Disconnect(100)
	}

	r.Start()
	hq.waitAck(id, remote.AckAccepted, remoteWait)
	if fin := hq.waitFinal(id, remoteWait); fin.Ack.State != remote.AckSucceeded {
		t.Fatalf("queued unbind: %s %s, want succeeded", fin.Ack.State, fin.Ack.Reason)
	}
	checkUnbound(t, r, host)
}

// waitAllLogs waits until the logs of every daemon run hold s.
func (r *rterm) waitAllLogs(s string, timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(r.Logs(), s) {
		if time.Now().After(deadline) {
			r.t.Fatalf("no %q in the logs after %v", s, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRemoteForceUnsettledDropped: a force unbind's final ack reports the
// open batch in result.unsettled; once that ack has reached the broker the
// terminal keeps no copy of it: the record answers a replay with the
// count only, and no masked PAN stays in the record.
func TestRemoteForceUnsettledDropped(t *testing.T) {
	t.Parallel()
	_, host, hq, r := remoteSetup(t, "PA-FORCE-0001", "71000019", rtermOptions{})
	id := fmt.Sprintf("unbind-force-%d", time.Now().UnixNano())
	env := hq.seal(hq.command(r.Serial, remote.TypeUnbind, id, remote.UnbindArgs{Unsettled: remote.UnsettledForce}, time.Hour))
	hq.publish(r.Serial, env)
	fin := hq.waitFinal(id, remoteWait)
	if res := unbindResult(t, fin); fin.Ack.State != remote.AckSucceeded || len(res.Unsettled) != 1 || res.Unsettled[0].Amount != 12345 {
		t.Fatalf("force unbind: %s %s", fin.Ack.State, fin.Ack.Result)
	}
	checkUnbound(t, r, host)
	r.waitAllLogs("unsettled transactions dropped from the recorded ack", remoteWait)

	hq.publish(r.Serial, env)
	hq.waitFor("the replay's ack", remoteWait, func() bool { return len(hq.acksOf(id)) >= 3 }) // accepted, succeeded, re-sent
	again := hq.acksOf(id)[len(hq.acksOf(id))-1]
	var res map[string]json.RawMessage
	if err := json.Unmarshal(again.Ack.Result, &res); err != nil || !again.Verified || again.Ack.State != remote.AckSucceeded {
		t.Fatalf("replay answered %s %s (verified %v)", again.Ack.State, again.Ack.Result, again.Verified)
	}
	if res["unsettled"] != nil || string(res["unsettled_count"]) != "1" || string(res["binding_removed"]) != "true" {
		t.Errorf("replay's ack result %s: want the proof of wipe with unsettled_count 1 and no unsettled list", again.Ack.Result)
	}
	r.Stop()
	s, err := storage.OpenIdentity(filepath.Join(r.DataDir, "identity.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec, ok, err := s.Seen(id)
	if err != nil || !ok || bytes.Contains(rec.Ack, []byte("622202")) || !bytes.Equal(rec.Ack, again.Raw) {
		t.Errorf("recorded ack %s (%v %v): want the re-sent one, without the masked PAN", rec.Ack, ok, err)
	}
}

// TestRemoteSupervisorPwdChangedEvent: setting the supervisor password
// from the TECHNICIAN menu asks for nothing more, and HQ hears of it in a
// supervisor_pwd_changed event signed by the device key.
func TestRemoteSupervisorPwdChangedEvent(t *testing.T) {
	t.Parallel()
	broker, _, _, r := remoteSetup(t, "PA-SUPPWD-01", "71000020", rtermOptions{})
	events := make(chan []byte, 16)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("hq-evt").SetUsername("hq").
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { events <- bytes.Clone(m.Payload()) }))
	if tok := c.Connect(); !tok.WaitTimeout(remoteWait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe(remote.EvtTopic(r.Serial), 1, nil); !tok.WaitTimeout(remoteWait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	r.Keys("5")
	r.WaitScreen("TECH PWD", remoteWait)
	r.Keys("8888\r")
	r.WaitScreen("3 SUPERVISOR PWD", remoteWait)
	r.Keys("3")
	r.WaitScreen("NEW PWD", remoteWait)
	r.Keys("654321\r")
	r.WaitScreen("CONFIRM PWD", remoteWait)
	r.Keys("654321\r")
	r.WaitScreen("PWD CHANGED", remoteWait)
	deadline := time.After(remoteWait)
	for {
		select {
		case raw := <-events:
			env, err := remote.Open(raw, map[string]ed25519.PublicKey{remote.DeviceKID(r.Serial): r.DevPub})
			if err != nil {
				t.Fatalf("event does not verify with the device key: %v", err)
			}
			ev, err := remote.ParseEvent(env.Payload)
			if err != nil || ev.Serial != r.Serial {
				t.Fatalf("event %s: %v", env.Payload, err)
			}
			if ev.Type == remote.EvtSupervisorPwdChanged {
				if strings.Contains(string(ev.Data), "654321") {
					t.Fatalf("the event carries the password: %s", ev.Data)
				}
				return
			}
		case <-deadline:
			t.Fatal("no supervisor_pwd_changed event")
		}
	}
}
