package web_test

// The browser lab: real parts only. A real mosquitto, the real
// acquirer-sim binary (TMKs through its --keys file), the real hqd binary
// on SQLite serving this back office, real posagentd terminals
// (internal/termtest) and headless Debian chromium driven by chromedp,
// one isolated browser context (cookies, IndexedDB) per operator, as if
// each sat at their own computer.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/internal/termtest"
	"github.com/posagent/posagent/terminal/remote"
)

// screenshots, when set, is where the browser tests write the README's
// pictures (make screenshots: -screenshots ../../../docs/img). Without it
// they go to the test's temporary directory: taken, checked, not kept.
var screenshots = flag.String("screenshots", "", "directory for the README's screenshots (PNG)")

// Passwords of the lab's operators (at least 12 characters).
const labPassword = "correct horse battery"

// lab is one HQ with its fleet.
type lab struct {
	t       *testing.T
	dir     string
	broker  *mosquittotest.Broker
	acq     *termtest.Acquirer
	acqKeys string
	opsPub  ed25519.PublicKey  // hqd's own ops key (provision commands)
	opsPriv ed25519.PrivateKey // ... and its private half, for commands sent around the back office
	url     string             // the back office
	token   string             // admin's API token
	hqd     *exec.Cmd
	hqdOut  *termtest.SyncBuffer
	hqdErr  *termtest.SyncBuffer
	done    chan struct{}

	obs  paho.Client
	mu   sync.Mutex
	cmds []labCmd // every command published to a terminal
	acks []labCmd // every ack a terminal published
}

type labCmd struct {
	Serial string
	Raw    []byte
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startLab starts mosquitto, acquirer-sim and hqd with the given
// operators (name → roles) and an admin with an API token.
func startLab(t *testing.T, policy string, operators map[string]string) *lab {
	t.Helper()
	termtest.Build(t)
	l := &lab{t: t, dir: t.TempDir()}
	l.broker = mosquittotest.Start(t, mosquittotest.Options{ACL: true})
	l.acqKeys = filepath.Join(l.dir, "acquirer-keys.json")
	if err := os.WriteFile(l.acqKeys, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l.acq = termtest.StartAcquirer(t, "--keys", l.acqKeys)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	l.opsPub, l.opsPriv = pub, priv
	keyFile := filepath.Join(l.dir, "hqd-ops.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	l.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := filepath.Join(l.dir, "hqd.toml")
	body := fmt.Sprintf(`db = "sqlite://%s"
[mqtt]
broker = %q
client_id = "hqd-lab"
[http]
listen = "127.0.0.1:%d"
[signing]
key_file = %q
kid = "hqd-ops"
[activation]
acquirer_keys = %q
[jobs]
tick = "100ms"
lease = "2s"
resend_interval = "5s"
[policy]
%s
`, filepath.Join(l.dir, "hq.db"), l.broker.URL(), port, keyFile, l.acqKeys, policy)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(l.dir, "pw")
	if err := os.WriteFile(pwFile, []byte(labPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(l.dir, "admin.token")
	l.hqdCLI("operator", "add", "--config", cfg, "--name", "admin", "--roles", "admin", "--password-file", pwFile, "--token-out", tokFile)
	tok, _ := os.ReadFile(tokFile)
	l.token = strings.TrimSpace(string(tok))
	for name, roles := range operators {
		l.hqdCLI("operator", "add", "--config", cfg, "--name", name, "--roles", roles, "--password-file", pwFile)
	}
	l.hqdOut, l.hqdErr, l.done = &termtest.SyncBuffer{}, &termtest.SyncBuffer{}, make(chan struct{})
	l.hqd = exec.Command(termtest.HQD, "run", "--config", cfg)
	l.hqd.Stderr = l.hqdErr
	out, _ := l.hqd.StdoutPipe()
	if err := l.hqd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		var once sync.Once
		for sc.Scan() {
			l.hqdOut.Write(append(sc.Bytes(), '\n'))
			if strings.Contains(sc.Text(), "subscribed to") {
				once.Do(func() { close(ready) })
			}
		}
		_ = l.hqd.Wait()
		close(l.done)
	}()
	t.Cleanup(func() {
		_ = l.hqd.Process.Signal(syscall.SIGTERM)
		select {
		case <-l.done:
		case <-time.After(20 * time.Second):
			_ = l.hqd.Process.Kill()
			<-l.done
		}
		if t.Failed() {
			t.Logf("hqd stderr tail:\n%s", termtest.Tail(l.hqdErr.String(), 6000))
		}
	})
	select {
	case <-ready:
	case <-l.done:
		t.Fatalf("hqd exited:\n%s", l.hqdErr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("hqd did not subscribe within 60 s:\n%s", l.hqdErr.String())
	}
	l.observe()
	return l
}

func (l *lab) hqdCLI(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(termtest.HQD, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("hqd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// observe records every command published to any terminal: what a test
// needs to say that nothing was sent.
func (l *lab) observe() {
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	handler := func(_ paho.Client, m paho.Message) {
		serial, kind, ok := remote.ParseTopic(m.Topic())
		if !ok {
			return
		}
		l.mu.Lock()
		if kind == remote.KindAck {
			l.acks = append(l.acks, labCmd{Serial: serial, Raw: bytes.Clone(m.Payload())})
		} else {
			l.cmds = append(l.cmds, labCmd{Serial: serial, Raw: bytes.Clone(m.Payload())})
		}
		l.mu.Unlock()
	}
	o := paho.NewClientOptions().AddBroker(l.broker.URL()).SetClientID("observer-" + hex.EncodeToString(id)).
		SetUsername("hq").SetCleanSession(true).SetDefaultPublishHandler(handler)
	l.obs = paho.NewClient(o)
	if tok := l.obs.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		l.t.Fatalf("observer: %v", tok.Error())
	}
	if tok := l.obs.SubscribeMultiple(map[string]byte{remote.CmdWildcard: 1, remote.AckWildcard: 1}, handler); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		l.t.Fatalf("observer: %v", tok.Error())
	}
	l.t.Cleanup(func() { l.obs.Disconnect(100) })
}

// commandsTo returns the envelopes published to serial's command topic.
func (l *lab) commandsTo(serial string) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for _, c := range l.cmds {
		if c.Serial == serial {
			out = append(out, c.Raw)
		}
	}
	return out
}

// waitAck waits for a final ack of command id from a terminal that
// verifies with its device key, and returns it.
func (l *lab) waitAck(term *termtest.Term, id string, d time.Duration) remote.Ack {
	l.t.Helper()
	keys := map[string]ed25519.PublicKey{remote.DeviceKID(term.Serial): term.DevPub}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		acks := append([]labCmd(nil), l.acks...)
		l.mu.Unlock()
		for _, a := range acks {
			if a.Serial != term.Serial {
				continue
			}
			env, err := remote.Open(a.Raw, keys)
			if err != nil {
				l.t.Fatalf("an ack of %s does not verify with its device key: %v", term.Serial, err)
			}
			ack, err := remote.ParseAck(env.Payload)
			if err == nil && ack.CmdID == id && ack.Final() {
				return ack
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	l.t.Fatalf("no final ack of %s from %s within %v", id, term.Serial, d)
	return remote.Ack{}
}

// publish sends an envelope to a terminal's command topic, as anyone
// holding a key and the broker's HQ account could: around the back office.
func (l *lab) publish(serial string, env []byte) {
	l.t.Helper()
	if tok := l.obs.Publish(remote.CmdTopic(serial), 1, false, env); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		l.t.Fatalf("publish to %s: %v", serial, tok.Error())
	}
}

// api calls hqd's JSON API as the admin.
func (l *lab) api(method, path string, body, out any) int {
	l.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, l.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+l.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			l.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode
}

// keys returns the HQ keys hqd holds, kid → public key.
func (l *lab) keys() map[string]ed25519.PublicKey {
	l.t.Helper()
	var out struct {
		Keys []struct {
			KID string `json:"kid"`
			Pub []byte `json:"pub"`
		} `json:"keys"`
	}
	if code := l.api("GET", "/api/v1/keys", nil, &out); code != 200 {
		l.t.Fatalf("keys: %d", code)
	}
	m := map[string]ed25519.PublicKey{}
	for _, k := range out.Keys {
		m[k.KID] = k.Pub
	}
	return m
}

// terminal factory-inits a terminal trusting hqd's ops key and the given
// operator keys, registers it with hqd (as the factory's output would be)
// and starts it.
func (l *lab) terminal(o termtest.TermOptions) *termtest.Term {
	l.t.Helper()
	o.Broker = l.broker.URL()
	if o.HQKeys == nil {
		o.HQKeys = map[string][]byte{}
	}
	o.HQKeys["hqd-ops"] = l.opsPub
	o.Registered = func(term *termtest.Term) {
		reg := filepath.Join(l.dir, "registry-"+o.Serial+".jsonl")
		if err := os.WriteFile(reg, term.Registry, 0o600); err != nil {
			l.t.Fatal(err)
		}
		l.hqdCLI("register", "--config", filepath.Join(l.dir, "hqd.toml"), reg)
	}
	term := termtest.NewTerm(l.t, o)
	// A terminal publishes its status once its command subscription is in
	// place: from then on a command reaches it.
	eventually(l.t, termtest.Wait, o.Serial+"'s status at hqd", func() bool {
		var out struct {
			Terminal struct {
				Online bool `json:"online"`
			} `json:"terminal"`
		}
		return l.api("GET", "/api/v1/terminals/"+o.Serial, nil, &out) == 200 && out.Terminal.Online
	})
	return term
}

// eventually polls cond until it holds.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// --- the browser ---------------------------------------------------------

// browser is one headless chromium.
type browser struct {
	t    *testing.T
	root context.Context
}

// newBrowser starts Debian's chromium headless with a fresh profile and no
// network beyond loopback services it is pointed at.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := "/usr/bin/chromium"
	if _, err := os.Stat(exe); err != nil {
		t.Fatalf("chromium is missing (%v): build/install-tools.sh installs it (apt-get install chromium)", err)
	}
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "en-US"), chromedp.WindowSize(1280, 800)}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelRoot(); cancelAlloc() })
	// The first run starts the browser, on root itself: the browser and
	// its first tab live as long as the context of that run.
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, root: root}
}

// tab is one operator's browser: its own browser context, so its cookies
// and IndexedDB (where its key lives) are its own.
type tab struct {
	t    *testing.T
	name string
	base string
	ctx  context.Context
}

func (b *browser) tab(name, base string) *tab {
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	p := &tab{t: b.t, name: name, base: base, ctx: ctx}
	// The first action runs on the tab's own context: the target lives as
	// long as the context of its first run.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		b.t.Fatalf("%s's browser: %v", name, err)
	}
	return p
}

// do runs actions, failing the test with the page's text on error.
func (p *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s's browser: %v\npage: %s", p.name, err, p.bodyText())
	}
}

func (p *tab) bodyText() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + (document.body ? document.body.innerText : "")`))
	return termtest.Tail(s, 3000)
}

func evalIn[T any](p *tab, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s's browser: %s: %v\npage: %s", p.name, js, err, p.bodyText())
	}
	return v
}

// open navigates to a path of the back office.
func (p *tab) open(path string) {
	p.t.Helper()
	p.do(chromedp.Navigate(p.base + path))
}

// waitFor polls a JavaScript condition (the live parts refresh every 3 s).
//
// It evaluates the condition afresh every 200 ms rather than with one
// long in-page poll, which a navigation (a form sent, a reload) would cut
// off.
func (p *tab) waitFor(what, js string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+js+")"))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	p.t.Fatalf("%s's browser: waiting for %s (last error %v)\npage: %s", p.name, what, last, p.bodyText())
}

// submit clicks sel and waits for the next page to load.
func (p *tab) submit(sel string) {
	p.t.Helper()
	evalIn[chromedp.Void](p, `window.__leaving = true`)
	p.do(chromedp.Click(chromedp.CSS(sel)))
	p.waitFor("the next page after "+sel, `!window.__leaving && document.readyState === "complete"`, 60*time.Second)
}

// text is an element's text.
func (p *tab) text(sel string) string {
	p.t.Helper()
	return evalIn[string](p, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel))
}

func (p *tab) has(sel string) bool {
	p.t.Helper()
	return evalIn[bool](p, fmt.Sprintf(`document.querySelector(%q) !== null`, sel))
}

// login logs in through the form.
func (p *tab) login(name string) {
	p.t.Helper()
	p.open("/login")
	p.do(chromedp.SendKeys(chromedp.ID("name"), name), chromedp.SendKeys(chromedp.ID("password"), labPassword))
	p.submit("#login")
	if !strings.Contains(p.text("main"), "Fleet") {
		p.t.Fatalf("%s: login did not land on the fleet page: %s", name, p.bodyText())
	}
}

// shot saves a PNG of the page as the operator sees it (full height).
func (p *tab) shot(name string) []byte {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		p.t.Fatalf("screenshot %s is not a PNG", name)
	}
	dir := *screenshots
	if dir == "" {
		dir = p.t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	return png
}
