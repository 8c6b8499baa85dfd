package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/terminal/remote"
)

// Defaults of the unbind request form.
const (
	defaultRate     = 60
	defaultInflight = 20
	defaultTTLHours = 24
	maxUnknownShown = 50
	itemsPerPage    = 50
)

// requestForm is the unbind request form, as typed.
type requestForm struct {
	Mode      string // list or filter
	Serials   string
	State     string
	Online    string
	Search    string
	Reason    string
	Unsettled string
	ForceAck  bool
	Rate      string
	Inflight  string
	TTLHours  string
	Errors    formErrors
	Unknown   []string // serials HQ does not know, by name
	More      int      // unknown serials not listed
	States    []string
	HasKey    bool
}

func (s *Server) requestForm(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	q := r.URL.Query()
	f := requestForm{Mode: "list", Unsettled: string(remote.UnsettledSettle), Rate: strconv.Itoa(defaultRate),
		Inflight: strconv.Itoa(defaultInflight), TTLHours: strconv.Itoa(defaultTTLHours), States: fleetStates}
	if serials := q["serial"]; len(serials) > 0 {
		f.Serials = strings.Join(serials, "\n")
	}
	if q.Get("mode") == "filter" {
		f.Mode, f.State, f.Online, f.Search = "filter", q.Get("state"), q.Get("online"), q.Get("q")
	}
	k, err := s.operatorKey(r.Context(), c.op.ID)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	f.HasKey = k != nil
	s.render(w, r, c, "request_new", &page{Title: tr(c.lang, "req.new.title"), Nav: "requests", Data: &f})
}

// parseSerials reads a serial list: pasted, serials separated by new
// lines, commas, semicolons, tabs or spaces; uploaded (file), a text or
// CSV file whose first column holds the serials. Lines starting with # and
// a "serial" header are skipped. It returns the serials in order, without
// repeats, and the entries that are not serials.
func parseSerials(text string, file bool) (serials, bad []string) {
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.FieldsFunc(line, func(r rune) bool {
			return r == ',' || r == ';' || r == '\t' || r == ' '
		})
		if file && len(fields) > 1 {
			fields = fields[:1]
		}
		for _, field := range fields {
			field = strings.Trim(field, `"'`)
			if field == "" || strings.EqualFold(field, "serial") {
				continue
			}
			if !remote.ValidSerial(field) {
				bad = append(bad, truncate(field, 40))
				continue
			}
			if !seen[field] {
				seen[field] = true
				serials = append(serials, field)
			}
		}
	}
	return serials, bad
}

func (s *Server) requestCreate(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	T := func(k string, a ...any) string { return tr(c.lang, k, a...) }
	f := requestForm{Mode: r.PostFormValue("mode"), Serials: r.PostFormValue("serials"), State: r.PostFormValue("state"),
		Online: r.PostFormValue("online"), Search: r.PostFormValue("q"), Reason: strings.TrimSpace(r.PostFormValue("reason")),
		Unsettled: r.PostFormValue("unsettled"), ForceAck: r.PostFormValue("force_ack") == "yes",
		Rate: strings.TrimSpace(r.PostFormValue("rate")), Inflight: strings.TrimSpace(r.PostFormValue("inflight")),
		TTLHours: strings.TrimSpace(r.PostFormValue("ttl_hours")), Errors: formErrors{}, States: fleetStates}
	ctx := r.Context()
	key, err := s.operatorKey(ctx, c.op.ID)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	f.HasKey = key != nil
	if key == nil {
		f.Errors["key"] = T("req.err.no-key")
	}
	req := jobs.Request{Type: string(remote.TypeUnbind), MinSignatures: 2}
	switch f.Mode {
	case "list":
		serials, bad := parseSerials(f.Serials, false)
		if file, _, err := r.FormFile("serials_file"); err == nil {
			b, err := readUpload(file)
			file.Close()
			if err != nil {
				f.Errors["serials_file"] = T("req.err.file")
			}
			more, moreBad := parseSerials(b, true)
			for _, x := range more {
				if !slices.Contains(serials, x) {
					serials = append(serials, x)
				}
			}
			bad = append(bad, moreBad...)
		}
		switch {
		case len(bad) > 0:
			f.Errors["serials"] = T("req.err.bad-serials", len(bad), strings.Join(bad[:min(len(bad), 10)], ", "))
		case len(serials) == 0:
			f.Errors["serials"] = T("req.err.no-serials")
		default:
			unknown, err := s.st.UnknownSerials(ctx, serials)
			if err != nil {
				s.fail(w, r, c, err)
				return
			}
			if len(unknown) > 0 {
				f.Errors["serials"] = T("req.err.unknown", len(unknown))
				f.Unknown = unknown[:min(len(unknown), maxUnknownShown)]
				f.More = len(unknown) - len(f.Unknown)
			}
			req.Serials = serials
		}
	case "filter":
		if f.State != "" && !slices.Contains(fleetStates, f.State) {
			f.Errors["state"] = T("req.err.state")
		}
		flt, online := fleetFilter(url.Values{"state": {f.State}, "online": {f.Online}, "q": {f.Search}})
		f.Online = online
		if flt == (store.Filter{}) {
			f.Errors["filter"] = T("req.err.empty-filter")
		}
		req.Filter = &flt
	default:
		f.Mode = "list"
		f.Errors["mode"] = T("req.err.mode")
	}
	switch n := utf8.RuneCountInString(f.Reason); {
	case n == 0:
		f.Errors["reason"] = T("req.err.reason")
	case n > remote.MaxUnbindReason:
		f.Errors["reason"] = T("req.err.reason-long", remote.MaxUnbindReason, n)
	}
	switch remote.UnsettledPolicy(f.Unsettled) {
	case remote.UnsettledSettle, remote.UnsettledRefuse:
	case remote.UnsettledForce:
		if !f.ForceAck {
			f.Errors["force_ack"] = T("req.err.force-ack")
		}
	default:
		f.Unsettled = string(remote.UnsettledSettle)
		f.Errors["unsettled"] = T("req.err.unsettled")
	}
	req.RatePerMin = intField(f.Errors, "rate", f.Rate, 1, 6000, T)
	req.MaxInflight = intField(f.Errors, "inflight", f.Inflight, 1, 10000, T)
	ttl := intField(f.Errors, "ttl_hours", f.TTLHours, 1, 168, T)
	if f.Errors.Any() {
		s.renderRequestForm(w, r, c, &f)
		return
	}
	args, _ := json.Marshal(remote.UnbindArgs{Reason: f.Reason, Unsettled: remote.UnsettledPolicy(f.Unsettled)})
	req.Args = args
	req.CommandTTL = (time.Duration(ttl) * time.Hour).String()
	j, err := s.o.Jobs.Create(ctx, c.op.Name, c.src, req, s.o.Now().UTC())
	var fe *jobs.FieldError
	if errors.As(err, &fe) {
		field := map[string]string{"rate_per_min": "rate", "max_inflight": "inflight", "command_ttl": "ttl_hours",
			"serials": "serials", "filter": "filter", "args": "reason"}[fe.Field]
		if field == "" {
			field = "form"
		}
		msg := fe.Message
		switch fe.Field {
		case "filter":
			msg = T("req.err.filter-none")
		case "command_ttl":
			msg = T("req.err.ttl-short")
		}
		f.Errors[field] = msg
		if len(fe.Unknown) > 0 {
			f.Unknown = fe.Unknown[:min(len(fe.Unknown), maxUnknownShown)]
			f.More = len(fe.Unknown) - len(f.Unknown)
		}
		s.renderRequestForm(w, r, c, &f)
		return
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	http.Redirect(w, r, "/requests/"+j.ID+"?msg=created", http.StatusSeeOther)
}

func (s *Server) renderRequestForm(w http.ResponseWriter, r *http.Request, c *reqCtx, f *requestForm) {
	w.WriteHeader(http.StatusUnprocessableEntity)
	s.render(w, r, c, "request_new", &page{Title: tr(c.lang, "req.new.title"), Nav: "requests", Data: f})
}

func readUpload(f multipart.File) (string, error) {
	b, err := io.ReadAll(io.LimitReader(f, 4<<20+1))
	if err != nil {
		return "", err
	}
	if len(b) > 4<<20 || !utf8.Valid(b) {
		return "", errors.New("upload: over 4 MiB or not text")
	}
	return string(b), nil
}

// intField parses a whole number in [lo, hi]; a problem goes into errs.
func intField(errs formErrors, field, v string, lo, hi int, T func(string, ...any) string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		errs[field] = T("req.err.range", lo, hi)
		return 0
	}
	return n
}

// operatorKey is the operator's current signing key (the newest
// unrevoked one registered to them), or nil.
func (s *Server) operatorKey(ctx context.Context, operatorID int64) (*store.HQKey, error) {
	keys, err := s.st.Keys(ctx)
	if err != nil {
		return nil, err
	}
	var best *store.HQKey
	for i := range keys {
		k := &keys[i]
		if k.OperatorID == operatorID && k.RevokedAt.IsZero() && (best == nil || k.CreatedAt.After(best.CreatedAt)) {
			best = k
		}
	}
	return best, nil
}

// requestStatus is a request's state as an operator reads it.
func requestStatus(j store.Job, creatorSigned bool) string {
	switch j.State {
	case store.JobSigning:
		if creatorSigned {
			return "review"
		}
		return "draft"
	case store.JobRunning:
		return "running"
	}
	return j.State // done, aborted, cancelled, rejected
}

type requestRow struct {
	Job      store.Job
	Status   string
	Progress jobs.Progress
	Args     remote.UnbindArgs
}

type requestListData struct {
	Rows   []requestRow
	Filter string
}

func (s *Server) requestList(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	ctx := r.Context()
	list, err := s.st.JobsOfType(ctx, string(remote.TypeUnbind), 200)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	filter := r.URL.Query().Get("show")
	d := requestListData{Filter: filter}
	for _, j := range list {
		row, err := s.requestRowOf(ctx, j)
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
		switch filter {
		case "review":
			if row.Status != "review" {
				continue
			}
		case "open":
			if row.Status != "review" && row.Status != "draft" && row.Status != "running" && row.Status != "aborted" {
				continue
			}
		}
		d.Rows = append(d.Rows, row)
	}
	p := &page{Title: tr(c.lang, "req.list.title"), Nav: "requests", Data: d}
	if r.URL.Query().Get("partial") == "rows" {
		s.renderTemplate(w, r, c, "requests", "requests-rows", p)
		return
	}
	s.render(w, r, c, "requests", p)
}

func (s *Server) requestRowOf(ctx context.Context, j store.Job) (requestRow, error) {
	p, err := jobs.ProgressOf(ctx, s.st, j.ID)
	if err != nil {
		return requestRow{}, err
	}
	signed := true
	if j.State == store.JobSigning {
		n, err := s.st.CountUnsignedBy(ctx, j.ID, j.CreatedBy)
		if err != nil {
			return requestRow{}, err
		}
		signed = n == 0
	}
	a, _ := remote.ParseUnbindArgs(json.RawMessage(j.Args))
	return requestRow{Job: j, Status: requestStatus(j, signed), Progress: p, Args: a}, nil
}

// requestData is a request's page.
type requestData struct {
	requestRow
	Signers   []store.JobSigner
	Required  int
	Terminals []termView
	Show      string // item state filter of the table
	NextURL   string
	PrevAfter string
	LiveURL   string
	// What this operator may do here.
	CanSign, CanApprove, CanReject, CanWithdraw, CanCancel, CanResume, CanRetry bool
	MyUnsigned                                                                  int
	MyKey                                                                       *store.HQKey
	NotMyRequest                                                                bool // the reason an approver who is the requester cannot approve
	Rejected                                                                    *store.AuditEntry
	Retryable                                                                   int
	ArgsJSON                                                                    string
}

func (s *Server) requestPage(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	ctx := r.Context()
	j, err := s.st.Job(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && j.Type != string(remote.TypeUnbind)) {
		s.problem(w, r, http.StatusNotFound, c.lang, "err.no-request", r.PathValue("id"))
		return
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	row, err := s.requestRowOf(ctx, j)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d := requestData{requestRow: row, Required: j.RequiredSigs, ArgsJSON: j.Args}
	if d.Signers, err = s.st.JobSigners(ctx, j.ID); err != nil {
		s.fail(w, r, c, err)
		return
	}
	if d.MyKey, err = s.operatorKey(ctx, c.op.ID); err != nil {
		s.fail(w, r, c, err)
		return
	}
	mine := j.CreatedBy == c.op.Name
	if j.State == store.JobSigning {
		if d.MyUnsigned, err = s.st.CountUnsignedBy(ctx, j.ID, c.op.Name); err != nil {
			s.fail(w, r, c, err)
			return
		}
		d.CanSign = mine && c.has(store.RoleRequester) && d.MyUnsigned > 0
		d.CanApprove = !mine && c.has(store.RoleApprover) && row.Status == "review" && d.MyUnsigned > 0
		d.CanReject = !mine && c.has(store.RoleApprover)
		d.CanWithdraw = mine && c.has(store.RoleRequester)
		d.NotMyRequest = mine && c.has(store.RoleApprover)
	}
	d.CanCancel = (j.State == store.JobRunning || j.State == store.JobAborted) && (c.has(store.RoleRequester) || c.has(store.RoleApprover))
	d.CanResume = j.State == store.JobAborted && c.has(store.RoleApprover)
	if j.State == store.JobDone || j.State == store.JobAborted || j.State == store.JobCancelled {
		d.Retryable = row.Progress.Counts[store.ItemFailed] + row.Progress.Counts[store.ItemRejected] + row.Progress.Counts[store.ItemNoAnswer]
		d.CanRetry = d.Retryable > 0 && c.has(store.RoleRequester)
	}
	if j.State == store.JobRejected {
		list, err := s.st.AuditTrail(ctx, store.AuditQuery{Action: "request.reject", Target: j.ID, Limit: 1})
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
		if len(list) > 0 {
			d.Rejected = &list[0]
		}
	}
	q := r.URL.Query()
	d.Show = q.Get("show")
	if d.Show != "" && !slices.Contains([]string{store.ItemFailed, store.ItemRejected, store.ItemNoAnswer, store.ItemSucceeded, store.ItemPending}, d.Show) {
		d.Show = ""
	}
	after, _ := strconv.Atoi(q.Get("after"))
	if q.Get("after") == "" {
		after = -1
	}
	if d.Terminals, err = s.termViews(ctx, c.lang, j, d.Show, after); err != nil {
		s.fail(w, r, c, err)
		return
	}
	if len(d.Terminals) == itemsPerPage+1 {
		d.Terminals = d.Terminals[:itemsPerPage]
		nq := url.Values{"after": {strconv.Itoa(d.Terminals[len(d.Terminals)-1].Seq)}}
		if d.Show != "" {
			nq.Set("show", d.Show)
		}
		d.NextURL = "/requests/" + j.ID + "?" + nq.Encode()
	}
	if after >= 0 {
		d.PrevAfter = "/requests/" + j.ID
		if d.Show != "" {
			d.PrevAfter += "?show=" + d.Show
		}
	}
	live := url.Values{}
	for k, v := range q {
		if k != "msg" {
			live[k] = v
		}
	}
	live.Set("partial", "live")
	d.LiveURL = "/requests/" + j.ID + "?" + live.Encode()
	p := &page{Title: tr(c.lang, "req.title", j.ID), Nav: "requests", Data: d}
	if msg := q.Get("msg"); msg != "" {
		if _, ok := catalog["en"]["flash."+msg]; ok {
			p.Flash = tr(c.lang, "flash."+msg)
		}
	}
	if q.Get("partial") == "live" {
		s.renderTemplate(w, r, c, "request", "request-live", p)
		return
	}
	s.render(w, r, c, "request", p)
}

// termViews reads one page of a request's terminals with their timelines
// and proofs (one page past itemsPerPage tells there is more).
func (s *Server) termViews(ctx context.Context, lang string, j store.Job, show string, after int) ([]termView, error) {
	list, err := s.st.JobTerminals(ctx, j.ID, show, after, itemsPerPage+1)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, jt := range list {
		ids[i] = jt.CmdID
	}
	acks, err := s.st.AcksOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]termView, len(list))
	for i, jt := range list {
		v := termView{JobTerminal: jt, Batch: batchOf(jt.Terminal, jt.StatusJSON), Steps: timeline(lang, jt, acks[jt.CmdID])}
		switch jt.State {
		case store.ItemFailed, store.ItemRejected:
			v.Reason = reasonText(lang, jt.Reason)
		case store.ItemNoAnswer:
			v.Reason = reasonText(lang, "no-answer")
		}
		if fa := finalAck(acks[jt.CmdID]); fa != nil && fa.State == remote.AckSucceeded {
			pub, err := s.st.DeviceKey(ctx, jt.Serial)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			pr, err := verifyProof(fa.Envelope, jt.Serial, jt.CmdID, pub)
			if err != nil {
				return nil, err
			}
			pr.ReceivedAt = fa.ReceivedAt
			v.Proof = &pr
		}
		out[i] = v
	}
	return out, nil
}

// loadRequest reads a request (an unbind job) for an action on it.
func (s *Server) loadRequest(w http.ResponseWriter, r *http.Request, c *reqCtx) (store.Job, bool) {
	j, err := s.st.Job(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && j.Type != string(remote.TypeUnbind)) {
		s.problem(w, r, http.StatusNotFound, c.lang, "err.no-request", r.PathValue("id"))
		return j, false
	}
	if err != nil {
		s.fail(w, r, c, err)
		return j, false
	}
	return j, true
}

func (s *Server) requestReject(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	j, ok := s.loadRequest(w, r, c)
	if !ok {
		return
	}
	if j.CreatedBy == c.op.Name {
		s.audit(r.Context(), c, "review.refused", j.ID, `{"why":"own request"}`)
		s.problem(w, r, http.StatusForbidden, c.lang, "err.own-request")
		return
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	if n := utf8.RuneCountInString(note); n == 0 || n > 500 {
		http.Redirect(w, r, "/requests/"+j.ID+"?msg=note-required#review", http.StatusSeeOther)
		return
	}
	now := s.o.Now().UTC()
	detail, _ := json.Marshal(map[string]string{"note": note})
	_, err := s.st.RejectJob(r.Context(), j.ID, note, store.AuditEntry{At: now, Actor: c.op.Name, Source: c.src,
		Action: "request.reject", Target: j.ID, Detail: string(detail)}, now)
	if errors.Is(err, store.ErrJobState) {
		s.problem(w, r, http.StatusConflict, c.lang, "err.state", tr(c.lang, "status."+j.State))
		return
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	http.Redirect(w, r, "/requests/"+j.ID+"?msg=rejected", http.StatusSeeOther)
}

func (s *Server) requestWithdraw(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	j, ok := s.loadRequest(w, r, c)
	if !ok {
		return
	}
	if j.CreatedBy != c.op.Name || j.State != store.JobSigning {
		s.problem(w, r, http.StatusForbidden, c.lang, "err.withdraw")
		return
	}
	s.cancelJob(w, r, c, j, "request.withdraw", "withdrawn")
}

func (s *Server) requestCancel(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	j, ok := s.loadRequest(w, r, c)
	if !ok {
		return
	}
	if j.State != store.JobRunning && j.State != store.JobAborted {
		s.problem(w, r, http.StatusConflict, c.lang, "err.state", tr(c.lang, "status."+j.State))
		return
	}
	s.cancelJob(w, r, c, j, "request.cancel", "cancelled")
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, c *reqCtx, j store.Job, action, msg string) {
	if _, err := s.st.CancelJob(r.Context(), j.ID, s.o.Now().UTC()); err != nil {
		if errors.Is(err, store.ErrJobState) {
			s.problem(w, r, http.StatusConflict, c.lang, "err.state", tr(c.lang, "status."+j.State))
			return
		}
		s.fail(w, r, c, err)
		return
	}
	s.audit(r.Context(), c, action, j.ID, "")
	http.Redirect(w, r, "/requests/"+j.ID+"?msg="+msg, http.StatusSeeOther)
}

func (s *Server) requestResume(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	j, ok := s.loadRequest(w, r, c)
	if !ok {
		return
	}
	if _, err := s.st.ResumeJob(r.Context(), j.ID, 0, s.o.Now().UTC()); err != nil {
		if errors.Is(err, store.ErrJobState) {
			s.problem(w, r, http.StatusConflict, c.lang, "err.state", tr(c.lang, "status."+j.State))
			return
		}
		s.fail(w, r, c, err)
		return
	}
	s.audit(r.Context(), c, "request.resume", j.ID, "")
	http.Redirect(w, r, "/requests/"+j.ID+"?msg=resumed", http.StatusSeeOther)
}

// requestRetry asks again for the terminals of a finished request that
// failed, were rejected or did not answer: a new request with the same
// reason and settings, which needs its own signatures and review (new
// commands, new ids).
func (s *Server) requestRetry(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	j, ok := s.loadRequest(w, r, c)
	if !ok {
		return
	}
	if j.State != store.JobDone && j.State != store.JobAborted && j.State != store.JobCancelled {
		s.problem(w, r, http.StatusConflict, c.lang, "err.state", tr(c.lang, "status."+j.State))
		return
	}
	ctx := r.Context()
	var serials []string
	for _, st := range []string{store.ItemFailed, store.ItemRejected, store.ItemNoAnswer} {
		for after := -1; ; {
			items, err := s.st.JobItems(ctx, j.ID, st, after, 1000)
			if err != nil {
				s.fail(w, r, c, err)
				return
			}
			for _, it := range items {
				serials = append(serials, it.Serial)
			}
			if len(items) < 1000 {
				break
			}
			after = items[len(items)-1].Seq
		}
	}
	if len(serials) == 0 {
		s.problem(w, r, http.StatusConflict, c.lang, "err.nothing-to-retry")
		return
	}
	key, err := s.operatorKey(ctx, c.op.ID)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	if key == nil {
		s.problem(w, r, http.StatusConflict, c.lang, "req.err.no-key")
		return
	}
	nj, err := s.o.Jobs.Create(ctx, c.op.Name, c.src, jobs.Request{Type: j.Type, Args: json.RawMessage(j.Args), Serials: serials,
		RatePerMin: j.RatePerMin, MaxInflight: j.MaxInflight, AbortPct: j.AbortPct, AbortMin: j.AbortMin,
		CommandTTL: j.CommandTTL.String(), MinSignatures: 2}, s.o.Now().UTC())
	if err != nil {
		var fe *jobs.FieldError
		if errors.As(err, &fe) {
			s.problem(w, r, http.StatusConflict, c.lang, "err.retry", fe.Message)
			return
		}
		s.fail(w, r, c, err)
		return
	}
	s.audit(ctx, c, "request.retry", nj.ID, fmt.Sprintf(`{"from":%q,"terminals":%d}`, j.ID, len(serials)))
	http.Redirect(w, r, "/requests/"+nj.ID+"?msg=created", http.StatusSeeOther)
}

// proofDownload sends a terminal's proof of wipe exactly as the terminal
// signed and sent it: the final ack's envelope bytes.
func (s *Server) proofDownload(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	j, ok := s.loadRequest(w, r, c)
	if !ok {
		return
	}
	serial := r.PathValue("serial")
	cmdID := store.ItemCmdID(j.ID, serial)
	acks, err := s.st.Acks(r.Context(), cmdID)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	fa := finalAck(acks)
	if fa == nil || fa.State != remote.AckSucceeded {
		s.problem(w, r, http.StatusNotFound, c.lang, "err.no-proof", serial)
		return
	}
	s.audit(r.Context(), c, "proof.download", cmdID, "")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="proof-of-wipe-%s-%s.json"`, serial, j.ID))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(fa.Envelope)
}
