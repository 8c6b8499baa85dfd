package web

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/posagent/posagent/internal/hq/store"
)

type auditData struct {
	Actor, Action, Target, Since string
	Entries                      []store.AuditEntry
	Errors                       formErrors
	NextURL, CSVURL              string
}

// auditQuery reads the trail's filter from a query; a bad "since" is a
// field error.
func auditQuery(q url.Values, lang string) (store.AuditQuery, auditData) {
	d := auditData{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		Target: strings.TrimSpace(q.Get("target")), Since: strings.TrimSpace(q.Get("since")), Errors: formErrors{}}
	aq := store.AuditQuery{Actor: d.Actor, Action: d.Action, Target: d.Target}
	if d.Since != "" {
		t, err := time.Parse("2006-01-02", d.Since)
		if err != nil {
			d.Errors["since"] = tr(lang, "audit.err.since")
		}
		aq.Since = t
	}
	if b, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil && b > 0 {
		aq.Before = b
	}
	return aq, d
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	aq, d := auditQuery(r.URL.Query(), c.lang)
	code := http.StatusOK
	if d.Errors.Any() {
		code = http.StatusUnprocessableEntity
	} else {
		aq.Limit = 101
		list, err := s.st.AuditTrail(r.Context(), aq)
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
		if len(list) == 101 {
			list = list[:100]
			q := r.URL.Query()
			q.Set("before", strconv.FormatInt(list[99].ID, 10))
			d.NextURL = "/audit?" + q.Encode()
		}
		d.Entries = list
	}
	q := r.URL.Query()
	q.Del("before")
	d.CSVURL = "/audit.csv?" + q.Encode()
	w.WriteHeader(code)
	s.render(w, r, c, "audit", &page{Title: tr(c.lang, "audit.title"), Nav: "audit", Data: d})
}

// auditCSV exports the filtered trail, newest first, every row (paged
// through the database 5,000 at a time).
func (s *Server) auditCSV(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	aq, d := auditQuery(r.URL.Query(), c.lang)
	if d.Errors.Any() {
		s.problem(w, r, http.StatusBadRequest, c.lang, "audit.err.since")
		return
	}
	s.audit(r.Context(), c, "audit.export", "", fmt.Sprintf(`{"actor":%q,"action":%q,"target":%q,"since":%q}`, d.Actor, d.Action, d.Target, d.Since))
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="hq-audit-%s.csv"`, s.o.Now().UTC().Format("20060102-150405")))
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "at", "actor", "source", "action", "target", "detail"})
	aq.Limit = 5000
	for {
		list, err := s.st.AuditTrail(r.Context(), aq)
		if err != nil {
			s.log.Error("audit export", "err", err)
			return
		}
		for _, e := range list {
			_ = cw.Write([]string{strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339Nano), csvSafe(e.Actor), csvSafe(e.Source),
				csvSafe(e.Action), csvSafe(e.Target), csvSafe(e.Detail)})
		}
		cw.Flush()
		if len(list) < aq.Limit {
			return
		}
		aq.Before = list[len(list)-1].ID
	}
}

// csvSafe keeps a spreadsheet from running a cell as a formula (a name or
// reason typed by someone: OWASP CSV injection).
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
