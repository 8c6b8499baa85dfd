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
		{"[ui]\nlang = \"zh\"", "ui.lang"},
		{"[ui]\nlanguage = \"en\"", "ui.language"},
		{"[hal]\ndisplay = \"/dev/fb0\"", "hal.display"},
		{"[hal]\ndisplay = \"fb:fb0\"", "hal.display"},
		{"[hal]\nkeypad = \"evdev:\"", "hal.keypad"},
		{"[hal]\nkind = \"sim\"\nkeypad = \"evdev:/dev/input/event0\"", "hal.keypad"},
		{"[hal]\nprinter = \"usblp:lp0\"", "hal.printer"},
		{"[hal]\nprinter_encoding = \"utf8\"", "hal.printer_encoding"},
		{"[hal]\ndisplay_png = \"/tmp/s.png\"", "hal.display_png"},
		{"[hal]\nkind = \"sim\"\ndisplay_png_size = \"320*240\"", "hal.display_png_size"},
		{"[hal]\nkind = \"sim\"\ndisplay_geometry = \"320x240x8\"", "hal.display_geometry"},
		{"[hal]\nkind = \"sim\"\ndisplay_geometry = \"64x32x1\"", "hal.display_geometry"},
		{"[hal]\ndisplay_geometry = \"128x64x1\"", "hal.display_geometry"},
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

// [ui] lang and the device keys of spec/terminal.md "Devices";
// printer_encoding follows the language unless it is set.
func TestConfigLangAndDevices(t *testing.T) {
	cfg, err := ParseConfig([]byte(""), "empty")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UI.Lang != "en" || cfg.HAL.Display != "console" || cfg.HAL.Keypad != "console" ||
		cfg.halConfig().PrinterEncoding != "ascii" || !cfg.HAL.PrinterChineseMode {
		t.Errorf("defaults: ui %+v hal %+v", cfg.UI, cfg.HAL)
	}
	cfg, err = ParseConfig([]byte(`
[hal]
display = "fb:/dev/fb0"
keypad = "evdev:/dev/input/event2"
printer = "usblp:/dev/usb/lp0"
[ui]
lang = "zh-CN"
`), "zh")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UI.Lang != "zh-CN" || cfg.halConfig().PrinterEncoding != "gb18030" || cfg.HAL.Display != "fb:/dev/fb0" {
		t.Errorf("zh-CN: ui %+v hal %+v", cfg.UI, cfg.HAL)
	}
	cfg, err = ParseConfig([]byte("[hal]\nprinter_encoding = \"ascii\"\nprinter_chinese_mode = false\n[ui]\nlang = \"zh-CN\""), "ascii")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.halConfig().PrinterEncoding != "ascii" || cfg.HAL.PrinterChineseMode {
		t.Errorf("explicit encoding: %+v", cfg.HAL)
	}
	cfg, err = ParseConfig([]byte("[hal]\nkind = \"sim\"\ndisplay = \"fb:/tmp/fb0\"\ndisplay_geometry = \"128x64x1\""), "fb file")
	if err != nil || cfg.HAL.DisplayGeometry != "128x64x1" {
		t.Errorf("sim framebuffer on a file: %v %+v", err, cfg.HAL)
	}
	cfg, err = ParseConfig([]byte("[hal]\nkind = \"sim\"\ndisplay_png = \"/tmp/screen.png\"\ndisplay_png_size = \"128x64\""), "png")
	if err != nil || cfg.HAL.DisplayPNG != "/tmp/screen.png" {
		t.Errorf("display_png: %v %+v", err, cfg.HAL)
	}
}
