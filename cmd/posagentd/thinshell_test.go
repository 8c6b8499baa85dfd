package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestShellKnowsNoStoreLayout pins the thin shell: the daemon imports no
// bbolt and writes no bucket or key name of the stores; the layout lives
// in storage and storage/termstore only.
func TestShellKnowsNoStoreLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "go.etcd.io/bbolt") {
		t.Errorf("cmd/posagentd imports bbolt: %s", out)
	}
	// The names of storage's buckets and keys and of termstore's keys.
	layout := map[string]bool{"identity": true, "seen": true, "outbox": true, "kv": true, "pwd_lock": true,
		"unbind_intent": true, "state": true, "journal": true, "params": true, "binding": true, "counters": true,
		"reversal": true, "settling": true, "tampered": true, "tid_counters": true, "time_floor": true}
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			// A log line or attribute key ("state", "outbox") is no store name.
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
					if id, ok := sel.X.(*ast.Ident); ok && id.Name == "slog" {
						return false
					}
					switch sel.Sel.Name {
					case "Debug", "Info", "Warn", "Error":
						return false
					}
				}
			}
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil && layout[v] {
					t.Errorf("%s: the store name %q in the shell", fset.Position(lit.Pos()), v)
				}
			}
			return true
		})
	}
}
