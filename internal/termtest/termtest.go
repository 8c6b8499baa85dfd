// Package termtest runs real posagent terminals for tests outside
// cmd/posagentd (the back office's browser tests): the posagentd,
// acquirer-sim and hqd binaries built once per test binary, the acquirer
// simulator as a process, and terminals driven as a person would — keys on
// the console's stdin, screens parsed from its stdout, swipes written to a
// real pty the daemon opens as its card reader. It is cmd/posagentd's
// end-to-end harness (harness_test.go, remote_harness_test.go) in a
// package of its own, so other packages can start the same terminals.
package termtest

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/posagent/posagent/iso8583/hostsim"
)

// Wait bounds one step of a terminal on a busy machine (two cores shared
// by several test binaries): a screen, a round trip to the host.
const Wait = 30 * time.Second

// Test cards. Their PANs must never appear in clear in a log, a receipt or
// a store file (CheckNoClearPAN).
const (
	PANA    = "6222021234567890123"
	Track2A = ";6222021234567890123=25122010000000000?"
	PANB    = "4761739001010119"
	Track2B = ";4761739001010119=22122011758928889?"
)

var testPANs = []string{PANA, PANB}

// TechPassword is every test terminal's technician password.
const TechPassword = "8888"

var (
	buildOnce sync.Once
	buildErr  error
	// BinDir holds the binaries built for this test binary; tests build
	// their own variants (a fault-injecting posagentd, hqctl) beside them.
	BinDir string
	// ModuleRoot is the repository's root.
	ModuleRoot string
	// Binaries built for this test binary.
	Posagentd, AcquirerSim, HQD string
)

// Build builds posagentd, acquirer-sim and hqd once per test binary.
func Build(t testing.TB) {
	t.Helper()
	buildOnce.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			buildErr = err
			return
		}
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				ModuleRoot = dir
				break
			}
			if filepath.Dir(dir) == dir {
				buildErr = errors.New("termtest: no go.mod above " + wd)
				return
			}
		}
		if BinDir, err = binaryDir(); err != nil {
			buildErr = err
			return
		}
		Posagentd, AcquirerSim, HQD = filepath.Join(BinDir, "posagentd"), filepath.Join(BinDir, "acquirer-sim"), filepath.Join(BinDir, "hqd")
		builds := []struct{ out, pkg string }{{AcquirerSim, "./cmd/acquirer-sim"}, {HQD, "./cmd/hqd"}}
		// POSAGENT_TEST_DAEMON runs the tests with another posagentd (an
		// ARM build under qemu-user, another version), as cmd/posagentd's
		// end-to-end tests do.
		if bin := os.Getenv("POSAGENT_TEST_DAEMON"); bin != "" {
			if Posagentd, err = filepath.Abs(bin); err != nil {
				buildErr = err
				return
			}
		} else {
			builds = append(builds, struct{ out, pkg string }{Posagentd, "./cmd/posagentd"})
		}
		for _, b := range builds {
			cmd := exec.Command("go", "build", "-trimpath", "-o", b.out, b.pkg)
			cmd.Dir = ModuleRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// binaryDir is this process's directory for the built binaries, under
// one parent per user; directories of processes that no longer run are
// removed first (a test binary ends with os.Exit, so it cannot clean up
// after itself).
func binaryDir() (string, error) {
	parent := filepath.Join(os.TempDir(), fmt.Sprintf("posagent-termtest-%d", os.Getuid()))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", err
	}
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(filepath.Join(parent, e.Name()))
		}
	}
	dir := filepath.Join(parent, strconv.Itoa(os.Getpid()))
	return dir, os.MkdirAll(dir, 0o700)
}

// SyncBuffer is a bytes.Buffer safe for a process's writer and a reader.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail is the last n bytes of s, for failure messages.
func Tail(s string, n int) string { return s[max(0, len(s)-n):] }

// Acquirer is a running acquirer-sim.
type Acquirer struct {
	cmd        *exec.Cmd
	Addr       string // ISO 8583 listener
	Control    string // HTTP control API
	LedgerFile string // where it keeps its ledger
	Stderr     *SyncBuffer
	done       chan struct{}
}

// StartAcquirer starts acquirer-sim on loopback with its control API and
// a ledger, plus extra flags (--keys FILE for activation), and stops it
// when the test ends.
func StartAcquirer(t testing.TB, extra ...string) *Acquirer {
	t.Helper()
	Build(t)
	s := &Acquirer{LedgerFile: filepath.Join(t.TempDir(), "ledger.json"), Stderr: &SyncBuffer{}, done: make(chan struct{})}
	args := append([]string{"--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--ledger", s.LedgerFile, "-v"}, extra...)
	s.cmd = exec.Command(AcquirerSim, args...)
	s.cmd.Stderr = s.Stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start acquirer-sim: %v", err)
	}
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(Wait):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	deadline := time.After(Wait)
	for s.Addr == "" || s.Control == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("acquirer-sim exited before listening: %s", s.Stderr.String())
			}
			if a, ok := strings.CutPrefix(l, "listening on "); ok {
				s.Addr = a
			}
			if a, ok := strings.CutPrefix(l, "control on "); ok {
				s.Control = a
			}
		case <-deadline:
			t.Fatalf("acquirer-sim did not print its addresses: %s", s.Stderr.String())
		}
	}
	return s
}

// InProcessAcquirer is an Acquirer for a host served by the test process
// itself (hostsim.Host with its control handler): it runs as long as the
// test; logs is where the host logs.
func InProcessAcquirer(addr, control string, logs *SyncBuffer) *Acquirer {
	return &Acquirer{Addr: addr, Control: control, Stderr: logs, done: make(chan struct{})}
}

// Ledger reads the host's ledger through the control API.
func (s *Acquirer) Ledger(t testing.TB) hostsim.Ledger {
	t.Helper()
	resp, err := http.Get("http://" + s.Control + "/ledger")
	if err != nil {
		t.Fatalf("GET /ledger: %v; acquirer-sim: %s", err, s.State())
	}
	defer resp.Body.Close()
	var l hostsim.Ledger
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatalf("GET /ledger: %v", err)
	}
	return l
}

// State describes the simulator process for failure messages.
func (s *Acquirer) State() string {
	select {
	case <-s.done:
		return fmt.Sprintf("exited (%v); stderr tail:\n%s", s.cmd.ProcessState, Tail(s.Stderr.String(), 3000))
	default:
		return "running"
	}
}

// PostFaults replaces the host's faults through the control API.
func (s *Acquirer) PostFaults(t testing.TB, f hostsim.Faults) {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+s.Control+"/faults", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST /faults: %v; acquirer-sim: %s", err, s.State())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /faults %s: %s %s", b, resp.Status, body)
	}
}

// Screens splits a console stream into screens: each starts with
// ESC[2J ESC[H. The last one may still be growing.
type Screens struct {
	mu      sync.Mutex
	cond    *sync.Cond
	raw     []byte
	screens []string
	eof     bool
}

const clearHomeSeq = "\x1b[2J\x1b[H"

// NewScreens is an empty stream; Feed fills it.
func NewScreens() *Screens {
	s := &Screens{}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// Feed copies r into the stream until EOF.
func (s *Screens) Feed(r io.Reader) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		s.mu.Lock()
		s.raw = append(s.raw, buf[:n]...)
		s.split()
		if err != nil {
			s.eof = true
		}
		s.cond.Broadcast()
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// split moves every complete screen out of raw; the one in progress stays
// as the last element of screens.
func (s *Screens) split() {
	for {
		i := bytes.Index(s.raw, []byte(clearHomeSeq))
		if i < 0 {
			break
		}
		if i > 0 && len(s.screens) > 0 {
			s.screens[len(s.screens)-1] += string(s.raw[:i])
		}
		s.screens = append(s.screens, "")
		s.raw = s.raw[i+len(clearHomeSeq):]
	}
	// Keep a possible partial escape sequence in raw; the rest belongs to
	// the current screen.
	keep := 0
	for k := len(clearHomeSeq) - 1; k > 0; k-- {
		if bytes.HasSuffix(s.raw, []byte(clearHomeSeq[:k])) {
			keep = k
			break
		}
	}
	if len(s.screens) > 0 && len(s.raw) > keep {
		s.screens[len(s.screens)-1] += string(s.raw[:len(s.raw)-keep])
		s.raw = s.raw[len(s.raw)-keep:]
	}
}

// Count is how many screens began so far.
func (s *Screens) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.screens)
}

// All is a copy of every screen so far.
func (s *Screens) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.screens)
}

// Tail returns the last n screens, one line each, for failure messages.
func (s *Screens) Tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for i := max(0, len(s.screens)-n); i < len(s.screens); i++ {
		fmt.Fprintf(&b, "  #%d | %s\n", i, strings.ReplaceAll(s.screens[i], "\r\n", " | "))
	}
	return b.String()
}

// WaitLatest waits until the latest screen, numbered from or later,
// satisfies ok, and returns it; false when the stream ended or d passed.
func (s *Screens) WaitLatest(from int, ok func(screen string) bool, d time.Duration) (string, bool) {
	deadline := time.Now().Add(d)
	timer := time.AfterFunc(d, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if n := len(s.screens); n > 0 && n-1 >= from {
			if last := s.screens[n-1]; ok(last) {
				return last, true
			}
		}
		if s.eof || !time.Now().Before(deadline) {
			return "", false
		}
		s.cond.Wait()
	}
}

// ContainsAny is a WaitLatest predicate: the screen holds one of words.
func ContainsAny(words ...string) func(string) bool {
	return func(screen string) bool {
		for _, w := range words {
			if strings.Contains(screen, w) {
				return true
			}
		}
		return false
	}
}

// TermOptions shape a remote test terminal.
type TermOptions struct {
	Serial   string
	Broker   string            // tcp://… (the [mqtt] broker)
	HQKeys   map[string][]byte // kid → Ed25519 public key, trusted as ops keys (factory-init --hq-key)
	RootKeys map[string][]byte // kid → key trusted as root keys (--hq-root-key)
	Require  map[string]int    // --require TYPE=N (signatures a command type needs)
	Timeout  string            // acquirer.timeout, default 5s
	// Registered runs after factory-init, before the daemon starts: HQ
	// learns the device key (Term.Registry) before the terminal first
	// speaks, as a factory's registry reaches HQ before the unit ships.
	Registered func(*Term)
}

// Term is one terminal under test: data_dir, config, the daemon process
// and its console, card reader pty and printer file.
type Term struct {
	t        testing.TB
	Serial   string
	Dir      string
	DataDir  string
	Config   string
	Printer  string
	Registry []byte            // factory-init's output line (hqd register reads it)
	DevPub   ed25519.PublicKey // the device key HQ verifies acks with

	ptyMaster, ptySlave *os.File

	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	scr    *Screens
	mark   int
	done   chan struct{}
	exitSt int
	logs   []*SyncBuffer
}

// NewTerm factory-inits a terminal (not activated) with the given HQ keys
// and policy and starts its daemon, waiting for NOT ACTIVATED. It is
// stopped when the test ends, and its logs, printer and store are checked
// for clear PANs.
func NewTerm(t testing.TB, o TermOptions) *Term {
	t.Helper()
	Build(t)
	if o.Timeout == "" {
		o.Timeout = "5s"
	}
	dir := t.TempDir()
	h := &Term{t: t, Serial: o.Serial, Dir: dir, DataDir: filepath.Join(dir, "data"),
		Config: filepath.Join(dir, "pos.toml"), Printer: filepath.Join(dir, "printer.txt")}
	var err error
	if h.ptyMaster, h.ptySlave, err = pty.Open(); err != nil {
		t.Fatalf("open pty: %v", err)
	}
	// Drain what the line discipline echoes before the daemon puts the
	// slave in raw mode, so a write to the master never blocks.
	go func() { _, _ = io.Copy(io.Discard, h.ptyMaster) }()
	t.Cleanup(func() { h.ptySlave.Close(); h.ptyMaster.Close() })
	cfg := fmt.Sprintf(`data_dir = %q
log_level = "debug"

[hal]
kind = "sim"
console = "stdio"
card_reader = %q
printer = %q
reboot = "exit"

[mqtt]
broker = %q

[acquirer]
timeout = %q
`, h.DataDir, h.ptySlave.Name(), h.Printer, o.Broker, o.Timeout)
	if err := os.WriteFile(h.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	pwd := filepath.Join(dir, "techpwd")
	if err := os.WriteFile(pwd, []byte(TechPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"factory-init", "--data-dir", h.DataDir, "--serial", o.Serial, "--tech-pwd-file", pwd}
	for _, kid := range sortedKeys(o.HQKeys) {
		args = append(args, "--hq-key", kid+"="+base64.StdEncoding.EncodeToString(o.HQKeys[kid]))
	}
	for _, kid := range sortedKeys(o.RootKeys) {
		args = append(args, "--hq-root-key", kid+"="+base64.StdEncoding.EncodeToString(o.RootKeys[kid]))
	}
	for _, typ := range sortedKeys(o.Require) {
		args = append(args, "--require", fmt.Sprintf("%s=%d", typ, o.Require[typ]))
	}
	out, err := exec.Command(Posagentd, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("posagentd %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("factory-init: %v", err)
	}
	var fi struct {
		Ed25519Pub []byte `json:"ed25519_pub"`
	}
	if err := json.Unmarshal(out, &fi); err != nil || len(fi.Ed25519Pub) != ed25519.PublicKeySize {
		t.Fatalf("factory-init output %q: %v", out, err)
	}
	h.Registry, h.DevPub = append(bytes.TrimSpace(out), '\n'), fi.Ed25519Pub
	if o.Registered != nil {
		o.Registered(h)
	}
	t.Cleanup(func() {
		if h.Running() {
			h.Stop()
		}
		h.CheckNoClearPAN()
	})
	h.Start()
	h.WaitScreen("NOT ACTIVATED", Wait)
	return h
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Running reports whether the daemon runs.
func (h *Term) Running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done == nil {
		return false
	}
	select {
	case <-h.done:
		return false
	default:
		return true
	}
}

// Start starts the daemon on the terminal's data_dir.
func (h *Term) Start() {
	h.t.Helper()
	if h.Running() {
		h.t.Fatal("Start: daemon already running")
	}
	cmd := exec.Command(Posagentd, "--config", h.Config)
	logs := &SyncBuffer{}
	cmd.Stderr = logs
	stdin, err := cmd.StdinPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("start posagentd: %v", err)
	}
	scr, done := NewScreens(), make(chan struct{})
	h.mu.Lock()
	h.logs = append(h.logs, logs)
	h.cmd, h.stdin, h.scr, h.mark, h.done = cmd, stdin, scr, 0, done
	h.mu.Unlock()
	go func() {
		scr.Feed(stdout)
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		h.mu.Lock()
		h.exitSt = code
		h.mu.Unlock()
		close(done)
	}()
}

// Stop sends SIGTERM and requires exit status 0.
func (h *Term) Stop() {
	h.t.Helper()
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	if code := h.WaitExit(Wait); code != 0 {
		h.t.Errorf("posagentd %s exit status %d after SIGTERM, want 0; stderr:\n%s", h.Serial, code, Tail(h.lastLog(), 3000))
	}
}

// WaitExit waits for the daemon to exit on its own (a reboot is exit
// status 3 with reboot = "exit") and returns its status.
func (h *Term) WaitExit(d time.Duration) int {
	h.t.Helper()
	select {
	case <-h.done:
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.exitSt
	case <-time.After(d):
		_ = h.cmd.Process.Kill()
		<-h.done
		h.t.Fatalf("posagentd %s still running after %v; last screens:\n%s\nlog tail:\n%s", h.Serial, d, h.scr.Tail(6), Tail(h.lastLog(), 3000))
		return -1
	}
}

func (h *Term) lastLog() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.logs) == 0 {
		return ""
	}
	return h.logs[len(h.logs)-1].String()
}

// Logs returns the stderr of every daemon run so far.
func (h *Term) Logs() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, l := range h.logs {
		b.WriteString(l.String())
	}
	return b.String()
}

// Keys types on the keypad: digits, "\r" Enter, "x" Cancel.
func (h *Term) Keys(s string) {
	h.t.Helper()
	h.mark = h.scr.Count()
	if _, err := io.WriteString(h.stdin, s); err != nil {
		h.t.Fatalf("keys %q: %v", s, err)
	}
}

// Swipe writes one track-2 line to the card reader pty.
func (h *Term) Swipe(track2 string) {
	h.t.Helper()
	h.mark = h.scr.Count()
	if _, err := io.WriteString(h.ptyMaster, track2+"\r\n"); err != nil {
		h.t.Fatalf("swipe: %v", err)
	}
}

// WaitScreen waits until the latest screen since the last input contains
// word, and returns it.
func (h *Term) WaitScreen(word string, d time.Duration) string {
	h.t.Helper()
	s, ok := h.waitAny([]string{word}, d)
	if !ok {
		h.t.Fatalf("%s: no screen with %q within %v; last screens:\n%s\nlog tail:\n%s", h.Serial, word, d, h.scr.Tail(8), Tail(h.lastLog(), 2000))
	}
	return s
}

// WaitAny waits for a screen holding one of words; it returns the screen
// and the word.
func (h *Term) WaitAny(d time.Duration, words ...string) (string, string) {
	h.t.Helper()
	s, ok := h.waitAny(words, d)
	if !ok {
		h.t.Fatalf("%s: no screen with one of %q within %v; last screens:\n%s", h.Serial, words, d, h.scr.Tail(8))
	}
	for _, w := range words {
		if strings.Contains(s, w) {
			return s, w
		}
	}
	return s, ""
}

func (h *Term) waitAny(words []string, d time.Duration) (string, bool) {
	return h.scr.WaitLatest(h.mark, ContainsAny(words...), d)
}

// Activate types an activation code as a technician does (1 ACTIVATE,
// technician password, code), swipes the settlement card once HQ's
// provision arrived, and waits for MAIN MENU.
func (h *Term) Activate(code string) string {
	h.t.Helper()
	h.WaitScreen("NOT ACTIVATED", Wait)
	h.Keys("1")
	h.WaitScreen("TECH PWD", Wait)
	h.Keys(TechPassword + "\r")
	h.WaitScreen("ACTIVATION CODE", Wait)
	h.Keys(code + "\r")
	h.WaitScreen("SWIPE SETTLEMENT CARD", 2*Wait)
	h.Swipe(Track2B)
	s := h.WaitScreen("ACTIVATED", Wait)
	h.Keys("\r")
	h.WaitScreen("MAIN MENU", Wait)
	return s
}

// Sale runs MAIN MENU 1, the amount in fen, the swipe, and waits for
// APPROVED, then goes back to MAIN MENU.
func (h *Term) Sale(fen int64) {
	h.t.Helper()
	h.WaitScreen("MAIN MENU", Wait)
	h.Keys("1")
	h.WaitScreen("AMOUNT", Wait)
	h.Keys(fmt.Sprintf("%d\r", fen))
	h.WaitScreen("SWIPE CARD", Wait)
	h.Swipe(Track2A)
	if s, w := h.WaitAny(Wait, "APPROVED", "DECLINED", "ERROR"); w != "APPROVED" {
		h.t.Fatalf("%s: sale of %d: %q", h.Serial, fen, s)
	}
	h.Keys("\r")
	h.WaitScreen("MAIN MENU", Wait)
}

// PrinterText is everything printed so far.
func (h *Term) PrinterText() string {
	b, err := os.ReadFile(h.Printer)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		h.t.Fatal(err)
	}
	return string(b)
}

// CheckNoClearPAN asserts that no test PAN is in clear in the daemon's
// logs, the printer file or any file under data_dir.
func (h *Term) CheckNoClearPAN() {
	h.t.Helper()
	sources := map[string]string{"posagentd stderr": h.Logs(), "printer file": h.PrinterText()}
	_ = filepath.Walk(h.DataDir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err == nil {
			sources[path] = string(b)
		}
		return nil
	})
	for name, text := range sources {
		for _, pan := range testPANs {
			if i := strings.Index(text, pan); i >= 0 {
				h.t.Errorf("clear PAN in %s of %s", name, h.Serial)
			}
		}
	}
}
