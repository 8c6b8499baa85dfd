package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestShellHasNoISO8583Fields pins issue 12's rule: the acquirer messages
// live in iso8583/acqmsg, and the shell only frames, sends and receives.
// No Go file of the daemon (tests aside, which inspect the wire) imports
// the codec or the reference spec, nor calls a field accessor with a field
// number.
func TestShellHasNoISO8583Fields(t *testing.T) {
	forbidden := map[string]bool{
		"github.com/posagent/posagent/iso8583":           true, // the codec and its field API
		"github.com/posagent/posagent/iso8583/reference": true,
		"github.com/moov-io/iso8583":                     true,
	}
	fieldAPI := map[string]bool{"Set": true, "SetString": true, "SetUint": true, "Get": true, "Has": true, "Uint": true, "Unset": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if forbidden[path] || strings.HasPrefix(path, "github.com/moov-io/iso8583/") {
				t.Errorf("%s imports %s: ISO 8583 fields belong in iso8583/acqmsg", fset.Position(imp.Pos()), path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !fieldAPI[sel.Sel.Name] {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.INT {
				if id, err := strconv.Atoi(lit.Value); err == nil && id >= 2 && id <= 64 {
					t.Errorf("%s: %s(%d, …) looks like an ISO 8583 field access: it belongs in iso8583/acqmsg",
						fset.Position(call.Pos()), sel.Sel.Name, id)
				}
			}
			return true
		})
	}
	if checked < 5 {
		t.Fatalf("checked %d files of the daemon, want its sources", checked)
	}
}
