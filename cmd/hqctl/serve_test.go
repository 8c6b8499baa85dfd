package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/nacl/box"

	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/iso8583/mac"
	"github.com/posagent/posagent/terminal/remote"
)

// syncBuffer is a bytes.Buffer safe for serve's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitOutput(t *testing.T, b *syncBuffer, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s; output:\n%s", want, d, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lab is a real mosquitto, an HQ key, and hqctl serve running in-process.
type lab struct {
	broker   *mosquittotest.Broker
	keyPath  string
	hqPub    ed25519.PublicKey
	state    string
	registry string
	acqKeys  string
	out      *syncBuffer
	errOut   *syncBuffer
}

func startLab(t *testing.T, registered ...string) *lab {
	t.Helper()
	l := &lab{broker: mosquittotest.Start(t, mosquittotest.Options{})}
	l.keyPath, l.hqPub = hqKey(t)
	dir := t.TempDir()
	l.state = filepath.Join(dir, "hq-state.json")
	l.acqKeys = filepath.Join(dir, "acquirer-keys.json")
	l.registry = deviceKeysFile(t, registered...)
	l.out, l.errOut = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- runServe(ctx, []string{"--broker", l.broker.URL(), "--key", l.keyPath, "--state", l.state,
			"--registry", l.registry, "--acquirer-keys", l.acqKeys, "--client-id", "hq-serve-" + t.Name()}, l.out, l.errOut)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exit %d; stderr:\n%s", code, l.errOut.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
		if t.Failed() {
			t.Logf("serve stdout:\n%s\nstderr:\n%s", l.out.String(), l.errOut.String())
		}
	})
	waitOutput(t, l.out, "serving:", 15*time.Second)
	return l
}

func (l *lab) issue(t *testing.T, q codeRequest, now time.Time) string {
	t.Helper()
	rec, err := issueCode(l.state, q, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Code
}

// fakeTerminal speaks the terminal's side of activation over MQTT: a
// signed activation_request with its own X25519 key, and the commands it
// receives.
type fakeTerminal struct {
	t      *testing.T
	serial string
	sign   ed25519.PrivateKey // the device key; tests may swap it for a forger's
	kid    string
	xPub   *[32]byte
	xPriv  *[32]byte
	c      paho.Client
	cmds   chan []byte
	seq    int
}

func newFakeTerminal(t *testing.T, url, serial string) *fakeTerminal {
	t.Helper()
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeTerminal{t: t, serial: serial, sign: deviceKey(serial), kid: remote.DeviceKID(serial),
		xPub: pub, xPriv: priv, cmds: make(chan []byte, 16)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(remote.ClientID(serial)).SetUsername(serial).
		SetCleanSession(true)
	f.c = paho.NewClient(o)
	if tok := f.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("terminal connect: %v", tok.Error())
	}
	if tok := f.c.Subscribe(remote.CmdTopic(serial), 1, func(_ paho.Client, m paho.Message) {
		f.cmds <- append([]byte(nil), m.Payload()...)
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("terminal subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { f.c.Disconnect(100) })
	return f
}

// event builds a signed event envelope; eventSerial is the payload's serial.
func (f *fakeTerminal) event(typ, eventSerial string, data any) (id string, env []byte) {
	f.seq++
	id = fmt.Sprintf("act-%s-%d%03d", f.serial, time.Now().UnixNano(), f.seq)
	raw, _ := json.Marshal(data)
	p, err := json.Marshal(remote.Event{ID: id, Serial: eventSerial, Type: typ, At: time.Now().UTC(), Data: raw})
	if err != nil {
		f.t.Fatal(err)
	}
	env, err = remote.Seal(f.kid, f.sign, p)
	if err != nil {
		f.t.Fatal(err)
	}
	return id, env
}

func (f *fakeTerminal) publish(env []byte) {
	f.t.Helper()
	if tok := f.c.Publish(remote.EvtTopic(f.serial), 1, false, env); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		f.t.Fatalf("publish: %v", tok.Error())
	}
}

// request publishes an activation_request for code and returns its id and envelope.
func (f *fakeTerminal) request(code string) (string, []byte) {
	id, env := f.event(remote.EvtActivationRequest, f.serial, remote.ActivationRequest{Code: code, X25519Pub: f.xPub[:]})
	f.publish(env)
	return id, env
}

func (f *fakeTerminal) nextCmd(d time.Duration) ([]byte, bool) {
	select {
	case c := <-f.cmds:
		return c, true
	case <-time.After(d):
		return nil, false
	}
}

// checkProvision verifies a provision envelope like the terminal does and
// returns the command, its args and the unsealed TMK.
func (f *fakeTerminal) checkProvision(env []byte, hqPub ed25519.PublicKey, activation string) (remote.Command, remote.ProvisionArgs, []byte) {
	t := f.t
	t.Helper()
	e, err := remote.Open(env, map[string]ed25519.PublicKey{"hq-1": hqPub})
	if err != nil {
		t.Fatalf("provision envelope: %v", err)
	}
	cmd, v := remote.CheckCommand(e.Payload, f.serial, time.Now(), nil)
	if !v.OK() || cmd.Type != remote.TypeProvision {
		t.Fatalf("provision command %+v: %+v", cmd, v)
	}
	if !strings.HasPrefix(cmd.ID, "prov-"+f.serial+"-") {
		t.Fatalf("command id %q", cmd.ID)
	}
	if ttl := cmd.ExpiresAt.Sub(cmd.IssuedAt); ttl != defaultProvisionTTL {
		t.Fatalf("provision valid for %s, want %s", ttl, defaultProvisionTTL)
	}
	a, err := cmd.Provision()
	if err != nil {
		t.Fatal(err)
	}
	if a.Activation != activation {
		t.Fatalf("args.activation %q, want %q", a.Activation, activation)
	}
	tmk, ok := box.OpenAnonymous(nil, a.TMKSealed, f.xPub, f.xPriv)
	if !ok || len(tmk) != 16 {
		t.Fatalf("tmk_sealed does not open to a 16-byte TMK (ok=%v, %d bytes)", ok, len(tmk))
	}
	if kcv := mac.TMKKCV(tmk); kcv != a.TMKKCV {
		t.Fatalf("tmk_kcv %q, KCV of the sealed TMK %q", a.TMKKCV, kcv)
	}
	return cmd, a, tmk
}

func readAcqKeys(t *testing.T, path string) map[string]string {
	t.Helper()
	keys := map[string]string{}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return keys
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &keys); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestServeActivation(t *testing.T) {
	l := startLab(t, "DEMO-0001", "DEMO-0002")
	term := newFakeTerminal(t, l.broker.URL(), "DEMO-0001")
	code := l.issue(t, demoRequest("DEMO-0001"), time.Now())

	reqID, reqEnv := term.request(code)
	env, ok := term.nextCmd(10 * time.Second)
	if !ok {
		t.Fatalf("no provision command; serve output:\n%s", l.out.String())
	}
	cmd, a, tmk := term.checkProvision(env, l.hqPub, reqID)
	want := demoRequest("DEMO-0001")
	if string(a.TID) != want.TID || string(a.MID) != want.MID || a.MerchantName != want.MerchantName || a.Acquirer != want.Acquirer {
		t.Fatalf("provision args %+v, want the code's %+v", a, want)
	}
	if got := readAcqKeys(t, l.acqKeys)[want.TID]; got != strings.ToUpper(hex.EncodeToString(tmk)) {
		t.Fatalf("acquirer keys has %q for %s, want the sealed TMK %X", got, want.TID, tmk)
	}
	if fi, err := os.Stat(l.acqKeys); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("acquirer keys file mode: %v %v", fi, err)
	}
	st := readStateFile(t, l.state)
	if c := st.Codes[0]; c.Status != codeUsed || c.Activation != reqID || c.ProvisionID != cmd.ID || c.UsedAt == nil {
		t.Fatalf("code record after use: %+v", c)
	}
	waitOutput(t, l.out, "DEMO-0001 activation_request "+reqID+" -> provision "+cmd.ID+" TID 10000001", 5*time.Second)

	// MQTT QoS 1 is at least once: the same request delivered again gets
	// the very same command, not a refusal nor a second TMK.
	term.publish(reqEnv)
	again, ok := term.nextCmd(10 * time.Second)
	if !ok || !bytes.Equal(again, env) {
		t.Fatalf("redelivered request: got %q (ok=%v), want the same envelope", again, ok)
	}
	waitOutput(t, l.out, "provision re-sent", 5*time.Second)

	// The code is one-time: a new request with it is refused, silently for the terminal.
	reuseID, _ := term.request(code)
	waitOutput(t, l.out, reuseID+" REFUSED "+refuseUsed, 5*time.Second)
	if c, ok := term.nextCmd(300 * time.Millisecond); ok {
		t.Fatalf("a reused code got a command: %s", c)
	}
	if got := readAcqKeys(t, l.acqKeys)[want.TID]; got != strings.ToUpper(hex.EncodeToString(tmk)) {
		t.Fatal("a refused request changed the acquirer's TMK")
	}

	// The terminal's ack and activated event are printed and recorded.
	ack := remote.Ack{CmdID: cmd.ID, Serial: "DEMO-0001", State: remote.AckSucceeded, At: time.Now().UTC()}
	ackEnv, err := remote.SealAck(term.sign, ack)
	if err != nil {
		t.Fatal(err)
	}
	if tok := term.c.Publish(remote.AckTopic("DEMO-0001"), 1, false, ackEnv); !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("publish ack")
	}
	waitOutput(t, l.out, "DEMO-0001 ack "+cmd.ID+" succeeded", 5*time.Second)
	_, actEnv := term.event(remote.EvtActivated, "DEMO-0001", map[string]string{"tid": "10000001", "bank_id": "622202", "card": "622202*********0123"})
	term.publish(actEnv)
	waitOutput(t, l.out, "activated act-", 5*time.Second)
	waitOutput(t, l.out, "card=622202*********0123", time.Second)
	code2, out, _ := runHQ("terminal-state", "--state", l.state, "--serial", "DEMO-0001")
	if code2 != 0 || out != "active\n" {
		t.Fatalf("terminal-state: %d %q, want active", code2, out)
	}
	if _, out, _ := runHQ("terminal-state", "--state", l.state, "--serial", "DEMO-0002"); out != "unknown\n" {
		t.Fatalf("terminal-state of a silent terminal: %q", out)
	}
}

// Every refused request gets nothing back (the spec has no negative
// answer) and leaves the acquirer's keys alone.
func TestServeRefusals(t *testing.T) {
	l := startLab(t, "SER-A001", "SER-B001", "SER-C001")
	past := time.Now().Add(-2 * time.Hour)
	codeA := l.issue(t, demoRequest("SER-A001"), time.Now())
	codeExpired := l.issue(t, demoRequest("SER-B001"), past) // valid for 1 h, issued 2 h ago
	codeUnknownDev := l.issue(t, demoRequest("SER-X001"), time.Now())

	tests := []struct {
		name   string
		serial string
		build  func(f *fakeTerminal) (string, []byte)
		want   string
	}{
		{"expired code", "SER-B001", func(f *fakeTerminal) (string, []byte) { return f.requestEnv(codeExpired) }, refuseExpired},
		{"code of another serial", "SER-C001", func(f *fakeTerminal) (string, []byte) { return f.requestEnv(codeA) }, refuseWrongSerial},
		{"unknown device", "SER-X001", func(f *fakeTerminal) (string, []byte) { return f.requestEnv(codeUnknownDev) }, refuseUnknownDevice},
		{"unknown code", "SER-C001", func(f *fakeTerminal) (string, []byte) { return f.requestEnv("00000000") }, refuseUnknownCode},
		{"forged signature", "SER-A001", func(f *fakeTerminal) (string, []byte) {
			f.sign = deviceKey("forger")
			return f.requestEnv(codeA)
		}, refuseBadSignature},
		{"kid of another device", "SER-A001", func(f *fakeTerminal) (string, []byte) {
			f.kid, f.sign = remote.DeviceKID("SER-C001"), deviceKey("SER-C001")
			return f.requestEnv(codeA)
		}, refuseWrongKID},
		{"event serial is not the topic's", "SER-A001", func(f *fakeTerminal) (string, []byte) {
			return f.event(remote.EvtActivationRequest, "SER-C001", remote.ActivationRequest{Code: codeA, X25519Pub: f.xPub[:]})
		}, refuseSerial},
		{"bad x25519 key", "SER-A001", func(f *fakeTerminal) (string, []byte) {
			return f.event(remote.EvtActivationRequest, "SER-A001", remote.ActivationRequest{Code: codeA, X25519Pub: []byte{1, 2, 3}})
		}, refuseInvalid},
		{"seven-digit code", "SER-A001", func(f *fakeTerminal) (string, []byte) { return f.requestEnv(codeA[:7]) }, refuseInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTerminal(t, l.broker.URL(), tc.serial)
			id, env := tc.build(f)
			f.publish(env)
			waitOutput(t, l.out, id+" REFUSED "+tc.want, 5*time.Second)
			if c, ok := f.nextCmd(300 * time.Millisecond); ok {
				t.Fatalf("refused request got a command: %s", c)
			}
		})
	}
	if keys := readAcqKeys(t, l.acqKeys); len(keys) != 0 {
		t.Fatalf("refused requests wrote acquirer keys: %v", keys)
	}
	// After all that, SER-A001's own code still works (two wrong attempts
	// were counted against SER-C001, none against SER-A001).
	f := newFakeTerminal(t, l.broker.URL(), "SER-A001")
	id, _ := f.request(codeA)
	env, ok := f.nextCmd(10 * time.Second)
	if !ok {
		t.Fatalf("SER-A001's own code got no provision; output:\n%s", l.out.String())
	}
	f.checkProvision(env, l.hqPub, id)
	st := readStateFile(t, l.state)
	for _, c := range st.Codes {
		if c.Serial == "SER-B001" && c.Status != codePending {
			t.Fatalf("the expired code changed: %+v", c)
		}
	}
}

// requestEnv builds (does not publish) an activation request.
func (f *fakeTerminal) requestEnv(code string) (string, []byte) {
	return f.event(remote.EvtActivationRequest, f.serial, remote.ActivationRequest{Code: code, X25519Pub: f.xPub[:]})
}

// A request that arrived while serve was down is answered when it comes
// back: the broker keeps serve's persistent session (fixed client id,
// CleanSession=false, QoS 1).
func TestServeQueuedWhileDown(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{})
	keyPath, hqPub := hqKey(t)
	dir := t.TempDir()
	state, acq := filepath.Join(dir, "state.json"), filepath.Join(dir, "acq.json")
	reg := deviceKeysFile(t, "SER-Q001")
	args := []string{"--broker", b.URL(), "--key", keyPath, "--state", state, "--registry", reg, "--acquirer-keys", acq, "--client-id", "hq-serve-q"}
	serveOnce := func(until func(out *syncBuffer)) *syncBuffer {
		out, errOut := &syncBuffer{}, &syncBuffer{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() { done <- runServe(ctx, args, out, errOut) }()
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("serve stderr:\n%s", errOut.String())
			}
		})
		waitOutput(t, out, "serving:", 15*time.Second)
		until(out)
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("serve exit %d: %s", code, errOut.String())
		}
		return out
	}
	serveOnce(func(*syncBuffer) {}) // creates the persistent session
	rec, err := issueCode(state, demoRequest("SER-Q001"), time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeTerminal(t, b.URL(), "SER-Q001")
	id, _ := f.request(rec.Code) // serve is down now
	serveOnce(func(out *syncBuffer) {
		env, ok := f.nextCmd(10 * time.Second)
		if !ok {
			t.Fatalf("queued request not answered; output:\n%s", out.String())
		}
		f.checkProvision(env, hqPub, id)
	})
}

func TestServeUsage(t *testing.T) {
	key, _ := hqKey(t)
	reg := deviceKeysFile(t, "SER-A001")
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "required"},
		{[]string{"serve", "--key", key, "--state", dir + "/s", "--registry", dir + "/missing", "--acquirer-keys", dir + "/a"}, "registry"},
		{[]string{"serve", "--key", dir + "/nokey", "--state", dir + "/s", "--registry", reg, "--acquirer-keys", dir + "/a"}, "key"},
	}
	for _, tc := range tests {
		code, _, errOut := runHQ(tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestLoadRegistry(t *testing.T) {
	pubA := base64.StdEncoding.EncodeToString(deviceKey("SER-A001").Public().(ed25519.PublicKey))
	pubB := base64.StdEncoding.EncodeToString(deviceKey("SER-B001").Public().(ed25519.PublicKey))
	tests := []struct {
		name, content string
		want          []string // serials
		wantErr       bool
	}{
		{"one factory-init line", `{"serial":"SER-A001","ed25519_pub":"` + pubA + `","x25519_pub":"AAAA"}` + "\n", []string{"SER-A001"}, false},
		{"lines with a comment", "# factory batch 7\n" + `{"serial":"SER-A001","ed25519_pub":"` + pubA + `"}` + "\n\n" + `{"serial":"SER-B001","ed25519_pub":"` + pubB + `"}`, []string{"SER-A001", "SER-B001"}, false},
		{"object", "{\n  \"SER-A001\": \"" + pubA + "\",\n  \"SER-B001\": \"" + pubB + "\"\n}\n", []string{"SER-A001", "SER-B001"}, false},
		{"one-line object", `{"SER-B001":"` + pubB + `"}`, []string{"SER-B001"}, false},
		{"short key", `{"serial":"SER-A001","ed25519_pub":"AAAA"}`, nil, true},
		{"garbage", "hello", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "reg")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			keys, err := loadRegistry(path)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if len(keys) != len(tc.want) {
				t.Fatalf("keys %v, want %v", keys, tc.want)
			}
			for _, s := range tc.want {
				if !bytes.Equal(keys[s], deviceKey(s).Public().(ed25519.PublicKey)) {
					t.Fatalf("%s: wrong key", s)
				}
			}
		})
	}
}
