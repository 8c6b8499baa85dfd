// Package modlicense finds the licenses of the Go modules linked into a
// binary: the module list comes from the binary's build information (what
// `go version -m` prints), the texts from the module cache. The packages
// ship the result as their copyright file (build/package.sh) and the
// Yocto recipe its LICENSE and LIC_FILES_CHKSUM (build/yocto).
package modlicense

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Module is one module linked into a binary, as its build information
// names it (a replacement's path and version when there is one).
type Module struct {
	Path, Version string
}

func (m Module) String() string { return m.Path + "@" + m.Version }

// Modules returns the modules linked into the binaries, each once, sorted
// by path: the dep lines of `go version -m`, a replacement in its place.
// The main module is not among them.
func Modules(bins ...string) ([]Module, error) {
	seen := map[Module]bool{}
	for _, b := range bins {
		bi, err := buildinfo.ReadFile(b)
		if err != nil {
			return nil, fmt.Errorf("build info of %s: %w", b, err)
		}
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			seen[Module{d.Path, d.Version}] = true
		}
	}
	mods := make([]Module, 0, len(seen))
	for m := range seen {
		mods = append(mods, m)
	}
	sortModules(mods)
	return mods, nil
}

// File is one license file of a module.
type File struct {
	Name string // relative to the module's root
	Text []byte
}

// License is what a module's root says about its license.
type License struct {
	Module Module
	Dir    string // the module's directory in the module cache
	SPDX   string // SPDX expression of the main license file
	Files  []File // the license, notice and patent files at the module's root
}

// licenseName matches the files at a module's root that carry license
// terms: LICENSE, LICENCE, COPYING, NOTICE, PATENTS (any suffix), and the
// Eclipse projects' epl-v20 / edl-v10.
var licenseName = regexp.MustCompile(`(?i)^(licen[cs]e|copying|notice|patents|unlicense|epl-v\d+|edl-v\d+)([.\-_].*)?$`)

// Find reads the license files of m from the module cache modcache
// (`go env GOMODCACHE`). A module with no license file, or whose license
// is none the classifier knows, is an error: someone must read it before
// it ships.
func Find(modcache string, m Module) (License, error) {
	l := License{Module: m, Dir: filepath.Join(modcache, filepath.FromSlash(Escape(m.Path)+"@"+Escape(m.Version)))}
	ents, err := os.ReadDir(l.Dir)
	if err != nil {
		return l, fmt.Errorf("%s: not in the module cache (go mod download): %w", m, err)
	}
	for _, e := range ents {
		if e.IsDir() || !licenseName.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(l.Dir, e.Name()))
		if err != nil {
			return l, fmt.Errorf("%s: %w", m, err)
		}
		l.Files = append(l.Files, File{Name: e.Name(), Text: b})
	}
	main := l.Main()
	if main == nil {
		return l, fmt.Errorf("%s: no LICENSE or COPYING file at the module's root", m)
	}
	if l.SPDX = Classify(main.Text); l.SPDX == "" {
		return l, fmt.Errorf("%s: %s is no license this tool knows: read it and add it to modlicense.Classify", m, main.Name)
	}
	return l, nil
}

// Main returns the file that states the license (LICENSE, LICENCE or
// COPYING, in that order), or nil.
func (l License) Main() *File {
	for _, prefix := range []string{"license", "licence", "copying"} {
		for i := range l.Files {
			if strings.HasPrefix(strings.ToLower(l.Files[i].Name), prefix) {
				return &l.Files[i]
			}
		}
	}
	return nil
}

// Classify names the license of a license file's text as an SPDX
// expression, from phrases each license's text has; "" when it knows none.
func Classify(text []byte) string {
	t := strings.Join(strings.Fields(string(text)), " ")
	has := func(s ...string) bool {
		for _, x := range s {
			if !strings.Contains(t, x) {
				return false
			}
		}
		return true
	}
	switch {
	// Files that carry two licenses, first: a module under both.
	case has("Eclipse Public License - v 2.0", "Eclipse Distribution License v1.0"):
		return "EPL-2.0 OR BSD-3-Clause" // paho: EDL-1.0 is BSD-3-Clause
	case has("covered by two different licenses: MIT and Apache"):
		return "MIT AND Apache-2.0" // gopkg.in/yaml.v3
	case has("Apache License", "Version 2.0"):
		return "Apache-2.0"
	case has("Mozilla Public License Version 2.0"):
		return "MPL-2.0"
	case has("Permission is hereby granted, free of charge, to any person obtaining a copy"):
		return "MIT"
	case has("Permission to use, copy, modify, and/or distribute this software for any purpose with or without fee"),
		has("Permission to use, copy, modify, and distribute this software for any purpose with or without fee"):
		return "ISC"
	case has("Redistribution and use in source and binary forms", "Neither the name"),
		has("Redistribution and use in source and binary forms", "names of its contributors may be used to endorse"):
		return "BSD-3-Clause"
	case has("Redistribution and use in source and binary forms"):
		return "BSD-2-Clause"
	}
	return ""
}

// Escape is the module cache's case encoding of a path or version: each
// upper-case letter becomes '!' and its lower case (golang.org/x/mod's
// module.EscapePath, for the valid paths a build info holds).
func Escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
