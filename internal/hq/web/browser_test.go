package web_test

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/posagent/posagent/internal/termtest"
	"github.com/posagent/posagent/terminal/remote"
)

// termWait bounds what a terminal does after a command: settle with the
// acquirer, wipe, reboot (two busy cores).
const termWait = 120 * time.Second

// TestBackOfficeInBrowser drives the back office in chromium the way HQ's
// operators use it, against a real hqd, mosquitto, acquirer-sim and three
// posagentd terminals:
//
//   - a viewer who types a wrong password five times is locked out, the
//     right password included;
//   - a requester and an approver make their signing keys in their
//     browsers (WebCrypto, IndexedDB); an admin registers them;
//   - a technician issues activation codes on the technician page; the
//     terminals activate with them and the page shows the codes used;
//   - the fleet page updates live as the terminals report;
//   - a request that an approver rejects sends nothing; a requester
//     without the approver role cannot approve; a form whose CSRF token
//     was tampered with is refused;
//   - a requester asks for an unbind of two terminals with a reason and
//     signs it; the same requester cannot approve it; an approver, with
//     the keyboard only, approves (co-signs); both terminals settle, wipe
//     and reboot unactivated, and the page shows both proofs of wipe
//     verified; each command reached its terminal with two signatures.
//
// Screenshots of the fleet page, a request under review and a finished
// job are taken on the way (-screenshots DIR keeps them: make screenshots).
func TestBackOfficeInBrowser(t *testing.T) {
	l := startLab(t, "unbind = 2", map[string]string{"alice": "requester,approver", "bob": "approver",
		"carol": "requester", "tom": "technician", "mallory": "viewer"})
	br := newBrowser(t)

	// --- lockout -------------------------------------------------------
	mallory := br.tab("mallory", l.url)
	for i := 1; i <= 5; i++ {
		mallory.open("/login")
		mallory.do(chromedp.SendKeys(chromedp.ID("name"), "mallory"), chromedp.SendKeys(chromedp.ID("password"), "not my password"))
		mallory.submit("#login")
		msg := mallory.text("#login-error")
		want := "Wrong operator name or password"
		if i == 5 {
			want = "this operator is locked"
		}
		if !strings.Contains(msg, want) {
			t.Fatalf("wrong password #%d: %q, want %q", i, msg, want)
		}
	}
	mallory.open("/login")
	mallory.do(chromedp.SendKeys(chromedp.ID("name"), "mallory"), chromedp.SendKeys(chromedp.ID("password"), labPassword))
	mallory.submit("#login")
	if msg := mallory.text("#login-error"); !strings.Contains(msg, "locked") {
		t.Fatalf("right password while locked: %q", msg)
	}

	// --- signing keys, made in the operators' browsers -----------------
	alice, bob, admin := br.tab("alice", l.url), br.tab("bob", l.url), br.tab("admin", l.url)
	for _, p := range []*tab{alice, bob} {
		p.login(p.name)
		makeKey(t, p)
	}
	admin.login("admin")
	for _, who := range []string{"alice", "bob"} {
		registerKey(admin, who, "ops")
	}
	for _, path := range []string{"/keys", "/operators", "/audit", "/fleet", "/requests"} {
		admin.open(path)
		assertLabelled(t, admin)
	}
	kids := map[string]string{}
	pubs := map[string][]byte{}
	for kid, pub := range l.keys() {
		for _, who := range []string{"alice", "bob"} {
			if strings.HasPrefix(kid, who+"-") {
				kids[who], pubs[kid] = kid, pub
			}
		}
	}
	if len(kids) != 2 {
		t.Fatalf("registered keys: %v", kids)
	}

	// --- terminals, activated with codes from the technician page ------
	terms := map[string]*termtest.Term{}
	for _, serial := range []string{"BO-0001", "BO-0002", "BO-0003"} {
		terms[serial] = l.terminal(termtest.TermOptions{Serial: serial, HQKeys: pubs})
	}
	alice.open("/fleet")
	evalIn[chromedp.Void](alice, `window.__stay = true`)
	tom := br.tab("tom", l.url)
	tom.login("tom")
	for i, serial := range []string{"BO-0001", "BO-0002", "BO-0003"} {
		tom.open("/activation")
		tom.do(chromedp.SetValue(chromedp.ID("serial"), serial), chromedp.SetValue(chromedp.ID("tid"), fmt.Sprintf("1000001%d", i+1)),
			chromedp.SetValue(chromedp.ID("mid"), fmt.Sprintf("89800001000001%d", i+1)),
			chromedp.SetValue(chromedp.ID("merchant"), []string{"Lotus Tea House", "北京东城便利店", "Harbour Books"}[i]),
			chromedp.SetValue(chromedp.ID("acquirer"), l.acq.Addr))
		tom.submit("#issue")
		assertLabelled(t, tom)
		code := strings.TrimSpace(tom.text("#issued .code"))
		if len(code) != 8 {
			t.Fatalf("activation code for %s: %q\n%s", serial, code, tom.bodyText())
		}
		terms[serial].Activate(code)
	}
	tom.waitFor("the codes shown used", `[...document.querySelectorAll("#codes-live .code-used")].length === 3`, 30*time.Second)
	for _, serial := range []string{"BO-0001", "BO-0002", "BO-0003"} {
		terms[serial].Sale(12345)
	}
	terms["BO-0002"].Sale(880)
	// The fleet page, open since before the activations, shows them without
	// a reload.
	alice.waitFor("the fleet page updated live", `window.__stay === true &&
		[...document.querySelectorAll("#fleet-live tbody tr")].filter(r => r.cells[2] && r.cells[2].innerText === "active").length === 3`, 60*time.Second)
	alice.waitFor("the open batches on the fleet page", `(() => { const rows = [...document.querySelectorAll("#fleet-live tbody tr")];
		const b = s => (rows.find(r => r.innerText.includes(s)) || {cells: []}).cells[6]?.innerText || "";
		return b("BO-0001").startsWith("1") && b("BO-0002").startsWith("2"); })()`, 60*time.Second)
	alice.shot("fleet")
	assertLabelled(t, alice)
	assertNoSidewaysScroll(t, alice, "the fleet page at 1280×800")
	alice.do(chromedp.EmulateViewport(390, 844))
	alice.open("/fleet")
	assertNoSidewaysScroll(t, alice, "the fleet page at a phone's width")
	alice.shot("fleet-phone")
	alice.do(chromedp.EmulateViewport(1280, 800))

	// --- a request an approver rejects sends nothing -------------------
	carol := br.tab("carol", l.url)
	carol.login("carol")
	rejected := askForUnbind(t, alice, []string{"BO-0003"}, "merchant moving shop", "settle")
	alice.submit("#sign")
	if msg := alice.text(".flash"); !strings.Contains(msg, "Signed and submitted") {
		t.Fatalf("after signing: %q", msg)
	}
	// carol, a requester without the approver role, is not offered the
	// approval, and the server refuses it when she tries anyway.
	carol.open("/requests/" + rejected)
	if carol.has("#approve") || carol.has("#reject") {
		t.Fatalf("carol is offered a review:\n%s", carol.bodyText())
	}
	if got := evalIn[string](carol, `fetch("/jobs/`+rejected+`/payloads", {headers: {"Accept": "application/json"}}).then(r => r.status + " " + r.statusText)`); !strings.HasPrefix(got, "403") {
		t.Fatalf("carol fetches the payloads to sign: %s", got)
	}
	if got := evalIn[string](carol, `fetch("/requests/`+rejected+`/reject", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: "csrf=" + document.querySelector('meta[name=csrf-token]').content + "&note=no"}).then(r => String(r.status))`); got != "403" {
		t.Fatalf("carol rejects: %s", got)
	}
	// A reject form whose CSRF token was tampered with is refused.
	bob.open("/requests/" + rejected)
	bob.do(chromedp.SetValue(chromedp.ID("note"), "tampered"))
	evalIn[chromedp.Void](bob, `document.querySelector("form.reject input[name=csrf]").value = "00"`)
	bob.submit("#reject")
	if msg := bob.text("#error"); !strings.Contains(msg, "CSRF") {
		t.Fatalf("tampered form: %q", msg)
	}
	bob.open("/requests/" + rejected)
	if bob.has(".rejected") {
		t.Fatal("a tampered form rejected the request")
	}
	bob.do(chromedp.SetValue(chromedp.ID("note"), "the merchant called: they keep the terminal"))
	bob.submit("#reject")
	if msg := bob.text(".rejected"); !strings.Contains(msg, "Rejected by bob") || !strings.Contains(msg, "they keep the terminal") {
		t.Fatalf("after rejecting: %q", msg)
	}

	// --- two people unbind two terminals ------------------------------
	id := askForUnbind(t, alice, []string{"BO-0001", "BO-0002"}, "contract ended: merchant returns both terminals", "settle")
	alice.submit("#sign")
	if msg := alice.text(".flash"); !strings.Contains(msg, "Signed and submitted") {
		t.Fatalf("after signing: %q", msg)
	}
	// alice holds the approver role too, but not for her own request.
	if alice.has("#approve") || !strings.Contains(alice.text("#review"), "you cannot approve it") {
		t.Fatalf("alice is offered the approval of her own request:\n%s", alice.bodyText())
	}
	// bob logs in again and approves with the keyboard only.
	bob.submit("header form[action='/logout'] button")
	bob.open("/login?next=/requests/" + id)
	bob.do(chromedp.KeyEvent("bob"), chromedp.KeyEvent("\t"), chromedp.KeyEvent(labPassword))
	evalIn[chromedp.Void](bob, `window.__leaving = true`)
	bob.do(chromedp.KeyEvent("\r"))
	bob.waitFor("the login", `!window.__leaving && document.readyState === "complete"`, 60*time.Second)
	bob.waitFor("the terminals and their open batches", `document.querySelector("#t-BO-0002") &&
		document.querySelector("#t-BO-0002").innerText.includes("2 transactions")`, 30*time.Second)
	bob.shot("request-review")
	assertLabelled(t, bob)
	pressTabUntil(t, bob, "approve")
	evalIn[chromedp.Void](bob, `window.__leaving = true`)
	bob.do(chromedp.KeyEvent("\r"))
	bob.waitFor("the approval", `!window.__leaving && document.readyState === "complete"`, 60*time.Second)
	if msg := bob.text(".flash"); !strings.Contains(msg, "Approved") {
		t.Fatalf("after approving: %q\n%s", msg, bob.bodyText())
	}

	// The terminals settle, wipe and reboot; a supervisor starts them again.
	for _, serial := range []string{"BO-0001", "BO-0002"} {
		if code := terms[serial].WaitExit(termWait); code != 3 {
			t.Fatalf("%s exited %d, want 3 (reboot)", serial, code)
		}
		terms[serial].Start()
		terms[serial].WaitScreen("NOT ACTIVATED", termtest.Wait)
	}
	bob.waitFor("both proofs of wipe verified", `document.querySelectorAll("#request-live .proof-ok").length === 2 &&
		[...document.querySelectorAll("#request-live ol.timeline")].every(o => o.querySelectorAll("li.step-done").length === 7)`, termWait)
	bob.shot("request-finished")

	// The proof downloads exactly as the terminal signed it.
	for _, serial := range []string{"BO-0001", "BO-0002"} {
		raw := evalIn[string](bob, `fetch("/requests/`+id+`/proof/`+serial+`").then(r => r.text())`)
		env, err := remote.Open([]byte(raw), map[string]ed25519.PublicKey{remote.DeviceKID(serial): terms[serial].DevPub})
		if err != nil {
			t.Fatalf("downloaded proof of %s: %v", serial, err)
		}
		a, _ := remote.ParseAck(env.Payload)
		var res struct {
			Settlement     string `json:"settlement"`
			BindingRemoved bool   `json:"binding_removed"`
		}
		_ = json.Unmarshal(a.Result, &res)
		if a.State != remote.AckSucceeded || !res.BindingRemoved || !strings.HasPrefix(res.Settlement, "SETTLED") {
			t.Fatalf("proof of %s: %s", serial, env.Payload)
		}
		// What reached the terminal carried both signatures.
		unbind := unbindTo(l, serial, id+"."+serial)
		if unbind == nil {
			t.Fatalf("the unbind never reached %s", serial)
		}
		e, valid, err := remote.OpenSigners(unbind, map[string]ed25519.PublicKey{kids["alice"]: pubs[kids["alice"]], kids["bob"]: pubs[kids["bob"]]})
		if err != nil || len(valid) != 2 || len(e.Sigs) != 2 {
			t.Fatalf("unbind to %s: %d valid signatures (%v), want 2", serial, len(valid), err)
		}
	}
	ledger := l.acq.Ledger(t)
	for _, tid := range []string{"10000011", "10000012"} {
		settled := false
		if h := ledger.Terminals[tid]; h != nil {
			for _, b := range h.Batches {
				settled = settled || (b.Settlement != nil && len(b.Transactions) > 0)
			}
		}
		if !settled {
			t.Errorf("the acquirer saw no settlement of TID %s's batch", tid)
		}
	}
	// The rejected request sent nothing: BO-0003 got no command but its
	// activation's provision, and is still active with its open batch.
	if cmd := unbindTo(l, "BO-0003", rejected+".BO-0003"); cmd != nil {
		t.Fatalf("a rejected request sent BO-0003 %s", cmd)
	}
	if n := len(l.commandsTo("BO-0003")); n != 1 {
		t.Fatalf("BO-0003 got %d commands, want 1 (its provision)", n)
	}
	terms["BO-0003"].WaitScreen("MAIN MENU", time.Second)
}

// makeKey makes the operator's signing key in their browser and hands its
// public half in.
func makeKey(t *testing.T, p *tab) {
	t.Helper()
	p.open("/keys")
	p.waitFor("the browser's key check", `document.getElementById("local-key").innerText.includes("no signing key")`, 20*time.Second)
	p.submit("#create-key")
	p.waitFor("the key handed in", `document.getElementById("local-key").innerText.includes("holds this key")`, 20*time.Second)
	// The private key cannot be read out of the browser.
	if ext := evalIn[bool](p, `new Promise((ok, no) => { const r = indexedDB.open("posagent-backoffice"); r.onsuccess = () => {
		const g = r.result.transaction("keys").objectStore("keys").get("op:`+p.name+`"); g.onsuccess = () => ok(g.result.privateKey.extractable); g.onerror = no; }; })`); ext {
		t.Fatalf("%s's private key is extractable", p.name)
	}
}

// registerKey is the admin registering an operator's handed-in key.
func registerKey(admin *tab, operator, role string) {
	admin.t.Helper()
	admin.open("/keys")
	admin.do(chromedp.SetValue(chromedp.CSS("#register-"+operator+" select[name=role]"), role))
	admin.submit("#register-" + operator + " button")
}

// unbindTo returns the envelope of command id published to serial, or nil.
func unbindTo(l *lab, serial, id string) []byte {
	for _, raw := range l.commandsTo(serial) {
		e, err := remote.Decode(raw)
		if err != nil {
			continue
		}
		var p struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(e.Payload, &p) == nil && p.ID == id {
			return raw
		}
	}
	return nil
}

// askForUnbind fills the unbind request form for serials (picked on the
// fleet page) and lands on the new request's page; it returns its id.
func askForUnbind(t *testing.T, p *tab, serials []string, reason, unsettled string) string {
	t.Helper()
	p.open("/fleet")
	for _, s := range serials {
		p.do(chromedp.Click(chromedp.ID("sel-" + s)))
	}
	p.submit("#fleet-select button[type=submit]")
	if got := evalIn[string](p, `document.getElementById("serials").value`); got != strings.Join(serials, "\n") {
		t.Fatalf("the form's serials: %q, want %q", got, serials)
	}
	assertLabelled(t, p)
	p.do(chromedp.SendKeys(chromedp.ID("reason"), reason), chromedp.Click(chromedp.ID("u-"+unsettled)))
	p.submit("#create")
	id := evalIn[string](p, `location.pathname.split("/").pop()`)
	if !strings.HasPrefix(id, "j") || !strings.Contains(p.text("h1"), id) {
		t.Fatalf("after creating the request: %s", p.bodyText())
	}
	return id
}

// pressTabUntil presses Tab until the element with id has the focus: the
// control is reachable with the keyboard alone.
func pressTabUntil(t *testing.T, p *tab, id string) {
	t.Helper()
	for range 80 {
		if evalIn[string](p, `document.activeElement ? document.activeElement.id : ""`) == id {
			return
		}
		p.do(chromedp.KeyEvent("\t"))
	}
	t.Fatalf("Tab never reached #%s", id)
}

// assertLabelled fails when a visible form control of the page has no
// label (a <label for>, a wrapping label or aria-label).
func assertLabelled(t *testing.T, p *tab) {
	t.Helper()
	bare := evalIn[[]string](p, `[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
		.filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")).map(e => e.outerHTML)`)
	if len(bare) > 0 {
		t.Errorf("%s: controls without a label on %s: %q", p.name, evalIn[string](p, "location.pathname"), bare)
	}
}

// assertNoSidewaysScroll fails when the page is wider than the window.
func assertNoSidewaysScroll(t *testing.T, p *tab, what string) {
	t.Helper()
	if w := evalIn[[]int](p, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		t.Errorf("%s scrolls sideways: %d px wide in a %d px window", what, w[0], w[1])
	}
}
