package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSubcommandHelpExits0(t *testing.T) {
	for _, cmd := range []string{"check-config", "factory-init", "provision"} {
		for _, h := range []string{"--help", "-h"} {
			var out, errb bytes.Buffer
			if code := run([]string{cmd, h}, &out, &errb); code != exitOK {
				t.Errorf("%s %s: exit %d, want 0 (%s)", cmd, h, code, errb.String())
			}
			if !strings.Contains(out.String(), "usage: posagentd "+cmd) || !strings.Contains(out.String(), "-") {
				t.Errorf("%s %s: no usage on stdout: %q", cmd, h, out.String())
			}
		}
	}
}

func TestCheckConfigArgsAndDevices(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "posagent.toml")
	missing := filepath.Join(dir, "no-such-tty")
	if err := os.WriteFile(cfg, []byte("data_dir = \""+dir+"\"\n[hal]\nkind = \"linux\"\nconsole = \""+missing+"\"\ncard_reader = \"/dev/null\"\nprinter = \"/dev/null\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "--config", cfg, "extra"}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), `"extra"`) {
		t.Errorf("extra argument: exit %d %q, want %d naming it", code, errb.String(), exitUsage)
	}
	errb.Reset()
	if code := run([]string{"check-config", "--config", cfg}, &out, &errb); code != exitError || !strings.Contains(errb.String(), "hal.console") {
		t.Errorf("missing console device: exit %d %q, want %d naming hal.console", code, errb.String(), exitError)
	}
	errb.Reset()
	out.Reset()
	if code := run([]string{"check-config", "--no-devices", "--config", cfg}, &out, &errb); code != exitOK || !strings.Contains(out.String(), missing) {
		t.Errorf("--no-devices: exit %d %q", code, errb.String())
	}
}

func TestConfigSyntaxErrorNamesLine(t *testing.T) {
	_, err := ParseConfig([]byte("log_level = \"info\"\n[hal]\nkind = = \"sim\"\n"), "x.toml")
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("syntax error %v does not name line 3", err)
	}
}
