package main

// The end-to-end harness: the real posagentd and acquirer-sim binaries,
// built once per test binary, driven as a person would: keys on the
// console's stdin, screens parsed from its stdout, swipes written to a real
// pty that the daemon opens as its card reader, the host's ledger and
// faults through acquirer-sim's HTTP control API.

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/posagent/posagent/internal/termtest"
	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/terminal/i18n"
)

// waitTimeout bounds every wait of the harness: generous, because the
// machine running the tests has two busy cores.
const waitTimeout = 10 * time.Second

// Test cards. The PANs must never appear in clear in a log, a receipt or a
// raw store file.
const (
	panA    = "6222021234567890123"
	track2A = ";6222021234567890123=25122010000000000?"
	panB    = "4761739001010119"
	track2B = ";4761739001010119=22122011758928889?"
)

var testPANs = []string{panA, panB}

// The binaries and the acquirer simulator are internal/termtest's: the
// back office's tests start the same terminals.
var (
	binDir     string // set by buildBinaries
	daemonBin  string
	acqSimBin  string
	moduleRoot string
)

// buildBinaries builds posagentd and acquirer-sim once per test binary
// (lazily, so the unit tests and benchmarks do not pay for it).
// POSAGENT_TEST_DAEMON (`make test-arm`) names another posagentd: the
// harness stays native, the agent is the ARMv7 build under qemu-arm-static.
func buildBinaries(t testing.TB) {
	t.Helper()
	termtest.Build(t)
	binDir, daemonBin, acqSimBin, moduleRoot = termtest.BinDir, termtest.Posagentd, termtest.AcquirerSim, termtest.ModuleRoot
}

// daemonCommand runs the posagentd under test, under the emulator named by
// POSAGENT_TEST_DAEMON_WRAPPER when set (qemu-arm-static for the ARMv7
// build; qemu-user runs the program in its own process, so kill -9 of the
// process is a power cut of the agent).
func daemonCommand(args ...string) *exec.Cmd {
	if w := os.Getenv("POSAGENT_TEST_DAEMON_WRAPPER"); w != "" {
		return exec.Command(w, append([]string{daemonBin}, args...)...)
	}
	return exec.Command(daemonBin, args...)
}

type (
	syncBuffer   = termtest.SyncBuffer
	acqSim       = termtest.Acquirer
	screenStream = termtest.Screens
)

// startAcqSim starts acquirer-sim on loopback with the control API and a
// ledger file (extra flags: --keys for activation), and stops it when the
// test ends.
func startAcqSim(t testing.TB, extra ...string) *acqSim {
	t.Helper()
	buildBinaries(t)
	return termtest.StartAcquirer(t, extra...)
}

func tail(s string, n int) string { return termtest.Tail(s, n) }

// Term is one terminal under test: data_dir, config, the daemon process
// and its console, card reader pty and printer file.
type Term struct {
	t       testing.TB
	Sim     *acqSim
	Dir     string
	DataDir string
	Config  string
	Printer string
	TID     string
	// Lang is the terminal's [ui] lang: the helpers wait for its words.
	Lang i18n.Lang

	ptyMaster, ptySlave *os.File
	// keypad, when set, types the keys instead of the console's stdin
	// (an evdev keypad on a FIFO).
	keypad func(keys string) error

	// Bin, when set, is the posagentd binary Start runs (the disk-full
	// test's fault-injection build); Env is added to its environment.
	Bin string
	Env []string

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	scr    *screenStream
	mark   int // screens that had started before the last input
	done   chan struct{}
	exitSt int

	logs []*syncBuffer // stderr of every daemon run
}

// TermOptions tune a terminal.
type TermOptions struct {
	Timeout string // acquirer.timeout, default "2s"
	TID     string // default 12345678
	Lang    string // [ui] lang, default "en"
	// HAL sets [hal] keys over the simulator's (kind, console, card_reader,
	// printer, reboot): kind = "linux" with an evdev keypad, a usblp
	// printer, a framebuffer file...
	HAL map[string]string
}

// newTermFiles lays out a terminal's files in a temp dir: data_dir, the
// printer file, a pty pair for the card reader, the tech password file
// ("8888"), and pos.toml for the simulator HAL with reboot = "exit".
// mqtt is the body of the [mqtt] section ("" for none).
func newTermFiles(t testing.TB, sim *acqSim, tid, mqtt, timeout string) *Term {
	t.Helper()
	return newTermFilesWith(t, sim, TermOptions{TID: tid, Timeout: timeout}, mqtt)
}

// newTermFilesWith is newTermFiles with the language and [hal] keys of o.
func newTermFilesWith(t testing.TB, sim *acqSim, o TermOptions, mqtt string) *Term {
	t.Helper()
	tid, timeout := o.TID, o.Timeout
	if timeout == "" {
		timeout = "2s"
	}
	lang, err := i18n.ParseLang(o.Lang)
	if o.Lang == "" {
		lang, err = i18n.EN, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := &Term{t: t, Sim: sim, Dir: dir, DataDir: filepath.Join(dir, "data"),
		Config: filepath.Join(dir, "pos.toml"), Printer: filepath.Join(dir, "printer.txt"), TID: tid, Lang: lang}
	if h.ptyMaster, h.ptySlave, err = pty.Open(); err != nil {
		t.Fatalf("open pty: %v", err)
	}
	// Drain whatever the line discipline echoes back before the daemon
	// puts the slave in raw mode, so a write to the master never blocks.
	go io.Copy(io.Discard, h.ptyMaster)
	t.Cleanup(func() { h.ptySlave.Close(); h.ptyMaster.Close() })
	if mqtt != "" {
		mqtt = "\n[mqtt]\n" + mqtt
	}
	hal := map[string]string{"kind": "sim", "console": "stdio", "card_reader": h.ptySlave.Name(),
		"printer": h.Printer, "reboot": "exit"}
	for k, v := range o.HAL {
		hal[k] = v
	}
	var halLines []string
	for k, v := range hal {
		halLines = append(halLines, fmt.Sprintf("%s = %q", k, v))
	}
	sort.Strings(halLines)
	cfg := fmt.Sprintf(`data_dir = %q
log_level = "debug"

[hal]
%s

[ui]
lang = %q
%s
[acquirer]
timeout = %q
`, h.DataDir, strings.Join(halLines, "\n"), lang, mqtt, timeout)
	if err := os.WriteFile(h.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "techpwd"), []byte("8888\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

// NewTerm factory-inits and provisions a terminal against sim and starts
// its daemon. The daemon is stopped (SIGTERM, exit 0 expected) when the
// test ends, and every log, receipt and store file is checked for clear
// PANs.
func NewTerm(t testing.TB, sim *acqSim, o TermOptions) *Term {
	t.Helper()
	buildBinaries(t)
	if o.Timeout == "" {
		o.Timeout = "2s"
	}
	if o.TID == "" {
		o.TID = "12345678"
	}
	h := newTermFilesWith(t, sim, o, "")
	dir := h.Dir

	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pwdFile := filepath.Join(dir, "techpwd")
	h.runCLI("factory-init", "--data-dir", h.DataDir, "--serial", "PA-E2E-"+o.TID,
		"--hq-key", "hq-1="+base64.StdEncoding.EncodeToString(pub), "--tech-pwd-file", pwdFile)
	prov := map[string]any{
		"tid": o.TID, "mid": "123456789012345", "merchant_name": "E2E SHOP",
		"acquirer": map[string]any{"addr": sim.Addr, "tpdu": "6000030000"},
		"tmk":      hostsim.DefaultTMK,
	}
	pb, _ := json.Marshal(prov)
	provFile := filepath.Join(dir, "prov.json")
	if err := os.WriteFile(provFile, pb, 0o600); err != nil {
		t.Fatal(err)
	}
	h.runCLI("provision", "--config", h.Config, "--file", provFile)

	t.Cleanup(func() {
		if h.running() {
			h.Stop()
		}
		h.checkNoClearPAN()
	})
	h.Start()
	return h
}

func (h *Term) runCLI(args ...string) {
	h.t.Helper()
	out, err := daemonCommand(args...).CombinedOutput()
	if err != nil {
		h.t.Fatalf("posagentd %s: %v\n%s", args[0], err, out)
	}
}

func (h *Term) running() bool {
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

// Start starts the daemon on the terminal's data_dir and waits for the
// first screen.
func (h *Term) Start() {
	h.t.Helper()
	if h.running() {
		h.t.Fatal("Start: daemon already running")
	}
	cmd := daemonCommand("--config", h.Config)
	if h.Bin != "" {
		cmd = exec.Command(h.Bin, "--config", h.Config)
	}
	if len(h.Env) > 0 {
		cmd.Env = append(os.Environ(), h.Env...)
	}
	logs := &syncBuffer{}
	h.logs = append(h.logs, logs)
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
	h.cmd, h.stdin, h.scr, h.mark = cmd, stdin, termtest.NewScreens(), 0
	h.done = make(chan struct{})
	go func(s *screenStream, done chan struct{}) {
		s.Feed(stdout)
		err := cmd.Wait()
		h.exitSt = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			h.exitSt = ee.ExitCode()
		} else if err != nil {
			h.exitSt = -1
		}
		close(done)
	}(h.scr, h.done)
}

// Restart starts the daemon again on the same data_dir (after Kill9 or
// Stop) and waits for MAIN MENU.
func (h *Term) Restart() {
	h.t.Helper()
	h.Start()
	h.mark = 0
	h.WaitScreen(h.W(i18n.MainMenu), waitTimeout)
}

// W is the word of id in the terminal's language: what its screens show.
func (h *Term) W(id i18n.Msg) string { return h.Lang.T(id) }

// Kill9 kills the daemon with SIGKILL, as a power cut would.
func (h *Term) Kill9() {
	h.t.Helper()
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.waitExit()
}

// Stop sends SIGTERM and requires exit status 0.
func (h *Term) Stop() {
	h.t.Helper()
	h.cmd.Process.Signal(syscall.SIGTERM)
	h.waitExit()
	if h.exitSt != 0 {
		h.t.Errorf("posagentd exit status %d after SIGTERM, want 0; stderr:\n%s", h.exitSt, h.lastLog())
	}
}

func (h *Term) waitExit() {
	h.t.Helper()
	select {
	case <-h.done:
	case <-time.After(waitTimeout):
		h.cmd.Process.Kill()
		<-h.done
		h.t.Errorf("posagentd did not exit within %v", waitTimeout)
	}
}

func (h *Term) lastLog() string {
	if len(h.logs) == 0 {
		return ""
	}
	return h.logs[len(h.logs)-1].String()
}

// Logs returns the stderr of every daemon run so far.
func (h *Term) Logs() string {
	var b strings.Builder
	for _, l := range h.logs {
		b.WriteString(l.String())
	}
	return b.String()
}

// Keys types on the keypad: digits, "\r" Enter, "x" Cancel, "\x7f" Clear.
func (h *Term) Keys(s string) {
	h.t.Helper()
	h.mark = h.scr.Count()
	if h.keypad != nil {
		if err := h.keypad(s); err != nil {
			h.t.Fatalf("keys %q: %v", s, err)
		}
		return
	}
	if _, err := io.WriteString(h.stdin, s); err != nil {
		h.t.Fatalf("keys %q: %v", s, err)
	}
}

// Swipe writes one track-2 line to the card reader pty, as a reader does.
func (h *Term) Swipe(track2 string) {
	h.t.Helper()
	h.mark = h.scr.Count()
	if _, err := io.WriteString(h.ptyMaster, track2+"\r\n"); err != nil {
		h.t.Fatalf("swipe: %v", err)
	}
}

// WaitScreen waits until the latest screen shown since the last input
// contains word, and returns it. On timeout it fails the test with the
// last screens.
func (h *Term) WaitScreen(word string, timeout time.Duration) string {
	h.t.Helper()
	s, ok := h.waitAny([]string{word}, timeout)
	if !ok {
		h.t.Fatalf("timeout after %v waiting for a screen with %q; last screens:\n%s", timeout, word, h.scr.Tail(8))
	}
	return s
}

// WaitAny waits until the latest screen since the last input contains one
// of words; it returns the screen and the word found.
func (h *Term) WaitAny(timeout time.Duration, words ...string) (string, string) {
	h.t.Helper()
	s, ok := h.waitAny(words, timeout)
	if !ok {
		h.t.Fatalf("timeout after %v waiting for a screen with one of %q; last screens:\n%s", timeout, words, h.scr.Tail(8))
	}
	for _, w := range words {
		if strings.Contains(s, w) {
			return s, w
		}
	}
	return s, ""
}

func (h *Term) waitAny(words []string, timeout time.Duration) (string, bool) {
	return h.waitPred(termtest.ContainsAny(words...), timeout)
}

// waitFor waits until the latest screen since the last input satisfies
// ok, and returns it.
func (h *Term) waitFor(ok func(screen string) bool) string {
	h.t.Helper()
	s, found := h.waitPred(ok, waitTimeout)
	if !found {
		h.t.Fatalf("timeout after %v waiting for a screen; last screens:\n%s", waitTimeout, h.scr.Tail(8))
	}
	return s
}

func (h *Term) waitPred(ok func(screen string) bool, timeout time.Duration) (string, bool) {
	return h.scr.WaitLatest(h.mark, ok, timeout)
}

// Ledger is the host's ledger; Terminal is this terminal's part of it.
func (h *Term) Ledger() hostsim.Ledger { h.t.Helper(); return h.Sim.Ledger(h.t) }

func (h *Term) HostTerminal() *hostsim.Terminal {
	h.t.Helper()
	t := h.Ledger().Terminals[h.TID]
	if t == nil {
		h.t.Fatalf("TID %s not in the host ledger", h.TID)
	}
	return t
}

// SetFaults sets the host's faults.
func (h *Term) SetFaults(f hostsim.Faults) { h.t.Helper(); h.Sim.PostFaults(h.t, f) }

// PrinterText is everything printed so far.
func (h *Term) PrinterText() string {
	b, err := os.ReadFile(h.Printer)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		h.t.Fatal(err)
	}
	return string(b)
}

// checkNoClearPAN asserts that no test PAN appears in clear in the
// daemon's logs, the acquirer-sim's log, the printer file or any file
// under data_dir (merchant.db seals its values).
func (h *Term) checkNoClearPAN() {
	h.t.Helper()
	sources := map[string]string{
		"posagentd stderr":    h.Logs(),
		"acquirer-sim stderr": h.Sim.Stderr.String(),
		"printer file":        h.PrinterText(),
	}
	filepath.Walk(h.DataDir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			h.t.Errorf("read %s: %v", path, err)
			return nil
		}
		sources[path] = string(b)
		return nil
	})
	for name, text := range sources {
		for _, pan := range testPANs {
			if i := strings.Index(text, pan); i >= 0 {
				lo, hi := max(0, i-80), min(len(text), i+len(pan)+40)
				h.t.Errorf("clear PAN in %s: …%q…", name, text[lo:hi])
			}
		}
	}
}

// Convenience flows, as a cashier types them.

// Sale runs MAIN MENU 1, the amount in fen, Enter, the swipe, and waits for
// a result; it returns the result screen.
func (h *Term) Sale(fen int64, track2 string) string {
	h.t.Helper()
	h.startSale()
	h.Keys(fmt.Sprintf("%d\r", fen))
	h.WaitScreen(h.W(i18n.SwipeCard), waitTimeout)
	h.Swipe(track2)
	s, _ := h.WaitAny(waitTimeout, h.W(i18n.Approved), h.W(i18n.Declined), h.W(i18n.Error))
	return s
}

// voucherRE finds "VOUCHER nnnnnn" on a screen, in either language.
var voucherRE = regexp.MustCompile("(?:" + i18n.EN.T(i18n.VoucherLabel) + "|" + i18n.ZhCN.T(i18n.VoucherLabel) + `) (\d{6})`)

// voucherOf reads "VOUCHER nnnnnn" (凭证号 nnnnnn) from a screen.
func voucherOf(t testing.TB, screen string) string {
	t.Helper()
	m := voucherRE.FindStringSubmatch(screen)
	if m == nil {
		t.Fatalf("no voucher on screen %q", screen)
	}
	return m[1]
}

// startSale goes from MAIN MENU to the AMOUNT prompt. While a reversal is
// in flight the terminal refuses a new sale with BUSY (acquirer.md: no new
// sale while a reversal is pending); a cashier tries again.
func (h *Term) startSale() {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		h.WaitScreen(h.W(i18n.MainMenu), waitTimeout)
		h.Keys("1")
		if _, w := h.WaitAny(waitTimeout, h.W(i18n.Amount), h.W(i18n.Busy)); w == h.W(i18n.Amount) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("sale still BUSY after %v; last screens:\n%s", waitTimeout, h.scr.Tail(8))
		}
		h.Keys("\r")
		time.Sleep(100 * time.Millisecond) // let the reversal finish, then try again
	}
}
