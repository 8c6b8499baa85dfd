// Package mosquittotest runs a real mosquitto broker for tests: a private
// config, port, persistence directory, optional per-device ACL, password
// file and TLS listener with a generated CA, all under t.TempDir().
//
// Tests use a real broker rather than an embedded one because the remote
// channel's guarantees (QoS 1 queues for offline CleanSession=false clients,
// retained status, Last Will, ACLs confining a terminal to pos/v1/<serial>/#)
// are broker behaviour, and mosquitto is what the field runs.
package mosquittotest

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options shape the broker. The zero value is a plain anonymous broker on
// one loopback TCP listener with persistence on.
type Options struct {
	// ACL confines every user to its own subtree with mosquitto's
	// "pattern readwrite pos/v1/%u/#" (username = serial, remote.md) and
	// gives HQUser "topic readwrite pos/v1/#". Clients without a username
	// get nothing.
	ACL bool
	// HQUser is the fleet-wide user of the ACL; "" means "hq".
	HQUser string
	// Users, when non-empty, become a mosquitto password file (user ->
	// password) and anonymous clients are refused. When empty, any client
	// is let in with whatever username it gives (the ACL still applies).
	Users map[string]string
	// TLS adds a second loopback listener that requires a client
	// certificate signed by the harness CA (require_certificate true,
	// use_identity_as_username false: the username still comes from
	// CONNECT, so the ACL works the same on both listeners).
	TLS bool
	// ExtraConfig is appended to mosquitto.conf verbatim.
	ExtraConfig string
	// Profile, when set, is the path of a production mosquitto.conf in the
	// layout of the repository's build/mosquitto (two TLS listeners,
	// terminals then HQ, files under /etc/mosquitto/posagent/). The broker
	// runs that file as shipped with only its machine-specific values
	// mapped into the harness: the listeners onto loopback ports
	// (TLSURL for the terminals' listener, HQURL for HQ's), the
	// certificates onto the harness CA (both listeners trust it), the ACL
	// files onto the copies beside the profile, persistence into the
	// private directory, logs to the harness log. The other options are
	// ignored with it.
	Profile string
}

// Broker is a running mosquitto. Its methods call t.Fatal on failure.
type Broker struct {
	t       testing.TB
	opts    Options
	bin     string
	dir     string
	conf    string
	logPath string
	port    int
	tlsPort int
	hqPort  int
	pki     *pki

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts a broker that is stopped when the test ends. It never skips:
// a missing mosquitto is a test failure with a message saying how to get it.
func Start(t testing.TB, opts Options) *Broker {
	t.Helper()
	if opts.HQUser == "" {
		opts.HQUser = "hq"
	}
	b := &Broker{t: t, opts: opts, bin: findMosquitto(t), dir: t.TempDir()}
	b.logPath = filepath.Join(b.dir, "mosquitto.log")
	b.conf = filepath.Join(b.dir, "mosquitto.conf")
	if err := os.MkdirAll(filepath.Join(b.dir, "data"), 0o700); err != nil {
		t.Fatalf("mosquittotest: %v", err)
	}
	if opts.TLS || opts.Profile != "" {
		p, err := newPKI(filepath.Join(b.dir, "pki"))
		if err != nil {
			t.Fatalf("mosquittotest: generate TLS material: %v", err)
		}
		b.pki = p
	}
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("mosquitto log (%s):\n%s", b.logPath, b.Log())
		}
	})
	// A free port found by listening on :0 can be taken again before
	// mosquitto binds it; retry with fresh ports on a bind failure.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if opts.Profile == "" {
			if b.port, err = freePort(); err != nil {
				break
			}
		} else if b.hqPort, err = freePort(); err != nil {
			break
		}
		if opts.TLS || opts.Profile != "" {
			if b.tlsPort, err = freePort(); err != nil {
				break
			}
		}
		if err = b.writeConfig(); err != nil {
			break
		}
		if err = b.start(); err == nil {
			return b
		}
	}
	t.Fatalf("mosquittotest: start mosquitto: %v\nlog:\n%s", err, b.Log())
	return nil
}

// URL is the plain listener, tcp://127.0.0.1:PORT.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Addr is the plain listener's host:port.
func (b *Broker) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// TLSURL is the TLS listener, ssl://127.0.0.1:PORT, or "" without Options.TLS.
func (b *Broker) TLSURL() string {
	if b.tlsPort == 0 {
		return ""
	}
	return "ssl://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(b.tlsPort))
}

// HQURL is HQ's listener of a Profile broker, ssl://127.0.0.1:PORT, or "".
func (b *Broker) HQURL() string {
	if b.hqPort == 0 {
		return ""
	}
	return "ssl://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(b.hqPort))
}

// Dir is the broker's private directory (config, log, persistence, PKI).
func (b *Broker) Dir() string { return b.dir }

// Log returns mosquitto's log so far.
func (b *Broker) Log() string {
	data, _ := os.ReadFile(b.logPath)
	return string(data)
}

// Stop stops mosquitto cleanly (SIGTERM, which writes the persistence
// file), killing it after 10 s. Stopping a stopped broker does nothing.
func (b *Broker) Stop() { b.stop(syscall.SIGTERM) }

// Kill stops mosquitto with SIGKILL, like a crash: nothing is saved that
// was not saved before.
func (b *Broker) Kill() { b.stop(syscall.SIGKILL) }

// Restart stops mosquitto cleanly and starts it again on the same ports
// with the same persistence, so persistent sessions, their subscriptions,
// queued QoS 1 messages and retained messages survive.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	if err := b.start(); err != nil {
		b.t.Fatalf("mosquittotest: restart mosquitto: %v\nlog:\n%s", err, b.Log())
	}
}

func (b *Broker) stop(sig syscall.Signal) {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func (b *Broker) start() error {
	logf, err := os.OpenFile(b.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = b.dir
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: %w", b.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	b.mu.Lock()
	b.cmd, b.exited = cmd, exited
	b.mu.Unlock()

	var addrs []string
	for _, port := range []int{b.port, b.tlsPort, b.hqPort} {
		if port != 0 {
			addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				b.mu.Lock()
				b.cmd = nil
				b.mu.Unlock()
				return fmt.Errorf("mosquitto exited before listening on %s", addr)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				b.stop(syscall.SIGKILL)
				return fmt.Errorf("mosquitto not listening on %s after 10 s", addr)
			}
		}
	}
	return nil
}

func (b *Broker) writeConfig() error {
	if b.opts.Profile != "" {
		return b.writeProfileConfig()
	}
	var c strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&c, format+"\n", a...) }
	p("# written by internal/mosquittotest")
	if os.Geteuid() == 0 {
		// Run as root, mosquitto 2 drops to user "mosquitto", which
		// cannot read this root-owned 0700 temp dir.
		p("user root")
	}
	p("per_listener_settings false")
	p("persistence true")
	p("persistence_location %s/", filepath.Join(b.dir, "data"))
	p("log_dest stderr")
	p("log_type error")
	p("log_type warning")
	p("log_type notice")
	p("log_type information")
	p("connection_messages true")
	p("log_timestamp_format %%H:%%M:%%S")
	if len(b.opts.Users) > 0 {
		pw, err := passwordFile(b.opts.Users)
		if err != nil {
			return err
		}
		path := filepath.Join(b.dir, "passwd")
		if err := os.WriteFile(path, pw, 0o600); err != nil {
			return err
		}
		p("allow_anonymous false")
		p("password_file %s", path)
	} else {
		p("allow_anonymous true")
	}
	if b.opts.ACL {
		path := filepath.Join(b.dir, "acl")
		acl := fmt.Sprintf("# each terminal (username = serial) only its own topics\npattern readwrite pos/v1/%%u/#\n\nuser %s\ntopic readwrite pos/v1/#\n", b.opts.HQUser)
		if err := os.WriteFile(path, []byte(acl), 0o600); err != nil {
			return err
		}
		p("acl_file %s", path)
	}
	p("")
	p("listener %d 127.0.0.1", b.port)
	if b.pki != nil {
		p("")
		p("listener %d 127.0.0.1", b.tlsPort)
		p("cafile %s", b.pki.caFile)
		p("certfile %s", b.pki.serverCert)
		p("keyfile %s", b.pki.serverKey)
		p("require_certificate true")
		p("use_identity_as_username false")
	}
	if b.opts.ExtraConfig != "" {
		p("")
		p("%s", b.opts.ExtraConfig)
	}
	return os.WriteFile(b.conf, []byte(c.String()), 0o600)
}

// passwordFile writes mosquitto 2's "$7$" format: PBKDF2-SHA512, 101
// iterations, 12-byte salt, 64-byte hash, both base64 (what mosquitto_passwd
// writes), so no external tool is needed.
func passwordFile(users map[string]string) ([]byte, error) {
	names := make([]string, 0, len(users))
	for u := range users {
		if u == "" || strings.ContainsAny(u, ":\n") {
			return nil, fmt.Errorf("bad username %q", u)
		}
		names = append(names, u)
	}
	sort.Strings(names)
	var out bytes.Buffer
	for _, u := range names {
		salt := make([]byte, 12)
		if _, err := rand.Read(salt); err != nil {
			return nil, err
		}
		const iter = 101
		hash, err := pbkdf2.Key(sha512.New, users[u], salt, iter, 64)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&out, "%s:$7$%d$%s$%s\n", u, iter,
			base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(hash))
	}
	return out.Bytes(), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var installOnce sync.Once

// findMosquitto looks for the broker binary; as root with apt-get it
// installs the Debian package once (make test normally does that first).
func findMosquitto(t testing.TB) string {
	t.Helper()
	look := func() string {
		if p, err := exec.LookPath("mosquitto"); err == nil {
			return p
		}
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/local/bin/mosquitto"} {
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p
			}
		}
		return ""
	}
	if p := look(); p != "" {
		return p
	}
	var installErr error
	installOnce.Do(func() {
		apt, err := exec.LookPath("apt-get")
		if err != nil || os.Geteuid() != 0 {
			installErr = errors.New("not root or no apt-get")
			return
		}
		cmd := exec.Command(apt, "install", "-y", "mosquitto")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			installErr = fmt.Errorf("apt-get install -y mosquitto: %v\n%s", err, out)
		}
	})
	if p := look(); p != "" {
		return p
	}
	t.Fatalf("mosquittotest: the mosquitto broker is required and was not found in PATH or /usr/sbin "+
		"(install the Debian package: apt-get install -y mosquitto; make test does this): %v", installErr)
	return ""
}

// writeProfileConfig writes Options.Profile with its machine-specific
// values mapped into the harness (see Options.Profile).
func (b *Broker) writeProfileConfig() error {
	src, err := os.ReadFile(b.opts.Profile)
	if err != nil {
		return err
	}
	profileDir := filepath.Dir(b.opts.Profile)
	var c strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&c, format+"\n", a...) }
	p("# %s, mapped by internal/mosquittotest", b.opts.Profile)
	if os.Geteuid() == 0 {
		p("user root") // see writeConfig
	}
	p("log_dest stderr")
	listeners := []int{b.tlsPort, b.hqPort}
	for n, line := range strings.Split(string(src), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			p("%s", line)
			continue
		}
		switch f[0] {
		case "log_dest":
			continue
		case "persistence_location":
			line = "persistence_location " + filepath.Join(b.dir, "data") + "/"
		case "listener":
			if len(listeners) == 0 {
				return fmt.Errorf("%s:%d: more than two listeners", b.opts.Profile, n+1)
			}
			line = fmt.Sprintf("listener %d 127.0.0.1", listeners[0])
			listeners = listeners[1:]
		case "cafile":
			line = "cafile " + b.pki.caFile
		case "certfile":
			line = "certfile " + b.pki.serverCert
		case "keyfile":
			line = "keyfile " + b.pki.serverKey
		case "acl_file":
			if len(f) != 2 {
				return fmt.Errorf("%s:%d: acl_file without a path", b.opts.Profile, n+1)
			}
			acl, err := os.ReadFile(filepath.Join(profileDir, filepath.Base(f[1])))
			if err != nil {
				return fmt.Errorf("%s:%d: %w", b.opts.Profile, n+1, err)
			}
			path := filepath.Join(b.dir, filepath.Base(f[1]))
			if err := os.WriteFile(path, acl, 0o600); err != nil {
				return err
			}
			line = "acl_file " + path
		}
		p("%s", line)
	}
	if len(listeners) != 0 {
		return fmt.Errorf("%s: want two listeners (terminals, HQ)", b.opts.Profile)
	}
	return os.WriteFile(b.conf, []byte(c.String()), 0o600)
}
