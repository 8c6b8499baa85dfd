package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/posagent/posagent/internal/modlicense"
)

// yocto writes <bpn>-go-mods.inc and <bpn>-licenses.inc beside the recipe
// for the packages it builds (GO_INSTALL), from the module in the current
// directory.
func yocto(args []string) error {
	fs := flag.NewFlagSet("yocto", flag.ContinueOnError)
	out := fs.String("o", "build/yocto", "directory of the recipe")
	bpn := fs.String("bpn", "posagent", "the recipe's BPN")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("yocto: name the packages the recipe builds (./cmd/posagentd)")
	}
	modcache, err := goEnv("GOMODCACHE")
	if err != nil {
		return err
	}
	y, err := modlicense.GenerateYocto(".", modcache, fs.Args()...)
	if err != nil {
		return err
	}
	var mods, lics bytes.Buffer
	if err := y.WriteGoMods(&mods); err != nil {
		return err
	}
	if err := y.WriteLicenses(&lics); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, *bpn+"-go-mods.inc"), mods.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*out, *bpn+"-licenses.inc"), lics.Bytes(), 0o644)
}
