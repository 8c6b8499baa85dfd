package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/escpos"
	"github.com/posagent/posagent/internal/tomlconfig"
	"github.com/posagent/posagent/terminal/i18n"
)

// Config is posagentd's configuration file (spec/terminal.md §Config).
// Every key has a safe default; unknown keys and bad values are refused
// with one line that names the key, so a typo on a fleet of ten thousand
// terminals fails loudly at the first boot instead of silently.
type Config struct {
	DataDir  string         `toml:"data_dir"`
	LogLevel string         `toml:"log_level"`
	HAL      hal.Config     `toml:"hal"`
	UI       UIConfig       `toml:"ui"`
	MQTT     MQTTConfig     `toml:"mqtt"`
	Acquirer AcquirerConfig `toml:"acquirer"`
	Update   UpdateConfig   `toml:"update"`
}

// UIConfig is the [ui] section.
type UIConfig struct {
	Lang string `toml:"lang"` // "en" or "zh-CN" (i18n.ParseLang)
}

// MQTTConfig is the [mqtt] section.
type MQTTConfig struct {
	Broker   string `toml:"broker"`
	CAFile   string `toml:"ca_file"`
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// AcquirerConfig is the [acquirer] section. The address and TPDU come from
// provisioning, not from here.
type AcquirerConfig struct {
	Timeout Duration `toml:"timeout"`
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration = tomlconfig.Duration

// DefaultConfig is the configuration of a file that sets nothing.
func DefaultConfig() Config {
	return Config{
		DataDir:  "/var/lib/posagent",
		LogLevel: "info",
		HAL:      hal.DefaultConfig(),
		UI:       UIConfig{Lang: i18n.ConfigEN},
		MQTT:     MQTTConfig{Broker: "tcp://127.0.0.1:1883"},
		Acquirer: AcquirerConfig{Timeout: Duration{Duration: 30 * time.Second}},
		Update:   defaultUpdateConfig(),
	}
}

// ConfigError names the offending key, so the one line on stderr tells the
// operator exactly what to fix.
type ConfigError = tomlconfig.Error

// LoadConfig reads and validates the file at path.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(b, path)
}

// ParseConfig decodes TOML bytes over the defaults and validates them.
func ParseConfig(b []byte, name string) (Config, error) {
	cfg := DefaultConfig()
	if err := tomlconfig.Decode(b, name, &cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks every value that the daemon would otherwise trip over
// later, far from the file.
func (c Config) Validate() error {
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		return &ConfigError{Key: "data_dir", Msg: fmt.Sprintf("must be an absolute path, got %q", c.DataDir)}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &ConfigError{Key: "log_level", Msg: fmt.Sprintf("must be debug, info, warn or error, got %q", c.LogLevel)}
	}
	switch c.HAL.Kind {
	case "linux", "sim":
	default:
		return &ConfigError{Key: "hal.kind", Msg: fmt.Sprintf("must be \"linux\" or \"sim\", got %q", c.HAL.Kind)}
	}
	if c.HAL.Console == "" {
		return &ConfigError{Key: "hal.console", Msg: "must be a serial device path or \"stdio\""}
	}
	switch c.HAL.ConsoleBaud {
	case 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600:
	default:
		return &ConfigError{Key: "hal.console_baud", Msg: fmt.Sprintf("not a standard baud rate: %d", c.HAL.ConsoleBaud)}
	}
	if c.HAL.CardReader == "" {
		return &ConfigError{Key: "hal.card_reader", Msg: "must name the card reader's serial device or pty"}
	}
	if c.HAL.Printer == "" {
		return &ConfigError{Key: "hal.printer", Msg: "must name the printer's serial device (or a file with kind = \"sim\")"}
	}
	switch c.HAL.Reboot {
	case "syscall", "exit":
	default:
		return &ConfigError{Key: "hal.reboot", Msg: fmt.Sprintf("must be \"syscall\" or \"exit\", got %q", c.HAL.Reboot)}
	}
	if key, msg := c.HAL.ValidateDevices(); key != "" {
		return &ConfigError{Key: "hal." + key, Msg: msg}
	}
	if _, err := i18n.ParseLang(c.UI.Lang); err != nil {
		return &ConfigError{Key: "ui.lang", Msg: fmt.Sprintf("must be %q or %q, got %q", i18n.ConfigEN, i18n.ConfigZhCN, c.UI.Lang)}
	}
	switch {
	case strings.HasPrefix(c.MQTT.Broker, "tcp://"), strings.HasPrefix(c.MQTT.Broker, "ssl://"),
		strings.HasPrefix(c.MQTT.Broker, "tls://"), strings.HasPrefix(c.MQTT.Broker, "mqtts://"):
		if !strings.Contains(strings.SplitN(c.MQTT.Broker, "://", 2)[1], ":") {
			return &ConfigError{Key: "mqtt.broker", Msg: fmt.Sprintf("needs host:port, got %q", c.MQTT.Broker)}
		}
	default:
		return &ConfigError{Key: "mqtt.broker", Msg: fmt.Sprintf("must be tcp://host:port or ssl://host:port, got %q", c.MQTT.Broker)}
	}
	if (c.MQTT.CertFile == "") != (c.MQTT.KeyFile == "") {
		return &ConfigError{Key: "mqtt.cert_file", Msg: "cert_file and key_file go together"}
	}
	for key, p := range map[string]string{"mqtt.ca_file": c.MQTT.CAFile, "mqtt.cert_file": c.MQTT.CertFile, "mqtt.key_file": c.MQTT.KeyFile} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return &ConfigError{Key: key, Msg: fmt.Sprintf("cannot read %s", p)}
		}
	}
	if c.Acquirer.Timeout.Duration < time.Second || c.Acquirer.Timeout.Duration > 5*time.Minute {
		return &ConfigError{Key: "acquirer.timeout", Msg: fmt.Sprintf("must be between 1s and 5m, got %s", c.Acquirer.Timeout)}
	}
	return c.Update.validate()
}

// halConfig is the [hal] section the adapters open, with what depends on
// other sections filled in: printer_encoding, when empty, follows ui.lang
// (spec/terminal.md: "gb18030" by default for zh-CN).
func (c Config) halConfig() hal.Config {
	h := c.HAL
	if h.PrinterEncoding == "" {
		h.PrinterEncoding = escpos.ConfigASCII
		if c.UI.Lang == i18n.ConfigZhCN {
			h.PrinterEncoding = escpos.ConfigGB18030
		}
	}
	return h
}

// writeConfig prints the effective configuration as TOML.
func writeConfig(w io.Writer, c Config) error {
	return toml.NewEncoder(w).Encode(c)
}
