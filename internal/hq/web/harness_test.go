package web_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/hq/auth"
	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/pgtest"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/internal/hq/web"
)

// The HTTP-level harness: the back office's handler on httptest with a real
// database (SQLite file, or a throwaway PostgreSQL), and clients with
// cookie jars that log in and post forms as a browser does. The browser
// tests (browser_test.go) drive the same pages in chromium against a real
// hqd.

func TestMain(m *testing.M) { pgtest.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// bo is one back office under test.
type bo struct {
	t   testing.TB
	st  *store.Store
	srv *httptest.Server
	now func() time.Time
}

type boOptions struct {
	dialect     string
	policy      map[string]int
	loginRate   int
	maxFailures int
	secure      bool // TLS (httptest's certificate)
}

var pwHashes sync.Map // password → argon2id hash, made once per test binary (64 MiB each)

func hashOf(t testing.TB, pw string) string {
	if h, ok := pwHashes.Load(pw); ok {
		return h.(string)
	}
	h, err := auth.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	pwHashes.Store(pw, h)
	return h
}

func newBO(t testing.TB, o boOptions) *bo {
	t.Helper()
	url := "sqlite://" + filepath.Join(t.TempDir(), "hq.db")
	if o.dialect == "postgres" {
		url = pgtest.NewDB(t)
	}
	st, err := store.Open(context.Background(), url, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := &bo{t: t, st: st, now: time.Now}
	svc := &jobs.Service{Store: st, Policy: o.policy, Log: quiet}
	s, err := web.New(context.Background(), web.Options{Store: st, Jobs: svc, Log: quiet, LoginRate: o.loginRate,
		MaxFailures: o.maxFailures, Secure: o.secure, Now: func() time.Time { return b.now() }})
	if err != nil {
		t.Fatal(err)
	}
	if o.secure {
		b.srv = httptest.NewTLSServer(s.Handler())
	} else {
		b.srv = httptest.NewServer(s.Handler())
	}
	t.Cleanup(b.srv.Close)
	return b
}

// operator creates an operator with a password.
func (b *bo) operator(name, pw string, roles ...string) store.Operator {
	b.t.Helper()
	o, err := b.st.CreateOperator(context.Background(), store.Operator{Name: name, Roles: roles, PasswordHash: hashOf(b.t, pw), CreatedAt: time.Now()})
	if err != nil {
		b.t.Fatal(err)
	}
	return o
}

// key registers an Ed25519 ops key for an operator and returns it (a
// stand-in for the browser's WebCrypto key in the HTTP tests).
func (b *bo) key(o store.Operator, kid string) ed25519.PrivateKey {
	b.t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	if err := b.st.AddKey(context.Background(), store.HQKey{KID: kid, Pub: pub, Role: store.KeyOps, OperatorID: o.ID, CreatedAt: time.Now()}); err != nil {
		b.t.Fatal(err)
	}
	return priv
}

// terminal registers a terminal with a status.
func (b *bo) terminal(serial, state string, batch int) {
	b.t.Helper()
	ctx := context.Background()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := b.st.RegisterDevice(ctx, serial, pub, nil, false, time.Now()); err != nil {
		b.t.Fatal(err)
	}
	raw := fmt.Sprintf(`{"serial":%q,"online":true,"state":%q,"tid":"10000001","batch_no":"000001","batch_count":%d,"batch_amount":%d,"version":"test","at":"%s","clock":"synced"}`,
		serial, state, batch, batch*1234, time.Now().UTC().Format(time.RFC3339Nano))
	err := b.st.InTx(ctx, func(tx *store.Tx) error {
		return tx.ApplyStatus(ctx, serial, store.StatusUpdate{Full: true, Online: true, State: state, TID: "10000001", BatchNo: "000001",
			BatchCount: batch, Version: "test", Clock: "synced", At: time.Now().UTC(), Raw: raw}, time.Now())
	})
	if err != nil {
		b.t.Fatal(err)
	}
}

// client is a browser without JavaScript: a cookie jar, forms, links.
type client struct {
	t    testing.TB
	b    *bo
	http *http.Client
	csrf string
}

func (b *bo) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: b.t, b: b, http: &http.Client{Jar: jar, Transport: b.srv.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var (
	csrfMeta  = regexp.MustCompile(`<meta name="csrf-token" content="([0-9a-f]+)">`)
	csrfInput = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)
)

// get fetches a page (following redirects) and remembers its CSRF token.
func (c *client) get(path string) (int, string) {
	c.t.Helper()
	for range 5 {
		resp, err := c.http.Get(c.b.srv.URL + path)
		if err != nil {
			c.t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
			path = loc
			continue
		}
		if m := csrfMeta.FindSubmatch(body); m != nil {
			c.csrf = string(m[1])
		} else if m := csrfInput.FindSubmatch(body); m != nil {
			c.csrf = string(m[1])
		}
		return resp.StatusCode, string(body)
	}
	c.t.Fatalf("GET %s: too many redirects", path)
	return 0, ""
}

// post submits a form with the page's CSRF token (unless the form sets
// csrf itself) and follows a redirect.
func (c *client) post(path string, form url.Values) (int, string) {
	c.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", c.csrf)
	}
	resp, err := c.http.PostForm(c.b.srv.URL+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
		return c.get(loc)
	}
	return resp.StatusCode, string(body)
}

// postMultipart submits a multipart form with an uploaded file.
func (c *client) postMultipart(path string, form url.Values, file, content string) (int, string) {
	c.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	form.Set("csrf", c.csrf)
	for k, vs := range form {
		for _, v := range vs {
			_ = mw.WriteField(k, v)
		}
	}
	if file != "" {
		fw, _ := mw.CreateFormFile(file, "serials.csv")
		_, _ = io.WriteString(fw, content)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", c.b.srv.URL+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
		return c.get(loc)
	}
	return resp.StatusCode, string(body)
}

// postJSON is the page script's call: JSON with the X-CSRF-Token header.
func (c *client) postJSON(path string, v any, out any) int {
	c.t.Helper()
	b, _ := json.Marshal(v)
	req, _ := http.NewRequest("POST", c.b.srv.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", c.csrf)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("POST %s: %d %s", path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode
}

func (c *client) getJSON(path string, out any) int {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.b.srv.URL+path, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode
}

// login logs in and fails the test unless it lands on the fleet page.
func (c *client) login(name, pw string) {
	c.t.Helper()
	if code, body := c.tryLogin(name, pw); code != 200 || !strings.Contains(body, `<h1>Fleet</h1>`) {
		c.t.Fatalf("login %s: %d\n%s", name, code, body)
	}
}

func (c *client) tryLogin(name, pw string) (int, string) {
	c.t.Helper()
	c.get("/login")
	return c.post("/login", url.Values{"name": {name}, "password": {pw}})
}

// sign signs every command of a job this client's operator has not signed,
// as the page script does, with priv under kid.
func (c *client) sign(jobID, kid string, priv ed25519.PrivateKey) (int, string) {
	c.t.Helper()
	var page struct {
		Commands []struct {
			CmdID   string `json:"cmd_id"`
			Payload []byte `json:"payload"`
		} `json:"commands"`
		Error string `json:"error"`
	}
	if code := c.getJSON("/jobs/"+jobID+"/payloads", &page); code != 200 {
		return code, page.Error
	}
	type sig struct {
		CmdID string `json:"cmd_id"`
		Sig   []byte `json:"sig"`
	}
	var sigs []sig
	for _, p := range page.Commands {
		sigs = append(sigs, sig{CmdID: p.CmdID, Sig: ed25519.Sign(priv, p.Payload)})
	}
	var out struct {
		State string `json:"state"`
		Error string `json:"error"`
	}
	code := c.postJSON("/jobs/"+jobID+"/signatures", map[string]any{"kid": kid, "signatures": sigs}, &out)
	if out.Error != "" {
		return code, out.Error
	}
	return code, out.State
}
