package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte(""), "empty")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/posagent" || cfg.HAL.Kind != "linux" || cfg.HAL.ConsoleBaud != 115200 ||
		cfg.HAL.Reboot != "syscall" || cfg.MQTT.Broker != "tcp://127.0.0.1:1883" || cfg.Acquirer.Timeout.Duration != 30*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestConfigFull(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
data_dir = "/tmp/pos"
log_level = "debug"
[hal]
kind = "sim"
console = "stdio"
card_reader = "/tmp/card"
printer = "/tmp/printer.txt"
reboot = "exit"
[mqtt]
broker = "tcp://127.0.0.1:1884"
[acquirer]
timeout = "5s"
`), "full")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HAL.Kind != "sim" || cfg.HAL.Console != "stdio" || cfg.Acquirer.Timeout.Duration != 5*time.Second || cfg.HAL.ConsoleBaud != 115200 {
		t.Errorf("got %+v", cfg)
	}
}

// Every bad config is refused with one line that names the key.
func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ toml, key string }{
		{`data_dir = "relative"`, "data_dir"},
		{`log_level = "loud"`, "log_level"},
		{`datadir = "/x"`, "datadir"},
		{"[hal]\nkind = \"windows\"", "hal.kind"},
		{"[hal]\nconsole_baud = 12345", "hal.console_baud"},
		{"[hal]\nconsole_baud = \"fast\"", "hal.console_baud"},
		{"[hal]\nreboot = \"later\"", "hal.reboot"},
		{"[hal]\nled = \"GPIO4\"", "hal.led"},
		{"[mqtt]\nbroker = \"http://x:1\"", "mqtt.broker"},
		{"[mqtt]\nbroker = \"tcp://nohost\"", "mqtt.broker"},
		{"[mqtt]\ncert_file = \"/etc/c.pem\"", "mqtt.cert_file"},
		{"[mqtt]\nca_file = \"/nonexistent/ca.pem\"", "mqtt.ca_file"},
		{"[acquirer]\ntimeout = \"soon\"", "acquirer.timeout"},
		{"[acquirer]\ntimeout = \"10ms\"", "acquirer.timeout"},
		{"[acquirer]\naddr = \"1.2.3.4:5\"", "acquirer.addr"},
		{"[nosuch]\nx = 1", "nosuch"},
	} {
		_, err := ParseConfig([]byte(tc.toml), "t")
		if err == nil {
			t.Errorf("%q: accepted", tc.toml)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("%q: error is more than one line: %q", tc.toml, msg)
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.HasPrefix(ce.Key, tc.key) {
			t.Errorf("%q: error %q does not name key %q", tc.toml, msg, tc.key)
		}
	}
}

func TestConfigSyntaxError(t *testing.T) {
	_, err := ParseConfig([]byte("data_dir = \n"), "t")
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("syntax error: %v", err)
	}
}
