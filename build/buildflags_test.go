// Package build_test reproduces, for ARMv7 and ARM64, the Go builds that
// OE-core's go.bbclass and Buildroot's pkg-golang.mk run for the recipes
// in this directory, and checks the ELF files they make. The flags, with
// the upstream lines they come from, are in buildflags.md.
package build_test

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// target is one ARM target and the cross gcc standing in for the image's.
type target struct {
	name, goarch, goarm, cc, loader string
	class                           elf.Class
	machine                         elf.Machine
	hostCCArch                      string // OE's HOST_CC_ARCH (tune flags)
}

var targets = []target{
	{"armv7", "arm", "7", "arm-linux-gnueabihf-gcc", "/lib/ld-linux-armhf.so.3", elf.ELFCLASS32, elf.EM_ARM,
		"-march=armv7-a -mfpu=vfpv3-d16 -mfloat-abi=hard"},
	{"arm64", "arm64", "", "aarch64-linux-gnu-gcc", "/lib/ld-linux-aarch64.so.1", elf.ELFCLASS64, elf.EM_AARCH64, ""},
}

func needCC(t *testing.T, cc string) {
	t.Helper()
	if _, err := exec.LookPath(cc); err != nil {
		t.Fatalf("%s not found: install it (build/install-tools.sh)", cc)
	}
}

// goBuild runs go with env added to a clean Go environment.
func goBuild(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOOS=linux", "GOARM=", "GO386=", "CGO_CFLAGS=", "CGO_LDFLAGS=", "CC=")
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// elfFacts is what the test checks of a binary.
type elfFacts struct {
	class    elf.Class
	machine  elf.Machine
	pie      bool   // ET_DYN
	interp   string // PT_INTERP, "" for a static binary
	relro    bool   // PT_GNU_RELRO
	bindNow  bool   // DF_BIND_NOW or DF_1_NOW
	symtab   bool   // not stripped: OE splits these into -dbg
	debug    bool   // DWARF present
	runpath  []string
	settings map[string]string // the build settings go version -m shows
}

func readELF(t *testing.T, path string) elfFacts {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x := elfFacts{class: f.Class, machine: f.Machine, pie: f.Type == elf.ET_DYN, settings: map[string]string{}}
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			b, _ := io.ReadAll(p.Open())
			x.interp = strings.TrimRight(string(b), "\x00")
		case elf.PT_GNU_RELRO:
			x.relro = true
		}
	}
	x.symtab = f.Section(".symtab") != nil
	x.debug = f.Section(".debug_info") != nil || f.Section(".zdebug_info") != nil
	if x.interp != "" {
		flags, _ := f.DynValue(elf.DT_FLAGS)
		flags1, _ := f.DynValue(elf.DT_FLAGS_1)
		for _, v := range flags {
			x.bindNow = x.bindNow || v&uint64(elf.DF_BIND_NOW) != 0
		}
		for _, v := range flags1 {
			x.bindNow = x.bindNow || v&uint64(elf.DF_1_NOW) != 0
		}
		rp, _ := f.DynString(elf.DT_RUNPATH)
		r, _ := f.DynString(elf.DT_RPATH)
		x.runpath = append(rp, r...)
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range bi.Settings {
		x.settings[s.Key] = s.Value
	}
	return x
}

func (x elfFacts) check(t *testing.T, tg target, pie bool, interp string) {
	t.Helper()
	if x.class != tg.class || x.machine != tg.machine {
		t.Errorf("%s: ELF %v %v, want %v %v", tg.name, x.class, x.machine, tg.class, tg.machine)
	}
	if x.pie != pie {
		t.Errorf("%s: PIE %v, want %v", tg.name, x.pie, pie)
	}
	if x.interp != interp {
		t.Errorf("%s: interpreter %q, want %q", tg.name, x.interp, interp)
	}
	if !x.symtab || !x.debug {
		t.Errorf("%s: stripped (symtab %v, DWARF %v): the build system strips and splits the debug info itself", tg.name, x.symtab, x.debug)
	}
	if tg.goarm != "" && x.settings["GOARM"] != tg.goarm {
		t.Errorf("%s: GOARM %q, want %q", tg.name, x.settings["GOARM"], tg.goarm)
	}
	if x.settings["-trimpath"] != "true" {
		t.Errorf("%s: not built with -trimpath: %v", tg.name, x.settings)
	}
}

// The recipe's build as go.bbclass runs it: CGO_ENABLED=1 (the class's
// default), -buildmode=pie, external linking (GO_LINKMODE) with OE's
// LDFLAGS, the loader named, no -linkshared (GO_DYNLINK cleared) and no
// -s -w.
func TestYoctoBuildFlags(t *testing.T) {
	root := repoRoot(t)
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			needCC(t, tg.cc)
			out := filepath.Join(t.TempDir(), "posagentd")
			extld := strings.TrimSpace(tg.hostCCArch + " -Wl,-O1 -Wl,--hash-style=gnu -Wl,--as-needed -Wl,-z,relro,-z,now")
			ldflags := fmt.Sprintf("-ldflags= -linkmode=external -I %s -X main.version=1.0.0+git -extldflags '%s'", tg.loader, extld)
			env := []string{"CGO_ENABLED=1", "GOARCH=" + tg.goarch, "GOARM=" + tg.goarm, "CC=" + tg.cc,
				"CGO_CFLAGS=-O2 -g -pipe", "CGO_LDFLAGS=-Wl,-O1 -Wl,--hash-style=gnu -Wl,--as-needed -Wl,-z,relro,-z,now",
				"GOPROXY=off", "GOTOOLCHAIN=local"}
			args := []string{"build", "-p", "2", "-v", ldflags, "-trimpath", "-modcacherw", "-buildmode=pie", "-o", out, "./cmd/posagentd"}
			if msg, err := goBuild(t, root, env, args...); err != nil {
				t.Fatalf("go.bbclass build: %v\n%s", err, msg)
			}
			x := readELF(t, out)
			logSize(t, out, tg.cc)
			x.check(t, tg, true, tg.loader)
			if !x.relro || !x.bindNow {
				t.Errorf("relro %v, bind-now %v: OE's SECURITY_LDFLAGS did not reach the linker", x.relro, x.bindNow)
			}
			if len(x.runpath) != 0 {
				t.Errorf("RUNPATH %v: GO_DYNLINK's rpath to libstd.so is still there", x.runpath)
			}
			if x.settings["CGO_ENABLED"] != "1" || x.settings["-buildmode"] != "pie" {
				t.Errorf("settings %v", x.settings)
			}

			// Why the recipe keeps cgo: the same flags without it.
			if tg.goarch == "arm" {
				env[0] = "CGO_ENABLED=0"
				msg, err := goBuild(t, root, env, args...)
				if err == nil || !strings.Contains(msg, "-buildmode=pie requires external (cgo) linking") {
					t.Errorf("CGO_ENABLED=0 with -buildmode=pie on ARMv7: %v %s", err, msg)
				}
			}
		})
	}
}

// vendoredCopy copies the tracked files of the tree and vendors the
// modules into it, as Buildroot's go post-process does to the download.
func vendoredCopy(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	files, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "posagent-1.0.0")
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue // deleted in the work tree
		}
		os.MkdirAll(filepath.Join(dst, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if msg, err := goBuild(t, dst, []string{"GOPROXY=off", "GOFLAGS=-mod=mod"}, "mod", "vendor", "-modcacherw"); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, msg)
	}
	return dst
}

// The package's build as pkg-golang.mk runs it, from a vendored tree:
// with cgo linking (a glibc toolchain with threads), and static
// (BR2_STATIC_LIBS).
func TestBuildrootBuildFlags(t *testing.T) {
	src := vendoredCopy(t)
	for _, tg := range targets {
		for _, static := range []bool{false, true} {
			name := tg.name
			if static {
				name += "-static"
			}
			t.Run(name, func(t *testing.T) {
				needCC(t, tg.cc)
				var extld []string
				cgo, tags := "1", ""
				if static {
					cgo, tags = "0", "osusergo netgo"
					extld = append(extld, "-static")
				}
				if tg.goarch == "arm64" {
					extld = append(extld, "-fuse-ld=bfd")
				}
				ldflags := "-X main.version=1.0.0"
				if len(extld) > 0 {
					ldflags += " -extldflags '" + strings.Join(extld, " ") + "'"
				}
				out := filepath.Join(src, "bin", "posagentd-"+name)
				env := []string{"GO111MODULE=on", "GOFLAGS=-mod=vendor", "GOPROXY=off", "GOTOOLCHAIN=local",
					"CGO_ENABLED=" + cgo, "GOARCH=" + tg.goarch, "GOARM=" + tg.goarm, "CC=" + tg.cc,
					"CGO_CFLAGS=-D_LARGEFILE_SOURCE -D_LARGEFILE64_SOURCE -D_FILE_OFFSET_BITS=64 -O2 -g0"}
				if msg, err := goBuild(t, src, env, "build", "-v", "-ldflags", ldflags, "-modcacherw", "-tags", tags,
					"-trimpath", "-p", "2", "-buildvcs=false", "-o", out, "github.com/posagent/posagent/cmd/posagentd"); err != nil {
					t.Fatalf("pkg-golang.mk build: %v\n%s", err, msg)
				}
				x := readELF(t, out)
				logSize(t, out, tg.cc)
				interp := tg.loader
				if static {
					interp = ""
				}
				x.check(t, tg, false, interp)
				if x.settings["CGO_ENABLED"] != cgo || x.settings["-buildmode"] != "exe" {
					t.Errorf("settings %v", x.settings)
				}
			})
		}
	}
}

// logSize logs the binary's size as built and as the build system's strip
// leaves it (the README's figures come from `go test -v ./build`).
func logSize(t *testing.T, path, cc string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	stripped := path + ".stripped"
	strip := strings.TrimSuffix(cc, "gcc") + "strip"
	if out, err := exec.Command(strip, "-o", stripped, path).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", strip, err, out)
	}
	sf, _ := os.Stat(stripped)
	t.Logf("%s: %.1f MB as built, %.1f MB stripped", filepath.Base(path), float64(fi.Size())/1e6, float64(sf.Size())/1e6)
}
