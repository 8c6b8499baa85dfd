package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/posagent/posagent/internal/hq/store"
)

// Terminal states a filter offers, in the order of a terminal's life.
var fleetStates = []string{"unknown", "provisioned", "unactivated", "active", "unbinding", "tampered"}

// pageSizes are the fleet page's sizes; the default is the first.
var pageSizes = []int{50, 100, 200}

type fleetData struct {
	Filter  store.Filter
	Online  string // "", "true", "false"
	Size    int
	Rows    []fleetRow
	Total   int
	ByState map[string]int
	States  []string
	Sizes   []int
	// Paging links (keyset: by serial, fast at any depth).
	FirstURL, PrevURL, NextURL string
	// LiveURL is this very page as a fragment, for the live refresh.
	LiveURL string
	// FilterQuery is the filter alone, for "request an unbind of all".
	FilterQuery string
}

type fleetRow struct {
	store.Terminal
	Batch batchInfo
}

// batchInfo is a terminal's open batch as its last status told: the
// count always, the amount when the terminal reports one (batch_amount,
// in fen: remote.md's status has no such key yet; a later version may
// send it and HQ shows it).
type batchInfo struct {
	Count     int
	Amount    int64
	HasAmount bool
}

func batchOf(t store.Terminal, statusJSON string) batchInfo {
	b := batchInfo{Count: t.BatchCount}
	var st struct {
		BatchAmount *int64 `json:"batch_amount"`
	}
	if statusJSON != "" && json.Unmarshal([]byte(statusJSON), &st) == nil && st.BatchAmount != nil {
		b.Amount, b.HasAmount = *st.BatchAmount, true
	}
	return b
}

// fleetFilter reads the fleet filter of a query.
func fleetFilter(q url.Values) (store.Filter, string) {
	f := store.Filter{State: q.Get("state"), TID: q.Get("tid"), MID: q.Get("mid"), Search: truncate(q.Get("q"), 64)}
	online := q.Get("online")
	switch online {
	case "true", "false":
		b := online == "true"
		f.Online = &b
	default:
		online = ""
	}
	return f, online
}

func filterQuery(f store.Filter, online string) url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("state", f.State)
	set("online", online)
	set("tid", f.TID)
	set("mid", f.MID)
	set("q", f.Search)
	return v
}

func (s *Server) fleet(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	q := r.URL.Query()
	f, online := fleetFilter(q)
	size := pageSizes[0]
	if n, err := strconv.Atoi(q.Get("size")); err == nil {
		for _, ps := range pageSizes {
			if n == ps {
				size = n
			}
		}
	}
	d := fleetData{Filter: f, Online: online, Size: size, States: fleetStates, Sizes: pageSizes}
	ctx := r.Context()
	after, before := q.Get("after"), q.Get("before")
	var (
		list []store.Terminal
		err  error
	)
	// One more than a page tells whether there is a next (or previous) one.
	if before != "" {
		list, err = s.st.TerminalsBefore(ctx, f, before, size+1)
	} else {
		list, err = s.st.Terminals(ctx, f, after, size+1)
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	more := len(list) > size
	if more {
		if before != "" {
			list = list[1:]
		} else {
			list = list[:size]
		}
	}
	if d.ByState, err = s.st.CountTerminals(ctx, f); err != nil {
		s.fail(w, r, c, err)
		return
	}
	for _, n := range d.ByState {
		d.Total += n
	}
	serials := make([]string, len(list))
	for i, t := range list {
		serials[i] = t.Serial
	}
	statuses, err := s.st.StatusJSONOf(ctx, serials)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	for _, t := range list {
		d.Rows = append(d.Rows, fleetRow{Terminal: t, Batch: batchOf(t, statuses[t.Serial])})
	}
	base := filterQuery(f, online)
	if size != pageSizes[0] {
		base.Set("size", strconv.Itoa(size))
	}
	d.FilterQuery = base.Encode()
	link := func(k, v string) string {
		u := url.Values{}
		for key, vals := range base {
			u[key] = vals
		}
		if k != "" {
			u.Set(k, v)
		}
		return "/fleet?" + u.Encode()
	}
	if len(list) > 0 {
		if after != "" || before != "" {
			d.FirstURL = link("", "")
			if before == "" || more {
				d.PrevURL = link("before", list[0].Serial)
			}
		}
		if before != "" || more {
			d.NextURL = link("after", list[len(list)-1].Serial)
		}
	}
	live := url.Values{}
	for key, vals := range q {
		live[key] = vals
	}
	live.Set("partial", "rows")
	d.LiveURL = "/fleet?" + live.Encode()
	p := &page{Title: tr(c.lang, "fleet.title"), Nav: "fleet", Data: d}
	if q.Get("partial") == "rows" {
		s.renderTemplate(w, r, c, "fleet", "fleet-rows", p)
		return
	}
	s.render(w, r, c, "fleet", p)
}

type terminalData struct {
	T        store.Terminal
	Batch    batchInfo
	Status   string
	Commands []store.Command
}

func (s *Server) terminalPage(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	t, err := s.st.Terminal(r.Context(), r.PathValue("serial"))
	if errors.Is(err, store.ErrNotFound) {
		s.problem(w, r, http.StatusNotFound, c.lang, "err.no-terminal", r.PathValue("serial"))
		return
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	js, err := s.st.StatusJSONOf(r.Context(), []string{t.Serial})
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	cmds, err := s.st.CommandsOf(r.Context(), t.Serial, 20)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	s.render(w, r, c, "terminal", &page{Title: t.Serial, Nav: "fleet",
		Data: terminalData{T: t, Batch: batchOf(t, js[t.Serial]), Status: js[t.Serial], Commands: cmds}})
}
