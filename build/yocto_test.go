package build_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/posagent/posagent/internal/modlicense"
)

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// The recipe's includes are what go.mod and the module cache say now: a
// go.mod change without `modlicense yocto` fails here.
func TestYoctoIncludesUpToDate(t *testing.T) {
	root := repoRoot(t)
	y, err := modlicense.GenerateYocto(root, goEnv(t, "GOMODCACHE"), "./cmd/posagentd")
	if err != nil {
		t.Fatal(err)
	}
	var mods, lics bytes.Buffer
	y.WriteGoMods(&mods)
	y.WriteLicenses(&lics)
	for name, want := range map[string][]byte{"posagent-go-mods.inc": mods.Bytes(), "posagent-licenses.inc": lics.Bytes()} {
		got, err := os.ReadFile(filepath.Join(root, "build/yocto", name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("build/yocto/%s is out of date (%v): run go run ./internal/modlicense/cmd/modlicense yocto -o build/yocto ./cmd/posagentd", name, err)
		}
	}
}

// Offline from a mirror: a module cache made only of the files the
// gomod:// entries name (taken from the local module cache, standing in
// for the mirror, each checked against its sha256sum, laid out as the
// gomod fetcher unpacks them) builds posagentd with the proxy off.
func TestYoctoGoModsBuildOffline(t *testing.T) {
	root := repoRoot(t)
	inc, err := os.ReadFile(filepath.Join(root, "build/yocto/posagent-go-mods.inc"))
	if err != nil {
		t.Fatal(err)
	}
	mirror := goEnv(t, "GOMODCACHE")
	cache := filepath.Join(t.TempDir(), "pkg", "mod")
	entry := regexp.MustCompile(`gomod://([^;]+);version=([^;]+)(;mod=1)?;sha256sum=([0-9a-f]{64})`)
	n := 0
	for _, m := range entry.FindAllStringSubmatch(string(inc), -1) {
		n++
		g := modlicense.GoMod{Module: modlicense.Module{Path: m[1], Version: m[2]}, ModOnly: m[3] != "", SHA256: m[4]}
		b, err := os.ReadFile(filepath.Join(mirror, g.CacheFile()))
		if err != nil {
			t.Fatalf("%s: not in the mirror: %v", g.URI(), err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != g.SHA256 {
			t.Fatalf("%s: sha256 %x", g.URI(), sum)
		}
		dst := filepath.Join(cache, g.CacheFile())
		os.MkdirAll(filepath.Dir(dst), 0o755)
		os.WriteFile(dst, b, 0o644)
		if !g.ModOnly {
			// The fetcher unpacks a module's go.mod beside its zip.
			mod, err := os.ReadFile(strings.TrimSuffix(filepath.Join(mirror, g.CacheFile()), ".zip") + ".mod")
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(strings.TrimSuffix(dst, ".zip")+".mod", mod, 0o644)
		}
	}
	if n == 0 {
		t.Fatal("no gomod:// entries")
	}
	t.Cleanup(func() { exec.Command("chmod", "-R", "u+w", cache).Run() })
	out := filepath.Join(t.TempDir(), "posagentd")
	msg, err := goBuild(t, root, []string{"GOMODCACHE=" + cache, "GOPROXY=off", "GOFLAGS=-mod=mod -modcacherw", "CGO_ENABLED=0", "GOARCH=arm64", "GOTOOLCHAIN=local"},
		"build", "-trimpath", "-o", out, "./cmd/posagentd")
	if err != nil {
		t.Fatalf("offline build from the gomod:// entries: %v\n%s", err, msg)
	}
}

// The recipe: pinned, the go.bbclass defaults it relies on left alone,
// the license checksum right.
func TestYoctoRecipe(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "build/yocto/posagent_git.bb"))
	if err != nil {
		t.Fatal(err)
	}
	bb := string(b)
	code := regexp.MustCompile(`(?m)^[^#\n].*$`).FindAllString(bb, -1)
	body := strings.Join(code, "\n")
	if !regexp.MustCompile(`(?m)^SRCREV = "[0-9a-f]{40}"$`).MatchString(body) {
		t.Error("SRCREV is not pinned to a commit")
	}
	for _, bad := range []string{"AUTOREV", "-s -w", "CGO_ENABLED", "do_compile[network]", "GOBUILDFLAGS:remove", "buildmode"} {
		if strings.Contains(body, bad) {
			t.Errorf("recipe sets %q", bad)
		}
	}
	for _, want := range []string{`GO_DYNLINK:arm = ""`, `GO_DYNLINK:aarch64 = ""`, `GO_LINKMODE = "-linkmode=external"`, "require ${BPN}-go-mods.inc", "require ${BPN}-licenses.inc",
		"inherit go-mod systemd useradd", `LICENSE = "Proprietary"`, "USERADD_PARAM:${PN} = \"--system"} {
		if !strings.Contains(body, want) {
			t.Errorf("recipe lacks %q", want)
		}
	}
	lic, _ := os.ReadFile(filepath.Join(root, "LICENSE"))
	m := regexp.MustCompile(`file://src/\$\{GO_IMPORT\}/LICENSE;md5=([0-9a-f]{32})`).FindStringSubmatch(body)
	if sum := md5hex(lic); m == nil || m[1] != sum {
		t.Errorf("LIC_FILES_CHKSUM %v, LICENSE md5 %s", m, sum)
	}
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}
