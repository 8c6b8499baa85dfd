package web

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/posagent/posagent/internal/hq/command"
	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/terminal/remote"
)

// Signing in the browser. The page's script asks for the payloads this
// operator has not signed yet (GET /jobs/{id}/payloads), checks that each
// is the command the page shows (type, args, serial, id), signs the exact
// bytes with the operator's non-extractable WebCrypto key and posts the
// signatures back (POST /jobs/{id}/signatures). The server verifies each
// one as a terminal would (remote.OpenSigners over an envelope holding it)
// before jobs.Service stores it; the job runs once every command carries
// the signatures its policy needs.

// maxSignBatch bounds the payloads handed out, and the signatures taken,
// per call.
const maxSignBatch = 500

// signRole says whether the operator may sign this job now, and as what;
// it returns a message key when not.
func (s *Server) signRole(ctx context.Context, c *reqCtx, j store.Job) (string, error) {
	if j.State != store.JobSigning {
		return "err.not-signing", nil
	}
	if j.Type == command.TypeHQKeys {
		if !c.has(store.RoleAdmin) {
			return "err.role-admin", nil
		}
		return "", nil
	}
	if j.CreatedBy == c.op.Name {
		if !c.has(store.RoleRequester) {
			return "err.role-requester", nil
		}
		return "", nil
	}
	// Everyone after the requester reviews: an approver, and only once the
	// requester has signed the whole request.
	if !c.has(store.RoleApprover) {
		return "err.role-approver", nil
	}
	n, err := s.st.CountUnsignedBy(ctx, j.ID, j.CreatedBy)
	if err != nil {
		return "", err
	}
	if n > 0 {
		return "err.not-submitted", nil
	}
	return "", nil
}

// jobToSign is the job of the path that c's operator may sign now; when
// ok is false the answer (404, 403 audited, 500) is written.
func (s *Server) jobToSign(w http.ResponseWriter, r *http.Request, c *reqCtx) (j store.Job, ok bool) {
	ctx := r.Context()
	j, err := s.st.Job(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		s.problem(w, r, http.StatusNotFound, c.lang, "err.no-request", r.PathValue("id"))
		return store.Job{}, false
	}
	if err != nil {
		s.fail(w, r, c, err)
		return store.Job{}, false
	}
	why, err := s.signRole(ctx, c, j)
	if err != nil {
		s.fail(w, r, c, err)
		return store.Job{}, false
	}
	if why != "" {
		s.audit(ctx, c, "sign.refused", j.ID, fmt.Sprintf(`{"why":%q}`, why))
		s.problem(w, r, http.StatusForbidden, c.lang, why)
		return store.Job{}, false
	}
	return j, true
}

type payloadOut struct {
	CmdID   string `json:"cmd_id"`
	Serial  string `json:"serial"`
	Payload []byte `json:"payload"` // base64 std: the exact bytes to sign
}

func (s *Server) jobPayloads(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	ctx := r.Context()
	j, ok := s.jobToSign(w, r, c)
	if !ok {
		return
	}
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 || limit > maxSignBatch {
		limit = maxSignBatch
	}
	list, err := s.st.UnsignedBy(ctx, j.ID, c.op.Name, r.URL.Query().Get("after"), limit)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	remaining, err := s.st.CountUnsignedBy(ctx, j.ID, c.op.Name)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	out := make([]payloadOut, len(list))
	for i, u := range list {
		out[i] = payloadOut{CmdID: u.CmdID, Serial: u.Serial, Payload: u.Payload}
	}
	writeJSON(w, http.StatusOK, map[string]any{"commands": out, "remaining": remaining})
}

type signaturesIn struct {
	KID        string `json:"kid"`
	Signatures []struct {
		CmdID string `json:"cmd_id"`
		Sig   []byte `json:"sig"`
	} `json:"signatures"`
}

func (s *Server) jobSignatures(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	ctx := r.Context()
	j, ok := s.jobToSign(w, r, c)
	if !ok {
		return
	}
	var in signaturesIn
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || len(in.Signatures) == 0 || len(in.Signatures) > maxSignBatch {
		s.problem(w, r, http.StatusBadRequest, c.lang, "err.sign-body")
		return
	}
	key, err := s.operatorKey(ctx, c.op.ID)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	if key == nil || key.KID != in.KID {
		s.audit(ctx, c, "sign.refused", j.ID, fmt.Sprintf(`{"why":"not the operator's key","kid":%q}`, in.KID))
		s.problem(w, r, http.StatusForbidden, c.lang, "err.sign-key", in.KID)
		return
	}
	// Verify each signature as a terminal would, over the payload HQ
	// stored: an envelope with this one signature, opened with this one
	// key.
	keys := map[string]ed25519.PublicKey{key.KID: key.Pub}
	sigs := make([]jobs.SignatureIn, 0, len(in.Signatures))
	for _, g := range in.Signatures {
		cmd, err := s.st.Command(ctx, g.CmdID)
		if err != nil || cmd.JobID != j.ID || cmd.State != store.CmdSigning {
			s.problem(w, r, http.StatusBadRequest, c.lang, "err.sign-cmd", g.CmdID)
			return
		}
		env, err := json.Marshal(remote.Envelope{KID: key.KID, Payload: cmd.Payload, Sig: g.Sig})
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
		if _, valid, err := remote.OpenSigners(env, keys); err != nil || len(valid) != 1 {
			s.audit(ctx, c, "sign.refused", g.CmdID, `{"why":"signature does not verify"}`)
			s.problem(w, r, http.StatusBadRequest, c.lang, "err.sign-verify", g.CmdID)
			return
		}
		sigs = append(sigs, jobs.SignatureIn{CmdID: g.CmdID, KID: key.KID, Sig: g.Sig})
	}
	now := s.o.Now().UTC()
	nj, err := s.o.Jobs.AddSignatures(ctx, c.op, c.src, j.ID, sigs, now)
	if err != nil {
		if errors.Is(err, jobs.ErrSignature) || errors.Is(err, store.ErrJobState) {
			s.problem(w, r, http.StatusConflict, c.lang, "err.sign-refused", err.Error())
			return
		}
		s.fail(w, r, c, err)
		return
	}
	remaining, err := s.st.CountUnsignedBy(ctx, j.ID, c.op.Name)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	if remaining == 0 {
		// The operator's part is done: say so once in the trail.
		action := "request.approve"
		switch {
		case j.Type == command.TypeHQKeys:
			action = "keys.sign"
		case j.CreatedBy == c.op.Name:
			action = "request.submit"
		}
		s.audit(ctx, c, action, j.ID, fmt.Sprintf(`{"kid":%q,"state":%q}`, key.KID, nj.State))
	}
	writeJSON(w, http.StatusOK, map[string]any{"state": nj.State, "remaining": remaining})
}
