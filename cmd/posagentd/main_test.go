package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func hqKeyArg(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return "hq-1=" + base64.StdEncoding.EncodeToString(pub)
}

func TestFactoryInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	pwd := filepath.Join(t.TempDir(), "pwd")
	if err := os.WriteFile(pwd, []byte("4321\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"factory-init", "--data-dir", dir, "--serial", "PA-0001", "--hq-key", hqKeyArg(t), "--tech-pwd-file", pwd}
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res struct {
		Serial     string `json:"serial"`
		Ed25519Pub string `json:"ed25519_pub"`
		X25519Pub  string `json:"x25519_pub"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if res.Serial != "PA-0001" || len(res.Ed25519Pub) != 44 || len(res.X25519Pub) != 44 {
		t.Errorf("output %+v", res)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode: %v %v", fi.Mode(), err)
	}
	// It refuses to overwrite, and leaves the first identity alone.
	before, _ := os.ReadFile(filepath.Join(dir, "identity.db"))
	out.Reset()
	errb.Reset()
	if code := run(args, &out, &errb); code != 1 {
		t.Fatalf("second factory-init: exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "refusing to overwrite") {
		t.Errorf("stderr %q", errb.String())
	}
	after, _ := os.ReadFile(filepath.Join(dir, "identity.db"))
	if !bytes.Equal(before, after) {
		t.Error("identity store changed by a refused factory-init")
	}
}

func TestFactoryInitBadArgs(t *testing.T) {
	pwd := filepath.Join(t.TempDir(), "pwd")
	os.WriteFile(pwd, []byte("4321"), 0o600)
	for name, args := range map[string][]string{
		"no serial":  {"factory-init", "--data-dir", t.TempDir(), "--hq-key", hqKeyArg(t), "--tech-pwd-file", pwd},
		"bad serial": {"factory-init", "--data-dir", t.TempDir(), "--serial", "a b", "--hq-key", hqKeyArg(t), "--tech-pwd-file", pwd},
		"no key":     {"factory-init", "--data-dir", t.TempDir(), "--serial", "PA-1", "--tech-pwd-file", pwd},
		"bad key":    {"factory-init", "--data-dir", t.TempDir(), "--serial", "PA-0001", "--hq-key", "hq-1=AAAA", "--tech-pwd-file", pwd},
		"no pwd":     {"factory-init", "--data-dir", t.TempDir(), "--serial", "PA-0001", "--hq-key", hqKeyArg(t), "--tech-pwd-file", "/nonexistent"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code == 0 {
			t.Errorf("%s: accepted", name)
		} else if errb.Len() == 0 {
			t.Errorf("%s: no message", name)
		}
	}
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "posagentd ") {
		t.Fatalf("exit %d out %q", code, out.String())
	}
}

func TestBadConfigExits1(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(cfg, []byte("[hal]\nkind = \"nope\"\n"), 0o600)
	var out, errb bytes.Buffer
	code := run([]string{"--config", cfg}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "hal.kind") || strings.Count(errb.String(), "\n") != 1 {
		t.Fatalf("exit %d stderr %q", code, errb.String())
	}
}

func TestMissingIdentityExits1(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte("data_dir = \""+dir+"/data\"\n[hal]\nkind = \"sim\"\nconsole = \"stdio\"\ncard_reader = \""+dir+"/card\"\nprinter = \""+dir+"/printer.txt\"\n"), 0o600)
	var out, errb bytes.Buffer
	code := run([]string{"--config", cfg}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "factory-init") {
		t.Fatalf("exit %d stderr %q", code, errb.String())
	}
}

// A truncated or corrupted store stops the daemon with one line that
// names the file, not a panic.
func TestCorruptStoreExits1(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pwd := filepath.Join(dir, "pwd")
	os.WriteFile(pwd, []byte("4321\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"factory-init", "--data-dir", data, "--serial", "PA-0001", "--hq-key", hqKeyArg(t), "--tech-pwd-file", pwd}, &out, &errb); code != 0 {
		t.Fatalf("factory-init: %d %s", code, errb.String())
	}
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte("data_dir = \""+data+"\"\n[hal]\nkind = \"sim\"\nconsole = \"stdio\"\ncard_reader = \""+dir+"/card\"\nprinter = \""+dir+"/printer.txt\"\n"), 0o600)
	for name, corrupt := range map[string]func(p string) error{
		"truncated": func(p string) error { return os.Truncate(p, 3000) },
		"garbage":   func(p string) error { return os.WriteFile(p, bytes.Repeat([]byte{0xA5}, 32768), 0o600) },
	} {
		idPath := filepath.Join(data, "identity.db")
		orig, err := os.ReadFile(idPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := corrupt(idPath); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		errb.Reset()
		code := run([]string{"--config", cfg}, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), idPath) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q: want 1 and one line naming %s", name, code, errb.String(), idPath)
		}
		if err := os.WriteFile(idPath, orig, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
