package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The [update] section: defaults, every key, and each bad value refused
// with its key named.
func TestUpdateConfig(t *testing.T) {
	cfg, err := ParseConfig(nil, "empty")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Update.Enabled || cfg.Update.MaxSize != 512<<20 || cfg.Update.SignInTimeout.Duration != 5*time.Minute ||
		cfg.runningVersion() != version {
		t.Fatalf("defaults: %+v", cfg.Update)
	}
	cfg, err = ParseConfig([]byte(`
[update]
enabled = true
rauc_bus = "unix:path=/run/dbus/system_bus_socket"
download_dir = "/var/cache/posagent"
max_size = 1048576
sign_in_timeout = "2m"
version = "2026.11.1"
`), "full")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Update.Enabled || cfg.Update.DownloadDir != "/var/cache/posagent" || cfg.Update.SignInTimeout.Duration != 2*time.Minute ||
		cfg.runningVersion() != "2026.11.1" {
		t.Fatalf("got %+v", cfg.Update)
	}
	for _, tc := range []struct{ toml, key string }{
		{"[update]\nenable = true", "update.enable"},
		{"[update]\ndownload_dir = \"rel\"", "update.download_dir"},
		{"[update]\nmax_size = 0", "update.max_size"},
		{"[update]\nmax_size = 4294967296", "update.max_size"},
		{"[update]\nca_file = \"/nonexistent/ca.pem\"", "update.ca_file"},
		{"[update]\nsign_in_timeout = \"10ms\"", "update.sign_in_timeout"},
		{"[update]\nsign_in_timeout = \"2h\"", "update.sign_in_timeout"},
		{"[update]\nversion = \"1 0\"", "update.version"},
		{"[update]\nrauc_bus = \"system\"", "update.rauc_bus"},
		{"[update]\nenabled = \"yes\"", "update.enabled"},
	} {
		_, err := ParseConfig([]byte(tc.toml), "t")
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.HasPrefix(ce.Key, tc.key) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line naming %s", tc.toml, err, tc.key)
		}
	}
}
