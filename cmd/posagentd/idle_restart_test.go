package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/iso8583/hostsim"
)

// fakeSystemctlBin makes a directory with systemctl and systemd-sysusers
// stand-ins for running the package's postinst against a live agent: they
// log their arguments to calls, answer is-active for posagentd.service
// and forward `systemctl kill --signal=SIGHUP posagentd.service` to pid, as
// systemd would to the unit's only process.
func fakeSystemctlBin(t *testing.T, pid int) (dir, calls string) {
	t.Helper()
	dir = t.TempDir()
	calls = filepath.Join(dir, "calls.log")
	systemctl := `#!/bin/sh
echo "systemctl $*" >>` + calls + `
case "$*" in
*"is-active posagentd.service"*) exit 0 ;;
"kill --signal=SIGHUP posagentd.service") kill -HUP ` + strconv.Itoa(pid) + ` ;;
esac
exit 0
`
	sysusers := "#!/bin/sh\necho \"systemd-sysusers $*\" >>" + calls + "\nexit 0\n"
	for name, body := range map[string]string{"systemctl": systemctl, "systemd-sysusers": sysusers} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, calls
}

// runPostinstUpgrade runs build/package/scripts/postinst as dpkg runs it on
// an upgrade from 1.0.0 on a live system, with the stand-ins first on PATH.
func runPostinstUpgrade(t *testing.T, pid int) string {
	t.Helper()
	bin, calls := fakeSystemctlBin(t, pid)
	cmd := exec.Command("sh", filepath.Join(pkgRepoRoot(t), "build/package/scripts/postinst"), "configure", "1.0.0")
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "DPKG_MAINTSCRIPT_NAME=postinst"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("postinst configure 1.0.0: %v\n%s", err, out)
	}
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A package upgrade during an open sale does not interrupt it: the sale is
// at the acquirer (a 3 s host delay) when postinst runs; the agent takes
// SIGHUP as "restart when idle", the sale completes APPROVED, the agent
// stays up while APPROVED waits for the cashier, and stops with exit 0
// (for Restart=always to start the new binary) once MAIN MENU is back.
// The restarted agent has the sale in its journal.
func TestIdleRestartUpgradeDuringSale(t *testing.T) {
	sim := startAcqSim(t)
	h := NewTerm(t, sim, TermOptions{Timeout: "15s"})
	h.WaitScreen("MAIN MENU", waitTimeout)
	h.SetFaults(hostsim.Faults{Delay: 3 * time.Second, On: []string{"0200"}, Count: 1})

	h.startSale()
	h.Keys("1000\r")
	h.WaitScreen("SWIPE CARD", waitTimeout)
	h.Swipe(track2A)
	h.WaitScreen("PROCESSING", waitTimeout)

	calls := runPostinstUpgrade(t, h.cmd.Process.Pid)
	for _, want := range []string{"systemd-sysusers posagent.conf", "systemctl --quiet is-active posagentd.service", "systemctl kill --signal=SIGHUP posagentd.service"} {
		if !strings.Contains(calls, want) {
			t.Errorf("postinst did not run %q; calls:\n%s", want, calls)
		}
	}
	if strings.Contains(calls, "restart") {
		t.Errorf("postinst restarts the agent directly:\n%s", calls)
	}
	waitLog(t, h, "restart requested: waiting until idle")

	s, _ := h.WaitAny(waitTimeout, "APPROVED", "DECLINED", "ERROR")
	mustContain(t, "sale across the upgrade", s, "APPROVED")
	voucher := voucherOf(t, s)
	if !h.running() {
		t.Fatalf("agent stopped with APPROVED waiting for the cashier; stderr:\n%s", h.lastLog())
	}
	if tx := h.hostTxn("000001", voucher); tx.State != hostsim.StateApproved {
		t.Fatalf("host record of the sale: %+v", tx)
	}

	h.Keys("\r") // the cashier takes the receipt: MAIN MENU, idle
	h.waitExit()
	if h.exitSt != exitOK {
		t.Fatalf("exit status %d after the idle restart, want 0; stderr:\n%s", h.exitSt, h.lastLog())
	}
	if !strings.Contains(h.lastLog(), "idle: stopping for the requested restart") {
		t.Errorf("no idle-restart log line:\n%s", h.lastLog())
	}

	// What systemd does next: start the (new) binary. The sale is in its
	// journal: the cashier can void it by voucher.
	h.Restart()
	mustContain(t, "void after the restart", h.voidByVoucher(voucher), "VOID?", "AMOUNT 10.00")
}

// Idle already: the restart happens at once; SIGTERM keeps its meaning.
func TestIdleRestartWhenIdle(t *testing.T) {
	sim := startAcqSim(t)
	h := NewTerm(t, sim, TermOptions{})
	h.WaitScreen("MAIN MENU", waitTimeout)
	if err := h.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	h.waitExit()
	if h.exitSt != exitOK {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", h.exitSt, h.lastLog())
	}
	h.Restart()
}

func waitLog(t *testing.T, h *Term, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(h.lastLog(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the agent's log:\n%s", want, h.lastLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
