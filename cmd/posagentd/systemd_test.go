package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/haltest"
)

// The test binary doubles as posagentd: a test re-executes it with this
// variable set and posagentd's own arguments, so the whole runDaemon path
// (signals, systemd wiring, stdio console) runs in a real process without
// a separate go build.
const envRunMain = "POSAGENTD_TEST_RUN_MAIN"

func init() {
	if os.Getenv(envRunMain) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
}

// sdMsg is one datagram received on the fake NOTIFY_SOCKET.
type sdMsg struct {
	at   time.Time
	text string
}

// fakeSystemd listens on a unixgram socket as systemd's notify socket does
// and records every datagram.
type fakeSystemd struct {
	path string
	conn *net.UnixConn
	msgs chan sdMsg
}

func sdListenNotify(t *testing.T) *fakeSystemd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSystemd{path: path, conn: conn, msgs: make(chan sdMsg, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(f.msgs)
				return
			}
			f.msgs <- sdMsg{time.Now(), string(buf[:n])}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return f
}

// waitFor returns the first message containing want, failing after d.
func (f *fakeSystemd) waitFor(t *testing.T, want string, d time.Duration) sdMsg {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m, ok := <-f.msgs:
			if !ok {
				t.Fatalf("notify socket closed while waiting for %q", want)
			}
			if strings.Contains(m.text, want) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %q on the notify socket within %s", want, d)
		}
	}
}

// collect returns the messages received during d.
func (f *fakeSystemd) collect(d time.Duration) []sdMsg {
	var out []sdMsg
	deadline := time.After(d)
	for {
		select {
		case m, ok := <-f.msgs:
			if !ok {
				return out
			}
			out = append(out, m)
		case <-deadline:
			return out
		}
	}
}

func sdCountPings(msgs []sdMsg) int {
	n := 0
	for _, m := range msgs {
		if strings.Contains(m.text, "WATCHDOG=1") {
			n++
		}
	}
	return n
}

// sdGateDisplay is a display whose Show can be made to hang, as a serial
// write to a wedged UART does: it wedges the event loop inside a step.
type sdGateDisplay struct {
	*haltest.Display
	mu      sync.Mutex
	gate    chan struct{} // when not nil, Show blocks until it is closed
	blocked chan struct{} // gets a value when a Show starts blocking
}

func (g *sdGateDisplay) Show(s hal.Screen) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.blocked <- struct{}{}
		<-gate
	}
	return g.Display.Show(s)
}

var _ hal.Display = (*sdGateDisplay)(nil)

// sdFactoryData makes a data dir with a factory identity and returns it.
func sdFactoryData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	pwd := filepath.Join(t.TempDir(), "pwd")
	if err := os.WriteFile(pwd, []byte("4321\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	args := []string{"factory-init", "--data-dir", dir, "--serial", "PA-SD-0001", "--hq-key", hqKeyArg(t), "--tech-pwd-file", pwd}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("factory-init: exit %d: %s", code, errb.String())
	}
	return dir
}

// The watchdog pings only while the event loop answers: wedge the loop in
// a display write and the pings stop; release it and they come back.
func TestSystemdWatchdogFollowsLoopHealth(t *testing.T) {
	sd := sdListenNotify(t)
	t.Setenv("NOTIFY_SOCKET", sd.path)
	t.Setenv("WATCHDOG_USEC", "400000") // pings every 200 ms
	t.Setenv("WATCHDOG_PID", "")

	cfg := DefaultConfig()
	cfg.DataDir = sdFactoryData(t)
	cfg.HAL.Kind = hal.KindSim
	dev, fakes := haltest.Devices()
	disp := &sdGateDisplay{Display: fakes.Display, blocked: make(chan struct{}, 1)}
	dev.Display = disp
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := openDaemon(cfg, log, system{Devices: dev})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	d.sd = startSystemd(log)
	if d.sd.interval != 400*time.Millisecond {
		t.Fatalf("watchdog interval %s, want 400ms", d.sd.interval)
	}
	sigs := make(chan os.Signal, 1)
	exit := make(chan int, 1)
	go func() { exit <- d.loop(sigs) }()

	ready := sd.waitFor(t, "READY=1", 3*time.Second)
	if !strings.Contains(ready.text, "STATUS=unactivated") {
		t.Errorf("ready message %q lacks STATUS=unactivated", ready.text)
	}
	if !strings.Contains(fakes.Display.Last().String(), "NOT ACTIVATED") {
		t.Errorf("READY=1 before the first screen: display shows %q", fakes.Display.Last().String())
	}
	if n := sdCountPings(sd.collect(time.Second)); n < 3 {
		t.Fatalf("healthy loop: %d WATCHDOG=1 in 1s, want >= 3 (every 200ms)", n)
	}

	// Wedge: the next screen write hangs.
	gate := make(chan struct{})
	disp.mu.Lock()
	disp.gate = gate
	disp.mu.Unlock()
	fakes.Keypad.Push(hal.Key('1')) // 1 ACTIVATE → the TECH PWD screen
	select {
	case <-disp.blocked:
	case <-time.After(3 * time.Second):
		t.Fatal("the loop never reached the display")
	}
	sd.collect(300 * time.Millisecond) // a probe answered just before the wedge may still ping
	if n := sdCountPings(sd.collect(1200 * time.Millisecond)); n != 0 {
		t.Fatalf("wedged loop: %d WATCHDOG=1 in 1.2s, want 0", n)
	}

	// Unwedge: pings resume.
	disp.mu.Lock()
	disp.gate = nil
	disp.mu.Unlock()
	close(gate)
	sd.waitFor(t, "WATCHDOG=1", time.Second)
	if !strings.Contains(fakes.Display.Last().String(), "TECH PWD") {
		t.Errorf("after the wedge: display shows %q", fakes.Display.Last().String())
	}

	sigs <- syscall.SIGTERM
	select {
	case code := <-exit:
		if code != exitOK {
			t.Errorf("loop exit %d, want 0", code)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("loop did not stop on SIGTERM")
	}
	d.sd.Stop()
	sd.waitFor(t, "STOPPING=1", time.Second)
}

// Without WATCHDOG_USEC no watchdog goroutine runs and nothing pings;
// without NOTIFY_SOCKET every notification is a quiet no-op; a nil
// notifier (in-process tests) does nothing.
func TestSystemdNotifierOff(t *testing.T) {
	sd := sdListenNotify(t)
	t.Setenv("NOTIFY_SOCKET", sd.path)
	t.Setenv("WATCHDOG_USEC", "")
	var logs bytes.Buffer
	n := startSystemd(slog.New(slog.NewTextHandler(&logs, nil)))
	if n.interval != 0 {
		t.Fatalf("interval %s without WATCHDOG_USEC", n.interval)
	}
	n.Running(0)
	n.Running(0) // same state: no second STATUS
	msgs := sd.collect(300 * time.Millisecond)
	if len(msgs) != 1 || !strings.Contains(msgs[0].text, "READY=1") || sdCountPings(msgs) != 0 {
		t.Fatalf("messages %v, want one READY=1 and no ping", msgs)
	}
	n.Stop()
	n.Stop()
	sd.waitFor(t, "STOPPING=1", time.Second)

	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "200000")
	logs.Reset()
	q := startSystemd(slog.New(slog.NewTextHandler(&logs, nil)))
	q.Running(0)
	q.Stop()
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("outside systemd notifications must be silent no-ops: %s", logs.String())
	}

	var none *sdNotifier
	none.Running(0)
	none.Stop()
	if none.Probes() != nil {
		t.Error("nil notifier has a probe channel")
	}
}

// The real process under a fake systemd: READY=1 with the first screen on
// stdout, STATUS=, periodic WATCHDOG=1, and STOPPING=1 then exit 0 on
// SIGTERM.
func TestSystemdNotifyProcess(t *testing.T) {
	sd := sdListenNotify(t)
	dir := sdFactoryData(t)
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "posagent.toml")
	card := filepath.Join(tmp, "card")
	if err := os.WriteFile(card, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "data_dir = \"" + dir + "\"\n[hal]\nkind = \"sim\"\nconsole = \"stdio\"\ncard_reader = \"" + card +
		"\"\nprinter = \"" + filepath.Join(tmp, "printer.txt") + "\"\nreboot = \"exit\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "--config", cfgPath)
	cmd.Env = append(os.Environ(), envRunMain+"=1", "NOTIFY_SOCKET="+sd.path, "WATCHDOG_USEC=400000")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stdout, stderr sdBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	ready := sd.waitFor(t, "READY=1", 10*time.Second)
	// The screen is in the stdout pipe before READY=1 is sent (the
	// in-process test pins that order); exec's copier may take a moment
	// to move it into the buffer.
	for deadline := time.Now().Add(time.Second); !strings.Contains(stdout.String(), "NOT ACTIVATED"); {
		if time.Now().After(deadline) {
			t.Fatalf("READY=1 without the first screen; stdout %q", stdout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(ready.text, "STATUS=unactivated") {
		t.Errorf("ready message %q", ready.text)
	}
	if n := sdCountPings(sd.collect(time.Second)); n < 3 {
		t.Errorf("%d WATCHDOG=1 in 1s, want >= 3", n)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sd.waitFor(t, "STOPPING=1", 5*time.Second)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; stderr %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "systemd watchdog enabled") {
		t.Errorf("stderr lacks the watchdog log line: %s", stderr.String())
	}
}

// sdBuffer is a bytes.Buffer safe to read while a process writes it.
type sdBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *sdBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *sdBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
