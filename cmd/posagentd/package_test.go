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
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
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

// buildPackages runs build/package.sh for amd64 into out and returns the
// .deb and .ipk paths.
func buildPackages(t *testing.T, out, pkgVersion string) (deb, ipk string) {
	t.Helper()
	root := pkgRepoRoot(t)
	pkgRun(t, root, []string{"ARCHES=amd64", "FORMATS=deb ipk", "OUT=" + out, "PKG_VERSION=" + pkgVersion, "VERSION=v" + pkgVersion},
		"sh", "build/package.sh")
	deb = filepath.Join(out, "posagent_"+pkgVersion+"_amd64.deb")
	ipk = filepath.Join(out, "posagent_"+pkgVersion+"_x86_64.ipk")
	for _, p := range []string{deb, ipk} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("package not built: %v", err)
		}
	}
	return deb, ipk
}

// wantFiles is what every package holds: path → ls-style mode.
var wantFiles = map[string]string{
	"./usr/bin/posagentd":                        "-rwxr-xr-x",
	"./usr/bin/hqctl":                            "-rwxr-xr-x",
	"./usr/bin/acquirer-sim":                     "-rwxr-xr-x",
	"./usr/lib/systemd/system/posagentd.service": "-rw-r--r--",
	"./etc/posagent/posagent.toml":               "-rw-r--r--",
	"./var/lib/posagent/":                        "drwx------",
}

const conffile = "/etc/posagent/posagent.toml"

func TestPackageDebInstallUpgradeRemove(t *testing.T) {
	work := t.TempDir()
	deb1, ipk1 := buildPackages(t, filepath.Join(work, "v1"), "1.0.0")
	deb2, _ := buildPackages(t, filepath.Join(work, "v2"), "1.1.0")

	// Control data.
	info := pkgRun(t, "", nil, "dpkg-deb", "-I", deb1)
	for _, want := range []string{"Package: posagent", "Version: 1.0.0", "Architecture: amd64", "postinst", "prerm", "postrm", "conffiles"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	if cf := pkgRun(t, "", nil, "dpkg-deb", "-f", deb1, "Architecture"); strings.TrimSpace(cf) != "amd64" {
		t.Errorf("architecture %q", cf)
	}
	ctl := filepath.Join(work, "ctl")
	pkgRun(t, "", nil, "dpkg-deb", "-e", deb1, ctl)
	if b, err := os.ReadFile(filepath.Join(ctl, "conffiles")); err != nil || strings.TrimSpace(string(b)) != conffile {
		t.Errorf("conffiles %q %v, want %s", b, err, conffile)
	}

	// Contents and modes.
	got := map[string]string{}
	for _, line := range strings.Split(pkgRun(t, "", nil, "dpkg-deb", "-c", deb1), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 {
			got[f[len(f)-1]] = f[0]
			if f[1] != "root/root" {
				t.Errorf("%s owned by %s", f[len(f)-1], f[1])
			}
		}
	}
	for p, mode := range wantFiles {
		if got[p] != mode {
			t.Errorf("deb: %s mode %q, want %q", p, got[p], mode)
		}
	}

	checkIPK(t, ipk1)

	// Install into a scratch root, as dpkg does for an image build.
	sr := filepath.Join(work, "root")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"} {
		if err := os.MkdirAll(filepath.Join(sr, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sr, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dpkg := func(args ...string) string {
		t.Helper()
		return pkgRun(t, "", nil, "dpkg", append([]string{"--root=" + sr, "--force-not-root", "--force-script-chrootless", "--log=/dev/null"}, args...)...)
	}
	dpkg("-i", deb1)
	dataDir := filepath.Join(sr, "var/lib/posagent")
	if fi, err := os.Stat(dataDir); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Fatalf("data dir after install: %v %v", fi, err)
	}
	wants := filepath.Join(sr, "etc/systemd/system/multi-user.target.wants/posagentd.service")
	if _, err := os.Lstat(wants); err != nil {
		t.Errorf("postinst did not enable the unit offline: %v", err)
	}
	verifyUnit(t, sr)

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

	// Upgrade: identity and edited config survive, unit stays enabled.
	dpkg("-i", deb2)
	if v := pkgRun(t, "", nil, "dpkg-query", "--admindir="+filepath.Join(sr, "var/lib/dpkg"), "-W", "-f=${Version}", "posagent"); v != "1.1.0" {
		t.Errorf("installed version %q after upgrade, want 1.1.0", v)
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
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "--no-devices", "--config", cfgPath}, &out, &errb); code != 0 || !strings.Contains(out.String(), `log_level = "debug"`) {
		t.Errorf("check-config of the kept config: exit %d %s %s", code, out.String(), errb.String())
	}

	// Purge: binaries, unit and config go; the identity never does.
	dpkg("--purge", "posagent")
	for _, gone := range []string{"usr/bin/posagentd", "usr/lib/systemd/system/posagentd.service", "etc/posagent/posagent.toml"} {
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
}

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
func checkIPK(t *testing.T, path string) {
	t.Helper()
	outer := readTarGz(t, path)
	ctl := readTarGzBytes(t, outer["./control.tar.gz"].data)
	data := readTarGzBytes(t, outer["./data.tar.gz"].data)
	if c := string(ctl["./control"].data); !strings.Contains(c, "Architecture: x86_64") || !strings.Contains(c, "Package: posagent") {
		t.Errorf("ipk control:\n%s", c)
	}
	if c := strings.TrimSpace(string(ctl["./conffiles"].data)); c != conffile {
		t.Errorf("ipk conffiles %q", c)
	}
	for _, s := range []string{"./postinst", "./prerm", "./postrm"} {
		if e, ok := ctl[s]; !ok || e.mode&0o111 == 0 {
			t.Errorf("ipk script %s missing or not executable", s)
		}
	}
	for p, mode := range wantFiles {
		e, ok := data[p]
		if !ok {
			e, ok = data[strings.TrimSuffix(p, "/")]
		}
		if !ok || os.FileMode(e.mode).Perm().String()[1:] != mode[1:] {
			t.Errorf("ipk: %s mode %o (present %v), want %s", p, e.mode, ok, mode)
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

// verifyUnit runs systemd-analyze verify on the unit as installed in the
// scratch root (so ExecStart's binary exists). Unknown keys and bad values
// are only warnings to systemd-analyze: any output fails the test.
func verifyUnit(t *testing.T, sr string) {
	t.Helper()
	if out, err := verifyOutput(sr); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// A unit with a typo must not pass verifyUnit's check: systemd-analyze only
// warns, so the test relies on "no output".
func TestPackageUnitVerifyCatchesTypos(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join(pkgRepoRoot(t), "build/posagentd.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Type=notify", "WatchdogSec=", "Restart=always", "ProtectSystem=strict",
		"ReadWritePaths=/var/lib/posagent", "NoNewPrivileges=yes", "CapabilityBoundingSet=CAP_SYS_BOOT",
		"PrivateTmp=yes", "RestartForceExitStatus=3", "SuccessExitStatus=3", "NotifyAccess=main",
		"ExecStart=/usr/bin/posagentd --config /etc/posagent/posagent.toml"} {
		if !strings.Contains(string(unit), "\n"+k) {
			t.Errorf("unit lacks %q", k)
		}
	}
	sr := t.TempDir()
	units := filepath.Join(sr, "usr/lib/systemd/system")
	os.MkdirAll(units, 0o755)
	os.MkdirAll(filepath.Join(sr, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(sr, "usr/bin/posagentd"), []byte("#!/bin/sh\n"), 0o755)
	for _, tc := range []struct {
		name, unit string
		ok         bool
	}{
		{"as shipped", string(unit), true},
		{"typo key", strings.Replace(string(unit), "\nWatchdogSec=", "\nWatchdogSex=", 1), false},
		{"bad value", strings.Replace(string(unit), "\nType=notify\n", "\nType=notifyy\n", 1), false},
	} {
		os.WriteFile(filepath.Join(units, "posagentd.service"), []byte(tc.unit), 0o644)
		out, err := verifyOutput(sr)
		if ok := err == nil && len(bytes.TrimSpace(out)) == 0; ok != tc.ok {
			t.Errorf("%s: verify ok=%v want %v: %v %s", tc.name, ok, tc.ok, err, out)
		}
	}
}

// verifyOutput runs systemd-analyze verify --root=sr on posagentd.service,
// with the host's targets copied beside it for those the unit names (and
// removed again, so a later dpkg --purge finds only its own files).
func verifyOutput(sr string) ([]byte, error) {
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
	return exec.Command("systemd-analyze", "verify", "--root="+sr, "posagentd.service").CombinedOutput()
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
	scripts := []string{"build/package/scripts/postinst", "build/package/scripts/prerm", "build/package/scripts/postrm", "build/package.sh"}
	rmData := regexp.MustCompile(`(?m)^[^#]*\brm\b[^\n]*(posagent|datadir|\$root)`)
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
		if strings.HasPrefix(s, "build/package/scripts/") {
			if m := rmData.Find(b); m != nil {
				t.Errorf("%s removes something: %q", s, m)
			}
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

// Buildroot: the .mk sets what the golang-package infrastructure and a
// package review need, its blocks balance, its shell parses, and every
// file it installs from the source tree exists.
func TestPackageBuildroot(t *testing.T) {
	root := pkgRepoRoot(t)
	mk, err := os.ReadFile(filepath.Join(root, "build/buildroot/posagent/posagent.mk"))
	if err != nil {
		t.Fatal(err)
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
				t.Fatalf("line %d: define inside define %s", i+1, cur)
			}
			cur = strings.TrimSpace(strings.TrimPrefix(l, "define "))
			body.Reset()
		case l == "endef":
			if cur == "" {
				t.Fatalf("line %d: endef without define", i+1)
			}
			defines[cur] = body.String()
			cur = ""
		case cur != "":
			if !strings.HasPrefix(l, "\t") && strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "/") {
				t.Errorf("line %d: recipe line in %s not tab-indented", i+1, cur)
			}
			body.WriteString(l + "\n")
		case strings.HasPrefix(l, "ifeq ") || strings.HasPrefix(l, "ifneq ") || strings.HasPrefix(l, "ifdef "):
			depth++
		case l == "endif":
			depth--
		case strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" || l == "else":
		case strings.HasPrefix(l, "$(eval "):
			if l != "$(eval $(golang-package))" {
				t.Errorf("line %d: %q", i+1, l)
			}
			if strings.TrimSpace(strings.Join(lines[i+1:], "")) != "" {
				t.Errorf("line %d: $(eval $(golang-package)) must be last", i+1)
			}
		default:
			m := assign.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("line %d: not an assignment: %q", i+1, l)
				continue
			}
			if !strings.HasPrefix(m[1], "POSAGENT_") {
				t.Errorf("line %d: %s is not in the package's namespace", i+1, m[1])
			}
			vars[m[1]] += " " + m[3]
		}
	}
	if cur != "" || depth != 0 {
		t.Fatalf("unbalanced: define %q open, if depth %d", cur, depth)
	}
	for _, v := range []string{"POSAGENT_VERSION", "POSAGENT_SITE", "POSAGENT_LICENSE", "POSAGENT_GOMOD", "POSAGENT_BUILD_TARGETS", "POSAGENT_INSTALL_BINS", "POSAGENT_LDFLAGS"} {
		if strings.TrimSpace(vars[v]) == "" {
			t.Errorf("%s not set", v)
		}
	}
	if strings.TrimSpace(vars["POSAGENT_GOMOD"]) != "github.com/posagent/posagent" {
		t.Errorf("POSAGENT_GOMOD %q", vars["POSAGENT_GOMOD"])
	}
	for _, tgt := range strings.Fields(vars["POSAGENT_BUILD_TARGETS"]) {
		if _, err := os.Stat(filepath.Join(root, tgt, "main.go")); err != nil {
			t.Errorf("build target %s: %v", tgt, err)
		}
	}
	for _, d := range []string{"POSAGENT_INSTALL_INIT_SYSTEMD", "POSAGENT_PERMISSIONS", "POSAGENT_INSTALL_CONFIG"} {
		if _, ok := defines[d]; !ok {
			t.Errorf("define %s missing", d)
		}
	}
	if !strings.Contains(defines["POSAGENT_PERMISSIONS"], "/var/lib/posagent d 0700 0 0") {
		t.Errorf("permissions %q", defines["POSAGENT_PERMISSIONS"])
	}
	makeRef := regexp.MustCompile(`\$\((@D|[A-Z_]+)\)`)
	srcRef := regexp.MustCompile(`\$\(@D\)/(\S+)`)
	for name, b := range defines {
		if name == "POSAGENT_PERMISSIONS" {
			continue
		}
		for _, m := range srcRef.FindAllStringSubmatch(b, -1) {
			if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
				t.Errorf("%s installs %s: %v", name, m[1], err)
			}
		}
		sh := strings.ReplaceAll(makeRef.ReplaceAllString(b, "X"), "\\\n", " ")
		bashCheck(t, name, sh)
	}

	cfg, err := os.ReadFile(filepath.Join(root, "build/buildroot/posagent/Config.in"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"config BR2_PACKAGE_POSAGENT\n", "\tbool \"posagent\"\n", "\tdepends on BR2_PACKAGE_HOST_GO_TARGET_ARCH_SUPPORTS\n", "\thelp\n"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("Config.in lacks %q", want)
		}
	}
	for i, l := range strings.Split(string(cfg), "\n") {
		if l != "" && !strings.HasPrefix(l, "config ") && !strings.HasPrefix(l, "comment ") && !strings.HasPrefix(l, "\t") {
			t.Errorf("Config.in line %d: %q is neither a block start nor tab-indented", i+1, l)
		}
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
