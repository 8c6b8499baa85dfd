package web

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/posagent/posagent/internal/hq/auth"
	"github.com/posagent/posagent/internal/hq/store"
)

// minPassword is the shortest password an admin may set (NIST SP 800-63B
// asks for at least 8; operators here can wipe terminals).
const minPassword = 12

var operatorNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,31}$`)

// backOfficeRoles are the roles the admin page offers (viewer: read only).
var backOfficeRoles = []string{store.RoleRequester, store.RoleApprover, store.RoleTechnician, store.RoleAdmin, store.RoleViewer}

type operatorsData struct {
	Operators []store.Operator
	Keys      map[int64]string // operator id → current kid
	Roles     []string
	Locales   []string
	Form      struct{ Name, Locale string }
	FormRoles []string
	Errors    formErrors
	ErrorsFor int64 // the operator whose update failed
}

func (s *Server) operatorsPage(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	d := operatorsData{Errors: formErrors{}}
	d.Form.Locale = "en"
	s.renderOperators(w, r, c, http.StatusOK, &d)
}

func (s *Server) renderOperators(w http.ResponseWriter, r *http.Request, c *reqCtx, code int, d *operatorsData) {
	var err error
	if d.Operators, err = s.st.Operators(r.Context()); err != nil {
		s.fail(w, r, c, err)
		return
	}
	keys, err := s.st.Keys(r.Context())
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d.Keys = map[int64]string{}
	for _, k := range keys {
		if k.OperatorID != 0 && k.RevokedAt.IsZero() {
			d.Keys[k.OperatorID] = k.KID
		}
	}
	d.Roles, d.Locales = backOfficeRoles, locales
	w.WriteHeader(code)
	s.render(w, r, c, "operators", &page{Title: tr(c.lang, "ops.title"), Nav: "operators", Data: d})
}

func formRoles(r *http.Request) ([]string, bool) {
	roles := r.PostForm["roles"]
	for _, x := range roles {
		if !slices.Contains(backOfficeRoles, x) {
			return nil, false
		}
	}
	return roles, true
}

func (s *Server) operatorCreate(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	d := operatorsData{Errors: formErrors{}}
	d.Form.Name = strings.TrimSpace(r.PostFormValue("name"))
	d.Form.Locale = r.PostFormValue("locale")
	pw := r.PostFormValue("password")
	roles, ok := formRoles(r)
	d.FormRoles = roles
	if !operatorNameRE.MatchString(d.Form.Name) {
		d.Errors["name"] = tr(c.lang, "ops.err.name")
	}
	if !ok || len(roles) == 0 {
		d.Errors["roles"] = tr(c.lang, "ops.err.roles")
	}
	if utf8.RuneCountInString(pw) < minPassword || utf8.RuneCountInString(pw) > 256 {
		d.Errors["password"] = tr(c.lang, "ops.err.password", minPassword)
	}
	if !slices.Contains(locales, d.Form.Locale) {
		d.Errors["locale"] = tr(c.lang, "err.locale")
	}
	if d.Errors.Any() {
		s.renderOperators(w, r, c, http.StatusUnprocessableEntity, &d)
		return
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	o, err := s.st.CreateOperator(r.Context(), store.Operator{Name: d.Form.Name, Roles: roles, PasswordHash: hash,
		Locale: d.Form.Locale, CreatedAt: s.o.Now().UTC()})
	if err != nil {
		d.Errors["name"] = tr(c.lang, "ops.err.exists", d.Form.Name)
		s.renderOperators(w, r, c, http.StatusUnprocessableEntity, &d)
		return
	}
	s.audit(r.Context(), c, "operator.add", o.Name, fmt.Sprintf(`{"roles":%q,"locale":%q}`, strings.Join(roles, ","), o.Locale))
	http.Redirect(w, r, "/operators", http.StatusSeeOther)
}

// operatorUpdate changes an operator's roles, disables or enables it,
// sets a new password or lifts a lockout. Any of these ends the
// operator's sessions.
func (s *Server) operatorUpdate(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	op, err := s.st.OperatorByID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.problem(w, r, http.StatusNotFound, c.lang, "err.no-operator")
		return
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d := operatorsData{Errors: formErrors{}, ErrorsFor: id}
	d.Form.Locale = "en"
	roles, ok := formRoles(r)
	disabled := r.PostFormValue("disabled") == "yes"
	pw := r.PostFormValue("password")
	if !ok || len(roles) == 0 {
		d.Errors["update"] = tr(c.lang, "ops.err.roles")
	}
	if pw != "" && (utf8.RuneCountInString(pw) < minPassword || utf8.RuneCountInString(pw) > 256) {
		d.Errors["update"] = tr(c.lang, "ops.err.password", minPassword)
	}
	// An admin cannot lock themselves out of the admin page.
	if op.ID == c.op.ID && (disabled || !slices.Contains(roles, store.RoleAdmin)) {
		d.Errors["update"] = tr(c.lang, "ops.err.self")
	}
	if d.Errors.Any() {
		s.renderOperators(w, r, c, http.StatusUnprocessableEntity, &d)
		return
	}
	ctx := r.Context()
	if err := s.st.UpdateOperator(ctx, id, roles, disabled); err != nil {
		s.fail(w, r, c, err)
		return
	}
	changes := map[string]any{"roles": strings.Join(roles, ","), "disabled": disabled}
	if pw != "" {
		hash, err := auth.HashPassword(pw)
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
		if err := s.st.SetOperatorPassword(ctx, id, hash); err != nil {
			s.fail(w, r, c, err)
			return
		}
		changes["password"] = "changed"
	} else if r.PostFormValue("unlock") == "yes" {
		if err := s.st.RecordLogin(ctx, id, true, 0, op.LockedUntil); err != nil {
			s.fail(w, r, c, err)
			return
		}
		changes["unlocked"] = true
	}
	rolesChanged := strings.Join(roles, ",") != strings.Join(op.Roles, ",")
	if (rolesChanged || disabled || pw != "") && op.ID != c.op.ID {
		if err := s.st.DeleteOperatorSessions(ctx, id); err != nil {
			s.fail(w, r, c, err)
			return
		}
	}
	s.audit(ctx, c, "operator.update", op.Name, mustJSON(changes))
	http.Redirect(w, r, "/operators", http.StatusSeeOther)
}
