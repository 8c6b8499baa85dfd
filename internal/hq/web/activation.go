package web

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/terminal/remote"
)

// The technician's page: an activation code for a serial with the merchant
// parameters its provision command will carry, and the codes issued, so a
// technician sees theirs used once the terminal is activated.

type codeForm struct {
	Serial, TID, MID, Merchant, Acquirer, TPDU, TTLHours string
	TLS                                                  bool
	Errors                                               formErrors
	Issued                                               *store.Code
	Codes                                                []store.Code
	LiveURL                                              string
}

var (
	ansRE  = regexp.MustCompile(`^[\x20-\x7e]+$`)
	tpduRE = regexp.MustCompile(`^[0-9A-Fa-f]{10}$`)
)

func (s *Server) activationPage(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	f := codeForm{TPDU: "6000030000", TTLHours: "24", Errors: formErrors{}}
	f.Serial = r.URL.Query().Get("serial")
	// The acquirer a technician used last is the likely one again.
	if list, err := s.st.Codes(r.Context(), "", 1); err == nil && len(list) > 0 {
		f.Acquirer, f.TLS, f.TPDU = list[0].AcquirerAddr, list[0].AcquirerTLS, list[0].AcquirerTPDU
	}
	s.renderActivation(w, r, c, http.StatusOK, &f)
}

func (s *Server) renderActivation(w http.ResponseWriter, r *http.Request, c *reqCtx, code int, f *codeForm) {
	var err error
	if f.Codes, err = s.st.Codes(r.Context(), "", 50); err != nil {
		s.fail(w, r, c, err)
		return
	}
	// Only pending codes are shown in full: a used, superseded or revoked
	// code is history, and history needs no secret.
	for i := range f.Codes {
		if f.Codes[i].Status != store.CodePending && len(f.Codes[i].Code) == 8 {
			f.Codes[i].Code = "••••" + f.Codes[i].Code[4:]
		}
	}
	f.LiveURL = "/activation?partial=codes"
	p := &page{Title: tr(c.lang, "act.title"), Nav: "activation", Data: f}
	if r.URL.Query().Get("partial") == "codes" {
		s.renderTemplate(w, r, c, "activation", "codes", p)
		return
	}
	w.WriteHeader(code)
	s.render(w, r, c, "activation", p)
}

func (s *Server) activationIssue(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	T := func(k string, a ...any) string { return tr(c.lang, k, a...) }
	f := codeForm{Serial: strings.TrimSpace(r.PostFormValue("serial")), TID: strings.TrimSpace(r.PostFormValue("tid")),
		MID: strings.TrimSpace(r.PostFormValue("mid")), Merchant: strings.TrimSpace(r.PostFormValue("merchant")),
		Acquirer: strings.TrimSpace(r.PostFormValue("acquirer")), TPDU: strings.TrimSpace(r.PostFormValue("tpdu")),
		TTLHours: strings.TrimSpace(r.PostFormValue("ttl_hours")), TLS: r.PostFormValue("tls") == "yes", Errors: formErrors{}}
	ctx := r.Context()
	switch {
	case !remote.ValidSerial(f.Serial):
		f.Errors["serial"] = T("act.err.serial")
	default:
		if _, err := s.st.Terminal(ctx, f.Serial); errors.Is(err, store.ErrNotFound) {
			f.Errors["serial"] = T("act.err.unknown", f.Serial)
		} else if err != nil {
			s.fail(w, r, c, err)
			return
		}
	}
	if len(f.TID) != 8 || !ansRE.MatchString(f.TID) {
		f.Errors["tid"] = T("act.err.tid")
	}
	if len(f.MID) != 15 || !ansRE.MatchString(f.MID) {
		f.Errors["mid"] = T("act.err.mid")
	}
	if utf8.RuneCountInString(f.Merchant) > remote.MaxMerchantName || !utf8.ValidString(f.Merchant) {
		f.Errors["merchant"] = T("act.err.merchant")
	}
	if host, port, err := net.SplitHostPort(f.Acquirer); err != nil || host == "" || port == "" {
		f.Errors["acquirer"] = T("act.err.acquirer")
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		f.Errors["acquirer"] = T("act.err.acquirer")
	}
	if !tpduRE.MatchString(f.TPDU) {
		f.Errors["tpdu"] = T("act.err.tpdu")
	}
	hours, err := strconv.Atoi(f.TTLHours)
	if err != nil || hours < 1 || hours > 720 {
		f.Errors["ttl_hours"] = T("req.err.range", 1, 720)
	}
	if !f.Errors.Any() {
		// The provision command must pass the terminal's own checks: try
		// its args now, so a bad value fails here, not at the bench.
		args, _ := json.Marshal(remote.ProvisionArgs{TID: remote.TID(f.TID), MID: remote.MID(f.MID), MerchantName: f.Merchant,
			Acquirer: remote.Acquirer{Addr: f.Acquirer, TLS: f.TLS, TPDU: remote.TPDU(f.TPDU)}, TMKSealed: make([]byte, 64),
			TMKKCV: "000000", Activation: "check"})
		if err := remote.CheckArgs(remote.TypeProvision, args); err != nil {
			f.Errors["form"] = err.Error()
		}
	}
	if f.Errors.Any() {
		s.renderActivation(w, r, c, http.StatusUnprocessableEntity, &f)
		return
	}
	now := s.o.Now().UTC()
	code, err := s.st.IssueCode(ctx, store.Code{Serial: f.Serial, TID: f.TID, MID: f.MID, MerchantName: f.Merchant,
		AcquirerAddr: f.Acquirer, AcquirerTLS: f.TLS, AcquirerTPDU: f.TPDU, IssuedAt: now,
		ExpiresAt: now.Add(time.Duration(hours) * time.Hour), IssuedBy: c.op.Name}, s.o.Rand)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	// The trail names the code's id, never the code.
	detail, _ := json.Marshal(map[string]any{"code_id": code.ID, "tid": code.TID, "mid": code.MID, "expires_at": code.ExpiresAt})
	s.audit(ctx, c, "code.issue", code.Serial, string(detail))
	f.Issued = &code
	s.renderActivation(w, r, c, http.StatusCreated, &f)
}
