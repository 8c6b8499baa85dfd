package hostsim

import (
	"encoding/json"
	"io"
	"net/http"
)

// ControlHandler is the small HTTP control API for tests that run the host as
// a process:
//
//	GET  /ledger  the ledger as JSON (the same document as Config.LedgerFile)
//	GET  /faults  the faults in effect, e.g. {"no_answer":true,"on":["0200"],"count":1}
//	POST /faults  replace them (body: the same JSON; {} heals everything)
func (h *Host) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ledger", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, h.Ledger())
	})
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, h.Faults())
	})
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var f Faults
		if err := json.Unmarshal(body, &f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.SetFaults(f)
		writeJSON(w, h.Faults())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}
