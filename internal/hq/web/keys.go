package web

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/posagent/posagent/internal/hq/command"
	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/terminal/remote"
)

// Operators' signing keys. An operator makes an Ed25519 key in their
// browser (WebCrypto, non-extractable, kept in IndexedDB) and hands in its
// public half; an admin compares its fingerprint with the operator (in
// person or by phone) and registers it under a kid, then rolls it out to
// the fleet with an hq_keys job that the admin signs with a root key.

// fingerprint is how people compare a public key: the first 16 bytes of
// its SHA-256, in groups of four hex digits.
func fingerprint(pub []byte) string {
	sum := sha256.Sum256(pub)
	h := hex.EncodeToString(sum[:16])
	var b strings.Builder
	for i := 0; i < len(h); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(h[i : i+4])
	}
	return b.String()
}

type keysData struct {
	MyKey      *store.HQKey
	MyProposal *keyProposal
	// Admin's view.
	Keys      []store.HQKey
	Proposals []keyProposal
	Jobs      []jobRow
	Errors    formErrors
	KIDs      map[int64]string // suggested kid per proposing operator
	Policy    string
}

type jobRow struct {
	Job      store.Job
	Progress jobs.Progress
	Summary  string
}

func (s *Server) keysPage(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	s.renderKeys(w, r, c, http.StatusOK, formErrors{})
}

func (s *Server) renderKeys(w http.ResponseWriter, r *http.Request, c *reqCtx, code int, errs formErrors) {
	ctx := r.Context()
	d := keysData{Errors: errs, KIDs: map[int64]string{}}
	var err error
	if d.MyKey, err = s.operatorKey(ctx, c.op.ID); err != nil {
		s.fail(w, r, c, err)
		return
	}
	if d.MyProposal, err = s.keyProposalOf(ctx, c.op.ID); err != nil {
		s.fail(w, r, c, err)
		return
	}
	if c.has(store.RoleAdmin) {
		if d.Keys, err = s.st.Keys(ctx); err != nil {
			s.fail(w, r, c, err)
			return
		}
		if d.Proposals, err = s.keyProposals(ctx); err != nil {
			s.fail(w, r, c, err)
			return
		}
		for _, p := range d.Proposals {
			d.KIDs[p.OperatorID] = suggestKID(p.Operator, p.ProposedAt.Format("20060102"), d.Keys)
		}
		list, err := s.st.JobsOfType(ctx, command.TypeHQKeys, 20)
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
		for _, j := range list {
			p, err := jobs.ProgressOf(ctx, s.st, j.ID)
			if err != nil {
				s.fail(w, r, c, err)
				return
			}
			d.Jobs = append(d.Jobs, jobRow{Job: j, Progress: p, Summary: hqKeysSummary(j.Args)})
		}
	}
	w.WriteHeader(code)
	s.render(w, r, c, "keys", &page{Title: tr(c.lang, "keys.title"), Nav: "keys", Data: d})
}

var kidUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// suggestKID proposes a kid for an operator's new key: name-date, with a
// counter when taken.
func suggestKID(name, date string, keys []store.HQKey) string {
	base := truncate(kidUnsafe.ReplaceAllString(name, "-"), 40) + "-" + date
	kid := base
	for n := 2; ; n++ {
		taken := false
		for _, k := range keys {
			taken = taken || k.KID == kid
		}
		if !taken {
			return kid
		}
		kid = base + "-" + strconv.Itoa(n)
	}
}

// hqKeysSummary says what an hq_keys job does, in one line.
func hqKeysSummary(args string) string {
	var a command.HQKeysArgs
	if json.Unmarshal([]byte(args), &a) != nil {
		return args
	}
	var parts []string
	for _, k := range a.Add {
		parts = append(parts, fmt.Sprintf("+%s (%s)", k.KID, k.Role))
	}
	for _, k := range a.Revoke {
		parts = append(parts, "−"+k)
	}
	for typ, n := range a.Policy {
		parts = append(parts, fmt.Sprintf("%s=%d", typ, n))
	}
	return strings.Join(parts, ", ")
}

// keyPropose takes the public half of a key the operator's browser made.
func (s *Server) keyPropose(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	var in struct {
		Pub []byte `json:"pub"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || len(in.Pub) != ed25519.PublicKeySize {
		s.problem(w, r, http.StatusBadRequest, c.lang, "err.key-pub")
		return
	}
	if err := s.proposeKey(r.Context(), c.op.ID, in.Pub, c.src, s.o.Now().UTC()); err != nil {
		s.fail(w, r, c, err)
		return
	}
	s.audit(r.Context(), c, "key.propose", c.op.Name, fmt.Sprintf(`{"fingerprint":%q}`, fingerprint(in.Pub)))
	writeJSON(w, http.StatusOK, map[string]string{"fingerprint": fingerprint(in.Pub)})
}

// keyRegister records an operator's proposed key under a kid.
func (s *Server) keyRegister(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	ctx := r.Context()
	opID, _ := strconv.ParseInt(r.PostFormValue("operator_id"), 10, 64)
	kid := strings.TrimSpace(r.PostFormValue("kid"))
	role := r.PostFormValue("role")
	errs := formErrors{}
	prop, err := s.keyProposalOf(ctx, opID)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	if prop == nil {
		errs["register"] = tr(c.lang, "keys.err.no-proposal")
	}
	if !remote.ValidID(kid) {
		errs["kid"] = tr(c.lang, "keys.err.kid")
	}
	if role != store.KeyOps && role != store.KeyRoot {
		errs["role"] = tr(c.lang, "keys.err.role")
	}
	if errs.Any() {
		s.renderKeys(w, r, c, http.StatusUnprocessableEntity, errs)
		return
	}
	op, err := s.st.OperatorByID(ctx, opID)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	now := s.o.Now().UTC()
	if err := s.st.AddKey(ctx, store.HQKey{KID: kid, Pub: prop.Pub, Role: role, OperatorID: opID, CreatedAt: now}); err != nil {
		errs["kid"] = tr(c.lang, "keys.err.kid-taken", kid)
		s.renderKeys(w, r, c, http.StatusUnprocessableEntity, errs)
		return
	}
	if err := s.dropProposal(ctx, opID); err != nil {
		s.fail(w, r, c, err)
		return
	}
	s.audit(ctx, c, "key.register", kid, fmt.Sprintf(`{"operator":%q,"role":%q,"fingerprint":%q}`, op.Name, role, fingerprint(prop.Pub)))
	http.Redirect(w, r, "/keys", http.StatusSeeOther)
}

func (s *Server) keyRevoke(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	kid := r.PathValue("kid")
	if err := s.st.RevokeKey(r.Context(), kid, s.o.Now().UTC()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.renderKeys(w, r, c, http.StatusUnprocessableEntity, formErrors{"keys": tr(c.lang, "keys.err.revoked", kid)})
			return
		}
		s.fail(w, r, c, err)
		return
	}
	s.audit(r.Context(), c, "key.revoke", kid, "")
	http.Redirect(w, r, "/keys", http.StatusSeeOther)
}

// keyRollout starts an hq_keys job over the whole fleet: add a registered
// key, revoke one, or set how many signatures an unbind needs. The job
// waits for the admin's root signature (signed on its page).
func (s *Server) keyRollout(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	ctx := r.Context()
	errs := formErrors{}
	var a command.HQKeysArgs
	switch r.PostFormValue("action") {
	case "add":
		k, err := s.st.Key(ctx, r.PostFormValue("kid"))
		if err != nil || !k.RevokedAt.IsZero() {
			errs["rollout"] = tr(c.lang, "keys.err.unknown-kid")
			break
		}
		a.Add = []command.KeyArg{{KID: k.KID, Pub: k.Pub, Role: k.Role}}
	case "revoke":
		kid := r.PostFormValue("kid")
		if !remote.ValidID(kid) {
			errs["rollout"] = tr(c.lang, "keys.err.kid")
			break
		}
		a.Revoke = []string{kid}
	case "policy":
		n, err := strconv.Atoi(r.PostFormValue("unbind"))
		if err != nil || n < 1 || n > 16 {
			errs["policy"] = tr(c.lang, "req.err.range", 1, 16)
			break
		}
		a.Policy = map[string]int{string(remote.TypeUnbind): n}
	default:
		errs["rollout"] = tr(c.lang, "keys.err.action")
	}
	if errs.Any() {
		s.renderKeys(w, r, c, http.StatusUnprocessableEntity, errs)
		return
	}
	args, _ := json.Marshal(a)
	j, err := s.o.Jobs.Create(ctx, c.op.Name, c.src, jobs.Request{Type: command.TypeHQKeys, Args: args, Filter: &store.Filter{},
		RatePerMin: 600, MaxInflight: 200, AbortPct: 100, CommandTTL: "72h"}, s.o.Now().UTC())
	var fe *jobs.FieldError
	if errors.As(err, &fe) {
		errs["rollout"] = fe.Message
		if fe.Field == "filter" {
			errs["rollout"] = tr(c.lang, "keys.err.no-fleet")
		}
		s.renderKeys(w, r, c, http.StatusUnprocessableEntity, errs)
		return
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	http.Redirect(w, r, "/keys/jobs/"+j.ID, http.StatusSeeOther)
}

type keyJobData struct {
	jobRow
	Signers   []store.JobSigner
	MyKey     *store.HQKey
	CanSign   bool
	Unsigned  int
	Terminals []store.JobTerminal
	Acks      map[string][]store.AckRecord
	LiveURL   string
	ArgsJSON  string
}

func (s *Server) keyJobPage(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	ctx := r.Context()
	j, err := s.st.Job(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && j.Type != command.TypeHQKeys) {
		s.problem(w, r, http.StatusNotFound, c.lang, "err.no-request", r.PathValue("id"))
		return
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	p, err := jobs.ProgressOf(ctx, s.st, j.ID)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d := keyJobData{jobRow: jobRow{Job: j, Progress: p, Summary: hqKeysSummary(j.Args)}, ArgsJSON: j.Args,
		LiveURL: "/keys/jobs/" + j.ID + "?partial=live"}
	if d.Signers, err = s.st.JobSigners(ctx, j.ID); err != nil {
		s.fail(w, r, c, err)
		return
	}
	if d.MyKey, err = s.operatorKey(ctx, c.op.ID); err != nil {
		s.fail(w, r, c, err)
		return
	}
	if j.State == store.JobSigning {
		if d.Unsigned, err = s.st.CountUnsignedBy(ctx, j.ID, c.op.Name); err != nil {
			s.fail(w, r, c, err)
			return
		}
		d.CanSign = d.MyKey != nil && d.MyKey.Role == store.KeyRoot && d.Unsigned > 0
	}
	if d.Terminals, err = s.st.JobTerminals(ctx, j.ID, "", -1, 200); err != nil {
		s.fail(w, r, c, err)
		return
	}
	ids := make([]string, len(d.Terminals))
	for i, t := range d.Terminals {
		ids[i] = t.CmdID
	}
	if d.Acks, err = s.st.AcksOf(ctx, ids); err != nil {
		s.fail(w, r, c, err)
		return
	}
	pg := &page{Title: tr(c.lang, "keys.job.title", j.ID), Nav: "keys", Data: d}
	if r.URL.Query().Get("partial") == "live" {
		s.renderTemplate(w, r, c, "keyjob", "keyjob-live", pg)
		return
	}
	s.render(w, r, c, "keyjob", pg)
}
