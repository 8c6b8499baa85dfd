package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
)

// newLogger logs to w as text. Under systemd (JOURNAL_STREAM set: stderr is
// connected to journald) each line starts with its syslog priority,
// "<3>" … "<7>", which journald turns into the entry's PRIORITY (sd-daemon(3)),
// so `journalctl -p warning` works.
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated with the config
	opts := &slog.HandlerOptions{Level: l}
	if os.Getenv("JOURNAL_STREAM") == "" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	pw := &prioWriter{w: w}
	return slog.New(&prioHandler{Handler: slog.NewTextHandler(pw, opts), pw: pw})
}

// prioWriter prefixes the next write with a syslog priority.
type prioWriter struct {
	mu   sync.Mutex
	w    io.Writer
	prio string
}

func (p *prioWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prio); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}

type prioHandler struct {
	slog.Handler
	pw *prioWriter
}

func (h *prioHandler) Handle(ctx context.Context, r slog.Record) error {
	h.pw.mu.Lock()
	defer h.pw.mu.Unlock()
	switch {
	case r.Level >= slog.LevelError:
		h.pw.prio = "<3>"
	case r.Level >= slog.LevelWarn:
		h.pw.prio = "<4>"
	case r.Level >= slog.LevelInfo:
		h.pw.prio = "<6>"
	default:
		h.pw.prio = "<7>"
	}
	return h.Handler.Handle(ctx, r)
}

func (h *prioHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &prioHandler{Handler: h.Handler.WithAttrs(as), pw: h.pw}
}

func (h *prioHandler) WithGroup(name string) slog.Handler {
	return &prioHandler{Handler: h.Handler.WithGroup(name), pw: h.pw}
}
