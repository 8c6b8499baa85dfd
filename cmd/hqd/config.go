package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/internal/tomlconfig"
	"github.com/posagent/posagent/terminal/remote"
)

// Config is hqd's configuration file. Every key has a default; unknown
// keys and bad values are refused with one line naming the key.
type Config struct {
	DB         string           `toml:"db"`
	LogLevel   string           `toml:"log_level"`
	MQTT       MQTTConfig       `toml:"mqtt"`
	HTTP       HTTPConfig       `toml:"http"`
	Signing    SigningConfig    `toml:"signing"`
	Activation ActivationConfig `toml:"activation"`
	Jobs       JobsConfig       `toml:"jobs"`
	Policy     map[string]int   `toml:"policy"`
}

// MQTTConfig is the [mqtt] section.
type MQTTConfig struct {
	Broker       string `toml:"broker"`
	ClientID     string `toml:"client_id"`
	ShareGroup   string `toml:"share_group"`
	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"`
	CAFile       string `toml:"ca_file"`
	CertFile     string `toml:"cert_file"`
	KeyFile      string `toml:"key_file"`
}

// HTTPConfig is the [http] section.
type HTTPConfig struct {
	Listen   string `toml:"listen"`
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// SigningConfig is the [signing] section: hqd's own ops key.
type SigningConfig struct {
	KeyFile string `toml:"key_file"`
	KID     string `toml:"kid"`
}

// ActivationConfig is the [activation] section.
type ActivationConfig struct {
	AcquirerKeys  string   `toml:"acquirer_keys"`
	ProvisionTTL  Duration `toml:"provision_ttl"`
	MaxRequestAge Duration `toml:"max_request_age"`
}

// JobsConfig is the [jobs] section.
type JobsConfig struct {
	Tick           Duration `toml:"tick"`
	Lease          Duration `toml:"lease"`
	ResendInterval Duration `toml:"resend_interval"`
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration = tomlconfig.Duration

// DefaultConfig is the configuration of a file that sets nothing.
func DefaultConfig() Config {
	return Config{
		DB:       "sqlite:///var/lib/hqd/hq.db",
		LogLevel: "info",
		MQTT:     MQTTConfig{Broker: "tcp://127.0.0.1:1883", ShareGroup: "hqd", Username: "hq"},
		HTTP:     HTTPConfig{Listen: "127.0.0.1:8440"},
		Activation: ActivationConfig{ProvisionTTL: Duration{Duration: 10 * time.Minute},
			MaxRequestAge: Duration{Duration: 10 * time.Minute}},
		Jobs: JobsConfig{Tick: Duration{Duration: 200 * time.Millisecond}, Lease: Duration{Duration: 15 * time.Second},
			ResendInterval: Duration{Duration: time.Minute}},
		Policy: map[string]int{},
	}
}

// ConfigError names the offending key.
type ConfigError = tomlconfig.Error

// LoadConfig reads and validates the file at path.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(b)
}

// ParseConfig decodes TOML over the defaults and validates it.
func ParseConfig(b []byte) (Config, error) {
	cfg := DefaultConfig()
	if err := tomlconfig.Decode(b, "file", &cfg); err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

// Validate checks every value hqd would otherwise trip over later.
func (c Config) Validate() error {
	if _, _, err := store.ParseURL(c.DB); err != nil {
		return &ConfigError{Key: "db", Msg: err.Error()}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &ConfigError{Key: "log_level", Msg: fmt.Sprintf("%q: want debug, info, warn or error", c.LogLevel)}
	}
	if !strings.HasPrefix(c.MQTT.Broker, "tcp://") && !strings.HasPrefix(c.MQTT.Broker, "ssl://") {
		return &ConfigError{Key: "mqtt.broker", Msg: fmt.Sprintf("%q: want tcp://HOST:PORT or ssl://HOST:PORT", c.MQTT.Broker)}
	}
	if c.MQTT.ClientID != "" && (len(c.MQTT.ClientID) > 64 || strings.ContainsAny(c.MQTT.ClientID, "/+# ")) {
		return &ConfigError{Key: "mqtt.client_id", Msg: "at most 64 characters, no / + # or spaces"}
	}
	if !remote.ValidID(c.MQTT.ShareGroup) || strings.Contains(c.MQTT.ShareGroup, ".") {
		return &ConfigError{Key: "mqtt.share_group", Msg: "want 1-64 of [A-Za-z0-9_-]"}
	}
	if (c.MQTT.CertFile == "") != (c.MQTT.KeyFile == "") {
		return &ConfigError{Key: "mqtt.cert_file", Msg: "cert_file and key_file go together"}
	}
	host, _, err := net.SplitHostPort(c.HTTP.Listen)
	if err != nil {
		return &ConfigError{Key: "http.listen", Msg: fmt.Sprintf("%q: want HOST:PORT", c.HTTP.Listen)}
	}
	if (c.HTTP.CertFile == "") != (c.HTTP.KeyFile == "") {
		return &ConfigError{Key: "http.cert_file", Msg: "cert_file and key_file go together"}
	}
	if c.HTTP.CertFile == "" && !loopback(host) {
		return &ConfigError{Key: "http.listen", Msg: fmt.Sprintf("%q is not a loopback address: plain HTTP is only for loopback; set http.cert_file and http.key_file for TLS", c.HTTP.Listen)}
	}
	for key, d := range map[string]Duration{"activation.provision_ttl": c.Activation.ProvisionTTL,
		"activation.max_request_age": c.Activation.MaxRequestAge, "jobs.tick": c.Jobs.Tick, "jobs.lease": c.Jobs.Lease,
		"jobs.resend_interval": c.Jobs.ResendInterval} {
		if d.Duration <= 0 {
			return &ConfigError{Key: key, Msg: "must be positive"}
		}
	}
	if c.Jobs.Lease.Duration < 2*c.Jobs.Tick.Duration {
		return &ConfigError{Key: "jobs.lease", Msg: "must be at least twice jobs.tick"}
	}
	for typ, n := range c.Policy {
		if t := remote.CommandType(typ); t != remote.TypeUnbind && t != remote.TypeStatus && t != remote.TypeProvision && t != remote.TypeUpdate {
			return &ConfigError{Key: "policy." + typ, Msg: "want unbind, status, provision or update"}
		}
		if n < 1 || n > 16 {
			return &ConfigError{Key: "policy." + typ, Msg: fmt.Sprintf("%d: want 1-16 signatures", n)}
		}
	}
	if c.Policy[string(remote.TypeProvision)] > 1 {
		return &ConfigError{Key: "policy.provision", Msg: "hqd answers activation requests itself: provision needs a policy of 1"}
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
