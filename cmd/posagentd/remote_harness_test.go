package main

// The remote-channel harness: a real mosquitto (internal/mosquittotest), an
// in-process acquirer host whose working keys are recorded (so a test can
// grep data_dir for them after a wipe), terminals run as real posagentd
// processes through harness_test.go's Term, and an HQ side on paho that
// signs commands with a key the test made and verifies every ack with the
// terminal's device key.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/internal/termtest"
	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/terminal/remote"
)

// remoteWait bounds the waits of the remote tests: an unbind crosses the
// broker twice, settles with the host and fsyncs several times on a busy
// two-core machine.
const remoteWait = 20 * time.Second

// hqKID is the kid of the HQ key every remote test terminal trusts.
const hqKID = "hq-1"

// keyRecorder is the host's randomness: crypto/rand, with every read kept,
// so the test knows the PIK and MAK bytes the host sent (wrapped under the
// TMK) and can look for them in a wiped data_dir.
type keyRecorder struct {
	mu   sync.Mutex
	keys [][]byte
}

func (k *keyRecorder) Read(p []byte) (int, error) {
	n, err := rand.Read(p)
	k.mu.Lock()
	k.keys = append(k.keys, bytes.Clone(p[:n]))
	k.mu.Unlock()
	return n, err
}

func (k *keyRecorder) all() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([][]byte(nil), k.keys...)
}

// remoteHost is an in-process acquirer host (iso8583/hostsim) behind a
// listener and its HTTP control API, wrapped as the acqSim harness_test.go's
// Term expects.
type remoteHost struct {
	*acqSim
	host *hostsim.Host
	keys *keyRecorder
	tmk  []byte
	ln   net.Listener
}

func startRemoteHost(t testing.TB) *remoteHost {
	t.Helper()
	tmk, err := hostsim.ParseTMK(hostsim.DefaultTMK)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	h := &remoteHost{keys: &keyRecorder{}, tmk: tmk}
	h.host = hostsim.New(hostsim.Config{TMK: tmk, Rand: h.keys,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if h.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go h.host.Serve(h.ln)
	ctl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h.host.ControlHandler()}
	go srv.Serve(ctl)
	t.Cleanup(func() { srv.Close(); h.host.Close() })
	h.acqSim = termtest.InProcessAcquirer(h.ln.Addr().String(), ctl.Addr().String(), logs)
	return h
}

// secrets are the byte strings that must not survive a wipe: TMK and every
// working key the host issued (PIK, MAK).
func (h *remoteHost) secrets() map[string][]byte {
	m := map[string][]byte{"TMK": h.tmk}
	for i, k := range h.keys.all() {
		if len(k) >= 8 {
			m[fmt.Sprintf("working key #%d", i)] = k
		}
	}
	return m
}

// hqSide is HQ: the command-signing key and one paho client subscribed to
// every terminal's acks (persistent session, re-subscribed on connect, so
// acks published while the broker restarts are not lost).
type hqSide struct {
	t    testing.TB
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	c    paho.Client
	// keys are more HQ signing keys by kid (hq-1 is priv).
	keys map[string]ed25519.PrivateKey

	mu      sync.Mutex
	devKeys map[string]ed25519.PublicKey // kid -> device key
	acks    []hqAck
	status  map[string]remote.Status
	history []remote.Status // every status received, in order
	changed chan struct{}
}

// hqAck is one ack as HQ received it.
type hqAck struct {
	Raw      []byte // the envelope bytes
	Ack      remote.Ack
	Verified bool
}

// newHQ makes the HQ key; connect with connect once the broker runs.
func newHQ(t testing.TB) *hqSide {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &hqSide{t: t, priv: priv, pub: pub, devKeys: map[string]ed25519.PublicKey{},
		keys:   map[string]ed25519.PrivateKey{hqKID: priv},
		status: map[string]remote.Status{}, changed: make(chan struct{})}
}

// newKey makes another HQ signing key and returns its KID=BASE64, the
// argument of factory-init --hq-key / --hq-root-key.
func (h *hqSide) newKey(kid string) string {
	h.t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.keys[kid] = priv
	return kid + "=" + base64.StdEncoding.EncodeToString(pub)
}

// sealAs signs a payload with the named keys (one: the single-signature
// form; several: the sigs form).
func (h *hqSide) sealAs(payload []byte, kids ...string) []byte {
	h.t.Helper()
	var signers []remote.Signer
	for _, kid := range kids {
		signers = append(signers, remote.Signer{KID: kid, Priv: h.keys[kid]})
	}
	var env []byte
	var err error
	if len(signers) == 1 {
		env, err = remote.Seal(signers[0].KID, signers[0].Priv, payload)
	} else {
		env, err = remote.SealMulti(payload, signers...)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return env
}

func (h *hqSide) keyArg() string { return hqKID + "=" + base64.StdEncoding.EncodeToString(h.pub) }

// connect connects HQ as user "hq" (the fleet-wide user of the ACL).
func (h *hqSide) connect(url string, tlsCfg *tls.Config) {
	h.t.Helper()
	id := make([]byte, 4)
	rand.Read(id)
	o := paho.NewClientOptions().AddBroker(url).SetClientID("hq-test-" + hex.EncodeToString(id)).
		SetUsername("hq").SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetMaxReconnectInterval(time.Second).
		SetOrderMatters(false).SetDefaultPublishHandler(h.onMessage).
		SetOnConnectHandler(func(c paho.Client) {
			go c.Subscribe("pos/v1/+/ack", 1, h.onMessage)
			go c.Subscribe("pos/v1/+/status", 1, h.onMessage)
		})
	if tlsCfg != nil {
		o.SetTLSConfig(tlsCfg)
	}
	h.c = paho.NewClient(o)
	tok := h.c.Connect()
	if !tok.WaitTimeout(remoteWait) || tok.Error() != nil {
		h.t.Fatalf("HQ connect %s: %v", url, tok.Error())
	}
	// Subscribe once synchronously so a test publishing right away has its
	// acks covered.
	for _, topic := range []string{"pos/v1/+/ack", "pos/v1/+/status"} {
		st := h.c.Subscribe(topic, 1, h.onMessage)
		if !st.WaitTimeout(remoteWait) || st.Error() != nil {
			h.t.Fatalf("HQ subscribe: %v", st.Error())
		}
	}
	h.t.Cleanup(func() { h.c.Disconnect(100) })
}

func (h *hqSide) addDevice(serial string, pub ed25519.PublicKey) {
	h.mu.Lock()
	h.devKeys[remote.DeviceKID(serial)] = pub
	h.mu.Unlock()
}

// onMessage runs on paho's goroutine: decode, verify, record, notify.
func (h *hqSide) onMessage(_ paho.Client, m paho.Message) {
	serial, kind, ok := remote.ParseTopic(m.Topic())
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch kind {
	case remote.KindStatus:
		var s remote.Status
		if json.Unmarshal(m.Payload(), &s) == nil {
			h.status[serial] = s
			h.history = append(h.history, s)
		}
	case remote.KindAck:
		raw := bytes.Clone(m.Payload())
		a := hqAck{Raw: raw}
		env, err := remote.Open(raw, h.devKeys)
		if err == nil {
			a.Verified = true
		} else if env, err = remote.Decode(raw); err != nil {
			return
		}
		if a.Ack, err = remote.ParseAck(env.Payload); err != nil {
			return
		}
		if a.Ack.Serial != serial {
			a.Verified = false
		}
		h.acks = append(h.acks, a)
	default:
		return
	}
	close(h.changed)
	h.changed = make(chan struct{})
}

// acksOf returns every ack received so far for a command id.
func (h *hqSide) acksOf(cmdID string) []hqAck {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hqAck
	for _, a := range h.acks {
		if a.Ack.CmdID == cmdID {
			out = append(out, a)
		}
	}
	return out
}

// acksFrom returns every ack received so far from a serial.
func (h *hqSide) acksFrom(serial string) []hqAck {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hqAck
	for _, a := range h.acks {
		if a.Ack.Serial == serial {
			out = append(out, a)
		}
	}
	return out
}

// waitFor waits until cond holds over the received messages.
func (h *hqSide) waitFor(what string, timeout time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.After(timeout)
	for {
		h.mu.Lock()
		ch := h.changed
		h.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			h.t.Fatalf("HQ: timeout after %v waiting for %s", timeout, what)
		}
	}
}

// waitAck waits for an ack of cmdID in state and returns it; the ack must
// verify with the terminal's device key.
func (h *hqSide) waitAck(cmdID, state string, timeout time.Duration) hqAck {
	h.t.Helper()
	var got hqAck
	h.waitFor(fmt.Sprintf("ack %s %s", cmdID, state), timeout, func() bool {
		for _, a := range h.acksOf(cmdID) {
			if a.Ack.State == state {
				got = a
				return true
			}
		}
		return false
	})
	if !got.Verified {
		h.t.Errorf("ack %s %s does not verify with the device key", cmdID, state)
	}
	return got
}

// waitFinal waits for the first final ack of cmdID.
func (h *hqSide) waitFinal(cmdID string, timeout time.Duration) hqAck {
	h.t.Helper()
	var got hqAck
	h.waitFor("final ack of "+cmdID, timeout, func() bool {
		for _, a := range h.acksOf(cmdID) {
			if a.Ack.Final() {
				got = a
				return true
			}
		}
		return false
	})
	if !got.Verified {
		h.t.Errorf("final ack %s does not verify with the device key", cmdID)
	}
	return got
}

// waitStatus waits for a retained status of serial that cond accepts.
func (h *hqSide) waitStatus(serial string, timeout time.Duration, cond func(remote.Status) bool) remote.Status {
	h.t.Helper()
	var got remote.Status
	h.waitFor("status of "+serial, timeout, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		s, ok := h.status[serial]
		got = s
		return ok && cond(s)
	})
	return got
}

// command is a command payload as HQ would build it, valid for ttl.
func (h *hqSide) command(serial string, typ remote.CommandType, id string, args any, ttl time.Duration) []byte {
	h.t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	var raw json.RawMessage
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			h.t.Fatal(err)
		}
		raw = b
	}
	p, err := remote.Command{V: remote.Version, ID: id, Type: typ, Serial: serial,
		IssuedAt: now, ExpiresAt: now.Add(ttl), Args: raw}.Payload()
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// seal signs a payload with the HQ key.
func (h *hqSide) seal(payload []byte) []byte {
	h.t.Helper()
	env, err := remote.Seal(hqKID, h.priv, payload)
	if err != nil {
		h.t.Fatal(err)
	}
	return env
}

// publish sends an envelope to a terminal's command topic at QoS 1 and
// waits for the broker's PUBACK.
func (h *hqSide) publish(serial string, env []byte) {
	h.t.Helper()
	tok := h.c.Publish(remote.CmdTopic(serial), 1, false, env)
	if !tok.WaitTimeout(remoteWait) || tok.Error() != nil {
		h.t.Fatalf("HQ publish to %s: %v", serial, tok.Error())
	}
}

// unbind signs and sends an unbind; it returns the command id.
func (h *hqSide) unbind(serial string, unsettled remote.UnsettledPolicy, ttl time.Duration) string {
	h.t.Helper()
	id := fmt.Sprintf("unbind-%s-%d", serial, time.Now().UnixNano())
	h.publish(serial, h.seal(h.command(serial, remote.TypeUnbind, id,
		remote.UnbindArgs{Reason: "test", Unsettled: unsettled}, ttl)))
	return id
}

// rterm is a terminal of the remote tests: harness_test.go's Term, with a
// known serial, an [mqtt] section and the test's HQ key.
type rterm struct {
	*Term
	Serial string
	MID    string
	DevPub ed25519.PublicKey
	// DevKeys is a device-key registry file with this terminal's
	// factory-init line (hqctl --device-keys).
	DevKeys string
}

// rtermOptions shape a remote test terminal.
type rtermOptions struct {
	Serial  string
	TID     string
	Broker  string // tcp://… or ssl://…
	CAFile  string // with ssl://
	Cert    string
	Key     string
	Timeout string // acquirer.timeout, default 2s
	// FactoryArgs replace factory-init's --hq-key hq-1 (the HQ keys and
	// the policy: --hq-key, --hq-root-key, --require).
	FactoryArgs []string
	// Unactivated leaves the terminal as factory-init made it (NOT
	// ACTIVATED) instead of provisioning it.
	Unactivated bool
}

// newRemoteTerm factory-inits and provisions a terminal and starts its
// daemon, waiting for MAIN MENU. As with NewTerm, every log, the printer
// and data_dir are checked for clear PANs when the test ends.
func newRemoteTerm(t testing.TB, host *remoteHost, hq *hqSide, o rtermOptions) *rterm {
	t.Helper()
	buildBinaries(t)
	if o.Timeout == "" {
		o.Timeout = "2s"
	}
	mq := fmt.Sprintf("broker = %q\n", o.Broker)
	if o.CAFile != "" {
		mq += fmt.Sprintf("ca_file = %q\ncert_file = %q\nkey_file = %q\n", o.CAFile, o.Cert, o.Key)
	}
	h := newTermFiles(t, host.acqSim, o.TID, mq, o.Timeout)
	pwdFile := filepath.Join(h.Dir, "techpwd")
	keyArgs := o.FactoryArgs
	if keyArgs == nil {
		keyArgs = []string{"--hq-key", hq.keyArg()}
	}
	out, err := daemonCommand(append([]string{"factory-init", "--data-dir", h.DataDir, "--serial", o.Serial,
		"--tech-pwd-file", pwdFile}, keyArgs...)...).Output()
	if err != nil {
		t.Fatalf("factory-init %v: %v", keyArgs, err)
	}
	var fi struct {
		Ed25519Pub []byte `json:"ed25519_pub"`
	}
	if err := json.Unmarshal(out, &fi); err != nil || len(fi.Ed25519Pub) != ed25519.PublicKeySize {
		t.Fatalf("factory-init output %q: %v", out, err)
	}
	r := &rterm{Term: h, Serial: o.Serial, MID: "8980000" + o.TID, DevPub: fi.Ed25519Pub,
		DevKeys: filepath.Join(h.Dir, "devices.jsonl")}
	if err := os.WriteFile(r.DevKeys, out, 0o600); err != nil {
		t.Fatal(err)
	}
	hq.addDevice(o.Serial, r.DevPub)
	if o.Unactivated {
		t.Cleanup(func() {
			if h.running() {
				h.Stop()
			}
			h.checkNoClearPAN()
		})
		h.Start()
		h.WaitScreen("NOT ACTIVATED", remoteWait)
		return r
	}
	r.provision()
	t.Cleanup(func() {
		if h.running() {
			h.Stop()
		}
		h.checkNoClearPAN()
	})
	h.Start()
	h.WaitScreen("MAIN MENU", remoteWait)
	return r
}

// provision makes the (stopped, unactivated) terminal active again with
// `posagentd provision`.
func (r *rterm) provision() {
	r.t.Helper()
	pb, _ := json.Marshal(map[string]any{
		"tid": r.TID, "mid": r.MID, "merchant_name": "REMOTE SHOP",
		"acquirer": map[string]any{"addr": r.Sim.Addr, "tpdu": "6000030000"},
		"tmk":      hostsim.DefaultTMK,
	})
	provFile := filepath.Join(r.Dir, "prov.json")
	if err := os.WriteFile(provFile, pb, 0o600); err != nil {
		r.t.Fatal(err)
	}
	r.runCLI("provision", "--config", r.Config, "--file", provFile)
}

// sell runs an approved sale and goes back to MAIN MENU.
func (r *rterm) sell(fen int64) {
	r.t.Helper()
	s := r.Sale(fen, track2A)
	if !strings.Contains(s, "APPROVED") {
		r.t.Fatalf("sale of %d: %q, want APPROVED", fen, s)
	}
	r.Keys("\r")
	r.WaitScreen("MAIN MENU", remoteWait)
}

// waitExitCode waits for the daemon to exit on its own and returns its
// status.
func (r *rterm) waitExitCode(timeout time.Duration) int {
	r.t.Helper()
	select {
	case <-r.done:
		return r.exitSt
	case <-time.After(timeout):
		r.t.Fatalf("posagentd still running after %v; last screens:\n%s\nlog tail:\n%s", timeout, r.scr.Tail(5), tail(r.lastLog(), 3000))
		return -1
	}
}

// assertWiped checks that no byte string of secrets (TMK, working keys),
// no test PAN, TID or MID is left in any file under data_dir.
func assertWiped(t testing.TB, dataDir string, secrets map[string][]byte) {
	t.Helper()
	for _, p := range testPANs {
		secrets["PAN "+p] = []byte(p)
	}
	files := 0
	err := filepath.Walk(dataDir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for name, s := range secrets {
			if i := bytes.Index(b, s); i >= 0 {
				t.Errorf("%s found in %s at offset %d after the unbind", name, path, i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dataDir, err)
	}
	if files == 0 {
		t.Fatalf("no file under %s: the factory identity must stay", dataDir)
	}
}

// merchantSecrets adds the terminal's TID and MID to the host's secrets.
func (r *rterm) merchantSecrets(host *remoteHost) map[string][]byte {
	s := host.secrets()
	s["TID "+r.TID] = []byte(r.TID)
	s["MID "+r.MID] = []byte(r.MID)
	return s
}

// brokerForTerms is a mosquitto with the per-device ACL; opts may add TLS.
func brokerForTerms(t testing.TB, opts mosquittotest.Options) *mosquittotest.Broker {
	t.Helper()
	opts.ACL = true
	return mosquittotest.Start(t, opts)
}
