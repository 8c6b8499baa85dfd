package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/internal/hq/web"
)

// withBackOffice serves the back office (internal/hq/web) beside the API
// on hqd's one HTTP listener: /api/ and /healthz go to the API, every
// other path to the back office.
func withBackOffice(ctx context.Context, cfg Config, st *store.Store, svc *jobs.Service, log *slog.Logger, apiH http.Handler) (http.Handler, error) {
	bo, err := web.New(ctx, web.Options{Store: st, Jobs: svc, Log: log.With("part", "backoffice"), Secure: cfg.HTTP.CertFile != ""})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", apiH)
	mux.Handle("/healthz", apiH)
	mux.Handle("/", bo.Handler())
	return mux, nil
}
