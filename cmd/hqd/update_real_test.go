package main

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
	"sync/atomic"
	"testing"

	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/internal/ota/otatest"
	"github.com/posagent/posagent/internal/termtest"
	"github.com/posagent/posagent/terminal"
)

// TestUpdateJobRealTerminal: an update rolled out as an operator would,
// `hqctl job create --type update --url --sha256 --size --version`
// against the real hqd, to a real posagentd (activated through hqd, one
// sale in its open batch) with its [update] section on: it downloads the
// bundle from an HTTPS server in the test, has RAUC install it (a mock of
// RAUC's Installer on a private dbus-daemon, internal/ota/otatest),
// reboots (reboot = "exit"; the test starts it again as the new slot,
// the [update] version 1.1.0), signs in with the acquirer and marks its
// slot good. `hqctl job items` ends with the terminal succeeded and its
// result naming 1.1.0 from 1.0.0; hqd's fleet shows 1.1.0 and the batch
// as it was.
func TestUpdateJobRealTerminal(t *testing.T) {
	eachDB(t, func(t *testing.T, dialect string) {
		l := newLab(t, dialect, mosquittotest.Options{})
		acq, a := l.startWithAcquirer(t)
		bus := otatest.PrivateBus(t)
		rauc := otatest.StartRAUC(t, bus)

		// The update server.
		bundle := make([]byte, 192<<10)
		rand.Read(bundle)
		sum := sha256.Sum256(bundle)
		var fetches atomic.Int64
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/posagent-1.1.0.raucb" {
				http.NotFound(w, r)
				return
			}
			fetches.Add(1)
			w.Header().Set("Content-Length", strconv.Itoa(len(bundle)))
			w.Write(bundle)
		}))
		t.Cleanup(srv.Close)
		caFile := filepath.Join(t.TempDir(), "update-ca.pem")
		if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}

		// A terminal activated through hqd with a sale in its batch.
		serial := "OTA" + strings.ToUpper(dialect[:1]) + "-0001"
		term := l.realTerm(t, a, termtest.TermOptions{Serial: serial, HQKeys: map[string][]byte{"hq-ops": l.opsPub}})
		var c store.Code
		if code := a.api("POST", "/api/v1/codes", map[string]any{"serial": serial, "tid": "30000001", "mid": "100000000000003",
			"acquirer": acq.Addr}, &c); code != 201 {
			t.Fatalf("issue code: %d %+v", code, c)
		}
		term.Activate(c.Code)
		term.Sale(4321)
		// Its configuration as each slot has it: [update] version names
		// the slot's version.
		term.Stop()
		base, err := os.ReadFile(term.Config)
		if err != nil {
			t.Fatal(err)
		}
		boot := func(version string) {
			t.Helper()
			cfg := string(base) + fmt.Sprintf("\n[update]\nenabled = true\nrauc_bus = %q\nca_file = %q\nsign_in_timeout = \"10s\"\nversion = %q\n",
				bus, caFile, version)
			if err := os.WriteFile(term.Config, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			term.Start()
			term.WaitScreen("MAIN MENU", termWait)
		}
		boot("1.0.0")
		fleetShows := func(version string) func() bool {
			return func() bool {
				var tr struct{ Terminal store.Terminal }
				a.api("GET", "/api/v1/terminals/"+serial, nil, &tr)
				return tr.Terminal.Online && tr.Terminal.Version == version && tr.Terminal.BatchCount == 1
			}
		}
		eventually(t, termWait, "hqd's status of the terminal on 1.0.0", fleetShows("1.0.0"))

		api := []string{"--hq", fmt.Sprintf("http://127.0.0.1:%d", a.port), "--token-file", filepath.Join(l.dir, "admin.token")}
		out, errOut, code := hqctl(t, append([]string{"job", "create", "--type", "update", "--serial", serial,
			"--url", srv.URL + "/posagent-1.1.0.raucb", "--sha256", hex.EncodeToString(sum[:]), "--size", strconv.Itoa(len(bundle)),
			"--version", "1.1.0", "--max-inflight", "1", "--abort-pct", "100", "--json"}, api...)...)
		var j store.Job
		if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.State != store.JobRunning || j.Type != "update" {
			t.Fatalf("hqctl job create --type update: %d %s %s", code, out, errOut)
		}

		// Downloaded, installed at the idle menu, rebooted into the new slot.
		if code := term.WaitExit(termWait); code != 3 {
			t.Fatalf("%s exited %d, want 3 (the reboot into the new slot)", serial, code)
		}
		if got := rauc.Installed(); len(got) != 1 || string(got[0]) != string(bundle) {
			t.Fatalf("RAUC installed %d bundles, want the one served", len(got))
		}
		boot("1.1.0")

		items := func() []store.Item {
			out, errOut, code := hqctl(t, append([]string{"job", "items", j.ID, "--json"}, api...)...)
			var res struct{ Items []store.Item }
			if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Items) != 1 {
				t.Fatalf("hqctl job items: %d %s %s", code, out, errOut)
			}
			return res.Items
		}
		eventually(t, termWait, "the item final", func() bool {
			switch items()[0].State {
			case store.ItemSent, store.ItemAccepted, store.ItemInProgress:
				return false
			}
			return true
		})
		it := items()[0]
		var res terminal.UpdateResult
		if err := json.Unmarshal(it.Result, &res); err != nil || it.State != store.ItemSucceeded || res.Version != "1.1.0" || res.From != "1.0.0" {
			t.Fatalf("item %+v (result %s): want succeeded, version 1.1.0 from 1.0.0; log tail:\n%s", it, it.Result, termtest.Tail(term.Logs(), 3000))
		}
		table, _, _ := hqctl(t, append([]string{"job", "items", j.ID}, api...)...)
		if !strings.Contains(table, serial) || !strings.Contains(table, "succeeded") || !strings.Contains(table, "version=1.1.0") ||
			!strings.Contains(table, "from=1.0.0") {
			t.Fatalf("hqctl job items:\n%s", table)
		}
		eventually(t, termWait, "the job done", func() bool { return a.progress(t, j.ID).Job.State == store.JobDone })
		if m := rauc.Marks(); len(m) != 1 || m[0] != "good booted" {
			t.Fatalf("RAUC marks %q, want good booted", m)
		}
		eventually(t, termWait, "hqd's status of the terminal on 1.1.0, the batch as it was", fleetShows("1.1.0"))
		t.Logf("%s: %d fetch(es) of the bundle; hqctl job items:\n%s", dialect, fetches.Load(), table)
	})
}
