package modlicense

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Binary is one file a package installs and the modules linked into it.
type Binary struct {
	Name    string // as installed, e.g. posagentd
	Path    string // the built file
	Modules []Module
	GoVer   string // the toolchain that built it (go1.26.8)
}

// ReadBinaries reads the build information of each path; names are the
// installed names, in the same order.
func ReadBinaries(paths, names []string) ([]Binary, error) {
	var bins []Binary
	for i, p := range paths {
		mods, err := Modules(p)
		if err != nil {
			return nil, err
		}
		bi, err := buildinfo.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("build info of %s: %w", p, err)
		}
		bins = append(bins, Binary{Name: names[i], Path: p, Modules: mods, GoVer: bi.GoVersion})
	}
	return bins, nil
}

// WriteCopyright writes a machine-readable debian/copyright (DEP-5) for a
// package: the project's own license, then one paragraph per Go module
// linked into its binaries, with the module's license files in full, and
// the Go toolchain's (runtime and standard library) from goroot.
func WriteCopyright(w io.Writer, pkg, ownLicense, modcache, goroot string, bins []Binary) error {
	bw := bufio.NewWriter(w)
	var names []string
	linkedBy := map[Module][]string{}
	var order []Module
	for _, b := range bins {
		names = append(names, "/usr/bin/"+b.Name)
		for _, m := range b.Modules {
			if linkedBy[m] == nil {
				order = append(order, m)
			}
			linkedBy[m] = append(linkedBy[m], b.Name)
		}
	}
	sortModules(order)
	fmt.Fprintf(bw, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")
	fmt.Fprintf(bw, "Upstream-Name: %s\n", pkg)
	fmt.Fprintf(bw, "Source: https://github.com/posagent/posagent\n")
	fmt.Fprintf(bw, "Comment: Generated from the build information of %s\n", strings.Join(names, ", "))
	fmt.Fprintf(bw, " (what `go version -m` prints) and the Go module cache: one paragraph per\n")
	fmt.Fprintf(bw, " linked Go module, with its license files in full.\n\n")
	fmt.Fprintf(bw, "Files: *\nCopyright: posagent\nLicense: %s\n", ownLicense)
	if err := writeText(bw, []byte(own)); err != nil {
		return err
	}
	for _, m := range order {
		l, err := Find(modcache, m)
		if err != nil {
			return err
		}
		fmt.Fprintf(bw, "\nFiles: vendor/%s/*\n", m.Path)
		fmt.Fprintf(bw, "Comment: Go module %s %s, linked into %s\n", m.Path, m.Version, strings.Join(linkedBy[m], ", "))
		fmt.Fprintf(bw, "License: %s\n", l.SPDX)
		if err := writeFiles(bw, l.Files); err != nil {
			return err
		}
	}
	if len(bins) > 0 {
		// The Go runtime and standard library are in every binary.
		var files []File
		for _, n := range []string{"LICENSE", "PATENTS"} {
			b, err := os.ReadFile(filepath.Join(goroot, n))
			if err != nil {
				return fmt.Errorf("the Go toolchain's license: %w", err)
			}
			files = append(files, File{Name: n, Text: b})
		}
		fmt.Fprintf(bw, "\nFiles: go/*\n")
		fmt.Fprintf(bw, "Comment: Go runtime and standard library, %s, linked into %s\n", bins[0].GoVer, strings.Join(binNames(bins), ", "))
		fmt.Fprintf(bw, "License: %s\n", Classify(files[0].Text))
		if err := writeFiles(bw, files); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// own is the project's own license statement (LICENSE at the repository
// root says the same).
const own = "All rights reserved. Distributed to the vendor's terminals only;\nno redistribution."

func binNames(bins []Binary) []string {
	var n []string
	for _, b := range bins {
		n = append(n, b.Name)
	}
	return n
}

// writeFiles writes license files as the continuation lines of a License
// field: each file headed by its name, blank lines as " .".
func writeFiles(w *bufio.Writer, files []File) error {
	for i, f := range files {
		if i > 0 {
			fmt.Fprintf(w, " .\n")
		}
		fmt.Fprintf(w, " ---- %s ----\n", f.Name)
		if err := writeText(w, f.Text); err != nil {
			return err
		}
	}
	return nil
}

func writeText(w *bufio.Writer, text []byte) error {
	for _, line := range strings.Split(strings.TrimRight(strings.ReplaceAll(string(text), "\r\n", "\n"), "\n"), "\n") {
		line = strings.TrimRight(line, " \t")
		if line == "" {
			line = "."
		}
		if _, err := fmt.Fprintf(w, " %s\n", line); err != nil {
			return err
		}
	}
	return nil
}

func sortModules(mods []Module) {
	sort.Slice(mods, func(i, j int) bool {
		if mods[i].Path != mods[j].Path {
			return mods[i].Path < mods[j].Path
		}
		return mods[i].Version < mods[j].Version
	})
}
