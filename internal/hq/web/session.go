package web

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/posagent/posagent/internal/hq/auth"
	"github.com/posagent/posagent/internal/hq/store"
)

func (s *Server) sessionCookie() string {
	if s.o.Secure {
		// __Host-: the browser keeps it only if Secure, Path=/ and no
		// Domain, so no sibling host can plant or read it.
		return "__Host-bo_session"
	}
	return "bo_session"
}

func (s *Server) loginCookie() string {
	if s.o.Secure {
		return "__Host-bo_login"
	}
	return "bo_login"
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: s.o.Secure, SameSite: http.SameSiteStrictMode})
}

func constantEq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// session resolves the request's session cookie; an idle session slides
// forward, never past SessionMax after its login.
func (s *Server) session(w http.ResponseWriter, r *http.Request) (*reqCtx, bool) {
	ck, err := r.Cookie(s.sessionCookie())
	if err != nil || ck.Value == "" {
		return nil, false
	}
	now := s.o.Now().UTC()
	ss, err := s.st.SessionByID(r.Context(), ck.Value, now)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("session", "err", err)
		}
		return nil, false
	}
	if ss.Operator.Disabled {
		return nil, false
	}
	if want := minTime(now.Add(s.o.SessionIdle), ss.CreatedAt.Add(s.o.SessionMax)); want.Sub(ss.ExpiresAt) > time.Minute {
		if err := s.st.ExtendSession(r.Context(), ck.Value, want); err != nil {
			s.log.Warn("session: could not extend", "err", err)
		}
	}
	return &reqCtx{op: ss.Operator, sessionID: ck.Value, csrf: ss.CSRF, lang: normLang(ss.Operator.Locale), src: source(r)}, true
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

type loginData struct {
	Name  string
	Next  string
	Error string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, ok := s.session(w, r); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, loginData{Next: next})
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, code int, d loginData) {
	lang := langOf(r, "")
	// Login CSRF: a random value in a cookie and in the form; a page of
	// another site can post neither.
	tok, err := s.randHex(16)
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	s.setCookie(w, s.loginCookie(), tok, 3600)
	w.WriteHeader(code)
	s.render(w, r, nil, "login", &page{Lang: lang, Title: tr(lang, "login.title"), CSRF: tok, Data: d})
}

// safeNext keeps a redirect after login on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/login") {
		return "/fleet"
	}
	return next
}

// login checks a name and password. Three limits apply: per address
// (LoginRate attempts per LoginWindow, whichever names are tried), per
// operator (MaxFailures wrong passwords in a row lock it for LockFor, a
// right password included), and argon2id's cost, two checks at a time.
// An unknown name costs the same check as a known one.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r, "")
	ck, ckErr := r.Cookie(s.loginCookie())
	if err := r.ParseForm(); err != nil || ckErr != nil || !constantEq(ck.Value, r.PostFormValue("csrf")) {
		s.audit(r.Context(), &reqCtx{op: store.Operator{Name: "-"}, src: source(r)}, "csrf.refused", "/login", "")
		s.problem(w, r, http.StatusForbidden, lang, "err.csrf")
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	pw := r.PostFormValue("password")
	d := loginData{Name: name, Next: safeNext(r.PostFormValue("next"))}
	src := source(r)
	anon := &reqCtx{op: store.Operator{Name: "-"}, src: src}
	detail := func(reason string) string { return fmt.Sprintf(`{"name":%q,"reason":%q}`, truncate(name, 64), reason) }
	now := s.o.Now().UTC()
	if wait, ok := s.limiter.allow(src, now); !ok {
		s.audit(r.Context(), anon, "login.throttled", "", detail("rate-limited"))
		d.Error = tr(lang, "login.throttled", minutes(wait))
		s.renderLogin(w, r, http.StatusTooManyRequests, d)
		return
	}
	if name == "" || pw == "" {
		d.Error = tr(lang, "login.missing")
		s.renderLogin(w, r, http.StatusBadRequest, d)
		return
	}
	op, err := s.st.OperatorByName(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		s.checkPassword(s.dummyHash, pw)
		s.audit(r.Context(), anon, "login.fail", "", detail("unknown-operator"))
		d.Error = tr(lang, "login.wrong")
		s.renderLogin(w, r, http.StatusUnauthorized, d)
		return
	}
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	actor := &reqCtx{op: op, src: src}
	if now.Before(op.LockedUntil) {
		s.audit(r.Context(), actor, "login.fail", op.Name, detail("locked"))
		d.Error = tr(lang, "login.locked", minutes(op.LockedUntil.Sub(now)))
		s.renderLogin(w, r, http.StatusForbidden, d)
		return
	}
	good := s.checkPassword(op.PasswordHash, pw) && !op.Disabled && op.PasswordHash != ""
	if !good {
		if err := s.st.RecordLogin(r.Context(), op.ID, false, s.o.MaxFailures, now.Add(s.o.LockFor)); err != nil {
			s.fail(w, r, nil, err)
			return
		}
		why := "bad-password"
		if op.Disabled {
			why = "disabled"
		}
		d.Error = tr(lang, "login.wrong")
		if op.FailedLogins+1 >= s.o.MaxFailures {
			why = "locked-now"
			d.Error = tr(lang, "login.locked", minutes(s.o.LockFor))
		}
		s.audit(r.Context(), actor, "login.fail", op.Name, detail(why))
		s.renderLogin(w, r, http.StatusUnauthorized, d)
		return
	}
	if err := s.st.RecordLogin(r.Context(), op.ID, true, 0, time.Time{}); err != nil {
		s.fail(w, r, nil, err)
		return
	}
	id, err1 := s.randHex(32)
	csrf, err2 := s.randHex(32)
	if err := errors.Join(err1, err2); err != nil {
		s.fail(w, r, nil, err)
		return
	}
	expires := minTime(now.Add(s.o.SessionIdle), now.Add(s.o.SessionMax))
	if err := s.st.CreateSession(r.Context(), op.ID, id, csrf, src, now, expires); err != nil {
		s.fail(w, r, nil, err)
		return
	}
	s.setCookie(w, s.sessionCookie(), id, 0)
	s.setCookie(w, s.loginCookie(), "", -1)
	s.audit(r.Context(), actor, "login", op.Name, "")
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (s *Server) checkPassword(hash, pw string) bool {
	s.hashing <- struct{}{}
	defer func() { <-s.hashing }()
	if hash == "" {
		auth.CheckPassword(s.dummyHash, pw)
		return false
	}
	return auth.CheckPassword(hash, pw)
}

// dummyPasswordHash is made once per process (argon2id costs 64 MiB and
// a noticeable time): its only use is to be checked in vain.
var dummyPasswordHash = sync.OnceValues(func() (string, error) {
	h, err := auth.HashPassword("not a password anyone has")
	if err != nil {
		return "", fmt.Errorf("web: %w", err)
	}
	return h, nil
})

func minutes(d time.Duration) int { return int((d + time.Minute - 1) / time.Minute) }

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	if err := s.st.DeleteSession(r.Context(), c.sessionID); err != nil {
		s.fail(w, r, c, err)
		return
	}
	s.setCookie(w, s.sessionCookie(), "", -1)
	s.audit(r.Context(), c, "logout", c.op.Name, "")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) setLocale(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	lang := r.PostFormValue("locale")
	if _, ok := catalog[lang]; !ok {
		s.problem(w, r, http.StatusBadRequest, c.lang, "err.locale")
		return
	}
	if err := s.st.SetOperatorLocale(r.Context(), c.op.ID, lang); err != nil {
		s.fail(w, r, c, err)
		return
	}
	s.audit(r.Context(), c, "operator.locale", c.op.Name, fmt.Sprintf(`{"locale":%q}`, lang))
	http.Redirect(w, r, safeNext(r.PostFormValue("back")), http.StatusSeeOther)
}

// limiter counts attempts per key (an address) in a sliding window.
type limiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	hits   map[string][]time.Time
	swept  time.Time
}

func newLimiter(n int, window time.Duration) *limiter {
	return &limiter{n: n, window: window, hits: map[string][]time.Time{}}
}

// allow records an attempt of key at now; it reports false, with how long
// until the next one is allowed, when the window is full.
func (l *limiter) allow(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	from := now.Add(-l.window)
	if now.Sub(l.swept) > l.window {
		for k, v := range l.hits {
			if len(v) == 0 || !v[len(v)-1].After(from) {
				delete(l.hits, k)
			}
		}
		l.swept = now
	}
	h := l.hits[key]
	i := 0
	for i < len(h) && !h[i].After(from) {
		i++
	}
	h = h[i:]
	if len(h) >= l.n {
		l.hits[key] = h
		return h[0].Sub(from), false
	}
	l.hits[key] = append(h, now)
	return 0, true
}
