package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte("db = \"sqlite:///tmp/x.db\"\n[jobs]\ntick = \"1s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Jobs.Tick.Duration != time.Second || cfg.Jobs.Lease != DefaultConfig().Jobs.Lease || cfg.MQTT.ShareGroup != "hqd" {
		t.Fatalf("set value or defaults wrong: %+v", cfg)
	}
	for in, key := range map[string]string{
		"[jobs]\nspeed = 3\n":                 "jobs.speed",
		"db = \"mysql://x\"\n":                "db",
		"[jobs]\ntick = \"later\"\n":          "jobs.tick",
		"[jobs]\ntick = \"10s\"\n":            "jobs.lease",
		"[http]\nlisten = \"0.0.0.0:8440\"\n": "http.listen",
		"[mqtt]\nbroker = \"http://x:1\"\n":   "mqtt.broker",
		"[policy]\nreboot = 2\n":              "policy.reboot",
	} {
		_, err := ParseConfig([]byte(in))
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.HasPrefix(ce.Key, key) {
			t.Errorf("%q: %v, want an error naming %s", in, err, key)
		}
	}
}
