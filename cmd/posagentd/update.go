package main

// The shell's part of an over-the-air update (the core decides:
// terminal/update.go): the [update] section, the download and the RAUC
// calls the core's effects ask for, each answered with an event.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/posagent/posagent/internal/ota"
	"github.com/posagent/posagent/internal/tlsfiles"
	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

// UpdateConfig is the [update] section.
type UpdateConfig struct {
	// Enabled: update commands are carried out; off, they fail with
	// update-disabled (the default: a build without RAUC has nothing to
	// install with).
	Enabled bool `toml:"enabled"`
	// RAUCBus is the D-Bus address RAUC is on; "" is the system bus.
	RAUCBus string `toml:"rauc_bus"`
	// DownloadDir holds the bundle being downloaded; "" is
	// <data_dir>/update.
	DownloadDir string `toml:"download_dir"`
	// MaxSize refuses larger bundles (bad-size), in bytes.
	MaxSize int64 `toml:"max_size"`
	// CAFile is a PEM file of the CAs the update server's certificate
	// chains to; "" is the system's roots.
	CAFile string `toml:"ca_file"`
	// SignInTimeout is how long a freshly booted version may try to sign
	// in before its slot is marked bad and the old one booted.
	SignInTimeout Duration `toml:"sign_in_timeout"`
	// Version is the version of the system image this slot holds, as
	// update commands name it; "" is posagentd's build version. Each
	// slot's image carries its own configuration, so after the reboot the
	// new slot's file names the new version.
	Version string `toml:"version"`
}

func defaultUpdateConfig() UpdateConfig {
	return UpdateConfig{MaxSize: 512 << 20, SignInTimeout: Duration{Duration: terminal.DefaultUpdateSignIn}}
}

func (u UpdateConfig) validate() error {
	if u.DownloadDir != "" && !filepath.IsAbs(u.DownloadDir) {
		return &ConfigError{Key: "update.download_dir", Msg: fmt.Sprintf("must be an absolute path, got %q", u.DownloadDir)}
	}
	if u.MaxSize < 1 || u.MaxSize > remote.MaxBundleSize {
		return &ConfigError{Key: "update.max_size", Msg: fmt.Sprintf("must be 1 to %d bytes, got %d", int64(remote.MaxBundleSize), u.MaxSize)}
	}
	if u.CAFile != "" {
		if _, err := os.Stat(u.CAFile); err != nil {
			return &ConfigError{Key: "update.ca_file", Msg: fmt.Sprintf("cannot read %s", u.CAFile)}
		}
	}
	if d := u.SignInTimeout.Duration; d < time.Second || d > time.Hour {
		return &ConfigError{Key: "update.sign_in_timeout", Msg: fmt.Sprintf("must be between 1s and 1h, got %s", u.SignInTimeout)}
	}
	if u.Version != "" && !remote.ValidVersion(u.Version) {
		return &ConfigError{Key: "update.version", Msg: fmt.Sprintf("want 1-%d of [A-Za-z0-9._+~-], got %q", remote.MaxVersion, u.Version)}
	}
	if u.RAUCBus != "" && !strings.Contains(u.RAUCBus, ":") {
		return &ConfigError{Key: "update.rauc_bus", Msg: fmt.Sprintf("not a D-Bus address (e.g. unix:path=/run/dbus/system_bus_socket), got %q", u.RAUCBus)}
	}
	return nil
}

// runningVersion is the version an update compares with its target.
func (c Config) runningVersion() string {
	if c.Update.Version != "" {
		return c.Update.Version
	}
	return version
}

// updater runs the update effects off the event loop.
type updater struct {
	cfg    UpdateConfig
	log    *slog.Logger
	dl     *ota.Downloader
	ctx    context.Context
	cancel context.CancelFunc
	async  chan<- terminal.Event
}

// raucCallTimeout bounds one RAUC call that is not an install (Mark).
const raucCallTimeout = 30 * time.Second

// raucInstallTimeout bounds an install: RAUC writes a whole root
// filesystem, on slow flash.
const raucInstallTimeout = 30 * time.Minute

func newUpdater(cfg Config, log *slog.Logger, async chan<- terminal.Event) (*updater, error) {
	u := &updater{cfg: cfg.Update, log: log, async: async}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	dir := cfg.Update.DownloadDir
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, "update")
	}
	tlsCfg, err := tlsfiles.Client(cfg.Update.CAFile, "", "", tlsfiles.Names{CA: "update.ca_file"})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.Proxy = nil
	u.dl = &ota.Downloader{Client: &http.Client{Transport: tr}, Dir: dir, MaxSize: cfg.Update.MaxSize, Log: log,
		Backoff: time.Second}
	return u, nil
}

func (u *updater) close() { u.cancel() }

// answer hands an outcome to the event loop, unless the daemon stops.
func (u *updater) answer(ev terminal.Event) {
	select {
	case u.async <- ev:
	case <-u.ctx.Done():
	}
}

// download fetches the bundle in the background and answers with
// UpdateDownloaded.
func (u *updater) download(e terminal.DownloadUpdate) {
	if !u.cfg.Enabled {
		u.log.Warn("update refused: [update] enabled is off", slog.String("id", e.CmdID))
		go u.answer(terminal.UpdateDownloaded{CmdID: e.CmdID, Reason: remote.ReasonUpdateDisabled, Detail: "[update] enabled = false"})
		return
	}
	u.log.Info("update download", slog.String("id", e.CmdID), slog.String("url", e.URL), slog.Int64("size", e.Size))
	go func() {
		ev := terminal.UpdateDownloaded{CmdID: e.CmdID}
		if _, err := u.dl.Fetch(u.ctx, e.URL, e.SHA256, e.Size); err != nil {
			ev.Reason, ev.Detail = remote.ReasonDownloadFailed, err.Error()
			var de *ota.DownloadError
			if errors.As(err, &de) {
				ev.Reason, ev.Detail = de.Reason, de.Err.Error()
			}
		}
		u.answer(ev)
	}()
}

// install has RAUC install the downloaded bundle and answers with
// UpdateInstalled; the bundle is removed after (RAUC wrote it to the
// slot, or refused it).
func (u *updater) install(e terminal.InstallUpdate) {
	go func() {
		ev := terminal.UpdateInstalled{CmdID: e.CmdID}
		ev.Err = u.withRAUC(raucInstallTimeout, func(ctx context.Context, r *ota.RAUC) error {
			return r.Install(ctx, u.dl.Path(e.SHA256))
		})
		u.dl.Remove()
		u.answer(ev)
	}()
}

// mark marks the booted slot good or bad; it runs on the loop (a short
// call) because what follows (an ack, a reboot) depends on it.
func (u *updater) mark(good bool) terminal.UpdateMarked {
	state := "bad"
	if good {
		state = "good"
	}
	err := u.withRAUC(raucCallTimeout, func(ctx context.Context, r *ota.RAUC) error { return r.Mark(ctx, state) })
	if err == nil {
		u.log.Info("RAUC: booted slot marked", slog.String("state", state))
	}
	return terminal.UpdateMarked{Err: err}
}

func (u *updater) withRAUC(timeout time.Duration, f func(ctx context.Context, r *ota.RAUC) error) error {
	ctx, cancel := context.WithTimeout(u.ctx, timeout)
	defer cancel()
	r, err := ota.DialRAUC(u.cfg.RAUCBus)
	if err != nil {
		return err
	}
	defer r.Close()
	return f(ctx, r)
}
