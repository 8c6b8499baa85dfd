package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/internal/termtest"
	"github.com/posagent/posagent/terminal/remote"
)

// Keys and policy against real posagentd terminals (internal/termtest:
// the real daemon, factory-init with --hq-root-key and --require), driven
// through the real hqd and the real hqctl binaries as an operator would.

// termWait bounds what a real terminal does after a command: settle with
// the acquirer, wipe, reboot, flush its outbox.
const termWait = 120 * time.Second

var (
	hqctlOnce sync.Once
	hqctlBin  string
	hqctlErr  error
)

// hqctl runs the real hqctl binary (built once per test binary) and
// returns its stdout, stderr and exit status.
func hqctl(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	hqctlOnce.Do(func() {
		hqctlBin = filepath.Join(filepath.Dir(hqdBin), "hqctl")
		if out, err := exec.Command("go", "build", "-o", hqctlBin, "../hqctl").CombinedOutput(); err != nil {
			hqctlErr = fmt.Errorf("build hqctl: %v\n%s", err, out)
		}
	})
	if hqctlErr != nil {
		t.Fatal(hqctlErr)
	}
	cmd := exec.Command(hqctlBin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("hqctl %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String(), stderr.String(), code
}

// opKey is an operator's signing key made by hqctl keygen: the private
// half stays in its file, as on the operator's machine.
type opKey struct {
	kid, path string
	pub       ed25519.PublicKey
}

func keygen(t *testing.T, dir, kid string) opKey {
	t.Helper()
	if out, errOut, code := hqctl(t, "keygen", "--kid", kid, "--out", dir); code != 0 {
		t.Fatalf("hqctl keygen: %d %s %s", code, out, errOut)
	}
	b, err := os.ReadFile(filepath.Join(dir, kid+".pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(pub) != ed25519.PublicKeySize {
		t.Fatalf("%s.pub: %v", kid, err)
	}
	return opKey{kid: kid, path: filepath.Join(dir, kid+".key"), pub: pub}
}

// operator adds an operator with an API token; it returns the token file.
func (l *lab) operator(cfg, name, roles string) string {
	l.t.Helper()
	tok := filepath.Join(l.dir, name+".token")
	l.hqd("operator", "add", "--config", cfg, "--name", name, "--roles", roles, "--token-out", tok)
	return tok
}

// realTerm factory-inits and starts a real posagentd on the lab's broker,
// registered with hqd before it first speaks, and waits until hqd has its
// status (its command subscription is in place from then on).
func (l *lab) realTerm(t *testing.T, in *instance, o termtest.TermOptions) *termtest.Term {
	t.Helper()
	o.Broker = l.broker.URL()
	o.Registered = func(term *termtest.Term) { l.register(in, term.Registry) }
	term := termtest.NewTerm(t, o)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log tail:\n%s", o.Serial, termtest.Tail(term.Logs(), 4000))
		}
	})
	eventually(t, termtest.Wait, o.Serial+"'s status at hqd", func() bool {
		var tr struct{ Terminal store.Terminal }
		return in.api("GET", "/api/v1/terminals/"+o.Serial, nil, &tr) == 200 && tr.Terminal.Online
	})
	return term
}

// deviceKeys writes the device-keys file hqctl send verifies acks with.
func deviceKeys(t *testing.T, dir string, terms ...*termtest.Term) string {
	t.Helper()
	var b strings.Builder
	for _, term := range terms {
		b.Write(term.Registry)
	}
	path := filepath.Join(dir, "device-keys.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (in *instance) progress(t *testing.T, id string) jobs.Progress {
	t.Helper()
	var p jobs.Progress
	if code := in.api("GET", "/api/v1/jobs/"+id, nil, &p); code != 200 {
		t.Fatalf("job %s: HTTP %d", id, code)
	}
	return p
}

// TestKeyRotationRealTerminals: an hq_keys job, signed with the fleet's
// root key by its holder through hqctl, rotates alice's ops key on two
// real terminals, one of which is switched off meanwhile. hqctl job items
// shows which terminal took the rotation (and the keys it now trusts);
// the other takes it once it is back. Then a command signed with the new
// key is answered, and one signed with the revoked key gets no ack: the
// terminal drops it, logs it and counts it.
func TestKeyRotationRealTerminals(t *testing.T) {
	eachDB(t, func(t *testing.T, dialect string) {
		l := newLab(t, dialect, mosquittotest.Options{})
		a := l.start("a")
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("hqd log tail:\n%s", termtest.Tail(a.logs(), 6000))
			}
		})
		keys := t.TempDir()
		root, old, next := keygen(t, keys, "root-1"), keygen(t, keys, "alice-1"), keygen(t, keys, "alice-2")
		l.hqd("key", "add", "--config", a.cfg, "--kid", root.kid, "--pub", base64.StdEncoding.EncodeToString(root.pub), "--role", "root", "--operator", "admin")
		l.operator(a.cfg, "alice", "requester")
		for _, k := range []opKey{old, next} {
			l.hqd("key", "add", "--config", a.cfg, "--kid", k.kid, "--pub", base64.StdEncoding.EncodeToString(k.pub), "--role", "ops", "--operator", "alice")
		}
		prefix := "KEY" + strings.ToUpper(dialect[:1])
		opts := func(serial string) termtest.TermOptions {
			return termtest.TermOptions{Serial: serial, RootKeys: map[string][]byte{root.kid: root.pub},
				HQKeys: map[string][]byte{"hq-ops": l.opsPub, old.kid: old.pub}}
		}
		on, off := l.realTerm(t, a, opts(prefix+"-0001")), l.realTerm(t, a, opts(prefix+"-0002"))
		off.Stop() // switched off: its session keeps the command for it
		devKeys := deviceKeys(t, l.dir, on, off)
		api := []string{"--hq", fmt.Sprintf("http://127.0.0.1:%d", a.port), "--token-file", filepath.Join(l.dir, "admin.token")}

		args := fmt.Sprintf(`{"add":[{"kid":%q,"pub":%q,"role":"ops"}],"revoke":[%q]}`, next.kid, base64.StdEncoding.EncodeToString(next.pub), old.kid)
		out, errOut, code := hqctl(t, append([]string{"job", "create", "--type", "hq_keys", "--serial", on.Serial, "--serial", off.Serial,
			"--args", args, "--json"}, api...)...)
		var j store.Job
		if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.State != store.JobSigning {
			t.Fatalf("hqctl job create hq_keys: %d %s %s", code, out, errOut)
		}
		// hqd holds no root key: nothing is sent until its holder signs.
		if p := a.progress(t, j.ID); p.Sent != 0 {
			t.Fatalf("an unsigned hq_keys job sent %d commands", p.Sent)
		}
		// An ops key cannot sign it: hqd refuses, as the terminal would.
		if out, errOut, code := hqctl(t, append([]string{"job", "sign", j.ID, "--key", old.path}, api...)...); code == 0 ||
			!strings.Contains(errOut, "not admin's key") && !strings.Contains(errOut, "root key") {
			t.Fatalf("hq_keys signed with an ops key: %d %s %s", code, out, errOut)
		}
		if out, errOut, code := hqctl(t, append([]string{"job", "sign", j.ID, "--key", root.path}, api...)...); code != 0 {
			t.Fatalf("hqctl job sign with the root key: %d %s %s", code, out, errOut)
		}
		items := func() map[string]store.Item {
			out, errOut, code := hqctl(t, append([]string{"job", "items", j.ID, "--json"}, api...)...)
			var res struct{ Items []store.Item }
			if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
				t.Fatalf("hqctl job items: %d %s %s", code, out, errOut)
			}
			m := map[string]store.Item{}
			for _, it := range res.Items {
				m[it.Serial] = it
			}
			return m
		}
		eventually(t, termWait, "the switched-on terminal's final ack, the command to the other sent", func() bool {
			m := items()
			return m[on.Serial].State == store.ItemSucceeded && m[off.Serial].State == store.ItemSent
		})
		got := items()
		var took struct {
			Keys   map[string][]string `json:"keys"`
			Policy map[string]int      `json:"policy"`
		}
		err := json.Unmarshal(got[on.Serial].Result, &took)
		slices.Sort(took.Keys["ops"])
		if err != nil || strings.Join(took.Keys["ops"], ",") != "alice-2,hq-ops" || strings.Join(took.Keys["root"], ",") != root.kid {
			t.Fatalf("%s's answer to the rotation: %s (%v)", on.Serial, got[on.Serial].Result, err)
		}
		if len(got[off.Serial].Result) > 0 {
			t.Fatalf("the switched-off terminal took the rotation: %+v", got[off.Serial])
		}
		// The table an operator reads says the same.
		table, _, _ := hqctl(t, append([]string{"job", "items", j.ID}, api...)...)
		for _, line := range strings.Split(table, "\n") {
			if strings.HasPrefix(line, on.Serial) && !(strings.Contains(line, "succeeded") && strings.Contains(line, "alice-2")) ||
				strings.HasPrefix(line, off.Serial) && strings.Contains(line, "succeeded") {
				t.Fatalf("hqctl job items:\n%s", table)
			}
		}
		t.Logf("%s: job items after the rotation, one terminal off:\n%s", dialect, table)
		off.Start()
		eventually(t, termWait, "the other terminal's final ack once it is back", func() bool { return items()[off.Serial].State == store.ItemSucceeded })
		if p := a.progress(t, j.ID); p.Job.State != store.JobDone || p.Counts[store.ItemSucceeded] != 2 {
			t.Fatalf("rotation job: %s", p.Line())
		}

		// The revoked key is unknown to the terminal: no ack, a log line
		// and a counter. The new key is answered.
		sign := func(k opKey, id string) string {
			out, errOut, code := hqctl(t, "sign", "--key", k.path, "--serial", on.Serial, "--type", "status", "--id", id)
			if code != 0 {
				t.Fatalf("hqctl sign: %d %s", code, errOut)
			}
			path := filepath.Join(l.dir, id+".env")
			if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}
		send := func(env, wait string) (string, string, int) {
			return hqctl(t, "send", "--broker", l.broker.URL(), "--serial", on.Serial, "--device-keys", devKeys, "--in", env, "--wait", wait)
		}
		dropped := strings.Count(on.Logs(), "command dropped unverified")
		out, errOut, code = send(sign(old, "revoked-1"), "5s")
		if code != exitTimeoutHQCTL || strings.TrimSpace(out) != "" || !strings.Contains(errOut, "no final ack from: "+on.Serial) {
			t.Fatalf("a command signed with the revoked key: exit %d, stdout %q, stderr %q; want no ack (exit 3)", code, out, errOut)
		}
		out, errOut, code = send(sign(next, "rotated-1"), "60s")
		if code != 0 || !strings.Contains(out, "succeeded") {
			t.Fatalf("a command signed with the new key: exit %d %s %s", code, out, errOut)
		}
		// The terminal handled the revoked envelope before the new one
		// (one topic, in order): its drop is in the log by now.
		logs := on.Logs()
		if n := strings.Count(logs, "command dropped unverified"); n != dropped+1 {
			t.Fatalf("drops logged: %d, want %d; log tail:\n%s", n, dropped+1, termtest.Tail(logs, 3000))
		}
		i := strings.LastIndex(logs, "command dropped unverified")
		line := logs[i:]
		line = line[:strings.IndexByte(line+"\n", '\n')]
		if !strings.Contains(line, old.kid) || !strings.Contains(line, "unverified_total=") {
			t.Fatalf("the drop's log line names neither the kid nor the counter: %s", line)
		}
	})
}

// exitTimeoutHQCTL is hqctl send's exit status when no final ack came.
const exitTimeoutHQCTL = 3

// TestTwoPersonUnbindRealTerminal: a real terminal made with
// factory-init --require unbind=2, activated through hqd with an open
// batch. An unbind signed by one operator (hqctl sign, hqctl send) is
// rejected insufficient-signatures and changes nothing; the unbind job
// hqd holds in state signing until a second operator has co-signed
// (hqctl job sign by each, the jobs signatures API) runs to succeeded:
// the terminal settles, wipes, reboots, and its proof of wipe verifies
// with its device key.
func TestTwoPersonUnbindRealTerminal(t *testing.T) {
	eachDB(t, func(t *testing.T, dialect string) {
		l := newLab(t, dialect, mosquittotest.Options{})
		l.extra = "[policy]\nunbind = 2\n"
		acq, a := l.startWithAcquirer(t)
		keys := t.TempDir()
		alice, bob := keygen(t, keys, "alice-1"), keygen(t, keys, "bob-1")
		tokens := map[string]string{"alice": l.operator(a.cfg, "alice", "requester"), "bob": l.operator(a.cfg, "bob", "approver")}
		for name, k := range map[string]opKey{"alice": alice, "bob": bob} {
			l.hqd("key", "add", "--config", a.cfg, "--kid", k.kid, "--pub", base64.StdEncoding.EncodeToString(k.pub), "--role", "ops", "--operator", name)
		}
		serial := "TWO" + strings.ToUpper(dialect[:1]) + "-0001"
		term := l.realTerm(t, a, termtest.TermOptions{Serial: serial, Require: map[string]int{string(remote.TypeUnbind): 2},
			HQKeys: map[string][]byte{"hq-ops": l.opsPub, alice.kid: alice.pub, bob.kid: bob.pub}})
		var c store.Code
		if code := a.api("POST", "/api/v1/codes", map[string]any{"serial": serial, "tid": "20000001", "mid": "100000000000002",
			"acquirer": acq.Addr}, &c); code != 201 {
			t.Fatalf("issue code: %d %+v", code, c)
		}
		term.Activate(c.Code)
		term.Sale(4321)
		devKeys := deviceKeys(t, l.dir, term)
		api := func(who string) []string {
			return []string{"--hq", fmt.Sprintf("http://127.0.0.1:%d", a.port), "--token-file", tokens[who]}
		}

		// One person alone: refused, nothing changes.
		env, errOut, code := hqctl(t, "sign", "--key", alice.path, "--serial", serial, "--type", "unbind", "--id", "alone-1",
			"--args", `{"reason":"one person"}`)
		if code != 0 {
			t.Fatalf("hqctl sign: %d %s", code, errOut)
		}
		envPath := filepath.Join(l.dir, "alone-1.env")
		if err := os.WriteFile(envPath, []byte(env), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := hqctl(t, "send", "--broker", l.broker.URL(), "--serial", serial, "--device-keys", devKeys, "--in", envPath, "--wait", "60s")
		if code != 1 || !strings.Contains(out, "rejected  reason=insufficient-signatures") {
			t.Fatalf("a one-signature unbind: exit %d\n%s%s", code, out, errOut)
		}
		term.WaitScreen("MAIN MENU", termtest.Wait)

		// Through hqd: the job waits for two people.
		out, errOut, code = hqctl(t, append([]string{"job", "create", "--type", "unbind", "--serial", serial,
			"--args", `{"reason":"returned to the depot"}`, "--json"}, api("alice")...)...)
		var j store.Job
		if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.State != store.JobSigning || j.RequiredSigs != 2 {
			t.Fatalf("hqctl job create unbind under unbind=2: %d %s %s", code, out, errOut)
		}
		if out, errOut, code := hqctl(t, append([]string{"job", "sign", j.ID, "--key", alice.path}, api("alice")...)...); code != 0 || !strings.Contains(out, "job signing") {
			t.Fatalf("alice signs: %d %s %s", code, out, errOut)
		}
		// alice cannot be the second person with a second key of hers.
		if out, errOut, code := hqctl(t, append([]string{"job", "sign", j.ID, "--key", bob.path}, api("alice")...)...); code == 0 {
			t.Fatalf("alice signed with bob's key: %s %s", out, errOut)
		}
		if p := a.progress(t, j.ID); p.Sent != 0 || p.Job.State != store.JobSigning {
			t.Fatalf("with one signature: %s, sent %d", p.Line(), p.Sent)
		}
		if out, errOut, code := hqctl(t, append([]string{"job", "sign", j.ID, "--key", bob.path}, api("bob")...)...); code != 0 || !strings.Contains(out, "job running") {
			t.Fatalf("bob co-signs: %d %s %s", code, out, errOut)
		}
		// The terminal settles, wipes and reboots; a supervisor starts it again.
		if code := term.WaitExit(termWait); code != 3 {
			t.Fatalf("%s exited %d, want 3 (reboot after the wipe)", serial, code)
		}
		term.Start()
		term.WaitScreen("NOT ACTIVATED", termtest.Wait)
		eventually(t, termWait, "the job done", func() bool { return a.progress(t, j.ID).Job.State == store.JobDone })
		p := a.progress(t, j.ID)
		if p.Counts[store.ItemSucceeded] != 1 {
			t.Fatalf("two-person unbind: %s", p.Line())
		}
		var items struct{ Items []store.Item }
		a.api("GET", "/api/v1/jobs/"+j.ID+"/items", nil, &items)
		if len(items.Items) != 1 {
			t.Fatalf("items: %+v", items)
		}
		var shown struct {
			Command store.Command     `json:"command"`
			Acks    []store.AckRecord `json:"acks"`
		}
		a.api("GET", "/api/v1/commands/"+items.Items[0].CmdID, nil, &shown)
		// What reached the terminal carried both people's signatures.
		e, valid, err := remote.OpenSigners(shown.Command.Envelope, map[string]ed25519.PublicKey{alice.kid: alice.pub, bob.kid: bob.pub})
		if err != nil || len(valid) != 2 || len(e.Sigs) != 2 {
			t.Fatalf("the unbind sent: %d valid signatures (%v), want 2", len(valid), err)
		}
		// The proof of wipe, as hqd keeps it, verifies with the device key.
		var proof *remote.Ack
		for _, rec := range shown.Acks {
			env, err := remote.Open(rec.Envelope, map[string]ed25519.PublicKey{remote.DeviceKID(serial): term.DevPub})
			if err != nil {
				t.Fatalf("a stored ack does not verify with %s's device key: %v", serial, err)
			}
			ack, err := remote.ParseAck(env.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if ack.Final() {
				proof = &ack
			}
		}
		var res struct {
			Settlement     string `json:"settlement"`
			BindingRemoved bool   `json:"binding_removed"`
		}
		if proof == nil || proof.State != remote.AckSucceeded || json.Unmarshal(proof.Result, &res) != nil || !res.BindingRemoved ||
			!strings.HasPrefix(res.Settlement, "SETTLED") {
			t.Fatalf("proof of wipe: %+v", proof)
		}
		if shown.Command.State != store.CmdSucceeded || shown.Command.Result == "" {
			t.Fatalf("the command as hqd keeps it: %s %q", shown.Command.State, shown.Command.Result)
		}
		settled := false
		if h := acq.Ledger(t).Terminals["20000001"]; h != nil {
			for _, b := range h.Batches {
				settled = settled || (b.Settlement != nil && len(b.Transactions) > 0)
			}
		}
		if !settled {
			t.Error("the acquirer saw no settlement of the terminal's batch")
		}
		t.Logf("%s: one signature refused insufficient-signatures; two (alice, bob) ran: %s, proof %s", dialect, p.Line(), proof.Result)
	})
}
