package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
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

	"github.com/posagent/posagent/internal/hq/pgtest"
	"github.com/posagent/posagent/internal/hq/simterm"
	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/internal/termtest"
)

var hqdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hqd-bin-")
	if err != nil {
		panic(err)
	}
	hqdBin = filepath.Join(dir, "hqd")
	if out, err := exec.Command("go", "build", "-o", hqdBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build hqd: %v\n%s", err, out)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	pgtest.Main(m)
}

// lab is one HQ deployment for a test: a mosquitto, a database (SQLite
// file or a PostgreSQL database), hqd's ops key and an admin token.
type lab struct {
	t       testing.TB
	dir     string
	broker  *mosquittotest.Broker
	db      string
	opsKey  string // path of hq-ops.key
	opsPub  ed25519.PublicKey
	acqKeys string
	token   string
	extra   string // appended to every config
}

func newLab(t testing.TB, dialect string, brokerOpts mosquittotest.Options) *lab {
	t.Helper()
	l := &lab{t: t, dir: t.TempDir()}
	l.broker = mosquittotest.Start(t, brokerOpts)
	l.db = "sqlite://" + filepath.Join(l.dir, "hq.db")
	if dialect == "postgres" {
		l.db = pgtest.NewDB(t)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	l.opsPub = pub
	l.opsKey = filepath.Join(l.dir, "hq-ops.key")
	if err := os.WriteFile(l.opsKey, []byte(base64.StdEncoding.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l.acqKeys = filepath.Join(l.dir, "acquirer-keys.json")
	cfg := l.config("setup", freePort(t))
	tokFile := filepath.Join(l.dir, "admin.token")
	l.hqd("operator", "add", "--config", cfg, "--name", "admin", "--roles", "admin", "--token-out", tokFile)
	tok, _ := os.ReadFile(tokFile)
	l.token = strings.TrimSpace(string(tok))
	return l
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// config writes an instance's config file.
func (l *lab) config(name string, port int) string {
	path := filepath.Join(l.dir, name+".toml")
	body := fmt.Sprintf(`db = %q
log_level = "info"
[mqtt]
broker = %q
client_id = "hqd-%s"
[http]
listen = "127.0.0.1:%d"
[signing]
key_file = %q
[activation]
acquirer_keys = %q
[jobs]
tick = "50ms"
lease = "2s"
resend_interval = "5s"
%s`, l.db, l.broker.URL(), name, port, l.opsKey, l.acqKeys, l.extra)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		l.t.Fatal(err)
	}
	return path
}

// hqd runs an hqd subcommand to completion.
func (l *lab) hqd(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(hqdBin, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("hqd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// instance is a running hqd.
type instance struct {
	t    testing.TB
	name string
	cfg  string
	port int
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
	tok  string
}

// start runs an hqd instance and waits until it has subscribed.
func (l *lab) start(name string) *instance {
	l.t.Helper()
	port := freePort(l.t)
	in := &instance{t: l.t, name: name, port: port, cfg: l.config(name, port), log: &bytes.Buffer{}, mu: &sync.Mutex{}, tok: l.token}
	in.run()
	l.t.Cleanup(func() { in.kill() })
	return in
}

func (in *instance) run() {
	in.t.Helper()
	in.cmd = exec.Command(hqdBin, "run", "--config", in.cfg)
	stdout, _ := in.cmd.StdoutPipe()
	in.cmd.Stderr = &lockedBuf{mu: in.mu, b: in.log}
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.done = make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "subscribed to") {
				once.Do(func() { close(ready) })
			}
		}
		_ = in.cmd.Wait()
		close(in.done)
	}()
	select {
	case <-ready:
	case <-in.done:
		in.t.Fatalf("hqd %s exited:\n%s", in.name, in.logs())
	case <-time.After(30 * time.Second):
		in.t.Fatalf("hqd %s did not subscribe within 30 s:\n%s", in.name, in.logs())
	}
}

type lockedBuf struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (in *instance) logs() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.log.String()
}

// kill is kill -9.
func (in *instance) kill() {
	if in.cmd != nil && in.cmd.Process != nil {
		_ = in.cmd.Process.Signal(syscall.SIGKILL)
		<-in.done
	}
}

// api calls hqd's API with the admin token; out may be nil.
func (in *instance) api(method, path string, body any, out any) int {
	in.t.Helper()
	return callAPI(in.t, fmt.Sprintf("http://127.0.0.1:%d", in.port), in.token(), method, path, body, out)
}

func (in *instance) token() string { return in.tok }

func (l *lab) register(in *instance, registry []byte) {
	l.t.Helper()
	path := filepath.Join(l.dir, "registry.jsonl")
	if err := os.WriteFile(path, registry, 0o600); err != nil {
		l.t.Fatal(err)
	}
	l.hqd("register", "--config", in.cfg, path)
}

func callAPI(t testing.TB, base, token, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}

func serials(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return out
}

// fleet starts light terminals on the lab's broker that trust its ops key,
// registers them with in and connects them for the test.
func (l *lab) fleet(t *testing.T, in *instance, o simterm.Options) *simterm.Fleet {
	t.Helper()
	o.Broker = l.broker.URL()
	o.HQKeys = map[string]simterm.HQKey{"hq-ops": {Pub: l.opsPub}}
	f, err := simterm.New(o)
	if err != nil {
		t.Fatal(err)
	}
	l.register(in, f.Registry())
	if err := f.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// startWithAcquirer starts acquirer-sim with the lab's (empty) key file and
// one hqd instance "a", whose log tail a failed test prints.
func (l *lab) startWithAcquirer(t *testing.T) (*termtest.Acquirer, *instance) {
	t.Helper()
	if err := os.WriteFile(l.acqKeys, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	acq := termtest.StartAcquirer(t, "--keys", l.acqKeys)
	a := l.start("a")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hqd log tail:\n%s", termtest.Tail(a.logs(), 6000))
		}
	})
	return acq, a
}
