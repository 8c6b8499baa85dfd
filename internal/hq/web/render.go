package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/posagent/posagent/internal/hq/store"
)

// page is what every template gets.
type page struct {
	Lang  string
	Title string
	Op    *store.Operator
	CSRF  string
	Nav   string // the active section of the menu
	Path  string // the request's path and query (the language switch comes back to it)
	Flash string // a translated one-line notice
	Live  int    // ms between refreshes of live parts
	Data  any
}

// T translates a message key in the page's language.
func (p *page) T(key string, args ...any) string { return tr(p.Lang, key, args...) }

// Has reports whether the logged-in operator holds a role.
func (p *page) Has(role string) bool { return p.Op != nil && p.Op.Has(role) }

// N translates a message about n things: English has a singular form
// (key + ".one") where the catalog gives one.
func (p *page) N(key string, n int) string { return trN(p.Lang, key, n) }

// Reason says a machine reason word in plain language.
func (p *page) Reason(word string) string { return reasonText(p.Lang, word) }

// Time formats a time for an operator: UTC, to the second.
func (p *page) Time(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// Ago says how long ago a time was, roughly.
func (p *page) Ago(t time.Time) string {
	if t.IsZero() {
		return p.T("word.never")
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return p.T("ago.seconds", max(int(d/time.Second), 0))
	case d < time.Hour:
		return p.T("ago.minutes", int(d/time.Minute))
	case d < 48*time.Hour:
		return p.T("ago.hours", int(d/time.Hour))
	}
	return p.T("ago.days", int(d/(24*time.Hour)))
}

// pv hands a partial template the page (for translations) and a value.
type pv struct {
	P *page
	S any
}

// mustJSON is a map as JSON for an audit detail.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}

var funcs = template.FuncMap{
	"pv": func(p *page, v any) pv { return pv{P: p, S: v} },
	// yuan shows an amount in fen as yuan with two decimals.
	"yuan": func(fen int64) string {
		sign := ""
		if fen < 0 {
			sign, fen = "-", -fen
		}
		return fmt.Sprintf("%s¥%d.%02d", sign, fen/100, fen%100)
	},
	"b64":   func(b []byte) string { return base64.StdEncoding.EncodeToString(b) },
	"list":  func(v ...any) []any { return v },
	"hours": func(d time.Duration) int { return int(d / time.Hour) },
	"has":   func(list []string, v string) bool { return slices.Contains(list, v) },
	"str":   func(b []byte) string { return string(b) },
	"join":  strings.Join,
	"add":   func(a, b int) int { return a + b },
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"pretty": prettyJSON,
	"fingerprint": func(pub []byte) string {
		return fingerprint(pub)
	},
}

// prettyJSON indents JSON text for reading; text that is not JSON is
// shown as it is.
func prettyJSON(raw string) string {
	var b bytes.Buffer
	if json.Indent(&b, []byte(raw), "", "  ") != nil {
		return raw
	}
	return b.String()
}

// parsePages builds one template set per page: the layout, the shared
// partials and the page's own file.
func parsePages() (map[string]*template.Template, error) {
	files, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "templates/"), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/partials.html", f)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes a whole page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, c *reqCtx, name string, p *page) {
	s.renderTemplate(w, r, c, name, "layout", p)
}

// renderTemplate writes one named template of a page's set (a fragment
// the script swaps in, or the whole layout).
func (s *Server) renderTemplate(w http.ResponseWriter, r *http.Request, c *reqCtx, name, tmpl string, p *page) {
	if c != nil {
		p.Op, p.CSRF, p.Lang = &c.op, c.csrf, c.lang
	}
	if p.Lang == "" {
		p.Lang = "en"
	}
	p.Path = r.URL.RequestURI()
	p.Live = int(s.o.LivePoll / time.Millisecond)
	t, ok := s.pages[name]
	if !ok {
		s.log.Error("no such page", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, tmpl, p); err != nil {
		s.log.Error("render", "page", name, "template", tmpl, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// formErrors are a form's problems, field name → translated message; the
// template shows each next to its field.
type formErrors map[string]string

func (e formErrors) Any() bool { return len(e) > 0 }
