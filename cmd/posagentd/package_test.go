package main

// Packaging tests: the .deb and .ipk that build/package.sh makes with nfpm,
// installed and upgraded into a scratch root with the real dpkg; the unit
// checked by systemd-analyze; the maintainer scripts, the Buildroot package
// and the Yocto recipe checked for syntax. `make test-package` runs them.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pkgRepoRoot is the repository root, from this package's directory.
func pkgRepoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

func pkgRun(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// pkgNames are the packages build/package.sh makes for amd64.
var pkgNames = []string{"posagent", "posagent-hq", "posagent-lab"}

// builtPkg is one package's .deb and .ipk.
type builtPkg struct{ deb, ipk string }

// buildPackages runs build/package.sh for amd64 into out and returns each
// package's .deb and .ipk.
func buildPackages(t *testing.T, out, pkgVersion string) map[string]builtPkg {
	t.Helper()
	root := pkgRepoRoot(t)
	pkgRun(t, root, []string{"ARCHES=amd64", "FORMATS=deb ipk", "OUT=" + out, "PKG_VERSION=" + pkgVersion, "VERSION=v" + pkgVersion},
		"sh", "build/package.sh")
	pkgs := map[string]builtPkg{}
	for _, name := range pkgNames {
		p := builtPkg{filepath.Join(out, name+"_"+pkgVersion+"_amd64.deb"), filepath.Join(out, name+"_"+pkgVersion+"_x86_64.ipk")}
		for _, f := range []string{p.deb, p.ipk} {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("package not built: %v", err)
			}
		}
		pkgs[name] = p
	}
	return pkgs
}

// wantFiles is what each package holds: path → ls-style mode. The split:
// the terminal package has the agent only; HQ tools and the acquirer
// simulator are in packages of their own.
func wantFiles(t *testing.T) map[string]map[string]string {
	return map[string]map[string]string{
		"posagent": {
			"./usr/bin/posagentd":                        "-rwxr-xr-x",
			"./usr/lib/systemd/system/posagentd.service": "-rw-r--r--",
			"./usr/lib/sysusers.d/posagent.conf":         "-rw-r--r--",
			"./etc/posagent/posagent.toml":               "-rw-r--r--",
			"./var/lib/posagent/":                        "drwx------",
			"./usr/share/doc/posagent/copyright":         "-rw-r--r--",
		},
		"posagent-hq": {
			"./usr/bin/hqd":                                    "-rwxr-xr-x",
			"./usr/bin/hqctl":                                  "-rwxr-xr-x",
			"./usr/lib/systemd/system/hqd.service":             "-rw-r--r--",
			"./usr/lib/sysusers.d/hqd.conf":                    "-rw-r--r--",
			"./etc/hqd/hqd.toml":                               "-rw-r-----",
			"./usr/share/posagent-hq/mosquitto/":               "drwxr-xr-x",
			"./usr/share/posagent-hq/mosquitto/mosquitto.conf": "-rw-r--r--",
			"./usr/share/posagent-hq/mosquitto/terminals.acl":  "-rw-r--r--",
			"./usr/share/posagent-hq/mosquitto/hq.acl":         "-rw-r--r--",
			"./usr/share/doc/posagent-hq/copyright":            "-rw-r--r--",
			"./usr/share/doc/posagent-hq/README.md":            "-rw-r--r--",
		},
		"posagent-lab": {
			"./usr/bin/acquirer-sim":                 "-rwxr-xr-x",
			"./usr/share/doc/posagent-lab/copyright": "-rw-r--r--",
		},
	}
}

// binariesOf are the binaries no package but the one named may carry.
var binariesOf = map[string][]string{
	"posagent":     {"posagentd"},
	"posagent-hq":  {"hqctl", "hqd"},
	"posagent-lab": {"acquirer-sim"},
}

const conffile = "/etc/posagent/posagent.toml"

// conffiles are the conffiles of the packages that have maintainer
// scripts; the others have neither.
var conffiles = map[string]string{"posagent": conffile, "posagent-hq": "/etc/hqd/hqd.toml"}

// debContents lists a .deb's entries: path → mode; every entry root-owned.
func debContents(t *testing.T, deb string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, line := range strings.Split(pkgRun(t, "", nil, "dpkg-deb", "-c", deb), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 {
			got[f[len(f)-1]] = f[0]
			if f[1] != "root/root" {
				t.Errorf("%s: %s owned by %s", filepath.Base(deb), f[len(f)-1], f[1])
			}
		}
	}
	return got
}

// oldMonolithicDeb makes a posagent 0.9 as the packages were before the
// split: the agent, hqctl and acquirer-sim in one package, with the unit.
func oldMonolithicDeb(t *testing.T, dir string) string {
	t.Helper()
	tree := filepath.Join(dir, "old")
	unit, err := os.ReadFile(filepath.Join(pkgRepoRoot(t), "build/posagentd.service"))
	if err != nil {
		t.Fatal(err)
	}
	for f, body := range map[string][]byte{"usr/bin/posagentd": []byte("#!/bin/sh\n"), "usr/bin/hqctl": []byte("#!/bin/sh\n"),
		"usr/bin/acquirer-sim": []byte("#!/bin/sh\n"), "usr/lib/systemd/system/posagentd.service": unit} {
		os.MkdirAll(filepath.Join(tree, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(tree, f), body, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(tree, "DEBIAN"), 0o755)
	ctl := "Package: posagent\nVersion: 0.9.0\nArchitecture: amd64\nMaintainer: test <t@t.invalid>\nDescription: the package before the split\n"
	if err := os.WriteFile(filepath.Join(tree, "DEBIAN/control"), []byte(ctl), 0o644); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(dir, "posagent_0.9.0_amd64.deb")
	pkgRun(t, "", nil, "dpkg-deb", "--root-owner-group", "-b", tree, deb)
	return deb
}

func TestPackageDebInstallUpgradeRemove(t *testing.T) {
	work := t.TempDir()
	v1 := buildPackages(t, filepath.Join(work, "v1"), "1.0.0")
	v2 := buildPackages(t, filepath.Join(work, "v2"), "1.1.0")
	want := wantFiles(t)

	// Control data.
	for _, name := range pkgNames {
		info := pkgRun(t, "", nil, "dpkg-deb", "-I", v1[name].deb)
		for _, w := range []string{"Package: " + name + "\n", "Version: 1.0.0", "Architecture: amd64"} {
			if !strings.Contains(info, w) {
				t.Errorf("%s: dpkg-deb -I lacks %q:\n%s", name, w, info)
			}
		}
		if name != "posagent" {
			for _, w := range []string{"Replaces: posagent (<< 1.0.0~)", "Breaks: posagent (<< 1.0.0~)"} {
				if !strings.Contains(info, w) {
					t.Errorf("%s: no %q: an upgrade from the one package would clash on its files:\n%s", name, w, info)
				}
			}
		}
	}
	for name, cf := range conffiles {
		info := pkgRun(t, "", nil, "dpkg-deb", "-I", v1[name].deb)
		for _, w := range []string{"postinst", "prerm", "postrm", "conffiles"} {
			if !strings.Contains(info, w) {
				t.Errorf("%s: dpkg-deb -I lacks %q", name, w)
			}
		}
		ctl := filepath.Join(work, "ctl-"+name)
		pkgRun(t, "", nil, "dpkg-deb", "-e", v1[name].deb, ctl)
		if b, err := os.ReadFile(filepath.Join(ctl, "conffiles")); err != nil || strings.TrimSpace(string(b)) != cf {
			t.Errorf("%s: conffiles %q %v, want %s", name, b, err, cf)
		}
	}
	if info := pkgRun(t, "", nil, "dpkg-deb", "-I", v1["posagent-hq"].deb); !strings.Contains(info, "systemctl enable --now hqd") {
		t.Errorf("posagent-hq: the description does not say the operator enables hqd:\n%s", info)
	}

	// Contents and modes; each binary in its one package.
	for _, name := range pkgNames {
		got := debContents(t, v1[name].deb)
		for p, mode := range want[name] {
			if got[p] != mode {
				t.Errorf("%s: %s mode %q, want %q", name, p, got[p], mode)
			}
		}
		for other, bins := range binariesOf {
			for _, b := range bins {
				if _, ok := got["./usr/bin/"+b]; ok && other != name {
					t.Errorf("%s carries %s, which belongs in %s", name, b, other)
				}
			}
		}
		checkIPK(t, name, v1[name].ipk, want[name])
	}

	// A scratch root, as dpkg uses for an image build, with the package as
	// it was before the split installed.
	sr := filepath.Join(work, "root")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log", "etc"} {
		if err := os.MkdirAll(filepath.Join(sr, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sr, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The image's gpio group: postinst adds the service user to it.
	if err := os.WriteFile(filepath.Join(sr, "etc/group"), []byte("gpio:x:990:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dpkg := func(args ...string) string {
		t.Helper()
		return pkgRun(t, "", nil, "dpkg", append([]string{"--root=" + sr, "--force-not-root", "--force-script-chrootless", "--log=/dev/null"}, args...)...)
	}
	query := func(format, pkg string) string {
		t.Helper()
		out, _ := exec.Command("dpkg-query", "--admindir="+filepath.Join(sr, "var/lib/dpkg"), "-W", "-f="+format, pkg).Output()
		return string(out)
	}
	dpkg("-i", oldMonolithicDeb(t, work))
	pkgRun(t, "", nil, "systemctl", "--root="+sr, "enable", "posagentd.service") // what its postinst did

	// Install the split: the new packages take their files over.
	dpkg("-i", v1["posagent"].deb, v1["posagent-hq"].deb, v1["posagent-lab"].deb)
	for bin, owner := range map[string]string{"posagentd": "posagent", "hqctl": "posagent-hq", "acquirer-sim": "posagent-lab"} {
		out := pkgRun(t, "", nil, "dpkg-query", "--admindir="+filepath.Join(sr, "var/lib/dpkg"), "-S", "/usr/bin/"+bin)
		if got := strings.TrimSpace(strings.SplitN(out, ":", 2)[0]); got != owner {
			t.Errorf("/usr/bin/%s owned by %q after the split, want %s", bin, got, owner)
		}
	}
	dataDir := filepath.Join(sr, "var/lib/posagent")
	if fi, err := os.Stat(dataDir); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Fatalf("data dir after install: %v %v", fi, err)
	}
	checkServiceUser(t, sr)
	wants := filepath.Join(sr, "etc/systemd/system/multi-user.target.wants/posagentd.service")
	if _, err := os.Lstat(wants); err != nil {
		t.Errorf("postinst did not enable the unit offline: %v", err)
	}
	verifyUnit(t, sr, "posagentd.service")
	verifyUnit(t, sr, "hqd.service")
	checkCopyrights(t, sr)
	hqCfgPath := filepath.Join(sr, "etc/hqd/hqd.toml")
	hqWants := filepath.Join(sr, "etc/systemd/system/multi-user.target.wants/hqd.service")
	checkHQInstall(t, sr, hqCfgPath, hqWants)

	// A terminal's life: factory identity made by the installed binary, a
	// config edited by the integrator.
	pwd := filepath.Join(work, "pwd")
	os.WriteFile(pwd, []byte("4321\n"), 0o600)
	pkgRun(t, "", nil, filepath.Join(sr, "usr/bin/posagentd"), "factory-init", "--data-dir", dataDir,
		"--serial", "PA-PKG-0001", "--hq-key", hqKeyArg(t), "--tech-pwd-file", pwd)
	idHash := pkgFileHash(t, filepath.Join(dataDir, "identity.db"))
	cfgPath := filepath.Join(sr, "etc/posagent/posagent.toml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(cfg), `log_level = "info"`, `log_level = "debug"`, 1) + "# edited on site\n"
	if err := os.WriteFile(cfgPath, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	// HQ's: the operator points hqd at its database (here SQLite in the
	// scratch root's state dir) and makes the schema with the installed hqd.
	hqDB := filepath.Join(sr, "var/lib/hqd/hq.db")
	hqCfg, err := os.ReadFile(hqCfgPath)
	if err != nil {
		t.Fatal(err)
	}
	hqEdited := strings.Replace(string(hqCfg), `#db = "sqlite:///var/lib/hqd/hq.db"`, `db = "sqlite://`+hqDB+`"`, 1) + "# edited on site\n"
	if hqEdited == string(hqCfg)+"# edited on site\n" {
		t.Fatal("the shipped hqd.toml has no #db line to edit")
	}
	if err := os.WriteFile(hqCfgPath, []byte(hqEdited), 0o640); err != nil {
		t.Fatal(err)
	}
	pkgRun(t, "", nil, filepath.Join(sr, "usr/bin/hqd"), "migrate", "--config", hqCfgPath)
	dbHash := pkgFileHash(t, hqDB)

	// Upgrade: identity and edited config survive, unit stays enabled.
	dpkg("-i", v2["posagent"].deb, v2["posagent-hq"].deb, v2["posagent-lab"].deb)
	for _, name := range pkgNames {
		if v := query("${Version}", name); v != "1.1.0" {
			t.Errorf("%s: installed version %q after upgrade, want 1.1.0", name, v)
		}
	}
	if after, _ := os.ReadFile(cfgPath); string(after) != edited {
		t.Errorf("upgrade changed the edited conffile:\n%s", after)
	}
	if h := pkgFileHash(t, filepath.Join(dataDir, "identity.db")); h != idHash {
		t.Error("upgrade changed identity.db")
	}
	if fi, err := os.Stat(dataDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir after upgrade: %v %v", fi, err)
	}
	if _, err := os.Lstat(wants); err != nil {
		t.Errorf("unit not enabled after upgrade: %v", err)
	}
	checkServiceUser(t, sr)
	if after, _ := os.ReadFile(hqCfgPath); string(after) != hqEdited {
		t.Errorf("upgrade changed the edited hqd.toml:\n%s", after)
	}
	if h := pkgFileHash(t, hqDB); h != dbHash {
		t.Error("upgrade changed hq.db")
	}
	checkHQInstall(t, sr, hqCfgPath, hqWants)
	if out := pkgRun(t, "", nil, filepath.Join(sr, "usr/bin/hqd"), "check-config", "--config", hqCfgPath); !strings.Contains(out, hqDB) {
		t.Errorf("hqd check-config of the kept hqd.toml does not show the edited db: %s", out)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "--no-devices", "--config", cfgPath}, &out, &errb); code != 0 || !strings.Contains(out.String(), `log_level = "debug"`) {
		t.Errorf("check-config of the kept config: exit %d %s %s", code, out.String(), errb.String())
	}

	// Remove (not purge) posagent-hq: the binaries go, hqd's config and
	// database stay.
	dpkg("--remove", "posagent-hq")
	for _, gone := range []string{"usr/bin/hqd", "usr/bin/hqctl", "usr/lib/systemd/system/hqd.service"} {
		if _, err := os.Stat(filepath.Join(sr, gone)); err == nil {
			t.Errorf("%s still there after remove", gone)
		}
	}
	if after, _ := os.ReadFile(hqCfgPath); string(after) != hqEdited {
		t.Errorf("remove changed the edited hqd.toml:\n%s", after)
	}
	if h := pkgFileHash(t, hqDB); h != dbHash {
		t.Error("remove changed hq.db")
	}

	// Purge: binaries, units and configs go, and hqd's state dir; the
	// terminal's identity never does.
	dpkg("--purge", "posagent-lab", "posagent-hq", "posagent")
	for _, gone := range []string{"usr/bin/posagentd", "usr/bin/hqctl", "usr/bin/acquirer-sim", "usr/lib/systemd/system/posagentd.service",
		"etc/posagent/posagent.toml", "usr/lib/sysusers.d/posagent.conf", "usr/share/doc/posagent-hq/copyright",
		"usr/bin/hqd", "usr/lib/systemd/system/hqd.service", "usr/lib/sysusers.d/hqd.conf", "etc/hqd/hqd.toml", "etc/hqd",
		"var/lib/hqd", "usr/share/posagent-hq"} {
		if _, err := os.Stat(filepath.Join(sr, gone)); err == nil {
			t.Errorf("%s still there after purge", gone)
		}
	}
	if _, err := os.Lstat(wants); err == nil {
		t.Error("unit still enabled after purge")
	}
	if h := pkgFileHash(t, filepath.Join(dataDir, "identity.db")); h != idHash {
		t.Error("purge changed identity.db")
	}

	// A first install on a fresh image: postinst enables the unit.
	fresh := filepath.Join(work, "fresh")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log", "etc"} {
		os.MkdirAll(filepath.Join(fresh, d), 0o755)
	}
	os.WriteFile(filepath.Join(fresh, "var/lib/dpkg/status"), nil, 0o644)
	pkgRun(t, "", nil, "dpkg", "--root="+fresh, "--force-not-root", "--force-script-chrootless", "--log=/dev/null", "-i", v1["posagent"].deb)
	if _, err := os.Lstat(filepath.Join(fresh, "etc/systemd/system/multi-user.target.wants/posagentd.service")); err != nil {
		t.Errorf("first install did not enable the unit: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(fresh, "etc/passwd")); !strings.Contains(string(b), "posagent:") {
		t.Errorf("first install made no posagent user: %q", b)
	}
}

// checkHQInstall: posagent-hq's postinst made the hqd system user, gave
// it the config (0640 root:hqd) and the state dir (0750 hqd:hqd), and
// enabled nothing; the installed hqd reads the installed config.
func checkHQInstall(t *testing.T, sr, cfgPath, wants string) {
	t.Helper()
	passwd, _ := os.ReadFile(filepath.Join(sr, "etc/passwd"))
	var user []string
	for _, l := range strings.Split(string(passwd), "\n") {
		if strings.HasPrefix(l, "hqd:") {
			user = strings.Split(l, ":")
		}
	}
	if len(user) != 7 || user[5] != "/var/lib/hqd" || user[2] == "0" || user[3] == "0" {
		t.Fatalf("no hqd system user in the root's passwd: %q", passwd)
	}
	uid, gid := user[2], user[3]
	owner := func(p string) (os.FileMode, string) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%v", err)
			return 0, ""
		}
		st := fi.Sys().(*syscall.Stat_t)
		return fi.Mode(), fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	if mode, own := owner(cfgPath); mode.Perm() != 0o640 || own != "0:"+gid {
		t.Errorf("hqd.toml %v %s, want 0640 root:hqd (0:%s)", mode, own, gid)
	}
	if mode, own := owner(filepath.Join(sr, "var/lib/hqd")); !mode.IsDir() || mode.Perm() != 0o750 || own != uid+":"+gid {
		t.Errorf("/var/lib/hqd %v %s, want a 0750 dir of hqd (%s:%s)", mode, own, uid, gid)
	}
	if _, err := os.Lstat(wants); err == nil {
		t.Error("posagent-hq enabled hqd: the operator configures the database first")
	}
	pkgRun(t, "", nil, filepath.Join(sr, "usr/bin/hqd"), "check-config", "--config", cfgPath)
}

// checkServiceUser: postinst made the posagent system user in the root,
// with the device groups, and gpio because the root has that group.
func checkServiceUser(t *testing.T, sr string) {
	t.Helper()
	passwd, _ := os.ReadFile(filepath.Join(sr, "etc/passwd"))
	group, _ := os.ReadFile(filepath.Join(sr, "etc/group"))
	var user []string
	for _, l := range strings.Split(string(passwd), "\n") {
		if strings.HasPrefix(l, "posagent:") {
			user = strings.Split(l, ":")
		}
	}
	if len(user) != 7 || user[5] != "/var/lib/posagent" || user[2] == "0" {
		t.Errorf("no posagent system user in the root's passwd: %q", passwd)
	}
	for _, g := range []string{"dialout", "input", "video", "lp", "gpio"} {
		ok := false
		for _, l := range strings.Split(string(group), "\n") {
			f := strings.Split(l, ":")
			if len(f) == 4 && f[0] == g && slices.Contains(strings.Split(f[3], ","), "posagent") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("posagent is not in group %s: %q", g, group)
		}
	}
}

// checkCopyrights: each installed package's copyright names every module
// the build information of its installed binaries lists (what `go version
// -m` prints), with its version, and carries a license text for it.
func checkCopyrights(t *testing.T, sr string) {
	t.Helper()
	for _, name := range pkgNames {
		b, err := os.ReadFile(filepath.Join(sr, "usr/share/doc", name, "copyright"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		text := string(b)
		if !strings.HasPrefix(text, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n") {
			t.Errorf("%s: copyright is not DEP-5", name)
		}
		var bins []string
		for _, bin := range binariesOf[name] {
			p := filepath.Join(sr, "usr/bin", bin)
			if !pkgExists(p) {
				t.Errorf("%s: /usr/bin/%s not installed", name, bin)
				continue
			}
			bins = append(bins, p)
		}
		args := append([]string{"version", "-m"}, bins...)
		out := pkgRun(t, "", nil, "go", args...)
		n := 0
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || (f[0] != "dep" && f[0] != "=>") {
				continue
			}
			if f[0] == "dep" && strings.Contains(out, line+"\n\t=>") {
				continue // replaced: the => line is what is linked
			}
			n++
			para := copyrightParagraph(text, "Files: vendor/"+f[1]+"/*\n")
			if !strings.Contains(para, "Comment: Go module "+f[1]+" "+f[2]+",") {
				t.Errorf("%s: copyright lacks module %s %s", name, f[1], f[2])
				continue
			}
			if !regexp.MustCompile(`\nLicense: [A-Za-z0-9.\- ]+\n ---- [A-Za-z._\-]+ ----\n( .*\n){3,}`).MatchString(para) {
				t.Errorf("%s: module %s has no license text:\n%s", name, f[1], para)
			}
		}
		if n == 0 {
			t.Errorf("%s: go version -m listed no module: %s", name, out)
		}
		if !strings.Contains(text, "Comment: Go runtime and standard library") {
			t.Errorf("%s: copyright lacks the Go toolchain's license", name)
		}
	}
}

// copyrightParagraph returns the paragraph of a DEP-5 file that starts
// with head, or "".
func copyrightParagraph(text, head string) string {
	i := strings.Index(text, "\n"+head)
	if i < 0 {
		return ""
	}
	p := text[i+1:]
	if j := strings.Index(p, "\n\n"); j >= 0 {
		p = p[:j+1]
	}
	return p
}

func pkgExists(p string) bool { _, err := os.Stat(p); return err == nil }

func pkgFileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// checkIPK reads the .ipk (nfpm writes a gzipped tar of debian-binary,
// control.tar.gz and data.tar.gz) and checks control, conffiles, scripts
// and modes.
func checkIPK(t *testing.T, name, path string, want map[string]string) {
	t.Helper()
	outer := readTarGz(t, path)
	ctl := readTarGzBytes(t, outer["./control.tar.gz"].data)
	data := readTarGzBytes(t, outer["./data.tar.gz"].data)
	if c := string(ctl["./control"].data); !strings.Contains(c, "Architecture: x86_64") || !strings.Contains(c, "Package: "+name+"\n") {
		t.Errorf("ipk control:\n%s", c)
	}
	if cf, ok := conffiles[name]; ok {
		if c := strings.TrimSpace(string(ctl["./conffiles"].data)); c != cf {
			t.Errorf("%s ipk conffiles %q, want %s", name, c, cf)
		}
		for _, s := range []string{"./postinst", "./prerm", "./postrm"} {
			if e, ok := ctl[s]; !ok || e.mode&0o111 == 0 {
				t.Errorf("ipk script %s missing or not executable", s)
			}
		}
	}
	for p, mode := range want {
		e, ok := data[p]
		if !ok {
			e, ok = data[strings.TrimSuffix(p, "/")]
		}
		if !ok || os.FileMode(e.mode).Perm().String()[1:] != mode[1:] {
			t.Errorf("%s ipk: %s mode %o (present %v), want %s", name, p, e.mode, ok, mode)
		}
	}
}

type tarEntry struct {
	mode int64
	data []byte
}

func readTarGz(t *testing.T, path string) map[string]tarEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return readTarGzBytes(t, b)
}

func readTarGzBytes(t *testing.T, b []byte) map[string]tarEntry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	out := map[string]tarEntry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		data, _ := io.ReadAll(tr)
		name := h.Name
		if !strings.HasPrefix(name, "./") {
			name = "./" + name
		}
		out[name] = tarEntry{mode: h.Mode, data: data}
	}
}

// verifyUnit runs systemd-analyze verify on a unit as installed in the
// scratch root (so ExecStart's binary exists). Unknown keys and bad values
// are only warnings to systemd-analyze: any output fails the test.
func verifyUnit(t *testing.T, sr, unit string) {
	t.Helper()
	if out, err := verifyOutput(sr, unit); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
}

// A unit with a typo must not pass verifyUnit's check: systemd-analyze only
// warns, so the test relies on "no output". Each unit as shipped has the
// settings the README promises.
func TestPackageUnitVerifyCatchesTypos(t *testing.T) {
	for _, u := range []struct {
		unit, bin, typeLine string
		keys                []string
	}{
		{"posagentd.service", "posagentd", "Type=notify", []string{"Type=notify", "WatchdogSec=", "Restart=always", "ProtectSystem=strict",
			"ReadWritePaths=/var/lib/posagent", "NoNewPrivileges=yes", "CapabilityBoundingSet=CAP_SYS_BOOT",
			"PrivateTmp=yes", "RestartForceExitStatus=3", "SuccessExitStatus=3", "NotifyAccess=main",
			"ExecStart=/usr/bin/posagentd --config /etc/posagent/posagent.toml",
			"User=posagent", "Group=posagent", "AmbientCapabilities=CAP_SYS_BOOT", "StateDirectory=posagent", "StateDirectoryMode=0700",
			"After=network-online.target time-sync.target"}},
		// hqd has no sd_notify (no READY=1 in cmd/hqd): Type=exec.
		{"hqd.service", "hqd", "Type=exec", []string{"Type=exec", "ExecStart=/usr/bin/hqd --config /etc/hqd/hqd.toml",
			"User=hqd", "Group=hqd", "StateDirectory=hqd", "ReadWritePaths=/var/lib/hqd", "Restart=on-failure",
			"RestartPreventExitStatus=2", "After=network-online.target", "Wants=network-online.target", "After=postgresql.service",
			"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
			"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "WantedBy=multi-user.target"}},
	} {
		unit, err := os.ReadFile(filepath.Join(pkgRepoRoot(t), "build", u.unit))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range u.keys {
			if !strings.Contains(string(unit), "\n"+k) {
				t.Errorf("%s lacks %q", u.unit, k)
			}
		}
		// PostgreSQL may be on another host: ordering only.
		if u.unit == "hqd.service" && regexp.MustCompile(`(?m)^(Wants|Requires|BindsTo|Requisite)=.*postgresql`).Match(unit) {
			t.Errorf("hqd.service pulls in postgresql.service: %s", unit)
		}
		if u.unit == "hqd.service" && strings.Contains(string(cmdHQDSources(t)), "READY=1") {
			t.Error("hqd sends READY=1 now: hqd.service should be Type=notify")
		}
		sr := t.TempDir()
		units := filepath.Join(sr, "usr/lib/systemd/system")
		os.MkdirAll(units, 0o755)
		os.MkdirAll(filepath.Join(sr, "usr/bin"), 0o755)
		os.WriteFile(filepath.Join(sr, "usr/bin", u.bin), []byte("#!/bin/sh\n"), 0o755)
		for _, tc := range []struct {
			name, unit string
			ok         bool
		}{
			{"as shipped", string(unit), true},
			{"typo key", strings.Replace(string(unit), "\nProtectSystem=", "\nProtectSystm=", 1), false},
			{"bad value", strings.Replace(string(unit), "\n"+u.typeLine+"\n", "\n"+u.typeLine+"y\n", 1), false},
		} {
			if tc.unit == string(unit) && !tc.ok {
				t.Fatalf("%s: %s: the edit did not apply", u.unit, tc.name)
			}
			os.WriteFile(filepath.Join(units, u.unit), []byte(tc.unit), 0o644)
			out, err := verifyOutput(sr, u.unit)
			if ok := err == nil && len(bytes.TrimSpace(out)) == 0; ok != tc.ok {
				t.Errorf("%s %s: verify ok=%v want %v: %v %s", u.unit, tc.name, ok, tc.ok, err, out)
			}
		}
	}
}

// cmdHQDSources is the Go source of cmd/hqd (its non-test files).
func cmdHQDSources(t *testing.T) []byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(pkgRepoRoot(t), "cmd/hqd/*.go"))
	var all []byte
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatal("no cmd/hqd sources")
	}
	return all
}

// verifyOutput runs systemd-analyze verify --root=sr on the unit, with the
// host's targets copied beside it for those the unit names (and removed
// again, so a later dpkg --purge finds only its own files).
func verifyOutput(sr, unit string) ([]byte, error) {
	units := filepath.Join(sr, "usr/lib/systemd/system")
	host, _ := filepath.Glob("/usr/lib/systemd/system/*.target")
	if len(host) == 0 {
		return nil, errors.New("no systemd targets on this machine: install systemd (build/install-tools.sh)")
	}
	for _, h := range host {
		if b, err := os.ReadFile(h); err == nil {
			os.WriteFile(filepath.Join(units, filepath.Base(h)), b, 0o644)
		}
	}
	defer func() {
		for _, h := range host {
			os.Remove(filepath.Join(units, filepath.Base(h)))
		}
	}()
	return exec.Command("systemd-analyze", "verify", "--root="+sr, unit).CombinedOutput()
}

// The shipped default config is valid, is exactly the defaults, and
// check-config prints it as TOML that parses back to the same config.
func TestPackageCheckConfig(t *testing.T) {
	path := filepath.Join(pkgRepoRoot(t), "build/package/posagent.toml")
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "--no-devices", "--config", path}, &out, &errb); code != exitOK {
		t.Fatalf("check-config of the shipped config: exit %d: %s", code, errb.String())
	}
	back, err := ParseConfig(out.Bytes(), "check-config output")
	if err != nil {
		t.Fatalf("check-config output does not parse: %v\n%s", err, out.String())
	}
	if !reflect.DeepEqual(back, DefaultConfig()) {
		t.Errorf("shipped config differs from the defaults:\n%+v\n%+v", back, DefaultConfig())
	}

	dir := t.TempDir()
	for _, tc := range []struct {
		name, toml string
		code       int
		want       string
	}{
		{"override", "log_level = \"debug\"\n[acquirer]\ntimeout = \"5s\"\n", exitOK, `timeout = "5s"`},
		{"bad key", "[hal]\nkind = \"windows\"\n", exitError, "hal.kind"},
		{"unknown key", "colour = \"red\"\n", exitError, "colour"},
		{"missing file", "", exitError, "no such file"},
	} {
		p := filepath.Join(dir, tc.name+".toml")
		if tc.toml != "" {
			os.WriteFile(p, []byte(tc.toml), 0o600)
		}
		out.Reset()
		errb.Reset()
		code := run([]string{"check-config", "--no-devices", "--config", p}, &out, &errb)
		text := out.String() + errb.String()
		if code != tc.code || !strings.Contains(text, tc.want) {
			t.Errorf("%s: exit %d, output %q; want exit %d with %q", tc.name, code, text, tc.code, tc.want)
		}
		if code != exitOK && (out.Len() != 0 || strings.Count(errb.String(), "\n") != 1) {
			t.Errorf("%s: want one line on stderr and nothing on stdout, got %q / %q", tc.name, out.String(), errb.String())
		}
	}
}

// Maintainer scripts and shell drivers parse under sh and bash, and no
// script can delete the data dir.
func TestPackageScriptsSyntax(t *testing.T) {
	root := pkgRepoRoot(t)
	scripts := []string{"build/package/scripts/postinst", "build/package/scripts/prerm", "build/package/scripts/postrm", "build/package.sh",
		"build/package/scripts/hq/postinst", "build/package/scripts/hq/prerm", "build/package/scripts/hq/postrm"}
	rmData := regexp.MustCompile(`(?m)^[^#]*\brm\b[^\n]*(posagent|datadir|\$root)`)
	// posagent-hq's scripts remove one thing: hqd's state dir, on purge only.
	rmAny := regexp.MustCompile(`(?m)^[^#]*\brm\b.*$`)
	hqPurge := "if [ \"$1\" = purge ]; then\n\trm -rf \"$root/var/lib/hqd\"\nfi\n"
	for _, s := range scripts {
		for _, sh := range []string{"sh", "bash"} {
			if out, err := exec.Command(sh, "-n", filepath.Join(root, s)).CombinedOutput(); err != nil {
				t.Errorf("%s -n %s: %v %s", sh, s, err, out)
			}
		}
		b, err := os.ReadFile(filepath.Join(root, s))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(s, "build/package/scripts/hq/") {
			rms := rmAny.FindAll(b, -1)
			if s == "build/package/scripts/hq/postrm" {
				if len(rms) != 1 || !strings.Contains(string(b), hqPurge) {
					t.Errorf("%s: want exactly %q, found rm lines %q", s, hqPurge, rms)
				}
			} else if len(rms) != 0 {
				t.Errorf("%s removes something: %q", s, rms)
			}
		} else if strings.HasPrefix(s, "build/package/scripts/") {
			if m := rmData.Find(b); m != nil {
				t.Errorf("%s removes something: %q", s, m)
			}
		}
		if strings.HasPrefix(s, "build/package/scripts/") {
			if fi, _ := os.Stat(filepath.Join(root, s)); fi.Mode().Perm()&0o111 == 0 {
				t.Errorf("%s is not executable", s)
			}
		}
	}
}

// bashCheck runs bash -n on a shell snippet taken from a recipe, with the
// recipe's own variable references replaced by plain words.
func bashCheck(t *testing.T, what, body string) {
	t.Helper()
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: bash -n: %v %s\n%s", what, err, out, body)
	}
}

// Buildroot: the package as shipped passes the check of 2025.11's rules;
// copies with one thing broken each fail it with that thing named.
func TestPackageBuildroot(t *testing.T) {
	root := pkgRepoRoot(t)
	dir := filepath.Join(root, "build/buildroot/posagent")
	if probs := checkBuildroot(root, dir); len(probs) != 0 {
		t.Fatalf("build/buildroot/posagent:\n%s", strings.Join(probs, "\n"))
	}
	for _, tc := range []struct {
		name   string
		break_ func(d string)
		want   string
	}{
		{"_INSTALL_BINS", func(d string) {
			mkAppend(t, d, "POSAGENT_INSTALL_BINS = posagentd\n")
		}, "POSAGENT_INSTALL_BINS"},
		{"_INSTALL_BINS under an ifeq", func(d string) {
			mkAppend(t, d, "ifeq ($(BR2_PACKAGE_POSAGENT_LAB_TOOLS),y)\nPOSAGENT_INSTALL_BINS += hqctl\nendif\n")
		}, "POSAGENT_INSTALL_BINS"},
		{"no .hash", func(d string) { os.Remove(filepath.Join(d, "posagent.hash")) }, "posagent.hash"},
		{"stale license hash", func(d string) {
			os.WriteFile(filepath.Join(d, "posagent.hash"), []byte("sha256  "+strings.Repeat("0", 64)+"  LICENSE\n"), 0o644)
		}, "LICENSE"},
		{"no _LICENSE_FILES", func(d string) { mkReplace(t, d, "POSAGENT_LICENSE_FILES = LICENSE\n", "") }, "POSAGENT_LICENSE_FILES"},
		{"no _LICENSE", func(d string) { mkReplace(t, d, "POSAGENT_LICENSE = Proprietary\n", "") }, "POSAGENT_LICENSE "},
		{"redistributable", func(d string) { mkReplace(t, d, "POSAGENT_REDISTRIBUTE = NO", "POSAGENT_REDISTRIBUTE = YES") }, "POSAGENT_REDISTRIBUTE"},
		{"no init script", func(d string) { os.Remove(filepath.Join(d, "S95posagentd")) }, "S95posagentd"},
		{"eval not last", func(d string) { mkAppend(t, d, "POSAGENT_TAGS = x\n") }, "must be last"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "posagent")
			copyDir(t, dir, bad)
			tc.break_(bad)
			probs := checkBuildroot(root, bad)
			if !strings.Contains(strings.Join(probs, "\n"), tc.want) {
				t.Errorf("a copy with %s passes (problems: %q), want one naming %q", tc.name, probs, tc.want)
			}
		})
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	os.MkdirAll(to, 0o755)
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := e.Info()
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// mkAppend adds lines before the final $(eval $(golang-package)), where an
// assignment would still count.
func mkAppend(t *testing.T, d, lines string) {
	t.Helper()
	mkReplace(t, d, "$(eval $(golang-package))", lines+"$(eval $(golang-package))")
	if strings.HasPrefix(lines, "POSAGENT_TAGS") {
		mkReplace(t, d, lines+"$(eval $(golang-package))", "$(eval $(golang-package))\n"+lines)
	}
}

func mkReplace(t *testing.T, d, old, new string) {
	t.Helper()
	p := filepath.Join(d, "posagent.mk")
	b, err := os.ReadFile(p)
	if err != nil || !strings.Contains(string(b), old) {
		t.Fatalf("posagent.mk lacks %q: %v", old, err)
	}
	os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644)
}

// checkBuildroot checks a Buildroot package directory (Config.in,
// posagent.mk, posagent.hash, the init script) against what the
// golang-package infrastructure of 2025.11 and a package review need, and
// returns the problems. root is the source tree the package builds.
func checkBuildroot(root, dir string) []string {
	var probs []string
	bad := func(f string, a ...any) { probs = append(probs, fmt.Sprintf(f, a...)) }
	mk, err := os.ReadFile(filepath.Join(dir, "posagent.mk"))
	if err != nil {
		return []string{err.Error()}
	}
	vars := map[string]string{}
	defines := map[string]string{}
	assign := regexp.MustCompile(`^([A-Z0-9_]+)\s*(\+?=|:=|\?=)\s*(.*)$`)
	var cur string
	var body strings.Builder
	depth := 0
	lines := strings.Split(string(mk), "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "define "):
			if cur != "" {
				bad("posagent.mk line %d: define inside define %s", i+1, cur)
			}
			cur = strings.TrimSpace(strings.TrimPrefix(l, "define "))
			body.Reset()
		case l == "endef":
			if cur == "" {
				bad("posagent.mk line %d: endef without define", i+1)
			}
			defines[cur] = body.String()
			cur = ""
		case cur != "":
			if !strings.HasPrefix(l, "\t") && strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "/") {
				bad("posagent.mk line %d: recipe line in %s not tab-indented", i+1, cur)
			}
			body.WriteString(l + "\n")
		case strings.HasPrefix(l, "ifeq ") || strings.HasPrefix(l, "ifneq ") || strings.HasPrefix(l, "ifdef "):
			depth++
		case l == "endif":
			depth--
		case strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" || l == "else":
		case strings.HasPrefix(l, "$(eval "):
			if l != "$(eval $(golang-package))" {
				bad("posagent.mk line %d: %q", i+1, l)
			}
			if strings.TrimSpace(strings.Join(lines[i+1:], "")) != "" {
				bad("posagent.mk line %d: $(eval $(golang-package)) must be last", i+1)
			}
		default:
			m := assign.FindStringSubmatch(l)
			if m == nil {
				bad("posagent.mk line %d: not an assignment: %q", i+1, l)
				continue
			}
			if !strings.HasPrefix(m[1], "POSAGENT_") {
				bad("posagent.mk line %d: %s is not in the package's namespace", i+1, m[1])
			}
			vars[m[1]] += " " + m[3]
		}
	}
	if cur != "" || depth != 0 {
		bad("posagent.mk unbalanced: define %q open, if depth %d", cur, depth)
	}
	val := func(v string) string { return strings.TrimSpace(vars[v]) }
	// pkg-golang.mk (2025.11): "Package $(1) sets $(2)_INSTALL_BINS, which
	// is no longer supported" — an error at parse time, under any ifeq.
	if _, ok := vars["POSAGENT_INSTALL_BINS"]; ok {
		bad("POSAGENT_INSTALL_BINS is set: Buildroot 2025.11 refuses it (pkg-golang.mk: no longer supported); _BUILD_TARGETS names the binaries")
	}
	for _, v := range []string{"POSAGENT_VERSION", "POSAGENT_SITE", "POSAGENT_LICENSE", "POSAGENT_LICENSE_FILES", "POSAGENT_GOMOD", "POSAGENT_BUILD_TARGETS", "POSAGENT_LDFLAGS"} {
		if val(v) == "" {
			bad("%s not set", v)
		}
	}
	if val("POSAGENT_REDISTRIBUTE") != "NO" {
		bad("POSAGENT_REDISTRIBUTE = %q, want NO: our own code is not redistributed by legal-info", val("POSAGENT_REDISTRIBUTE"))
	}
	if val("POSAGENT_GOMOD") != "github.com/posagent/posagent" {
		bad("POSAGENT_GOMOD %q", val("POSAGENT_GOMOD"))
	}
	if strings.Contains(val("POSAGENT_LDFLAGS"), "-s") || strings.Contains(val("POSAGENT_LDFLAGS"), "-w") {
		bad("POSAGENT_LDFLAGS %q strips: Buildroot strips at target-finalize (BR2_STRIP_strip)", val("POSAGENT_LDFLAGS"))
	}
	for _, tgt := range strings.Fields(val("POSAGENT_BUILD_TARGETS")) {
		if _, err := os.Stat(filepath.Join(root, tgt, "main.go")); err != nil {
			bad("build target %s: %v", tgt, err)
		}
	}
	for _, d := range []string{"POSAGENT_INSTALL_INIT_SYSTEMD", "POSAGENT_INSTALL_INIT_SYSV", "POSAGENT_PERMISSIONS", "POSAGENT_INSTALL_CONFIG", "POSAGENT_USERS"} {
		if _, ok := defines[d]; !ok {
			bad("define %s missing", d)
		}
	}
	if !strings.Contains(defines["POSAGENT_PERMISSIONS"], "/var/lib/posagent d 0700 0 0") {
		bad("permissions %q", defines["POSAGENT_PERMISSIONS"])
	}
	if u := strings.Fields(defines["POSAGENT_USERS"]); len(u) < 9 || u[0] != "posagent" || u[1] != "-1" || !strings.Contains(u[7], "dialout") {
		bad("POSAGENT_USERS %q: want a makeusers line for the posagent system user in dialout,…", defines["POSAGENT_USERS"])
	}
	makeRef := regexp.MustCompile(`\$\((@D|[A-Z_]+)\)`)
	srcRef := regexp.MustCompile(`\$\(@D\)/(\S+)`)
	for name, b := range defines {
		if name == "POSAGENT_PERMISSIONS" || name == "POSAGENT_USERS" {
			continue
		}
		for _, m := range srcRef.FindAllStringSubmatch(b, -1) {
			p := filepath.Join(root, m[1])
			if strings.HasPrefix(m[1], "build/buildroot/posagent/") {
				p = filepath.Join(dir, strings.TrimPrefix(m[1], "build/buildroot/posagent/"))
			}
			if _, err := os.Stat(p); err != nil {
				bad("%s installs %s: %v", name, m[1], err)
			}
		}
		sh := strings.ReplaceAll(makeRef.ReplaceAllString(b, "X"), "\\\n", " ")
		cmd := exec.Command("bash", "-n")
		cmd.Stdin = strings.NewReader(sh)
		if out, err := cmd.CombinedOutput(); err != nil {
			bad("%s: bash -n: %v %s", name, err, out)
		}
	}

	// The .hash: Buildroot fails a download its .hash has no line for, and
	// checks each _LICENSE_FILES entry against it in legal-info.
	hash, err := os.ReadFile(filepath.Join(dir, "posagent.hash"))
	if err != nil {
		bad("posagent.hash: %v", err)
	}
	hashes := map[string]string{}
	for i, l := range strings.Split(string(hash), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 3 || f[0] != "sha256" || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(f[1]) {
			bad("posagent.hash line %d: %q is not \"sha256 <64 hex> <file>\"", i+1, l)
			continue
		}
		hashes[f[2]] = f[1]
	}
	for _, lf := range strings.Fields(val("POSAGENT_LICENSE_FILES")) {
		b, err := os.ReadFile(filepath.Join(root, lf))
		if err != nil {
			bad("license file %s: %v", lf, err)
			continue
		}
		if sum := sha256.Sum256(b); hashes[lf] != hex.EncodeToString(sum[:]) {
			bad("posagent.hash: %s has sha256 %x, the .hash says %q", lf, sum, hashes[lf])
		}
	}

	// The SysV script: executable, parses, has the actions.
	s, err := os.ReadFile(filepath.Join(dir, "S95posagentd"))
	if err != nil {
		bad("S95posagentd: %v", err)
	} else {
		if fi, _ := os.Stat(filepath.Join(dir, "S95posagentd")); fi.Mode().Perm()&0o111 == 0 {
			bad("S95posagentd is not executable")
		}
		for _, sh := range []string{"sh", "bash"} {
			if out, err := exec.Command(sh, "-n", filepath.Join(dir, "S95posagentd")).CombinedOutput(); err != nil {
				bad("S95posagentd: %s -n: %v %s", sh, err, out)
			}
		}
		for _, a := range []string{"start)", "stop", "restart)", "reload"} {
			if !strings.Contains(string(s), a) {
				bad("S95posagentd has no %s", a)
			}
		}
	}

	cfg, err := os.ReadFile(filepath.Join(dir, "Config.in"))
	if err != nil {
		return append(probs, err.Error())
	}
	for _, want := range []string{"config BR2_PACKAGE_POSAGENT\n", "\tbool \"posagent\"\n", "\tdepends on BR2_PACKAGE_HOST_GO_TARGET_ARCH_SUPPORTS\n",
		"\tselect BR2_PACKAGE_HOST_GO\n", "\thelp\n"} {
		if !strings.Contains(string(cfg), want) {
			bad("Config.in lacks %q", want)
		}
	}
	for i, l := range strings.Split(string(cfg), "\n") {
		if l != "" && !strings.HasPrefix(l, "config ") && !strings.HasPrefix(l, "comment ") && !strings.HasPrefix(l, "\t") {
			bad("Config.in line %d: %q is neither a block start nor tab-indented", i+1, l)
		}
	}
	return probs
}

// The SysV script respawns the agent, forwards reload as SIGHUP (restart
// when idle) and stops it, here with a stand-in agent and Debian's
// start-stop-daemon (BusyBox's takes the same options).
func TestPackageBuildrootSysVScript(t *testing.T) {
	// start-stop-daemon lives in sbin, which a CI PATH may lack.
	path := os.Getenv("PATH") + ":/usr/sbin:/sbin"
	t.Setenv("PATH", path)
	if _, err := exec.LookPath("start-stop-daemon"); err != nil {
		t.Fatal("start-stop-daemon not found: install dpkg (build/install-tools.sh)")
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "events")
	fake := filepath.Join(dir, "posagentd")
	os.WriteFile(fake, []byte(`#!/bin/sh
echo "start $$" >>`+log+`
trap 'echo "hup $$" >>`+log+`; exit 0' HUP
trap 'echo "term $$" >>`+log+`; exit 0' TERM
while :; do sleep 0.1; done
`), 0o755)
	script := filepath.Join(pkgRepoRoot(t), "build/buildroot/posagent/S95posagentd")
	env := []string{"DAEMON=" + fake, "CONFIG=" + filepath.Join(dir, "pos.toml"), "RUNDIR=" + dir, "RESPAWN_DELAY=0.2"}
	events := func(n int) []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(log)
			ev := strings.Fields(strings.ReplaceAll(string(b), "\n", " "))
			if len(ev)/2 >= n || time.Now().After(deadline) {
				var out []string
				for i := 0; i+1 < len(ev); i += 2 {
					out = append(out, ev[i])
				}
				return out
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	pkgRun(t, "", env, "sh", script, "start")
	if ev := events(1); len(ev) != 1 || ev[0] != "start" {
		t.Fatalf("after start: %v", ev)
	}
	pkgRun(t, "", env, "sh", script, "reload") // SIGHUP: the agent stops when idle; the loop starts it again
	if ev := events(3); strings.Join(ev, " ") != "start hup start" {
		t.Fatalf("after reload: %v, want start hup start", ev)
	}
	pkgRun(t, "", env, "sh", script, "stop")
	if ev := events(4); strings.Join(ev, " ") != "start hup start term" {
		t.Fatalf("after stop: %v, want … term", ev)
	}
	time.Sleep(500 * time.Millisecond) // no respawn after stop
	if ev := events(5); len(ev) != 4 {
		t.Fatalf("respawned after stop: %v", ev)
	}
}

// Yocto: the recipe follows go.bbclass/go-mod.bbclass conventions, names
// the unit for systemd.bbclass, its braces balance, do_install parses, and
// the files it installs exist.
func TestPackageYocto(t *testing.T) {
	root := pkgRepoRoot(t)
	bb, err := os.ReadFile(filepath.Join(root, "build/yocto/posagent_git.bb"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(bb)
	vars := map[string]string{}
	var inherits []string
	assign := regexp.MustCompile(`^(export\s+)?([A-Za-z0-9_:${}\-\[\]]+)\s*(\+=|\?=|\?\?=|=|:=|\.=|=\.)\s*"(.*)"?$`)
	var fn string
	var body strings.Builder
	funcs := map[string]string{}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case fn != "":
			if l == "}" {
				funcs[fn] = body.String()
				fn = ""
				continue
			}
			body.WriteString(l + "\n")
		case strings.HasSuffix(l, "() {"):
			fn = strings.TrimSuffix(l, "() {")
			body.Reset()
		case strings.HasPrefix(l, "inherit "):
			inherits = append(inherits, strings.Fields(l)[1:]...)
		case strings.HasPrefix(l, "require "):
			inc := strings.ReplaceAll(strings.TrimPrefix(l, "require "), "${BPN}", "posagent")
			if _, err := os.Stat(filepath.Join(root, "build/yocto", inc)); err != nil {
				t.Errorf("line %d: %v", i+1, err)
			}
		case strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "":
		default:
			for strings.HasSuffix(l, "\\") && i+1 < len(lines) {
				i++
				l = strings.TrimSuffix(l, "\\") + lines[i]
			}
			m := assign.FindStringSubmatch(l)
			if m == nil || strings.Count(l, `"`)%2 != 0 {
				t.Errorf("line %d: not a quoted assignment: %q", i+1, l)
				continue
			}
			vars[m[2]] = strings.TrimSuffix(m[4], `"`)
		}
	}
	if fn != "" {
		t.Fatalf("function %s not closed", fn)
	}
	for _, v := range []string{"SUMMARY", "LICENSE", "SRC_URI", "SRCREV", "GO_IMPORT", "GO_INSTALL", "SYSTEMD_SERVICE:${PN}", "CONFFILES:${PN}"} {
		if vars[v] == "" {
			t.Errorf("%s not set", v)
		}
	}
	if vars["GO_IMPORT"] != "github.com/posagent/posagent" || !strings.HasPrefix(vars["GO_INSTALL"], "${GO_IMPORT}/cmd/posagentd") {
		t.Errorf("GO_IMPORT %q GO_INSTALL %q", vars["GO_IMPORT"], vars["GO_INSTALL"])
	}
	if vars["SYSTEMD_SERVICE:${PN}"] != "posagentd.service" {
		t.Errorf("SYSTEMD_SERVICE %q", vars["SYSTEMD_SERVICE:${PN}"])
	}
	if !strings.Contains(vars["SRC_URI"], "destsuffix=${GO_SRCURI_DESTSUFFIX}") {
		t.Errorf("SRC_URI %q: go.bbclass wants the source under src/${GO_IMPORT}", vars["SRC_URI"])
	}
	has := func(c string) bool {
		for _, i := range inherits {
			if i == c {
				return true
			}
		}
		return false
	}
	if !(has("go-mod") || has("go")) || !has("systemd") {
		t.Errorf("inherits %v, want go-mod (or go) and systemd", inherits)
	}
	inst, ok := funcs["do_install:append"]
	if !ok {
		t.Fatalf("no do_install:append; functions %v", funcs)
	}
	srcRef := regexp.MustCompile(`\$\{S\}/src/\$\{GO_IMPORT\}/(\S+)`)
	for _, m := range srcRef.FindAllStringSubmatch(inst, -1) {
		if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
			t.Errorf("do_install installs %s: %v", m[1], err)
		}
	}
	for _, want := range []string{"${systemd_system_unitdir}/posagentd.service", "-m 0700 ${D}${localstatedir}/lib/posagent", "${sysconfdir}/posagent/posagent.toml"} {
		if !strings.Contains(inst, want) {
			t.Errorf("do_install lacks %q", want)
		}
	}
	bashCheck(t, "do_install:append", regexp.MustCompile(`\$\{[A-Za-z_]+\}`).ReplaceAllString(inst, "X"))
}

// package.sh's version scheme: a tag makes a release version; an untagged
// describe (a bare hash, maybe starting with a digit) sorts below every
// release.
func TestPackageVersionScheme(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(pkgRepoRoot(t), "build/package.sh"))
	if err != nil {
		t.Fatal(err)
	}
	fn := regexp.MustCompile(`(?ms)^pkg_version\(\) \{.*?^\}`).Find(b)
	if fn == nil {
		t.Fatal("no pkg_version in build/package.sh")
	}
	for in, want := range map[string]string{"v1.2.3": "1.2.3", "v1.2.3-4-gabc": "1.2.3+4+gabc",
		"4a7b225": "0.0.0+git4a7b225", "4a7b225-dirty": "0.0.0+git4a7b225+dirty", "abc123": "0.0.0+gitabc123"} {
		out, err := exec.Command("sh", "-c", string(fn)+"\npkg_version \"$1\"", "sh", in).Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("pkg_version %s = %q (%v), want %q", in, got, err, want)
		}
		if want != "1.2.3" && want != "1.2.3+4+gabc" {
			if err := exec.Command("dpkg", "--compare-versions", want, "lt", "1.0.0~").Run(); err != nil {
				t.Errorf("%s does not sort below the first release", want)
			}
		}
	}
}
