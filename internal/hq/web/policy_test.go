package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/posagent/posagent/internal/termtest"
	"github.com/posagent/posagent/terminal/remote"
)

// TestKeyRolloutAndPolicy: the fleet's trust, set up from the browser and
// enforced by the terminal (remote.md §Keys and policy). The admin's key,
// made in the admin's browser, is the terminals' root key; the terminal
// needs two signatures to unbind.
//
//   - An unbind signed by one key the terminal trusts (hqd's own), sent
//     around the back office straight to the broker, is refused
//     insufficient-signatures;
//   - the requester's and the approver's keys, made in their browsers,
//     are registered and rolled out with hq_keys jobs the admin signs with
//     the root key in the browser; the page shows each terminal's answer;
//   - an unbind the two of them sign then passes the terminal's signature
//     check (the unactivated terminal answers wrong-state, which the page
//     says in plain words), and a retry of it is one click away.
func TestKeyRolloutAndPolicy(t *testing.T) {
	l := startLab(t, "unbind = 2", map[string]string{"alice": "requester", "bob": "approver"})
	br := newBrowser(t)
	admin, alice, bob := br.tab("admin", l.url), br.tab("alice", l.url), br.tab("bob", l.url)
	admin.login("admin")
	makeKey(t, admin)
	registerKey(admin, "admin", "root")
	var rootKID string
	keys := l.keys()
	for kid := range keys {
		if strings.HasPrefix(kid, "admin-") {
			rootKID = kid
		}
	}
	if rootKID == "" {
		t.Fatalf("the admin's root key is not registered: %v", keys)
	}
	term := l.terminal(termtest.TermOptions{Serial: "BO-0101", RootKeys: map[string][]byte{rootKID: keys[rootKID]},
		Require: map[string]int{string(remote.TypeUnbind): 2}})

	// Around the back office: one signature, by a key the terminal trusts.
	now := time.Now().UTC().Truncate(time.Second)
	payload, err := remote.Command{V: remote.Version, ID: "around-1", Type: remote.TypeUnbind, Serial: term.Serial,
		IssuedAt: now, ExpiresAt: now.Add(time.Hour), Args: []byte(`{"reason":"one person"}`)}.Payload()
	if err != nil {
		t.Fatal(err)
	}
	env, err := remote.Seal("hqd-ops", l.opsPriv, payload)
	if err != nil {
		t.Fatal(err)
	}
	l.publish(term.Serial, env)
	if a := l.waitAck(term, "around-1", termWait); a.State != remote.AckRejected || a.Reason != "insufficient-signatures" {
		t.Fatalf("one-signature unbind: %s %s, want rejected insufficient-signatures", a.State, a.Reason)
	}

	// The operators' keys reach the terminal through the admin's rollouts.
	for _, p := range []*tab{alice, bob} {
		p.login(p.name)
		makeKey(t, p)
		registerKey(admin, p.name, "ops")
	}
	for kid := range l.keys() {
		if !strings.HasPrefix(kid, "alice-") && !strings.HasPrefix(kid, "bob-") {
			continue
		}
		admin.open("/keys")
		admin.submit("#rollout-" + kid)
		if !strings.Contains(admin.text("h1"), "Key change") {
			t.Fatalf("after the rollout: %s", admin.bodyText())
		}
		admin.submit("#sign")
		admin.waitFor("the terminal's answer to the key change", `(() => { const t = document.querySelector("#keyjob-live tbody");
			return t && t.innerText.includes("succeeded") && t.innerText.includes("`+kid+`"); })()`, termWait)
	}

	// Two people: the terminal's signature check passes.
	id := askForUnbind(t, alice, []string{term.Serial}, "returned to the depot", "settle")
	alice.submit("#sign")
	bob.open("/requests/" + id)
	bob.submit("#approve")
	bob.waitFor("the terminal's answer", `document.querySelector("#t-BO-0101") &&
		document.querySelector("#t-BO-0101").innerText.includes("rejected by the terminal")`, termWait)
	row := bob.text("#t-BO-0101")
	if !strings.Contains(row, "was not in a state to do this") || strings.Contains(row, "Not enough signatures") {
		t.Fatalf("the terminal's answer as shown: %q", row)
	}
	a := l.waitAck(term, id+"."+term.Serial, time.Second)
	if a.Reason != "wrong-state" {
		t.Fatalf("two-signature unbind of an unactivated terminal: %s %s, want wrong-state", a.State, a.Reason)
	}
	// The same page in Chinese says it in Chinese.
	bob.do(chromedp.SetValue(chromedp.ID("locale"), "zh-CN"))
	bob.submit("header form[action='/locale'] button")
	if row := bob.text("#t-BO-0101"); !strings.Contains(row, "终端当前状态不能执行此操作") {
		t.Fatalf("the reason in Chinese: %q", row)
	}
	bob.shot("request-zh")
	// A retry is one click away for the requester.
	alice.open("/requests/" + id)
	alice.submit("#retry")
	if msg := alice.text(".flash"); !strings.Contains(msg, "Request created") {
		t.Fatalf("retry: %q\n%s", msg, alice.bodyText())
	}
}
