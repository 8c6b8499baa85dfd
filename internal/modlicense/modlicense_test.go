package modlicense

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"Permission is hereby granted, free of charge, to any person obtaining a copy\nof this software", "MIT"},
		{"                                 Apache License\n                           Version 2.0, January 2004", "Apache-2.0"},
		{"Redistribution and use in source and binary forms, with or without\nmodification, are permitted ... Neither the name of Google Inc.", "BSD-3-Clause"},
		{"Redistribution and use in source and binary forms, with or without modification, are permitted provided", "BSD-2-Clause"},
		{"Permission to use, copy, modify, and/or distribute this software for any purpose with or without fee is hereby granted", "ISC"},
		{"Eclipse Public License - v 2.0 (EPL-2.0)\n... and Eclipse Distribution License v1.0 which accompany", "EPL-2.0 OR BSD-3-Clause"},
		{"This project is covered by two different licenses: MIT and Apache.", "MIT AND Apache-2.0"},
		{"All rights reserved. You may not use this.", ""},
	} {
		if got := Classify([]byte(tc.text)); got != tc.want {
			t.Errorf("Classify(%.40q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestEscape(t *testing.T) {
	if got := Escape("github.com/BurntSushi/toml"); got != "github.com/!burnt!sushi/toml" {
		t.Errorf("Escape: %q", got)
	}
}

// A module without a known license stops the package build: someone must
// read it first.
func TestFindRefusesUnknown(t *testing.T) {
	cache := t.TempDir()
	dir := filepath.Join(cache, "example.com", "!odd@v1.0.0")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "LICENSE"), []byte("Do what you like, but pay me."), 0o644)
	if _, err := Find(cache, Module{"example.com/Odd", "v1.0.0"}); err == nil || !strings.Contains(err.Error(), "Classify") {
		t.Errorf("unknown license: %v", err)
	}
	os.Remove(filepath.Join(dir, "LICENSE"))
	if _, err := Find(cache, Module{"example.com/Odd", "v1.0.0"}); err == nil {
		t.Error("no license file: no error")
	}
}

// The copyright of a real binary names every module of its build info,
// with the license text, and the Go toolchain's license.
func TestWriteCopyright(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "modlicense")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/modlicense").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	goenv := func(k string) string {
		out, _ := exec.Command("go", "env", k).Output()
		return strings.TrimSpace(string(out))
	}
	bins, err := ReadBinaries([]string{bin}, []string{"modlicense"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteCopyright(&b, "test", "Proprietary", goenv("GOMODCACHE"), goenv("GOROOT"), bins); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, m := range bins[0].Modules {
		if !strings.Contains(text, "Comment: Go module "+m.Path+" "+m.Version+", linked into modlicense") {
			t.Errorf("copyright lacks %s", m)
		}
	}
	if !strings.Contains(text, "Comment: Go runtime and standard library, go1.") || !strings.Contains(text, " ---- PATENTS ----") {
		t.Error("copyright lacks the Go toolchain's license")
	}
}
