// Package web is the HQ back office in the browser, served by hqd beside
// its JSON API: operators log in, watch the fleet, ask for unbinds with a
// reason, review (co-sign) or reject each other's requests, follow a
// rollout terminal by terminal down to the signed proof of wipe, issue
// activation codes and read the audit trail. English and Simplified
// Chinese, chosen per operator.
//
// Pages are rendered on the server (html/template) from templates and
// assets embedded in the binary; a little JavaScript (static/app.js, no
// build step) refreshes live tables and does the one thing that must
// happen where the operator is: signing. Each operator's Ed25519 key is
// made by WebCrypto in their browser, non-extractable, kept in IndexedDB;
// the server hands the browser the exact payload bytes, verifies every
// signature it gets back (remote.OpenSigners) and stores it. hqd never
// holds an operator's private key, so a command whose policy needs two
// signatures needs two people.
//
// Security: argon2id passwords (internal/hq/auth), login throttled per
// address and locked per operator after repeated failures, sessions in
// HttpOnly SameSite=Strict cookies (Secure and __Host- under TLS), a CSRF
// token on every form and every JSON POST, a strict Content-Security-Policy
// (no inline script or style), and every action in the audit trail with
// who, when and from which address.
package web

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/store"
)

//go:embed templates static
var assets embed.FS

// Options configure the back office.
type Options struct {
	Store *store.Store
	Jobs  *jobs.Service
	Log   *slog.Logger
	// Secure: served over TLS. Cookies get Secure and the __Host- prefix,
	// responses get HSTS.
	Secure bool
	Now    func() time.Time
	Rand   io.Reader // session ids, codes (default crypto/rand)

	SessionIdle time.Duration // a session ends after this much idleness (default 30 min)
	SessionMax  time.Duration // ... and at the latest this long after login (default 12 h)
	MaxFailures int           // failed logins in a row that lock an operator (default 5)
	LockFor     time.Duration // how long (default 15 min)
	// LoginRate is how many login attempts one address may make per
	// LoginWindow (default 20 per 5 min), whatever the operator names.
	LoginRate   int
	LoginWindow time.Duration
	CodeTTL     time.Duration // default validity of an activation code (24 h)
	// LivePoll is how often live tables refresh in the browser (default 3 s).
	LivePoll time.Duration
}

// Server is the back office.
type Server struct {
	o       Options
	st      *store.Store
	log     *slog.Logger
	pages   map[string]*template.Template
	limiter *limiter
	// hashing bounds the argon2id checks running at once (64 MiB each): a
	// flood of logins costs time, not memory.
	hashing chan struct{}
	// dummyHash is checked for an unknown operator, so that a login for a
	// name that does not exist takes as long as one that does.
	dummyHash string
	static    http.Handler
}

// New prepares the back office: its schema (run at start like hqd's own)
// and its templates.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Store == nil || o.Jobs == nil || o.Log == nil {
		return nil, errors.New("web: Store, Jobs and Log are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.SessionIdle, 30*time.Minute)
	def(&o.SessionMax, 12*time.Hour)
	def(&o.LockFor, 15*time.Minute)
	def(&o.LoginWindow, 5*time.Minute)
	def(&o.CodeTTL, 24*time.Hour)
	def(&o.LivePoll, 3*time.Second)
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	if o.LoginRate <= 0 {
		o.LoginRate = 20
	}
	if err := migrate(ctx, o.Store, o.Log); err != nil {
		return nil, err
	}
	s := &Server{o: o, st: o.Store, log: o.Log, limiter: newLimiter(o.LoginRate, o.LoginWindow),
		hashing: make(chan struct{}, 2)}
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if s.dummyHash, err = dummyPasswordHash(); err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(assets, "static")
	s.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	return s, nil
}

// Handler returns the back office's routes. hqd mounts it at / beside the
// API (/api/, /healthz).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", s.cacheStatic(s.static))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.auth(nil, s.logout))
	mux.HandleFunc("POST /locale", s.auth(nil, s.setLocale))
	mux.HandleFunc("GET /{$}", s.auth(nil, func(w http.ResponseWriter, r *http.Request, c *reqCtx) {
		http.Redirect(w, r, "/fleet", http.StatusSeeOther)
	}))

	mux.HandleFunc("GET /fleet", s.auth(nil, s.fleet))
	mux.HandleFunc("GET /terminals/{serial}", s.auth(nil, s.terminalPage))

	mux.HandleFunc("GET /requests", s.auth(nil, s.requestList))
	mux.HandleFunc("GET /requests/new", s.auth(roles(store.RoleRequester), s.requestForm))
	mux.HandleFunc("POST /requests/new", s.auth(roles(store.RoleRequester), s.requestCreate))
	mux.HandleFunc("GET /requests/{id}", s.auth(nil, s.requestPage))
	mux.HandleFunc("POST /requests/{id}/reject", s.auth(roles(store.RoleApprover), s.requestReject))
	mux.HandleFunc("POST /requests/{id}/withdraw", s.auth(roles(store.RoleRequester), s.requestWithdraw))
	mux.HandleFunc("POST /requests/{id}/cancel", s.auth(roles(store.RoleRequester, store.RoleApprover), s.requestCancel))
	mux.HandleFunc("POST /requests/{id}/resume", s.auth(roles(store.RoleApprover), s.requestResume))
	mux.HandleFunc("POST /requests/{id}/retry", s.auth(roles(store.RoleRequester), s.requestRetry))
	mux.HandleFunc("GET /requests/{id}/proof/{serial}", s.auth(nil, s.proofDownload))

	mux.HandleFunc("GET /jobs/{id}/payloads", s.auth(nil, s.jobPayloads))
	mux.HandleFunc("POST /jobs/{id}/signatures", s.auth(nil, s.jobSignatures))

	mux.HandleFunc("GET /activation", s.auth(roles(store.RoleTechnician), s.activationPage))
	mux.HandleFunc("POST /activation", s.auth(roles(store.RoleTechnician), s.activationIssue))

	mux.HandleFunc("GET /audit", s.auth(nil, s.auditPage))
	mux.HandleFunc("GET /audit.csv", s.auth(nil, s.auditCSV))

	mux.HandleFunc("GET /keys", s.auth(nil, s.keysPage))
	mux.HandleFunc("POST /keys/propose", s.auth(nil, s.keyPropose))
	mux.HandleFunc("POST /keys/register", s.auth(roles(store.RoleAdmin), s.keyRegister))
	mux.HandleFunc("POST /keys/{kid}/revoke", s.auth(roles(store.RoleAdmin), s.keyRevoke))
	mux.HandleFunc("POST /keys/rollout", s.auth(roles(store.RoleAdmin), s.keyRollout))
	mux.HandleFunc("GET /keys/jobs/{id}", s.auth(roles(store.RoleAdmin), s.keyJobPage))

	mux.HandleFunc("GET /operators", s.auth(roles(store.RoleAdmin), s.operatorsPage))
	mux.HandleFunc("POST /operators", s.auth(roles(store.RoleAdmin), s.operatorCreate))
	mux.HandleFunc("POST /operators/{id}", s.auth(roles(store.RoleAdmin), s.operatorUpdate))
	return s.headers(mux)
}

// headers sets what every answer carries: a Content-Security-Policy that
// allows only the embedded script and style (no inline code, no other
// origin), no framing, no sniffing, no referrer outside, HSTS under TLS.
func (s *Server) headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		if s.o.Secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		// Uploads (a serial list) stay well under 8 MiB.
		r.Body = http.MaxBytesReader(w, r.Body, 8<<20)
		h.ServeHTTP(w, r)
	})
}

func (s *Server) cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// reqCtx is what a logged-in request carries.
type reqCtx struct {
	op        store.Operator
	sessionID string
	csrf      string
	lang      string
	src       string // the remote address, for the audit trail
}

func roles(r ...string) []string { return r }

// has reports whether the operator holds a role. Roles are not implied:
// an admin who should review requests also holds approver.
func (c *reqCtx) has(role string) bool { return c.op.Has(role) }

// auth loads the session (or sends the browser to the login page), checks
// the CSRF token of every POST, and refuses an operator that holds none of
// need (nil: any operator).
func (s *Server) auth(need []string, h func(http.ResponseWriter, *http.Request, *reqCtx)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.session(w, r)
		if !ok {
			if r.Method == http.MethodGet && !wantsJSON(r) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.problem(w, r, http.StatusUnauthorized, langOf(r, ""), "err.session")
			return
		}
		if r.Method == http.MethodPost && !s.csrfOK(r, c) {
			s.audit(r.Context(), c, "csrf.refused", r.URL.Path, "")
			s.problem(w, r, http.StatusForbidden, c.lang, "err.csrf")
			return
		}
		if len(need) > 0 && !slices.ContainsFunc(need, c.has) {
			s.audit(r.Context(), c, "role.refused", r.URL.Path, strings.Join(need, ","))
			names := make([]string, len(need))
			for i, n := range need {
				names[i] = tr(c.lang, "role."+n)
			}
			s.problem(w, r, http.StatusForbidden, c.lang, "err.role", strings.Join(names, tr(c.lang, "word.or")))
			return
		}
		h(w, r, c)
	}
}

// csrfOK checks a POST's token (form field csrf, or header X-CSRF-Token
// for the script's JSON calls) against the session's, and that a browser
// which names the request's origin names this one.
func (s *Server) csrfOK(r *http.Request, c *reqCtx) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		// ParseMultipartForm also fills PostForm for urlencoded bodies.
		if err := r.ParseMultipartForm(8 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			return false
		}
		tok = r.PostFormValue("csrf")
	}
	return tok != "" && constantEq(tok, c.csrf)
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json") || r.Header.Get("X-CSRF-Token") != ""
}

// source is where a request came from: the peer's address. hqd does not
// trust X-Forwarded-For; behind a proxy the proxy's address is recorded.
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// audit appends to the trail; a failure is logged (the action happened).
func (s *Server) audit(ctx context.Context, c *reqCtx, action, target, detail string) {
	actor, src := "-", ""
	if c != nil {
		actor, src = c.op.Name, c.src
	}
	if err := s.st.Audit(ctx, store.AuditEntry{At: s.o.Now().UTC(), Actor: actor, Source: src, Action: action, Target: target, Detail: detail}); err != nil {
		s.log.Error("audit", "action", action, "err", err)
	}
}

func (s *Server) randHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.o.Rand, b); err != nil {
		return "", fmt.Errorf("randomness: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// problem answers an error: a page for a browser, JSON for the script.
func (s *Server) problem(w http.ResponseWriter, r *http.Request, code int, lang, key string, args ...any) {
	msg := tr(lang, key, args...)
	if wantsJSON(r) {
		writeJSON(w, code, map[string]string{"error": msg})
		return
	}
	w.WriteHeader(code)
	s.render(w, r, nil, "error", &page{Lang: lang, Title: tr(lang, "err.title"), Data: msg})
}

// fail answers an unexpected error (logged, shown without detail).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, c *reqCtx, err error) {
	s.log.Error("back office", "path", r.URL.Path, "err", err)
	lang := "en"
	if c != nil {
		lang = c.lang
	}
	s.problem(w, r, http.StatusInternalServerError, lang, "err.internal")
}
