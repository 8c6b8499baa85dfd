package main

// The activation harness: a lab as HQ runs one, with real parts only — a
// real mosquitto (with the per-device ACL), the real acquirer-sim binary
// reading the TMKs of a --keys file, the real `hqd` (on SQLite) writing
// that file, `hqctl code issue` / `hqctl unbind` as an operator types
// them, and factory-fresh posagentd terminals (no `provision --file`
// shortcut: their keys and parameters arrive only through activation).
// An HQ observer (remote_harness_test.go's hqSide, signing with the lab's
// hqctl key) verifies acks and records every event and command on the
// broker, so a test can read the pending activation request id or check
// that nothing was published.

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/nacl/box"

	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/iso8583/mac"
	"github.com/posagent/posagent/terminal/remote"
)

// actWait bounds one step of an activation: a round trip through the
// broker, hqd's fsynced database, a sign-in.
const actWait = 20 * time.Second

// settleTrack2 is the settlement card the technician swipes (panB: the
// harness checks it never appears in clear).
const settleTrack2 = track2B

var (
	hqctlOnce sync.Once
	hqctlBin  string
	hqdBin    string
	hqctlErr  error
)

// buildHQCtl builds cmd/hqctl and cmd/hqd next to posagentd and
// acquirer-sim.
func buildHQCtl(t testing.TB) {
	t.Helper()
	buildBinaries(t)
	hqctlOnce.Do(func() {
		hqctlBin, hqdBin = filepath.Join(binDir, "hqctl"), filepath.Join(binDir, "hqd")
		for _, b := range []struct{ out, pkg string }{{hqctlBin, "./cmd/hqctl"}, {hqdBin, "./cmd/hqd"}} {
			cmd := exec.Command("go", "build", "-trimpath", "-o", b.out, b.pkg)
			cmd.Dir = moduleRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				hqctlErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if hqctlErr != nil {
		t.Fatal(hqctlErr)
	}
}

// hqctl runs one hqctl command and returns its stdout; a non-zero exit
// fails the test.
func hqctl(t testing.TB, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(hqctlBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hqctl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// actLab is the lab: broker, acquirer, HQ key, hqd, observer.
type actLab struct {
	t        testing.TB
	dir      string
	broker   *mosquittotest.Broker
	sim      *acqSim
	hq       *hqSide
	keyPath  string // hqctl keygen's hq-1.key, hqd's signing key
	registry string // factory-init JSON lines
	acqKeys  string // the keys file hqd writes (TID -> TMK hex)
	simKeys  string // the keys file acquirer-sim reads (= acqKeys unless split)

	hqdCfg   string // hqd's config (SQLite under dir)
	hqdURL   string // hqd's API
	token    string // a technician's API token file
	hqd      *exec.Cmd
	hqdErr   *syncBuffer
	hqdEnd   chan struct{}
	hqdReady chan struct{}

	obs   paho.Client
	mu    sync.Mutex
	msgs  []labMsg // every evt and cmd seen on the broker
	newer chan struct{}
}

// labMsg is one message the observer saw.
type labMsg struct {
	Serial, Kind string
	Raw          []byte
	At           time.Time
}

// labOptions shape a lab.
type labOptions struct {
	NoServe      bool // no hqd: HQ's answers are crafted by the test
	SplitSimKeys bool // acquirer-sim reads a keys file hqd never writes: sign-in gets 97
}

func startActLab(t testing.TB, o labOptions) *actLab {
	t.Helper()
	buildHQCtl(t)
	l := &actLab{t: t, dir: t.TempDir(), newer: make(chan struct{})}
	l.broker = mosquittotest.Start(t, mosquittotest.Options{ACL: true})
	hqctl(t, "keygen", "--kid", hqKID, "--out", filepath.Join(l.dir, "hqkeys"))
	l.keyPath = filepath.Join(l.dir, "hqkeys", hqKID+".key")
	l.registry = filepath.Join(l.dir, "registry.jsonl")
	l.acqKeys = filepath.Join(l.dir, "acquirer-keys.json")
	l.simKeys = l.acqKeys
	if o.SplitSimKeys {
		l.simKeys = filepath.Join(l.dir, "sim-keys.json")
	}
	if err := os.WriteFile(l.registry, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.simKeys, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l.sim = startAcqSim(t, "--keys", l.simKeys)

	// HQ's own view: hqSide signs with the lab key and verifies acks.
	l.hq = newHQ(t)
	seedB64, err := os.ReadFile(l.keyPath)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(seedB64)))
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("hqctl key %s: %v", l.keyPath, err)
	}
	l.hq.priv = ed25519.NewKeyFromSeed(seed)
	l.hq.pub = l.hq.priv.Public().(ed25519.PublicKey)
	l.hq.connect(l.broker.URL(), nil)
	l.observe()
	if !o.NoServe {
		l.startHQD()
	}
	return l
}

// observe subscribes a second HQ client to every event and command.
func (l *actLab) observe() {
	id := make([]byte, 4)
	rand.Read(id)
	handler := func(_ paho.Client, m paho.Message) {
		serial, kind, ok := remote.ParseTopic(m.Topic())
		if !ok {
			return
		}
		l.mu.Lock()
		l.msgs = append(l.msgs, labMsg{Serial: serial, Kind: kind, Raw: bytes.Clone(m.Payload()), At: time.Now()})
		close(l.newer)
		l.newer = make(chan struct{})
		l.mu.Unlock()
	}
	o := paho.NewClientOptions().AddBroker(l.broker.URL()).SetClientID("hq-observer-" + hex.EncodeToString(id)).
		SetUsername("hq").SetCleanSession(true).SetOrderMatters(false).SetDefaultPublishHandler(handler)
	l.obs = paho.NewClient(o)
	if tok := l.obs.Connect(); !tok.WaitTimeout(actWait) || tok.Error() != nil {
		l.t.Fatalf("observer connect: %v", tok.Error())
	}
	tok := l.obs.SubscribeMultiple(map[string]byte{remote.EvtWildcard: 1, "pos/v1/+/cmd": 1}, handler)
	if !tok.WaitTimeout(actWait) || tok.Error() != nil {
		l.t.Fatalf("observer subscribe: %v", tok.Error())
	}
	l.t.Cleanup(func() { l.obs.Disconnect(100) })
}

// startHQD runs hqd on SQLite, signing with the lab key, with a
// technician's API token, and waits until it has subscribed.
func (l *actLab) startHQD() {
	l.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	l.hqdURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	l.hqdCfg = filepath.Join(l.dir, "hqd.toml")
	cfg := fmt.Sprintf(`db = "sqlite://%s"
[mqtt]
broker = %q
client_id = "hqd-%s"
[http]
listen = "127.0.0.1:%d"
[signing]
key_file = %q
kid = %q
[activation]
acquirer_keys = %q
`, filepath.Join(l.dir, "hq.db"), l.broker.URL(), filepath.Base(l.dir), port, l.keyPath, hqKID, l.acqKeys)
	if err := os.WriteFile(l.hqdCfg, []byte(cfg), 0o600); err != nil {
		l.t.Fatal(err)
	}
	l.token = filepath.Join(l.dir, "tech.token")
	if out, err := exec.Command(hqdBin, "operator", "add", "--config", l.hqdCfg, "--name", "tech", "--roles", "technician",
		"--token-out", l.token).CombinedOutput(); err != nil {
		l.t.Fatalf("hqd operator add: %v\n%s", err, out)
	}
	l.hqdErr, l.hqdEnd, l.hqdReady = &syncBuffer{}, make(chan struct{}), make(chan struct{})
	l.hqd = exec.Command(hqdBin, "run", "--config", l.hqdCfg)
	l.hqd.Stderr = l.hqdErr
	stdout, err := l.hqd.StdoutPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	if err := l.hqd.Start(); err != nil {
		l.t.Fatalf("start hqd: %v", err)
	}
	go func() {
		var once sync.Once
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "subscribed to") {
				once.Do(func() { close(l.hqdReady) })
			}
		}
		l.hqd.Wait()
		close(l.hqdEnd)
	}()
	l.t.Cleanup(func() {
		l.hqd.Process.Signal(syscall.SIGTERM)
		select {
		case <-l.hqdEnd:
		case <-time.After(waitTimeout):
			l.hqd.Process.Kill()
			<-l.hqdEnd
			l.t.Errorf("hqd did not stop on SIGTERM")
		}
		if l.t.Failed() {
			l.t.Logf("hqd stderr:\n%s", tail(l.hqdErr.String(), 3000))
		}
	})
	select {
	case <-l.hqdReady:
	case <-l.hqdEnd:
		l.t.Fatalf("hqd exited:\n%s", l.hqdErr.String())
	case <-time.After(actWait):
		l.t.Fatalf("hqd did not subscribe within %v:\n%s", actWait, tail(l.hqdErr.String(), 3000))
	}
}

// auditEntry is one line of hqd's audit trail, its detail decoded.
type auditEntry struct {
	Action string            `json:"action"`
	Target string            `json:"target"`
	Detail string            `json:"detail"`
	D      map[string]string `json:"-"`
}

// waitAudit waits for an audit entry of hqd (read with `hqctl audit`) on
// serial whose action is action and whose detail holds every key/value of
// want, and returns it: how HQ's decisions on activation requests are
// seen (hqd answers a refused request with nothing, remote.md).
func (l *actLab) waitAudit(action, serial string, want map[string]string, d time.Duration) auditEntry {
	l.t.Helper()
	deadline := time.Now().Add(d)
	for {
		out := hqctl(l.t, "audit", "--hq", l.hqdURL, "--token-file", l.token, "--action", action, "--target", serial, "--json")
		var res struct {
			Entries []auditEntry `json:"entries"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			l.t.Fatalf("hqctl audit: %v\n%s", err, out)
		}
	entries:
		for _, e := range res.Entries {
			if e.Action != action || e.Target != serial || json.Unmarshal([]byte(e.Detail), &e.D) != nil {
				continue
			}
			for k, v := range want {
				if e.D[k] != v {
					continue entries
				}
			}
			return e
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("no audit entry %s on %s with %v within %v; entries: %s\nhqd stderr:\n%s", action, serial, want, d, out, tail(l.hqdErr.String(), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitProvisionAcked waits until the provision hqd sent serial in answer
// to its activation request has its final ack succeeded at hqd.
func (l *actLab) waitProvisionAcked(serial string, d time.Duration) {
	l.t.Helper()
	prov := l.waitAudit("activation.answer", serial, nil, d).D["provision"]
	deadline := time.Now().Add(d)
	for {
		out := hqctl(l.t, "fleet", "show", serial, "--hq", l.hqdURL, "--token-file", l.token, "--json")
		var res struct {
			Commands []struct{ ID, State string } `json:"commands"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			l.t.Fatalf("hqctl fleet show: %v\n%s", err, out)
		}
		for _, c := range res.Commands {
			if c.ID == prov && c.State == remote.AckSucceeded {
				return
			}
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("provision %s of %s not acked succeeded at hqd within %v: %s", prov, serial, d, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// register tells hqd a terminal's device keys (hqd register with its
// factory-init line), as the factory's registry reaches HQ.
func (l *actLab) register(line []byte) {
	l.t.Helper()
	if l.hqd == nil {
		return
	}
	f := filepath.Join(l.dir, fmt.Sprintf("registry-%d.jsonl", time.Now().UnixNano()))
	if err := os.WriteFile(f, line, 0o600); err != nil {
		l.t.Fatal(err)
	}
	if out, err := exec.Command(hqdBin, "register", "--config", l.hqdCfg, f).CombinedOutput(); err != nil {
		l.t.Fatalf("hqd register: %v\n%s", err, out)
	}
}

// code issues an activation code with `hqctl code issue` over hqd's API.
func (l *actLab) code(serial, tid, mid string) string {
	l.t.Helper()
	out := hqctl(l.t, "code", "issue", "--hq", l.hqdURL, "--token-file", l.token, "--serial", serial, "--tid", tid, "--mid", mid,
		"--merchant-name", "SHOP "+tid, "--acquirer", l.sim.Addr, "--json")
	var c struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil || len(c.Code) != 8 {
		l.t.Fatalf("hqctl code issue output %q: %v", out, err)
	}
	return c.Code
}

// tmkOf reads the TMK hqd gave a TID from the acquirer keys file.
func (l *actLab) tmkOf(tid string) []byte {
	l.t.Helper()
	b, err := os.ReadFile(l.acqKeys)
	if err != nil {
		l.t.Fatalf("acquirer keys: %v", err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		l.t.Fatalf("acquirer keys %s: %v", b, err)
	}
	k, err := hex.DecodeString(m[tid])
	if err != nil || len(k) != 16 {
		l.t.Fatalf("acquirer keys: TMK of %s is %q (%v)", tid, m[tid], err)
	}
	return k
}

// since is the count of recorded messages, a mark for later waits.
func (l *actLab) since() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

// messages returns the messages of serial and kind recorded after mark.
func (l *actLab) messages(mark int, serial, kind string) []labMsg {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []labMsg
	for _, m := range l.msgs[min(mark, len(l.msgs)):] {
		if m.Serial == serial && m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

// waitEvent waits for a verified event of type typ from r after mark.
func (l *actLab) waitEvent(r *rterm, mark int, typ string, d time.Duration) remote.Event {
	l.t.Helper()
	deadline := time.After(d)
	keys := map[string]ed25519.PublicKey{remote.DeviceKID(r.Serial): r.DevPub}
	for {
		l.mu.Lock()
		ch := l.newer
		l.mu.Unlock()
		for _, m := range l.messages(mark, r.Serial, remote.KindEvt) {
			env, err := remote.Open(m.Raw, keys)
			if err != nil {
				l.t.Errorf("event from %s does not verify with its device key: %v", r.Serial, err)
				continue
			}
			ev, err := remote.ParseEvent(env.Payload)
			if err != nil {
				l.t.Errorf("event from %s: %v", r.Serial, err)
				continue
			}
			if ev.Type == typ && ev.Serial == r.Serial {
				return ev
			}
		}
		select {
		case <-ch:
		case <-deadline:
			l.t.Fatalf("no %s event from %s within %v", typ, r.Serial, d)
		}
	}
}

// freshTerm factory-inits a terminal (no provisioning), registers its
// device key with HQ (hqd, the registry file, and the observer) and
// starts it, waiting for NOT ACTIVATED.
func (l *actLab) freshTerm(serial string) *rterm {
	t := l.t
	t.Helper()
	h := newTermFiles(t, l.sim, "", fmt.Sprintf("broker = %q\n", l.broker.URL()), "2s")
	pwdFile := filepath.Join(h.Dir, "techpwd")
	out, err := daemonCommand("factory-init", "--data-dir", h.DataDir, "--serial", serial,
		"--hq-key", l.hq.keyArg(), "--tech-pwd-file", pwdFile).Output()
	if err != nil {
		t.Fatalf("factory-init: %v", err)
	}
	var fi struct {
		Ed25519Pub []byte `json:"ed25519_pub"`
	}
	if err := json.Unmarshal(out, &fi); err != nil || len(fi.Ed25519Pub) != ed25519.PublicKeySize {
		t.Fatalf("factory-init output %q: %v", out, err)
	}
	// The factory's registry: one factory-init line per terminal, which
	// hqd learns before the terminal first speaks.
	line := append(bytes.TrimSpace(out), '\n')
	f, err := os.OpenFile(l.registry, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(line); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l.register(line)
	r := &rterm{Term: h, Serial: serial, DevPub: fi.Ed25519Pub}
	l.hq.addDevice(serial, r.DevPub)
	t.Cleanup(func() {
		if h.running() {
			h.Stop()
		}
		h.checkNoClearPAN()
	})
	h.Start()
	h.WaitScreen("NOT ACTIVATED", actWait)
	return r
}

// typeCode runs 1 ACTIVATE → TECH PWD → ACTIVATION CODE and types code;
// it returns the observer's mark taken just before the request left.
func (r *rterm) typeCode(l *actLab, code string) int {
	r.t.Helper()
	r.Keys("1")
	r.WaitScreen("TECH PWD", actWait)
	r.Keys("8888\r")
	r.WaitScreen("ACTIVATION CODE", actWait)
	mark := l.since()
	r.Keys(code + "\r")
	return mark
}

// activate runs a whole technician activation with hqd answering, and
// sets r.TID and r.MID.
func (r *rterm) activate(l *actLab, code, tid, mid string) {
	r.t.Helper()
	r.typeCode(l, code)
	r.WaitScreen("SWIPE SETTLEMENT CARD", actWait)
	r.Swipe(settleTrack2)
	s := r.WaitScreen("ACTIVATED", actWait)
	if !strings.Contains(s, "TID "+tid) {
		r.t.Errorf("ACTIVATED screen %q lacks TID %s", s, tid)
	}
	r.Keys("\r")
	r.WaitScreen("MAIN MENU", actWait)
	r.TID, r.MID = tid, mid
}

// pendingRequest waits for r's activation_request after mark and returns
// its id and X25519 key.
func (l *actLab) pendingRequest(r *rterm, mark int) (string, remote.ActivationRequest) {
	l.t.Helper()
	ev := l.waitEvent(r, mark, remote.EvtActivationRequest, actWait)
	var req remote.ActivationRequest
	if err := json.Unmarshal(ev.Data, &req); err != nil || len(req.X25519Pub) != 32 {
		l.t.Fatalf("activation_request data %s: %v", ev.Data, err)
	}
	return ev.ID, req
}

// craftedProvision is a provision command as HQ builds it, with knobs to
// break it: the TMK is sealed to x25519Pub unless sealed is given, and
// the KCV is the TMK's unless kcv is given.
type craftedProvision struct {
	TID, MID, Activation string
	X25519Pub            []byte
	TMK                  []byte
	Sealed               []byte
	KCV                  string
}

// send signs the provision with the lab key, publishes it to r and
// returns its id.
func (l *actLab) sendProvision(r *rterm, p craftedProvision) string {
	l.t.Helper()
	if p.TMK == nil {
		p.TMK = make([]byte, 16)
		rand.Read(p.TMK)
	}
	if p.Sealed == nil {
		var pk [32]byte
		copy(pk[:], p.X25519Pub)
		s, err := box.SealAnonymous(nil, p.TMK, &pk, rand.Reader)
		if err != nil {
			l.t.Fatal(err)
		}
		p.Sealed = s
	}
	if p.KCV == "" {
		p.KCV = mac.TMKKCV(p.TMK)
	}
	id := fmt.Sprintf("prov-test-%d", time.Now().UnixNano())
	args := remote.ProvisionArgs{TID: remote.TID(p.TID), MID: remote.MID(p.MID), MerchantName: "CRAFTED",
		Acquirer:  remote.Acquirer{Addr: l.sim.Addr, TPDU: "6000030000"},
		TMKSealed: p.Sealed, TMKKCV: p.KCV, Activation: p.Activation}
	l.hq.publish(r.Serial, l.hq.seal(l.hq.command(r.Serial, remote.TypeProvision, id, args, 10*time.Minute)))
	return id
}

// assertAbsent checks that none of the byte strings is in any file under
// dir (raw bytes, every file, the factory identity included).
func assertAbsent(t testing.TB, dir string, what map[string][]byte) {
	t.Helper()
	files := 0
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for name, s := range what {
			if len(s) == 0 {
				t.Fatalf("assertAbsent: empty needle %s", name)
			}
			if i := bytes.Index(b, s); i >= 0 {
				lo, hi := max(0, i-40), min(len(b), i+len(s)+40)
				t.Errorf("%s found in %s at offset %d: …%q…", name, path, i, b[lo:hi])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	if files == 0 {
		t.Fatalf("no file under %s: the factory identity must stay", dir)
	}
}

// assertPresent is the control of assertAbsent: the needle is somewhere
// under dir, so its absence later means something.
func assertPresent(t testing.TB, dir, name string, needle []byte) {
	t.Helper()
	found := false
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, needle) {
				found = true
			}
		}
		return nil
	})
	if !found {
		t.Fatalf("control: %s not found under %s while it is installed: the absence checks would prove nothing", name, dir)
	}
}

// checkCleanNotActivated stops r if it runs, greps data_dir, restarts r and checks
// it comes back NOT ACTIVATED with nothing of the attempt under data_dir.
func (r *rterm) checkCleanNotActivated(what map[string][]byte) {
	r.t.Helper()
	if r.running() {
		r.Stop()
	}
	assertAbsent(r.t, r.DataDir, what)
	r.Start()
	s := r.WaitScreen("NOT ACTIVATED", actWait)
	if strings.Contains(s, "MAIN MENU") {
		r.t.Errorf("restart screen %q", s)
	}
}
