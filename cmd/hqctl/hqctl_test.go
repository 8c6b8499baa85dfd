package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/terminal/remote"
)

// hqKey runs keygen and returns the key path and the public key.
func hqKey(t *testing.T) (string, ed25519.PublicKey) {
	t.Helper()
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"keygen", "--kid", "hq-1", "--out", dir}, &out, &errb); code != 0 {
		t.Fatalf("keygen: %d %s", code, errb.String())
	}
	kid, b64, _ := strings.Cut(strings.TrimSpace(out.String()), "=")
	pub, err := base64.StdEncoding.DecodeString(b64)
	if kid != "hq-1" || err != nil {
		t.Fatalf("keygen printed %q", out.String())
	}
	return filepath.Join(dir, "hq-1.key"), pub
}

func deviceKey(serial string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("device " + serial))
	return ed25519.NewKeyFromSeed(seed[:])
}

// fleet is a fake set of terminals on one MQTT connection: it verifies each
// command like posagentd does and answers with signed acks.
type fleet struct {
	t        *testing.T
	c        paho.Client
	hqPub    ed25519.PublicKey
	behave   func(serial string) string
	mu       sync.Mutex
	commands map[string][]remote.Command
	retained int
}

func startFleet(t *testing.T, url string, hqPub ed25519.PublicKey, behave func(serial string) string) *fleet {
	t.Helper()
	f := &fleet{t: t, hqPub: hqPub, behave: behave, commands: map[string][]remote.Command{}}
	o := paho.NewClientOptions().AddBroker(url).SetClientID("fake-fleet").SetUsername("hq").
		SetCleanSession(true).SetDefaultPublishHandler(f.onCmd)
	f.c = paho.NewClient(o)
	if tok := f.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("fleet connect: %v", tok.Error())
	}
	if tok := f.c.Subscribe(remote.CmdWildcard, 1, f.onCmd); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("fleet subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { f.c.Disconnect(100) })
	return f
}

// onCmd must not block paho's router: the answers go out on a goroutine.
func (f *fleet) onCmd(_ paho.Client, m paho.Message) {
	serial, _, ok := remote.ParseTopic(m.Topic())
	if !ok {
		return
	}
	env, err := remote.Open(m.Payload(), map[string]ed25519.PublicKey{"hq-1": f.hqPub})
	if err != nil {
		f.t.Errorf("fleet: %s: %v", serial, err)
		return
	}
	cmd, v := remote.CheckCommand(env.Payload, serial, time.Now(), nil)
	f.mu.Lock()
	f.commands[serial] = append(f.commands[serial], cmd)
	if m.Retained() {
		f.retained++
	}
	f.mu.Unlock()
	if !v.OK() {
		f.t.Errorf("fleet: %s: command rejected: %+v", serial, v)
		return
	}
	go f.answer(serial, cmd.ID, f.behave(serial))
}

func (f *fleet) answer(serial, cmdID, behaviour string) {
	priv := deviceKey(serial)
	send := func(state, reason, result string, key ed25519.PrivateKey) {
		a := remote.Ack{CmdID: cmdID, Serial: serial, State: state, Reason: reason, At: time.Now().UTC(), Result: json.RawMessage(result)}
		p, _ := json.Marshal(a)
		env, err := remote.Seal(remote.DeviceKID(serial), key, p)
		if err != nil {
			f.t.Error(err)
			return
		}
		f.c.Publish(remote.AckTopic(serial), 1, false, env).WaitTimeout(5 * time.Second)
	}
	const okResult = `{"settlement":"SETTLED","txns_removed":3,"binding_removed":true}`
	switch behaviour {
	case "succeed":
		send(remote.AckAccepted, "", "", priv)
		send(remote.AckSucceeded, "", okResult, priv)
	case "dup":
		send(remote.AckAccepted, "", "", priv)
		send(remote.AckAccepted, "", "", priv)
		send(remote.AckSucceeded, "", okResult, priv)
		send(remote.AckSucceeded, "", okResult, priv)
	case "refuse":
		send(remote.AckAccepted, "", "", priv)
		send(remote.AckFailed, remote.ReasonUnsettledBatch, "", priv)
	case "reject":
		send(remote.AckRejected, remote.ReasonWrongState, "", priv)
	case "forge":
		send(remote.AckSucceeded, "", okResult, deviceKey("someone-else"))
	case "silent":
	}
}

func (f *fleet) received(serial string) []remote.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]remote.Command(nil), f.commands[serial]...)
}

func deviceKeysFile(t *testing.T, serials ...string) string {
	t.Helper()
	var b strings.Builder
	for _, s := range serials { // factory-init JSON lines
		fmt.Fprintf(&b, `{"serial":%q,"ed25519_pub":%q,"x25519_pub":"AAAA"}`+"\n", s,
			base64.StdEncoding.EncodeToString(deviceKey(s).Public().(ed25519.PublicKey)))
	}
	path := filepath.Join(t.TempDir(), "devices.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runHQ(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func sortedLines(s string) []string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	sort.Strings(l)
	return l
}

func TestUnbindHumanOutputAndExitCodes(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{ACL: true})
	key, pub := hqKey(t)
	behaviour := map[string]string{"PA-0001": "succeed", "PA-0002": "dup", "PA-0003": "refuse",
		"PA-0004": "reject", "PA-0005": "silent"}
	f := startFleet(t, b.URL(), pub, func(s string) string { return behaviour[s] })
	keys := deviceKeysFile(t, "PA-0001", "PA-0002", "PA-0003", "PA-0004", "PA-0005")

	tests := []struct {
		name    string
		args    []string
		code    int
		lines   []string
		inError string
	}{
		{"one succeeds", []string{"--serial", "PA-0001"}, exitOK,
			[]string{"PA-0001  accepted", "PA-0001  succeeded  settlement=SETTLED txns_removed=3 binding_removed=true"}, "1 succeeded"},
		{"duplicates shown once", []string{"--serial", "PA-0002", "--serial", "PA-0001"}, exitOK,
			[]string{"PA-0001  accepted", "PA-0001  succeeded  settlement=SETTLED txns_removed=3 binding_removed=true",
				"PA-0002  accepted", "PA-0002  succeeded  settlement=SETTLED txns_removed=3 binding_removed=true"}, "2 succeeded"},
		{"failed", []string{"--serial", "PA-0001", "--serial", "PA-0003", "--unsettled", "refuse"}, exitFailed,
			[]string{"PA-0001  accepted", "PA-0001  succeeded  settlement=SETTLED txns_removed=3 binding_removed=true",
				"PA-0003  accepted", "PA-0003  failed  reason=unsettled-batch"}, "1 failed"},
		{"rejected", []string{"--serial", "PA-0004"}, exitFailed,
			[]string{"PA-0004  rejected  reason=wrong-state"}, "1 rejected"},
		{"timeout", []string{"--serial", "PA-0005", "--serial", "PA-0001", "--wait", "1s"}, exitTimeout,
			[]string{"PA-0001  accepted", "PA-0001  succeeded  settlement=SETTLED txns_removed=3 binding_removed=true"}, "no final ack from: PA-0005"},
		{"failure beats timeout", []string{"--serial", "PA-0005", "--serial", "PA-0004", "--wait", "1s"}, exitFailed,
			[]string{"PA-0004  rejected  reason=wrong-state"}, "1 without a final ack"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"unbind", "--broker", b.URL(), "--key", key, "--device-keys", keys}, tc.args...)
			code, out, errOut := runHQ(args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if got := sortedLines(out); strings.Join(got, "\n") != strings.Join(tc.lines, "\n") {
				t.Fatalf("stdout lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.lines, "\n"))
			}
			if !strings.Contains(errOut, tc.inError) {
				t.Fatalf("stderr %q lacks %q", errOut, tc.inError)
			}
		})
	}
	cmds := f.received("PA-0003")
	if len(cmds) != 1 {
		t.Fatalf("PA-0003 got %d commands", len(cmds))
	}
	c := cmds[0]
	a, err := c.Unbind()
	if err != nil || a.Unsettled != remote.UnsettledRefuse || c.Type != remote.TypeUnbind ||
		!strings.HasPrefix(c.ID, "unbind-PA-0003-") || c.ExpiresAt.Sub(c.IssuedAt) != 24*time.Hour {
		t.Fatalf("command %+v args %+v %v", c, a, err)
	}
	if f.retained != 0 {
		t.Fatalf("%d commands were retained", f.retained)
	}
}

func TestUnbindJSONAndDeviceKeys(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{})
	key, pub := hqKey(t)
	behaviour := map[string]string{"PA-0001": "succeed", "PA-0006": "forge"}
	startFleet(t, b.URL(), pub, func(s string) string { return behaviour[s] })
	keys := deviceKeysFile(t, "PA-0001", "PA-0006")

	code, out, errOut := runHQ("unbind", "--broker", b.URL(), "--key", key, "--serial", "PA-0001",
		"--json", "--device-keys", keys, "--reason", "store closed", "--unsettled", "force")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	lines := sortedLines(out)
	if len(lines) != 2 {
		t.Fatalf("want 2 JSON lines, got %q", out)
	}
	states := map[string]map[string]any{}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if m["serial"] != "PA-0001" || m["v"] != float64(1) || m["verified"] != true ||
			!strings.HasPrefix(m["cmd_id"].(string), "unbind-PA-0001-") {
			t.Fatalf("line %s", l)
		}
		states[m["state"].(string)] = m
	}
	res, _ := states["succeeded"]["result"].(map[string]any)
	if states["accepted"] == nil || res["binding_removed"] != true || res["txns_removed"] != float64(3) {
		t.Fatalf("states %v", states)
	}

	// A forged proof of wipe is shown, flagged, not counted, and the run
	// fails: someone else publishes on the terminal's topics.
	code, out, errOut = runHQ("unbind", "--broker", b.URL(), "--key", key, "--serial", "PA-0006",
		"--device-keys", keys, "--wait", "1s")
	if code != exitFailed || strings.TrimSpace(out) != "PA-0006  succeeded  settlement=SETTLED txns_removed=3 binding_removed=true  UNVERIFIED" ||
		!strings.Contains(errOut, "0 succeeded") || !strings.Contains(errOut, "1 UNVERIFIED acks ignored") {
		t.Fatalf("forged: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runHQ("unbind", "--broker", b.URL(), "--key", key, "--serial", "PA-0006",
		"--device-keys", keys, "--wait", "1s", "--json")
	if code != exitFailed || !strings.Contains(out, `"verified":false`) {
		t.Fatalf("forged, JSON: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestUnbindTLS(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{TLS: true, ACL: true})
	key, pub := hqKey(t)
	startFleet(t, b.URL(), pub, func(string) string { return "succeed" })
	cert, certKey := b.ClientCert("hq")
	keys := deviceKeysFile(t, "PA-0001")
	code, out, errOut := runHQ("unbind", "--broker", b.TLSURL(), "--ca-file", b.CAFile(),
		"--cert-file", cert, "--key-file", certKey, "--key", key, "--serial", "PA-0001", "--device-keys", keys)
	if code != exitOK || !strings.Contains(out, "PA-0001  succeeded") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	// Without the client certificate the broker refuses the connection.
	code, _, errOut = runHQ("unbind", "--broker", b.TLSURL(), "--ca-file", b.CAFile(),
		"--key", key, "--serial", "PA-0001", "--wait", "5s", "--device-keys", keys)
	if code != exitFailed || !strings.Contains(errOut, "connect") {
		t.Fatalf("no client cert: exit %d, %s", code, errOut)
	}
}

func TestUnbindThousandSerials(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{ACL: true})
	key, pub := hqKey(t)
	f := startFleet(t, b.URL(), pub, func(string) string { return "succeed" })
	var serials []string
	var file strings.Builder
	file.WriteString("# fleet to return\n")
	for i := range 1000 {
		s := fmt.Sprintf("PB-%05d", i)
		serials = append(serials, s)
		file.WriteString(s + "\n\n")
	}
	path := filepath.Join(t.TempDir(), "serials.txt")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, out, errOut := runHQ("unbind", "--broker", b.URL(), "--key", key, "--serials-file", path,
		"--device-keys", deviceKeysFile(t, serials...), "--wait", "60s")
	took := time.Since(start)
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
	}
	if n := strings.Count(out, "  succeeded  "); n != 1000 {
		t.Fatalf("%d succeeded lines", n)
	}
	if strings.Contains(out, "UNVERIFIED") || !strings.Contains(errOut, "1000 succeeded") {
		t.Fatalf("stderr %s", errOut)
	}
	for _, s := range []string{"PB-00000", "PB-00999"} {
		if len(f.received(s)) != 1 {
			t.Fatalf("%s received %d commands", s, len(f.received(s)))
		}
	}
	t.Logf("1000 serials unbound in %v", took)
}

func TestUsageErrors(t *testing.T) {
	key, _ := hqKey(t)
	keys := deviceKeysFile(t, "PA-0001")
	for _, args := range [][]string{
		{"unbind", "--key", key, "--serial", "PA-0001"}, // no --device-keys
		{"send", "--serial", "PA-0001"},                 // no --device-keys
		{"unbind", "--key", key, "--serial", "PA-0001", "--device-keys", keys, "--ttl", "87600h"},
		{"unbind", "--key", key, "--serial", "PA-0001", "--device-keys", keys, "--ttl", "169h"},
		{"sign", "--key", key, "--serial", "PA-0001", "--type", "status", "--ttl", "87600h"},
		{"hq-keys", "--key", key, "--serial", "PA-0001", "--device-keys", keys, "--revoke", "hq 1"},
		{"hq-keys", "--key", key, "--serial", "PA-0001", "--device-keys", keys},
		{"sign", "--cosign", "-", "--key", key, "--serial", "PA-0001"},
		{"unbind", "--key", key},
		{"unbind", "--serial", "PA-0001"},
		{"unbind", "--key", key, "--serial", "PA/0001"},
		{"unbind", "--key", key, "--serial", "PA-0001", "--unsettled", "later"},
		{"unbind", "--key", key, "--serial", "PA-0001", "--reason", strings.Repeat("x", 201)},
		{"unbind", "--key", key, "--serial", "PA-0001", "--wait", "0s"},
		{"unbind", "--key", key, "--serial", "PA-0001", "--bogus"},
		{"unbind", "--key", "/nonexistent/hq.key", "--serial", "PA-0001"},
		{"sign", "--key", key, "--serial", "PA-0001", "--type", "reboot"},
		{"sign", "--key", key, "--serial", "PA-0001", "--type", "unbind", "--args", `{"wipe":1}`},
		{"sign", "--key", key, "--serial", "PA-0001"},
		{"send", "--serial", "x"},
		{"status", "--wait", "0s"},
		{"nosuch"},
	} {
		if code, _, errOut := runHQ(args...); code != exitUsage || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	code, _, errOut := runHQ("unbind", "--key", key, "--serial", "PA-0001", "--device-keys", keys, "--ttl", "87600h")
	if !strings.Contains(errOut, "at most 7 days") {
		t.Errorf("a ten-year --ttl: exit %d, %q does not say why", code, errOut)
	}
	code, _, errOut = runHQ("unbind", "--key", key, "--serial", "PA-0001")
	if !strings.Contains(errOut, "--device-keys FILE is required") {
		t.Errorf("no --device-keys: exit %d, %q does not say why", code, errOut)
	}
}

// TestSubcommandHelp: every subcommand's --help (and -h) prints its usage
// with its flags on stdout and exits 0.
func TestSubcommandHelp(t *testing.T) {
	for _, cmd := range []string{"keygen", "unbind", "hq-keys", "status", "sign", "send", "broker"} {
		for _, flag := range []string{"--help", "-h"} {
			code, out, errOut := runHQ(cmd, flag)
			if code != 0 || !strings.HasPrefix(out, "Usage: hqctl "+cmd+" ") || !strings.Contains(out, "Flags:\n  -") || errOut != "" {
				t.Errorf("hqctl %s %s: exit %d\nstdout:\n%s\nstderr:\n%s", cmd, flag, code, out, errOut)
			}
		}
	}
}

func TestSignAndSend(t *testing.T) {
	key, pub := hqKey(t)
	code, out, errOut := runHQ("sign", "--key", key, "--serial", "PA-0001", "--type", "status", "--id", "st-1", "--ttl", "1h")
	if code != 0 {
		t.Fatalf("sign: %d %s", code, errOut)
	}
	env, err := remote.Open([]byte(strings.TrimSpace(out)), map[string]ed25519.PublicKey{"hq-1": pub})
	if err != nil {
		t.Fatal(err)
	}
	c, v := remote.CheckCommand(env.Payload, "PA-0001", time.Now(), nil)
	if !v.OK() || c.ID != "st-1" || c.Type != remote.TypeStatus || c.ExpiresAt.Sub(c.IssuedAt) != time.Hour {
		t.Fatalf("signed %+v %+v", c, v)
	}

	b := mosquittotest.Start(t, mosquittotest.Options{})
	startFleet(t, b.URL(), pub, func(string) string { return "succeed" })
	var so, se bytes.Buffer
	code = runIO([]string{"send", "--broker", b.URL(), "--serial", "PA-0001", "--json", "--device-keys", deviceKeysFile(t, "PA-0001")},
		strings.NewReader(out), &so, &se)
	if code != exitOK || strings.Count(so.String(), `"cmd_id":"st-1"`) != 2 {
		t.Fatalf("send: exit %d\n%s\n%s", code, so.String(), se.String())
	}
}

func TestStatusTable(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{ACL: true})
	o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("pos-PA-0002").SetUsername("PA-0002").SetCleanSession(true)
	dev := paho.NewClient(o)
	if tok := dev.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer dev.Disconnect(100)
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	st, _ := json.Marshal(remote.Status{Serial: "PA-0002", Online: true, State: "active", TID: "12345678",
		BatchNo: "000123", BatchCount: 3, Version: "1.2.0", At: at})
	for topic, payload := range map[string][]byte{
		remote.StatusTopic("PA-0002"): st,
		remote.StatusTopic("PA-0001"): remote.OfflineWill("PA-0001"), // denied by the ACL: not PA-0002's topic
	} {
		if tok := dev.Publish(topic, 1, true, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	hq := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("hq-pub").SetUsername("hq"))
	if tok := hq.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer hq.Disconnect(100)
	hq.Publish(remote.StatusTopic("PA-0003"), 1, true, remote.OfflineWill("PA-0003")).WaitTimeout(5 * time.Second)

	code, out, errOut := runHQ("status", "--broker", b.URL(), "--wait", "500ms")
	if code != 0 {
		t.Fatalf("status: %d %s", code, errOut)
	}
	want := "SERIAL   STATE   ONLINE  TID       BATCH   COUNT  VERSION  AT\n" +
		"PA-0002  active  true    12345678  000123  3      1.2.0    2025-03-01T12:00:00Z\n" +
		"PA-0003  -       false   -         -       -      -        -\n"
	if out != want {
		t.Fatalf("table\n%s\nwant\n%s", out, want)
	}
	code, out, _ = runHQ("status", "--broker", b.URL(), "--wait", "500ms", "--json")
	if code != 0 || out != string(st)+"\n"+string(remote.OfflineWill("PA-0003"))+"\n" {
		t.Fatalf("json: %d\n%s", code, out)
	}
}

// TestRemovedStateFileCommands: the JSON state file's activation service
// is gone (hqd answers activation requests); its commands say where to go
// instead and exit 2.
func TestRemovedStateFileCommands(t *testing.T) {
	for _, cmd := range []string{"serve", "activation-code", "terminal-state"} {
		code, out, errOut := runHQ(cmd, "--state", "x.json")
		if code != exitUsage || out != "" || !strings.Contains(errOut, "removed: run hqd") || !strings.Contains(errOut, "hqctl code issue") {
			t.Errorf("hqctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", cmd, code, out, errOut)
		}
	}
}
