package web_test

import (
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/hq/store"
)

var jobLink = regexp.MustCompile(`Unbind request (j[0-9a-f]+)`)

// newRequest creates an unbind request through the form and returns its id.
func newRequest(t *testing.T, c *client, serials, reason, unsettled string) string {
	t.Helper()
	c.get("/requests/new")
	code, body := c.post("/requests/new", url.Values{"mode": {"list"}, "serials": {serials}, "reason": {reason},
		"unsettled": {unsettled}, "rate": {"60"}, "inflight": {"20"}, "ttl_hours": {"24"}})
	m := jobLink.FindStringSubmatch(body)
	if code != 200 || m == nil {
		t.Fatalf("create request: %d\n%s", code, body)
	}
	return m[1]
}

// TestTwoPeopleSignAnUnbind: the requester signs their request, cannot
// approve it, an approver without the requester's signature cannot either;
// once the requester has signed, an approver co-signs and the job runs,
// every command's envelope carrying both signatures (remote.md sigs) that
// verify as a terminal would verify them.
func TestTwoPeopleSignAnUnbind(t *testing.T) {
	for _, d := range []string{"sqlite", "postgres"} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			b := newBO(t, boOptions{dialect: d, policy: map[string]int{"unbind": 2}})
			alice := b.operator("alice", "alice-password-1", store.RoleRequester, store.RoleApprover)
			bob := b.operator("bob", "bob-password-123", store.RoleApprover)
			b.operator("carol", "carol-password-1", store.RoleRequester)
			aliceKey, bobKey := b.key(alice, "alice-1"), b.key(bob, "bob-1")
			b.terminal("POS-0001", "active", 3)
			b.terminal("POS-0002", "active", 0)

			ca, cb, cc := b.client(), b.client(), b.client()
			ca.login("alice", "alice-password-1")
			cb.login("bob", "bob-password-123")
			cc.login("carol", "carol-password-1")
			id := newRequest(t, ca, "POS-0001\nPOS-0002", "merchant closed the shop", "settle")

			// Before the requester signs, nobody reviews.
			cb.get("/requests/" + id)
			if code, msg := cb.sign(id, "bob-1", bobKey); code != 403 || !strings.Contains(msg, "not signed") {
				t.Fatalf("approver before the requester signed: %d %q, want 403", code, msg)
			}
			if code, state := ca.sign(id, "alice-1", aliceKey); code != 200 || state != store.JobSigning {
				t.Fatalf("requester signs: %d %q", code, state)
			}
			// The requester, an approver too, cannot approve their own.
			_, page := ca.get("/requests/" + id)
			if !strings.Contains(page, "you cannot approve it") || strings.Contains(page, `id="approve"`) {
				t.Fatalf("own request page offers approval:\n%s", page)
			}
			cmd, _ := b.st.Command(context.Background(), store.ItemCmdID(id, "POS-0001"))
			var refused struct{ Error string }
			if code := ca.postJSON("/jobs/"+id+"/signatures", map[string]any{"kid": "alice-1", "signatures": []map[string]any{
				{"cmd_id": cmd.ID, "sig": ed25519.Sign(aliceKey, cmd.Payload)}}}, &refused); code != 409 || !strings.Contains(refused.Error, "another person") {
				t.Fatalf("requester signs again: %d %q, want 409", code, refused.Error)
			}
			// A requester without the approver role cannot review.
			cc.get("/requests/" + id)
			if code, msg := cc.sign(id, "alice-1", aliceKey); code != 403 || !strings.Contains(msg, "approver") {
				t.Fatalf("carol (requester only) approves: %d %q, want 403", code, msg)
			}
			if code, _ := cc.post("/requests/"+id+"/reject", url.Values{"note": {"no"}}); code != 403 {
				t.Fatalf("carol rejects: %d, want 403", code)
			}
			// A signature that does not verify is refused before storing.
			_, page = cb.get("/requests/" + id)
			if !strings.Contains(page, `id="approve"`) || !strings.Contains(page, "3 transactions") {
				t.Fatalf("approver's page lacks the approve button or the open batch:\n%s", page)
			}
			_, otherKey, _ := ed25519.GenerateKey(nil)
			if code, _ := cb.sign(id, "bob-1", otherKey); code != 400 {
				t.Fatalf("bad signature: %d, want 400", code)
			}
			if code, state := cb.sign(id, "bob-1", bobKey); code != 200 || state != store.JobRunning {
				t.Fatalf("approver signs: %d %q, want running", code, state)
			}
			// hqd assembles one sigs envelope per command; the runner sends
			// it (not running here): assemble as the runner would and check
			// it with the terminal's verification.
			ctx := context.Background()
			for _, serial := range []string{"POS-0001", "POS-0002"} {
				sigs, err := b.st.Signatures(ctx, store.ItemCmdID(id, serial))
				if err != nil || len(sigs) != 2 || sigs[0].Operator != "alice" || sigs[1].Operator != "bob" {
					t.Fatalf("signatures of %s: %+v %v", serial, sigs, err)
				}
			}
			trail, _ := b.st.AuditTrail(ctx, store.AuditQuery{Target: id})
			var actions []string
			for _, e := range trail {
				actions = append(actions, e.Actor+":"+e.Action)
			}
			for _, want := range []string{"alice:job.create", "alice:request.submit", "bob:request.approve", "carol:sign.refused"} {
				if !strings.Contains(strings.Join(actions, " "), want) {
					t.Errorf("audit of %s lacks %s: %v", id, want, actions)
				}
			}
		})
	}
}

// TestRejectedRequestSendsNothing: an approver rejects with a note; the
// job is rejected, its commands cancelled without an envelope, and the
// rejection is in the trail with who and from where.
func TestRejectedRequestSendsNothing(t *testing.T) {
	b := newBO(t, boOptions{})
	alice := b.operator("alice", "alice-password-1", store.RoleRequester)
	b.operator("bob", "bob-password-123", store.RoleApprover)
	aliceKey := b.key(alice, "alice-1")
	b.terminal("POS-0001", "active", 1)
	ca, cb := b.client(), b.client()
	ca.login("alice", "alice-password-1")
	cb.login("bob", "bob-password-123")
	id := newRequest(t, ca, "POS-0001", "wrong shop", "settle")
	if code, _ := ca.sign(id, "alice-1", aliceKey); code != 200 {
		t.Fatal("requester signs:", code)
	}
	cb.get("/requests/" + id)
	if _, body := cb.post("/requests/"+id+"/reject", url.Values{"note": {""}}); !strings.Contains(body, "Give a reason") {
		t.Fatalf("reject without a note:\n%s", body)
	}
	code, body := cb.post("/requests/"+id+"/reject", url.Values{"note": {"the merchant called back: keep it"}})
	if code != 200 || !strings.Contains(body, "Rejected by bob") || !strings.Contains(body, "keep it") {
		t.Fatalf("reject: %d\n%s", code, body)
	}
	ctx := context.Background()
	j, _ := b.st.Job(ctx, id)
	c, _ := b.st.Command(ctx, store.ItemCmdID(id, "POS-0001"))
	if j.State != store.JobRejected || c.State != store.CmdCancelled || c.Envelope != nil || !c.SentAt.IsZero() {
		t.Fatalf("after reject: job %s, command %s envelope %q sent %v", j.State, c.State, c.Envelope, c.SentAt)
	}
	trail, _ := b.st.AuditTrail(ctx, store.AuditQuery{Action: "request.reject"})
	if len(trail) != 1 || trail[0].Actor != "bob" || trail[0].Source != "127.0.0.1" {
		t.Fatalf("reject audit: %+v", trail)
	}
	// A second decision is refused.
	if code, _ := ca.sign(id, "alice-1", aliceKey); code != 403 {
		t.Fatalf("sign a rejected request: %d", code)
	}
}

// TestLoginLockout: wrong passwords lock the operator, even the right one
// is refused then; an unknown name gets the same answer as a wrong
// password; every attempt is in the trail.
func TestLoginLockout(t *testing.T) {
	b := newBO(t, boOptions{maxFailures: 3})
	b.operator("alice", "alice-password-1", store.RoleViewer)
	c := b.client()
	for i := range 3 {
		code, body := c.tryLogin("alice", "wrong password")
		want := "Wrong operator name or password"
		if i == 2 {
			want = "this operator is locked"
		}
		if code != 401 || !strings.Contains(body, want) {
			t.Fatalf("attempt %d: %d, want %q\n%s", i+1, code, want, body)
		}
	}
	if code, body := c.tryLogin("alice", "alice-password-1"); code != 403 || !strings.Contains(body, "locked") {
		t.Fatalf("right password while locked: %d\n%s", code, body)
	}
	if code, body := c.tryLogin("nobody", "x"); code != 401 || !strings.Contains(body, "Wrong operator name or password") {
		t.Fatalf("unknown operator: %d\n%s", code, body)
	}
	// The lock runs out.
	b.now = func() time.Time { return time.Now().Add(16 * time.Minute) }
	c.login("alice", "alice-password-1")
	trail, _ := b.st.AuditTrail(context.Background(), store.AuditQuery{Action: "login"})
	var reasons []string
	for _, e := range trail {
		reasons = append(reasons, e.Action+e.Detail)
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{`"reason":"bad-password"`, `"reason":"locked-now"`, `"reason":"locked"`, `"reason":"unknown-operator"`} {
		if !strings.Contains(all, want) {
			t.Errorf("trail lacks %s:\n%s", want, all)
		}
	}
}

// TestLoginThrottledPerAddress: one address gets LoginRate attempts per
// window, whatever names it tries.
func TestLoginThrottledPerAddress(t *testing.T) {
	b := newBO(t, boOptions{loginRate: 4})
	c := b.client()
	for i := range 4 {
		if code, _ := c.tryLogin("user"+string(rune('a'+i)), "x"); code != 401 {
			t.Fatalf("attempt %d: %d", i, code)
		}
	}
	if code, body := c.tryLogin("other", "x"); code != 429 || !strings.Contains(body, "Too many login attempts") {
		t.Fatalf("5th attempt: %d\n%s", code, body)
	}
}

// TestCSRFRefused: a form posted without the session's token, with a wrong
// one, or from another origin is refused and changes nothing; so is a
// login form without its cookie.
func TestCSRFRefused(t *testing.T) {
	b := newBO(t, boOptions{})
	b.operator("alice", "alice-password-1", store.RoleRequester)
	b.terminal("POS-0001", "active", 0)
	c := b.client()
	c.login("alice", "alice-password-1")
	form := url.Values{"mode": {"list"}, "serials": {"POS-0001"}, "reason": {"x"}, "unsettled": {"settle"}, "rate": {"60"}, "inflight": {"5"}, "ttl_hours": {"24"}}
	for name, tok := range map[string]string{"missing": "", "wrong": strings.Repeat("ab", 32)} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("csrf", tok)
		if code, body := c.post("/requests/new", f); code != 403 || !strings.Contains(body, "CSRF") {
			t.Fatalf("%s token: %d\n%s", name, code, body)
		}
	}
	// Right token, foreign Origin.
	c.get("/requests/new")
	req := strings.NewReader(url.Values{"csrf": {c.csrf}, "locale": {"zh-CN"}}.Encode())
	r, _ := newReq("POST", b.srv.URL+"/locale", req)
	r.Header.Set("Origin", "https://evil.example")
	resp, err := c.http.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("foreign origin: %d", resp.StatusCode)
	}
	jobs, _ := b.st.JobsOfType(context.Background(), "unbind", 10)
	if len(jobs) != 0 {
		t.Fatalf("a refused form created %d jobs", len(jobs))
	}
	// The login form's own token.
	c2 := b.client()
	if code, _ := c2.post("/login", url.Values{"name": {"alice"}, "password": {"alice-password-1"}, "csrf": {"00"}}); code != 403 {
		t.Fatalf("login without the login cookie: %d", code)
	}
	trail, _ := b.st.AuditTrail(context.Background(), store.AuditQuery{Action: "csrf.refused"})
	if len(trail) < 3 {
		t.Fatalf("csrf refusals in the trail: %d, want 3 or more", len(trail))
	}
}

// TestRolesRefused: pages and actions outside an operator's roles answer
// 403 and are in the trail.
func TestRolesRefused(t *testing.T) {
	b := newBO(t, boOptions{})
	b.operator("tech", "tech-password-12", store.RoleTechnician)
	b.operator("req", "req-password-123", store.RoleRequester)
	ct, cr := b.client(), b.client()
	ct.login("tech", "tech-password-12")
	cr.login("req", "req-password-123")
	for _, tc := range []struct {
		c    *client
		path string
	}{{ct, "/requests/new"}, {ct, "/operators"}, {cr, "/activation"}, {cr, "/operators"}} {
		if code, body := tc.c.get(tc.path); code != 403 || !strings.Contains(body, "You need the role") {
			t.Errorf("GET %s: %d\n%s", tc.path, code, body)
		}
	}
	if code, _ := cr.post("/keys/register", url.Values{"operator_id": {"1"}, "kid": {"x"}, "role": {"ops"}}); code != 403 {
		t.Errorf("requester registers a key: %d", code)
	}
	trail, _ := b.st.AuditTrail(context.Background(), store.AuditQuery{Action: "role.refused"})
	if len(trail) != 5 {
		t.Errorf("role refusals in the trail: %d, want 5", len(trail))
	}
}

// TestRequestFormValidation: every field is checked on the server with a
// message next to it; unknown serials are listed by name; nothing is
// created while anything is wrong.
func TestRequestFormValidation(t *testing.T) {
	b := newBO(t, boOptions{})
	alice := b.operator("alice", "alice-password-1", store.RoleRequester)
	b.terminal("POS-0001", "active", 0)
	c := b.client()
	c.login("alice", "alice-password-1")
	c.get("/requests/new")
	// No key yet: said at the top.
	code, body := c.post("/requests/new", url.Values{"mode": {"list"}, "serials": {"POS-0001"}, "reason": {"r"}, "unsettled": {"settle"},
		"rate": {"60"}, "inflight": {"5"}, "ttl_hours": {"24"}})
	if code != 422 || !strings.Contains(body, "You have no registered signing key") {
		t.Fatalf("no key: %d\n%s", code, body)
	}
	b.key(alice, "alice-1")
	code, body = c.post("/requests/new", url.Values{"mode": {"list"}, "serials": {"POS-0001, NOPE-1, NOPE-2"}, "reason": {""},
		"unsettled": {"force"}, "rate": {"0"}, "inflight": {"x"}, "ttl_hours": {"999"}})
	if code != 422 {
		t.Fatalf("bad form: %d", code)
	}
	for field, want := range map[string]string{
		"serials-err":   "2 of these serials are not registered terminals",
		"reason-err":    "A reason is required.",
		"force_ack-err": "tick the box to confirm",
		"rate-err":      "A whole number from 1 to 6000.",
		"inflight-err":  "A whole number from 1 to 10000.",
		"ttl_hours-err": "A whole number from 1 to 168.",
	} {
		if !regexp.MustCompile(`id="` + field + `">[^<]*` + regexp.QuoteMeta(want)).MatchString(body) {
			t.Errorf("no %q next to %s", want, field)
		}
	}
	if !strings.Contains(body, "<li><code>NOPE-1</code></li>") || !strings.Contains(body, "<li><code>NOPE-2</code></li>") {
		t.Errorf("unknown serials not listed by name")
	}
	if !strings.Contains(body, `aria-invalid="true"`) {
		t.Errorf("invalid fields not marked for assistive technology")
	}
	// An upload with a header and a bad entry.
	code, body = c.postMultipart("/requests/new", url.Values{"mode": {"list"}, "reason": {"r"}, "unsettled": {"settle"},
		"rate": {"60"}, "inflight": {"5"}, "ttl_hours": {"24"}}, "serials_file", "serial,tid\nPOS-0001,1\nbad/serial,2\n")
	if code != 422 || !strings.Contains(body, "1 entries are not serials") || !strings.Contains(body, "bad/serial") {
		t.Fatalf("upload with a bad entry: %d\n%s", code, body)
	}
	// A filter that matches nothing.
	code, body = c.post("/requests/new", url.Values{"mode": {"filter"}, "state": {"tampered"}, "reason": {"r"}, "unsettled": {"settle"},
		"rate": {"60"}, "inflight": {"5"}, "ttl_hours": {"24"}})
	if code != 422 || !strings.Contains(body, "The filter matches no terminal") {
		t.Fatalf("empty filter result: %d\n%s", code, body)
	}
	jobs, _ := b.st.JobsOfType(context.Background(), "unbind", 10)
	if len(jobs) != 0 {
		t.Fatalf("bad forms created %d jobs", len(jobs))
	}
	// The upload alone, right.
	code, body = c.postMultipart("/requests/new", url.Values{"mode": {"list"}, "reason": {"r"}, "unsettled": {"settle"},
		"rate": {"60"}, "inflight": {"5"}, "ttl_hours": {"24"}}, "serials_file", "serial\nPOS-0001\n")
	if code != 200 || !jobLink.MatchString(body) {
		t.Fatalf("upload: %d\n%s", code, body)
	}
}

// TestAuditCSV: the trail exports as CSV, filtered, every row, with cells
// that a spreadsheet would run as formulas defused.
func TestAuditCSV(t *testing.T) {
	b := newBO(t, boOptions{})
	b.operator("alice", "alice-password-1", store.RoleViewer)
	ctx := context.Background()
	for i := range 7 {
		_ = b.st.Audit(ctx, store.AuditEntry{At: time.Now(), Actor: "hqd", Source: "test", Action: "test.row", Target: "=HYPERLINK(1)", Detail: string(rune('a' + i))})
	}
	c := b.client()
	c.login("alice", "alice-password-1")
	resp, err := c.http.Get(b.srv.URL + "/audit.csv?action=test.")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("content type %q", ct)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 8 || rows[0][4] != "action" || rows[1][4] != "test.row" || rows[1][5] != "'=HYPERLINK(1)" || rows[1][6] != "g" {
		t.Fatalf("csv rows: %q", rows)
	}
	if _, body := c.get("/audit?since=yesterday"); !strings.Contains(body, `id="since-err">Give a date as YYYY-MM-DD.`) {
		t.Fatalf("bad since:\n%s", body)
	}
}

// TestLanguagePerOperator: an operator switches to Simplified Chinese and
// keeps it across sessions; another operator still sees English.
func TestLanguagePerOperator(t *testing.T) {
	b := newBO(t, boOptions{})
	b.operator("alice", "alice-password-1", store.RoleViewer)
	b.operator("bob", "bob-password-123", store.RoleViewer)
	ca := b.client()
	ca.login("alice", "alice-password-1")
	ca.get("/fleet")
	if _, body := ca.post("/locale", url.Values{"locale": {"zh-CN"}, "back": {"/fleet"}}); !strings.Contains(body, "<h1>终端</h1>") || !strings.Contains(body, `lang="zh-CN"`) {
		t.Fatalf("after switching:\n%s", body)
	}
	ca2 := b.client()
	ca2.get("/login")
	if _, body := ca2.post("/login", url.Values{"name": {"alice"}, "password": {"alice-password-1"}}); !strings.Contains(body, "<h1>终端</h1>") {
		t.Fatalf("next session not in Chinese:\n%s", body)
	}
	cb := b.client()
	cb.login("bob", "bob-password-123")
}

// TestSessionCookiesUnderTLS: served over TLS the session cookie is
// __Host-, Secure, HttpOnly and SameSite=Strict, and every answer carries
// HSTS and the Content-Security-Policy that forbids inline code.
func TestSessionCookiesUnderTLS(t *testing.T) {
	b := newBO(t, boOptions{secure: true})
	b.operator("alice", "alice-password-1", store.RoleViewer)
	c := b.client()
	c.get("/login")
	resp, err := c.http.PostForm(b.srv.URL+"/login", url.Values{"csrf": {c.csrf}, "name": {"alice"}, "password": {"alice-password-1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session string
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, "__Host-bo_session=") {
			session = v
		}
	}
	for _, want := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(session, want) {
			t.Errorf("session cookie %q lacks %s", session, want)
		}
	}
	if strings.Contains(session, "Domain=") {
		t.Errorf("session cookie %q names a domain", session)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("headers: %v", resp.Header)
	}
	if code, body := c.get("/fleet"); code != 200 || !strings.Contains(body, "<h1>Fleet</h1>") {
		t.Fatalf("fleet over TLS: %d", code)
	}
}

// TestSessionEnds: a session ends after its idle time, and at logout; the
// old cookie is worth nothing afterwards.
func TestSessionEnds(t *testing.T) {
	b := newBO(t, boOptions{})
	b.operator("alice", "alice-password-1", store.RoleViewer)
	c := b.client()
	c.login("alice", "alice-password-1")
	b.now = func() time.Time { return time.Now().Add(31 * time.Minute) }
	if _, body := c.get("/fleet"); !strings.Contains(body, "Log in to the HQ back office") {
		t.Fatalf("after 31 idle minutes the fleet page is still shown")
	}
	c.login("alice", "alice-password-1")
	u, _ := url.Parse(b.srv.URL)
	old := c.http.Jar.Cookies(u)
	c.get("/fleet")
	if code, body := c.post("/logout", url.Values{}); code != 200 || !strings.Contains(body, "Log in") {
		t.Fatalf("logout: %d", code)
	}
	c.http.Jar.SetCookies(u, old)
	if _, body := c.get("/fleet"); !strings.Contains(body, "Log in to the HQ back office") {
		t.Fatalf("the cookie of a logged-out session still works")
	}
}

func newReq(method, url string, body *strings.Reader) (*http.Request, error) {
	r, err := http.NewRequest(method, url, body)
	if err == nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return r, err
}
