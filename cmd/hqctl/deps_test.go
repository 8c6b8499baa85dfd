package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHQCtlDependencies pins what hqctl links: it speaks hqd's HTTP API
// (internal/hq/wire for the shapes) and MQTT, and never a database. A
// change that imports hqd's store, job service or API server (and with
// them the SQLite and PostgreSQL drivers and goose) fails here.
func TestHQCtlDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 || !contains(deps, "github.com/posagent/posagent/internal/hq/wire") || !contains(deps, "net/http") {
		t.Fatalf("go list -deps gave %d packages without the API's: %v", len(deps), deps)
	}
	forbidden := []string{
		"modernc.org/sqlite", "github.com/jackc/pgx", "github.com/pressly/goose",
		"github.com/posagent/posagent/internal/hq/store", "github.com/posagent/posagent/internal/hq/jobs",
		"github.com/posagent/posagent/internal/hq/api", "github.com/posagent/posagent/internal/hq/web",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") || d == "database/sql" {
				t.Errorf("hqctl links %s (forbidden: %s)", d, f)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
