// Command modlicense writes the license file of a package from the Go
// modules linked into its binaries (build/package.sh):
//
//	go run ./internal/modlicense/cmd/modlicense copyright -name posagent -o copyright BIN...
//
// and the Yocto recipe's module and license includes (build/yocto/README):
//
//	go run ./internal/modlicense/cmd/modlicense yocto -o build/yocto ./cmd/posagentd
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/posagent/posagent/internal/modlicense"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: modlicense copyright|yocto …")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "copyright":
		err = copyright(os.Args[2:])
	case "yocto":
		err = yocto(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: want copyright or yocto", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "modlicense:", err)
		os.Exit(1)
	}
}

func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func copyright(args []string) error {
	fs := flag.NewFlagSet("copyright", flag.ContinueOnError)
	name := fs.String("name", "", "package name")
	out := fs.String("o", "", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *out == "" || fs.NArg() == 0 {
		return fmt.Errorf("copyright: -name, -o and at least one binary are required")
	}
	modcache, err := goEnv("GOMODCACHE")
	if err != nil {
		return err
	}
	goroot, err := goEnv("GOROOT")
	if err != nil {
		return err
	}
	var names []string
	for _, p := range fs.Args() {
		names = append(names, filepath.Base(p))
	}
	bins, err := modlicense.ReadBinaries(fs.Args(), names)
	if err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := modlicense.WriteCopyright(f, *name, "Proprietary", modcache, goroot, bins); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
