// Package api is hqd's HTTP JSON API (hqctl is its command line; the back
// office is built on the same services). Every route but /healthz needs an
// operator: a bearer token (Authorization: Bearer …) made with
// `hqd operator add --token-out` or `hqctl`'s administrator. Roles decide
// what an operator may do; every change is written to the audit trail with
// who, when and from where.
package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/terminal/remote"
)

// Health reports a part of hqd that may be unwell (ingest, job runner).
type Health interface {
	Healthy() bool
}

// Server is the API.
type Server struct {
	Store   *store.Store
	Jobs    *jobs.Service
	Health  map[string]Health
	Stats   func() any // ingest counters, shown by /api/v1/fleet
	Log     *slog.Logger
	Now     func() time.Time
	CodeTTL time.Duration // default validity of an activation code (24 h)
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.CodeTTL <= 0 {
		s.CodeTTL = 24 * time.Hour
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	route := func(pattern string, roles []string, h func(w http.ResponseWriter, r *http.Request, op store.Operator)) {
		mux.HandleFunc(pattern, s.auth(roles, h))
	}
	read := []string{store.RoleViewer, store.RoleRequester, store.RoleApprover, store.RoleTechnician}
	route("GET /api/v1/whoami", read, func(w http.ResponseWriter, r *http.Request, op store.Operator) { writeJSON(w, 200, op) })
	route("GET /api/v1/fleet", read, s.fleet)
	route("GET /api/v1/terminals", read, s.terminals)
	route("GET /api/v1/terminals/{serial}", read, s.terminal)
	route("POST /api/v1/terminals", nil, s.register)
	route("GET /api/v1/codes", []string{store.RoleTechnician}, s.codes)
	route("POST /api/v1/codes", []string{store.RoleTechnician}, s.issueCode)
	route("GET /api/v1/jobs", read, s.jobList)
	route("POST /api/v1/jobs", []string{store.RoleRequester}, s.jobCreate)
	route("GET /api/v1/jobs/{id}", read, s.jobShow)
	route("GET /api/v1/jobs/{id}/items", read, s.jobItems)
	route("GET /api/v1/jobs/{id}/unsigned", []string{store.RoleRequester, store.RoleApprover}, s.jobUnsigned)
	route("POST /api/v1/jobs/{id}/signatures", []string{store.RoleRequester, store.RoleApprover}, s.jobSign)
	route("POST /api/v1/jobs/{id}/cancel", []string{store.RoleRequester}, s.jobCancel)
	route("POST /api/v1/jobs/{id}/resume", []string{store.RoleRequester}, s.jobResume)
	route("GET /api/v1/commands/{id}", read, s.commandShow)
	route("GET /api/v1/audit", read, s.audit)
	route("GET /api/v1/keys", read, s.keys)
	route("POST /api/v1/keys", nil, s.keyAdd)
	route("POST /api/v1/keys/{kid}/revoke", nil, s.keyRevoke)
	route("GET /api/v1/operators", nil, s.operators)
	return limitBody(mux)
}

// limitBody caps request bodies (a serial list of 100,000 fits in 4 MiB).
func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 8<<20)
		h.ServeHTTP(w, r)
	})
}

// Problem is every error answer: a message, and the field it is about.
type Problem struct {
	Error   string   `json:"error"`
	Field   string   `json:"field,omitempty"`
	Unknown []string `json:"unknown,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	var fe *jobs.FieldError
	switch {
	case errors.As(err, &fe):
		writeJSON(w, http.StatusBadRequest, Problem{Error: fe.Message, Field: fe.Field, Unknown: fe.Unknown})
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, Problem{Error: err.Error()})
	case errors.Is(err, store.ErrJobState), errors.Is(err, jobs.ErrSignature):
		writeJSON(w, http.StatusConflict, Problem{Error: err.Error()})
	default:
		s.Log.Error("api", "err", err)
		writeJSON(w, http.StatusInternalServerError, Problem{Error: "internal error: " + err.Error()})
	}
}

func badRequest(w http.ResponseWriter, field, format string, a ...any) {
	writeJSON(w, http.StatusBadRequest, Problem{Error: fmt.Sprintf(format, a...), Field: field})
}

// source is where a request came from, for the audit trail.
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// auth resolves the bearer token to an operator holding one of roles (an
// admin holds every role; nil roles: admin only).
func (s *Server) auth(roles []string, h func(http.ResponseWriter, *http.Request, store.Operator)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hqd"`)
			writeJSON(w, http.StatusUnauthorized, Problem{Error: "an operator token is required (Authorization: Bearer …)"})
			return
		}
		op, err := s.Store.OperatorByToken(r.Context(), token, s.Now())
		if errors.Is(err, store.ErrNotFound) || (err == nil && op.Disabled) {
			writeJSON(w, http.StatusUnauthorized, Problem{Error: "unknown, expired or disabled token"})
			return
		}
		if err != nil {
			s.fail(w, err)
			return
		}
		if !op.Has(store.RoleAdmin) && !slices.ContainsFunc(roles, op.Has) {
			writeJSON(w, http.StatusForbidden, Problem{Error: fmt.Sprintf("operator %s lacks the role for this (%s)", op.Name, strings.Join(append(roles, "admin"), " or "))})
			return
		}
		h(w, r, op)
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	res := map[string]string{}
	ok := true
	if err := s.Store.Ping(ctx); err != nil {
		res["database"], ok = err.Error(), false
	} else {
		res["database"] = "ok"
	}
	for name, h := range s.Health {
		if h.Healthy() {
			res[name] = "ok"
		} else {
			res[name], ok = "failing (retrying)", false
		}
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, res)
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

func intParam(r *http.Request, name string, def, maxV int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a whole number", name, v)
	}
	return min(n, maxV), nil
}

func filterOf(r *http.Request) (store.Filter, error) {
	q := r.URL.Query()
	f := store.Filter{State: q.Get("state"), TID: q.Get("tid"), MID: q.Get("mid"), Search: q.Get("search")}
	if v := q.Get("online"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, fmt.Errorf("online=%q: want true or false", v)
		}
		f.Online = &b
	}
	return f, nil
}

func (s *Server) fleet(w http.ResponseWriter, r *http.Request, _ store.Operator) {
	f, err := filterOf(r)
	if err != nil {
		badRequest(w, "filter", "%v", err)
		return
	}
	byState, err := s.Store.CountTerminals(r.Context(), f)
	if err != nil {
		s.fail(w, err)
		return
	}
	rejects, err := s.Store.RejectCounts(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	total := 0
	for _, n := range byState {
		total += n
	}
	out := map[string]any{"terminals": total, "by_state": byState, "rejected_messages": rejects}
	if s.Stats != nil {
		out["ingest"] = s.Stats()
	}
	writeJSON(w, 200, out)
}

func (s *Server) terminals(w http.ResponseWriter, r *http.Request, _ store.Operator) {
	f, err := filterOf(r)
	if err != nil {
		badRequest(w, "filter", "%v", err)
		return
	}
	limit, err := intParam(r, "limit", 100, 1000)
	if err != nil {
		badRequest(w, "limit", "%v", err)
		return
	}
	list, err := s.Store.Terminals(r.Context(), f, r.URL.Query().Get("after"), limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	next := ""
	if len(list) == limit && limit > 0 {
		next = list[len(list)-1].Serial
	}
	writeJSON(w, 200, map[string]any{"terminals": orEmpty(list), "next": next})
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Server) terminal(w http.ResponseWriter, r *http.Request, _ store.Operator) {
	t, err := s.Store.Terminal(r.Context(), r.PathValue("serial"))
	if err != nil {
		s.fail(w, err)
		return
	}
	cmds, err := s.Store.CommandsOf(r.Context(), t.Serial, 20)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 200, map[string]any{"terminal": t, "commands": orEmpty(cmds)})
}

// register takes factory-init's JSON lines ({"serial","ed25519_pub","x25519_pub"} per line).
func (s *Server) register(w http.ResponseWriter, r *http.Request, op store.Operator) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		badRequest(w, "body", "%v", err)
		return
	}
	replace := r.URL.Query().Get("replace") == "true"
	type rec struct {
		Serial     string `json:"serial"`
		Ed25519Pub []byte `json:"ed25519_pub"`
		X25519Pub  []byte `json:"x25519_pub"`
	}
	var recs []rec
	for n, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var x rec
		if err := json.Unmarshal([]byte(line), &x); err != nil || !remote.ValidSerial(x.Serial) || len(x.Ed25519Pub) != 32 ||
			(len(x.X25519Pub) != 0 && len(x.X25519Pub) != 32) {
			badRequest(w, "body", "line %d: want factory-init's {\"serial\",\"ed25519_pub\",\"x25519_pub\"} (base64 32-byte keys)", n+1)
			return
		}
		recs = append(recs, x)
	}
	now := s.Now().UTC()
	created := 0
	for _, x := range recs {
		c, err := s.Store.RegisterDevice(r.Context(), x.Serial, x.Ed25519Pub, x.X25519Pub, replace, now)
		if errors.Is(err, store.ErrKeyMismatch) {
			writeJSON(w, http.StatusConflict, Problem{Error: err.Error() + " (replace=true re-registers a re-initialised unit)", Field: "body"})
			return
		}
		if err != nil {
			s.fail(w, err)
			return
		}
		if c {
			created++
		}
	}
	detail, _ := json.Marshal(map[string]int{"lines": len(recs), "created": created})
	_ = s.Store.Audit(r.Context(), store.AuditEntry{At: now, Actor: op.Name, Source: source(r), Action: "terminal.register", Detail: string(detail)})
	writeJSON(w, 200, map[string]int{"registered": len(recs), "created": created})
}

// CodeRequest asks for an activation code.
type CodeRequest struct {
	Serial       string `json:"serial"`
	TID          string `json:"tid"`
	MID          string `json:"mid"`
	MerchantName string `json:"merchant_name"`
	Acquirer     string `json:"acquirer"` // host:port
	TPDU         string `json:"tpdu"`
	TLS          bool   `json:"tls"`
	TTL          string `json:"ttl"` // Go duration, default 24h
}

func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, op store.Operator) {
	var req CodeRequest
	if err := decode(r, &req); err != nil {
		badRequest(w, "body", "%v", err)
		return
	}
	if req.TPDU == "" {
		req.TPDU = "6000030000"
	}
	ttl := s.CodeTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > 30*24*time.Hour {
			badRequest(w, "ttl", "%q: want a duration up to 720h", req.TTL)
			return
		}
		ttl = d
	}
	// The provision command must pass the terminal's own checks: try its
	// args now, so a bad TID or acquirer fails here, not at the bench.
	args, _ := json.Marshal(remote.ProvisionArgs{TID: remote.TID(req.TID), MID: remote.MID(req.MID), MerchantName: req.MerchantName,
		Acquirer: remote.Acquirer{Addr: req.Acquirer, TLS: req.TLS, TPDU: remote.TPDU(req.TPDU)}, TMKSealed: make([]byte, 64),
		TMKKCV: "000000", Activation: "check"})
	if err := remote.CheckArgs(remote.TypeProvision, args); err != nil {
		badRequest(w, "args", "%v", err)
		return
	}
	if _, err := s.Store.Terminal(r.Context(), req.Serial); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			badRequest(w, "serial", "%q is not a registered terminal (register factory-init's output first)", req.Serial)
			return
		}
		s.fail(w, err)
		return
	}
	now := s.Now().UTC()
	c, err := s.Store.IssueCode(r.Context(), store.Code{Serial: req.Serial, TID: req.TID, MID: req.MID, MerchantName: req.MerchantName,
		AcquirerAddr: req.Acquirer, AcquirerTLS: req.TLS, AcquirerTPDU: req.TPDU, IssuedAt: now, ExpiresAt: now.Add(ttl), IssuedBy: op.Name}, rand.Reader)
	if err != nil {
		s.fail(w, err)
		return
	}
	// The audit trail names the code's id, never the code itself.
	detail, _ := json.Marshal(map[string]any{"code_id": c.ID, "tid": c.TID, "mid": c.MID, "expires_at": c.ExpiresAt})
	if err := s.Store.Audit(r.Context(), store.AuditEntry{At: now, Actor: op.Name, Source: source(r), Action: "code.issue", Target: c.Serial, Detail: string(detail)}); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) codes(w http.ResponseWriter, r *http.Request, _ store.Operator) {
	limit, err := intParam(r, "limit", 50, 1000)
	if err != nil {
		badRequest(w, "limit", "%v", err)
		return
	}
	list, err := s.Store.Codes(r.Context(), r.URL.Query().Get("serial"), limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	// Only pending codes are shown in full: a used or revoked code is
	// history, and history needs no secret.
	for i := range list {
		if list[i].Status != store.CodePending {
			list[i].Code = "••••" + list[i].Code[4:]
		}
	}
	writeJSON(w, 200, map[string]any{"codes": orEmpty(list)})
}

func (s *Server) jobCreate(w http.ResponseWriter, r *http.Request, op store.Operator) {
	var req jobs.Request
	if err := decode(r, &req); err != nil {
		badRequest(w, "body", "%v", err)
		return
	}
	j, err := s.Jobs.Create(r.Context(), op.Name, source(r), req, s.Now().UTC())
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, j)
}

func (s *Server) jobList(w http.ResponseWriter, r *http.Request, _ store.Operator) {
	limit, err := intParam(r, "limit", 50, 1000)
	if err != nil {
		badRequest(w, "limit", "%v", err)
		return
	}
	list, err := s.Store.Jobs(r.Context(), limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	var out []jobs.Progress
	for _, j := range list {
		p, err := jobs.ProgressOf(r.Context(), s.Store, j.ID)
		if err != nil {
			s.fail(w, err)
			return
		}
		out = append(out, p)
	}
	writeJSON(w, 200, map[string]any{"jobs": orEmpty(out)})
}

func (s *Server) jobShow(w http.ResponseWriter, r *http.Request, _ store.Operator) {
	p, err := jobs.ProgressOf(r.Context(), s.Store, r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 200, p)
}

func (s *Server) jobItems(w http.ResponseWriter, r *http.Request, _ store.Operator) {
	limit, err := intParam(r, "limit", 100, 10000)
	if err != nil {
		badRequest(w, "limit", "%v", err)
		return
	}
	after, err := intParam(r, "after", -1, 1<<31-1)
	if err != nil {
		badRequest(w, "after", "%v", err)
		return
	}
	items, err := s.Store.JobItems(r.Context(), r.PathValue("id"), r.URL.Query().Get("state"), after, limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 200, map[string]any{"items": orEmpty(items)})
}

// Unsigned is a command payload waiting for signatures.
type Unsigned struct {
	CmdID   string   `json:"cmd_id"`
	Serial  string   `json:"serial"`
	Payload []byte   `json:"payload"`
	Signed  []string `json:"signed_by"`
}

func (s *Server) jobUnsigned(w http.ResponseWriter, r *http.Request, _ store.Operator) {
	cmds, err := s.Store.SigningCommands(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]Unsigned, 0, len(cmds))
	for _, c := range cmds {
		sigs, err := s.Store.Signatures(r.Context(), c.ID)
		if err != nil {
			s.fail(w, err)
			return
		}
		u := Unsigned{CmdID: c.ID, Serial: c.Serial, Payload: c.Payload, Signed: []string{}}
		for _, g := range sigs {
			u.Signed = append(u.Signed, g.Operator+":"+g.KID)
		}
		out = append(out, u)
	}
	writeJSON(w, 200, map[string]any{"commands": out})
}

func (s *Server) jobSign(w http.ResponseWriter, r *http.Request, op store.Operator) {
	var req struct {
		Signatures []jobs.SignatureIn `json:"signatures"`
	}
	if err := decode(r, &req); err != nil {
		badRequest(w, "body", "%v", err)
		return
	}
	j, err := s.Jobs.AddSignatures(r.Context(), op, source(r), r.PathValue("id"), req.Signatures, s.Now().UTC())
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 200, j)
}

func (s *Server) jobCancel(w http.ResponseWriter, r *http.Request, op store.Operator) {
	now := s.Now().UTC()
	j, err := s.Store.CancelJob(r.Context(), r.PathValue("id"), now)
	if err != nil {
		s.fail(w, err)
		return
	}
	_ = s.Store.Audit(r.Context(), store.AuditEntry{At: now, Actor: op.Name, Source: source(r), Action: "job.cancel", Target: j.ID})
	writeJSON(w, 200, j)
}

func (s *Server) jobResume(w http.ResponseWriter, r *http.Request, op store.Operator) {
	var req struct {
		AbortPct int `json:"abort_pct"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			badRequest(w, "body", "%v", err)
			return
		}
	}
	if req.AbortPct < 0 || req.AbortPct > 100 {
		badRequest(w, "abort_pct", "%d: want 1-100", req.AbortPct)
		return
	}
	now := s.Now().UTC()
	j, err := s.Store.ResumeJob(r.Context(), r.PathValue("id"), req.AbortPct, now)
	if err != nil {
		s.fail(w, err)
		return
	}
	detail, _ := json.Marshal(map[string]int{"abort_pct": j.AbortPct})
	_ = s.Store.Audit(r.Context(), store.AuditEntry{At: now, Actor: op.Name, Source: source(r), Action: "job.resume", Target: j.ID, Detail: string(detail)})
	writeJSON(w, 200, j)
}

func (s *Server) commandShow(w http.ResponseWriter, r *http.Request, _ store.Operator) {
	c, err := s.Store.Command(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	acks, err := s.Store.Acks(r.Context(), c.ID)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 200, map[string]any{"command": c, "acks": orEmpty(acks)})
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request, _ store.Operator) {
	q := r.URL.Query()
	limit, err := intParam(r, "limit", 100, 10000)
	if err != nil {
		badRequest(w, "limit", "%v", err)
		return
	}
	before, err := intParam(r, "before", 0, 1<<62)
	if err != nil {
		badRequest(w, "before", "%v", err)
		return
	}
	aq := store.AuditQuery{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), Before: int64(before), Limit: limit}
	if v := q.Get("since"); v != "" {
		if aq.Since, err = time.Parse(time.RFC3339, v); err != nil {
			badRequest(w, "since", "%q: want RFC 3339", v)
			return
		}
	}
	list, err := s.Store.AuditTrail(r.Context(), aq)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 200, map[string]any{"entries": orEmpty(list)})
}

func (s *Server) keys(w http.ResponseWriter, r *http.Request, _ store.Operator) {
	list, err := s.Store.Keys(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 200, map[string]any{"keys": orEmpty(list)})
}

func (s *Server) keyAdd(w http.ResponseWriter, r *http.Request, op store.Operator) {
	var req struct {
		KID      string `json:"kid"`
		Pub      []byte `json:"pub"`
		Role     string `json:"role"`
		Operator string `json:"operator"`
	}
	if err := decode(r, &req); err != nil {
		badRequest(w, "body", "%v", err)
		return
	}
	if !remote.ValidID(req.KID) {
		badRequest(w, "kid", "%q: want 1-64 of [A-Za-z0-9._-]", req.KID)
		return
	}
	k := store.HQKey{KID: req.KID, Pub: req.Pub, Role: req.Role, CreatedAt: s.Now().UTC()}
	if req.Operator != "" {
		o, err := s.Store.OperatorByName(r.Context(), req.Operator)
		if err != nil {
			badRequest(w, "operator", "%q: no such operator", req.Operator)
			return
		}
		k.OperatorID = o.ID
	}
	if err := s.Store.AddKey(r.Context(), k); err != nil {
		badRequest(w, "kid", "%v", err)
		return
	}
	detail, _ := json.Marshal(map[string]string{"role": k.Role, "operator": req.Operator, "pub": base64.StdEncoding.EncodeToString(k.Pub)})
	_ = s.Store.Audit(r.Context(), store.AuditEntry{At: k.CreatedAt, Actor: op.Name, Source: source(r), Action: "key.add", Target: k.KID, Detail: string(detail)})
	writeJSON(w, http.StatusCreated, k)
}

func (s *Server) keyRevoke(w http.ResponseWriter, r *http.Request, op store.Operator) {
	now := s.Now().UTC()
	if err := s.Store.RevokeKey(r.Context(), r.PathValue("kid"), now); err != nil {
		s.fail(w, err)
		return
	}
	_ = s.Store.Audit(r.Context(), store.AuditEntry{At: now, Actor: op.Name, Source: source(r), Action: "key.revoke", Target: r.PathValue("kid")})
	writeJSON(w, 200, map[string]string{"revoked": r.PathValue("kid")})
}

func (s *Server) operators(w http.ResponseWriter, r *http.Request, _ store.Operator) {
	list, err := s.Store.Operators(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 200, map[string]any{"operators": orEmpty(list)})
}

// NewToken makes a random operator token (32 bytes, URL-safe base64).
func NewToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "hqt_" + base64.RawURLEncoding.EncodeToString(b[:])
}
