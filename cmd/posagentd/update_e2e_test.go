package main

// The over-the-air update end to end: a real posagentd on mosquitto with
// the remote harness's HQ, a private dbus-daemon with a mock of RAUC's
// Installer (internal/ota/otatest: the HAL edge), and an HTTPS bundle
// server in the test. The reboot is the harness's: reboot = "exit", the
// daemon exits with status 3 and the test starts it again. The new slot
// booting is simulated by starting it with the new slot's configuration:
// [update] version names the new version (the one key that differs
// between the two slots' files); a fallback starts it with the old one.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/internal/ota/otatest"
	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/terminal/remote"
)

// otaBench is what every update case shares: broker, acquirer host, HQ,
// the bus with the mock RAUC, and the bundle server.
type otaBench struct {
	t      *testing.T
	broker *mosquittotest.Broker
	host   *remoteHost
	hq     *hqSide
	bus    string
	srv    *httptest.Server
	caFile string
	bundle []byte
	sum    string

	mu       sync.Mutex
	requests map[string][]string // path -> the Range header of each request
	// release ends the first response of /stall/…, which sends half the
	// bundle and then hangs.
	release chan struct{}
}

func startOTABench(t *testing.T) *otaBench {
	b := &otaBench{t: t, requests: map[string][]string{}, release: make(chan struct{})}
	b.broker = brokerForTerms(t, mosquittotest.Options{})
	b.host = startRemoteHost(t)
	b.hq = newHQ(t)
	b.hq.connect(b.broker.URL(), nil)
	b.bus = otatest.PrivateBus(t)
	b.bundle = make([]byte, 256<<10)
	rand.Read(b.bundle)
	s := sha256.Sum256(b.bundle)
	b.sum = hex.EncodeToString(s[:])
	b.srv = httptest.NewTLSServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	b.caFile = filepath.Join(t.TempDir(), "update-ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.srv.Certificate().Raw})
	if err := os.WriteFile(b.caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// serve is the update server. /cut/…: the first response stops halfway
// (the connection drops), later ones honour Range; /never/…: every
// response stops halfway and Range is ignored, so it never completes;
// anything else: the whole bundle.
func (b *otaBench) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.requests[r.URL.Path] = append(b.requests[r.URL.Path], r.Header.Get("Range"))
	n := len(b.requests[r.URL.Path])
	b.mu.Unlock()
	body, from := b.bundle, int64(0)
	if rg := r.Header.Get("Range"); rg != "" && !strings.HasPrefix(r.URL.Path, "/never/") {
		from, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, len(body)-1, len(body)))
		w.Header().Set("Content-Length", strconv.FormatInt(int64(len(body))-from, 10))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	end := int64(len(body))
	if strings.HasPrefix(r.URL.Path, "/never/") || (strings.HasPrefix(r.URL.Path, "/cut/") && n == 1) {
		end = int64(len(body) / 2)
	}
	if strings.HasPrefix(r.URL.Path, "/stall/") && n == 1 {
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		select {
		case <-b.release:
		case <-r.Context().Done():
		}
		return
	}
	w.Write(body[from:end])
	if end < int64(len(body)) {
		w.(http.Flusher).Flush()
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			c.Close()
		}
	}
}

func (b *otaBench) rangesOf(path string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests[path]...)
}

// otaTerm is a remote test terminal with an [update] section.
type otaTerm struct {
	*rterm
	b       *otaBench
	base    string // the configuration without [update]
	statusN int
}

// newOTATerm makes an active terminal on version 1.0.0 with one approved
// sale of 123.45 in its open batch.
func (b *otaBench) newOTATerm(serial, tid string) *otaTerm {
	t := b.t
	r := newRemoteTerm(t, b.host, b.hq, rtermOptions{Serial: serial, TID: tid, Broker: b.broker.URL()})
	r.Stop()
	base, err := os.ReadFile(r.Config)
	if err != nil {
		t.Fatal(err)
	}
	o := &otaTerm{rterm: r, b: b, base: string(base)}
	o.boot("1.0.0")
	r.sell(12345)
	return o
}

// boot starts the daemon as the slot holding version v.
func (o *otaTerm) boot(v string) {
	o.t.Helper()
	cfg := o.base + fmt.Sprintf(`
[update]
enabled = true
rauc_bus = %q
ca_file = %q
sign_in_timeout = "3s"
version = %q
`, o.b.bus, o.b.caFile, v)
	if err := os.WriteFile(o.Config, []byte(cfg), 0o600); err != nil {
		o.t.Fatal(err)
	}
	o.Start()
}

// owe leaves a reversal pending: the host does not answer a sale nor its
// reversal, then heals (the reversal waits for the next sale or boot).
func (o *otaTerm) owe(fen int64) {
	o.t.Helper()
	o.SetFaults(hostsim.Faults{NoAnswer: true, On: []string{"0200", "0400"}})
	if s := o.Sale(fen, track2A); !strings.Contains(s, "ERROR") {
		o.t.Fatalf("faulted sale: %q, want ERROR", s)
	}
	o.Keys("\r")
	o.WaitScreen("MAIN MENU", remoteWait)
	// The reversal goes at once and must meet the silent host before it
	// heals.
	deadline := time.Now().Add(remoteWait)
	for !strings.Contains(o.lastLog(), "reversal not cleared") {
		if time.Now().After(deadline) {
			o.t.Fatalf("no reversal attempt; log tail:\n%s", tail(o.lastLog(), 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	o.SetFaults(hostsim.Faults{})
	o.merchantIntact(1, 12345, true, "1.0.0")
}

// update sends an update command for the bench's bundle at path.
func (o *otaTerm) update(id, path, sum, v string) {
	o.t.Helper()
	args := remote.UpdateArgs{URL: o.b.srv.URL + path, SHA256: sum, Size: int64(len(o.b.bundle)), Version: v}
	o.b.hq.publish(o.Serial, o.b.hq.seal(o.b.hq.command(o.Serial, remote.TypeUpdate, id, args, time.Hour)))
	o.b.hq.waitAck(id, remote.AckAccepted, remoteWait)
}

// final waits for the final ack and checks its state, reason and running
// version.
func (o *otaTerm) final(id, state, reason, running string) updateResult {
	o.t.Helper()
	fin := o.b.hq.waitFinal(id, remoteWait)
	var res updateResult
	if err := json.Unmarshal(fin.Ack.Result, &res); err != nil {
		o.t.Fatalf("result %s: %v", fin.Ack.Result, err)
	}
	if fin.Ack.State != state || fin.Ack.Reason != reason || res.Version != running {
		o.t.Fatalf("final ack %s %q %s, want %s %q with version %s; log tail:\n%s", fin.Ack.State, fin.Ack.Reason,
			fin.Ack.Result, state, reason, running, tail(o.lastLog(), 3000))
	}
	return res
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

type updateResult struct {
	Version string `json:"version"`
	From    string `json:"from"`
	Detail  string `json:"detail"`
}

// merchantIntact checks what HQ sees of the batch and the reversal: the
// count, the amount, the pending reversal, and the running version.
func (o *otaTerm) merchantIntact(count int, amount int64, reversal bool, running string) {
	o.t.Helper()
	// A status command: the terminal publishes its status afresh.
	o.statusN++
	id := fmt.Sprintf("status-%s-%d", o.Serial, o.statusN)
	o.b.hq.publish(o.Serial, o.b.hq.seal(o.b.hq.command(o.Serial, remote.TypeStatus, id, nil, time.Hour)))
	o.b.hq.waitAck(id, remote.AckSucceeded, remoteWait)
	deadline := time.Now().Add(remoteWait)
	for {
		o.b.hq.mu.Lock()
		s := o.b.hq.status[o.Serial]
		o.b.hq.mu.Unlock()
		if s.Online && s.State == "active" && s.BatchCount == count && s.BatchAmount == amount &&
			s.PendingReversal == reversal && s.Version == running {
			return
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("status %+v, want active with %d sales of %d fen, pending reversal %v, version %s", s, count, amount, reversal, running)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rebooted waits for the reboot an update asks for (exit status 3).
func (o *otaTerm) rebooted() {
	o.t.Helper()
	if code := o.waitExitCode(remoteWait); code != exitReboot {
		o.t.Fatalf("exit status %d, want %d (reboot); log tail:\n%s", code, exitReboot, tail(o.lastLog(), 3000))
	}
}

func TestUpdateE2E(t *testing.T) {
	b := startOTABench(t)
	rauc := otatest.StartRAUC(t, b.bus)

	// A good bundle whose first download breaks halfway: resumed with
	// Range, installed once the owed reversal is cleared and the cashier
	// is back at the menu, booted, signed in, marked good.
	t.Run("good bundle, resumed download", func(t *testing.T) {
		b.t, b.hq.t = t, t
		o := b.newOTATerm("PA-OTA-0001", "72000001")
		o.owe(2500)
		o.update("upd-good", "/cut/b.raucb", b.sum, "1.1.0")
		b.hq.waitAck("upd-good", remote.AckInProgress, remoteWait)
		if r := b.rangesOf("/cut/b.raucb"); len(r) != 2 || r[0] != "" || r[1] != fmt.Sprintf("bytes=%d-", len(b.bundle)/2) {
			t.Fatalf("bundle requests %q: want a whole one, then a Range from where it broke", r)
		}
		// The reversal is owed: nothing is installed.
		o.merchantIntact(1, 12345, true, "1.0.0")
		if s := rauc.Sources(); len(s) != 0 {
			t.Fatalf("installed while a reversal is owed: %q", s)
		}
		// The next sale sends the reversal first (the terminal's own
		// rule); the key that leaves its APPROVED makes the terminal idle,
		// and INSTALLING takes the screen.
		if s := o.Sale(1000, track2A); !strings.Contains(s, "APPROVED") {
			t.Fatalf("sale: %q", s)
		}
		o.Keys("\r")
		o.WaitScreen("INSTALLING", remoteWait)
		o.rebooted()
		if got := rauc.Installed(); len(got) != 1 || string(got[0]) != string(b.bundle) {
			t.Fatalf("RAUC installed %d bundles, want the one served", len(got))
		}
		if x, _ := hostTxn(t, o.Ledger(), o.TID, 2500); x.State != hostsim.StateReversed {
			t.Errorf("host: the faulted sale is %s, want reversed", x.State)
		}
		o.boot("1.1.0")
		res := o.final("upd-good", remote.AckSucceeded, "", "1.1.0")
		if res.From != "1.0.0" {
			t.Errorf("result from %q, want 1.0.0", res.From)
		}
		if m := rauc.Marks(); len(m) != 1 || m[0] != "good booted" {
			t.Errorf("RAUC marks %q, want good booted", m)
		}
		o.WaitScreen("MAIN MENU", remoteWait)
		o.merchantIntact(2, 13345, false, "1.1.0")
		if ents, _ := os.ReadDir(filepath.Join(o.DataDir, "update")); len(ents) != 0 {
			t.Errorf("%d files left in the download directory", len(ents))
		}
	})

	// A wrong hash, and a server that never completes: failed, nothing
	// installed, the batch and the owed reversal as they were.
	t.Run("wrong hash and a download that never completes", func(t *testing.T) {
		b.t, b.hq.t = t, t
		o := b.newOTATerm("PA-OTA-0002", "72000002")
		o.owe(2500)
		wrong := strings.Repeat("0", 64)
		o.update("upd-hash", "/b.raucb", wrong, "1.1.0")
		res := o.final("upd-hash", remote.AckFailed, remote.ReasonBadHash, "1.0.0")
		if !strings.Contains(res.Detail, b.sum) {
			t.Errorf("detail %q does not name the hash found", res.Detail)
		}
		o.update("upd-never", "/never/b.raucb", b.sum, "1.1.0")
		o.final("upd-never", remote.AckFailed, remote.ReasonDownloadFailed, "1.0.0")
		if n := len(b.rangesOf("/never/b.raucb")); n < 2 {
			t.Errorf("%d requests to the server that never completes, want retries", n)
		}
		if s := rauc.Sources(); len(s) != 1 {
			t.Errorf("RAUC install calls %q, want only the first case's", s)
		}
		o.merchantIntact(1, 12345, true, "1.0.0")
		if !o.running() {
			t.Fatal("the daemon stopped")
		}
	})

	// RAUC refuses the bundle: failed with its LastError, no reboot, the
	// terminal sells on.
	t.Run("RAUC error", func(t *testing.T) {
		b.t, b.hq.t = t, t
		o := b.newOTATerm("PA-OTA-0003", "72000003")
		rauc.FailNext("Failed to verify bundle: signature verification failed")
		o.update("upd-rauc", "/b.raucb", b.sum, "1.1.0")
		res := o.final("upd-rauc", remote.AckFailed, remote.ReasonInstallFailed, "1.0.0")
		if !strings.Contains(res.Detail, "signature verification failed") {
			t.Errorf("detail %q, want RAUC's LastError", res.Detail)
		}
		o.WaitScreen("MAIN MENU", remoteWait)
		o.sell(700)
		o.merchantIntact(2, 13045, false, "1.0.0")
		if !o.running() {
			t.Fatal("the daemon rebooted after a failed install")
		}
	})

	// A power cut (kill -9) in the middle of the download: the boot
	// after resumes it from the bytes on disk.
	t.Run("power cut mid-download", func(t *testing.T) {
		b.t, b.hq.t = t, t
		o := b.newOTATerm("PA-OTA-0006", "72000006")
		o.update("upd-cut", "/stall/b.raucb", b.sum, "1.3.0")
		part := filepath.Join(o.DataDir, "update", b.sum+".part")
		deadline := time.Now().Add(remoteWait)
		for fileSize(part) < int64(len(b.bundle)/2) {
			if time.Now().After(deadline) {
				t.Fatalf("%s has %d bytes, want half the bundle", part, fileSize(part))
			}
			time.Sleep(20 * time.Millisecond)
		}
		o.Kill9()
		close(b.release)
		o.boot("1.0.0")
		o.rebooted()
		if r := b.rangesOf("/stall/b.raucb"); len(r) != 2 || r[1] != fmt.Sprintf("bytes=%d-", len(b.bundle)/2) {
			t.Fatalf("bundle requests %q: want the second from where the power cut left it", r)
		}
		o.boot("1.3.0")
		o.final("upd-cut", remote.AckSucceeded, "", "1.3.0")
		o.merchantIntact(1, 12345, false, "1.3.0")
	})

	// Installed, but the bootloader boots the old slot (the new one never
	// came up): the old version acks failed, rolled-back.
	t.Run("bootloader falls back", func(t *testing.T) {
		b.t, b.hq.t = t, t
		o := b.newOTATerm("PA-OTA-0005", "72000005")
		o.owe(2500)
		o.sell(300) // the owed reversal goes first; the install may follow
		o.update("upd-fallback", "/b.raucb", b.sum, "1.2.0")
		o.rebooted()
		o.boot("1.0.0")
		o.final("upd-fallback", remote.AckFailed, remote.ReasonRolledBack, "1.0.0")
		o.WaitScreen("MAIN MENU", remoteWait)
		o.merchantIntact(2, 12645, false, "1.0.0")
	})

	// The new version boots but the acquirer does not answer its
	// sign-in: its slot is marked bad, the terminal reboots, the old
	// version acks failed, the batch is still there.
	t.Run("new version never signs in", func(t *testing.T) {
		b.t, b.hq.t = t, t
		o := b.newOTATerm("PA-OTA-0004", "72000004")
		marks := len(rauc.Marks())
		o.update("upd-nosign", "/b.raucb", b.sum, "1.1.0")
		o.rebooted()
		o.SetFaults(hostsim.Faults{NoAnswer: true, On: []string{"0800"}})
		o.boot("1.1.0")
		o.rebooted()
		if m := rauc.Marks(); len(m) != marks+1 || m[marks] != "bad booted" {
			t.Fatalf("RAUC marks %q, want bad booted", m[marks:])
		}
		o.SetFaults(hostsim.Faults{})
		o.boot("1.0.0") // the bootloader boots the old slot
		o.final("upd-nosign", remote.AckFailed, remote.ReasonSignInFailed, "1.0.0")
		o.WaitScreen("MAIN MENU", remoteWait)
		o.merchantIntact(1, 12345, false, "1.0.0")
	})
}
