package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/terminal/remote"
)

// job create's update flags become checked update args; mixed with --args
// or another type they are a usage error.
func TestUpdateFlags(t *testing.T) {
	sum := strings.Repeat("AB", 32)
	u := updateFlags{url: "https://u.example.com/b.raucb", sha256: sum, size: 42, version: "1.1.0"}
	req := jobs.Request{Type: "update"}
	if err := u.apply(&req); err != nil {
		t.Fatal(err)
	}
	a, err := remote.ParseUpdateArgs(req.Args)
	if err != nil || a.Size != 42 || a.Version != "1.1.0" || a.When != remote.UpdateIdle {
		t.Fatalf("args %s: %+v %v", req.Args, a, err)
	}
	for _, tc := range []struct {
		u   updateFlags
		req jobs.Request
	}{
		{updateFlags{url: "http://u/b", sha256: sum, size: 1, version: "1"}, jobs.Request{Type: "update"}},
		{updateFlags{url: "https://u/b", sha256: sum, size: 0, version: "1"}, jobs.Request{Type: "update"}},
		{updateFlags{url: "https://u/b", sha256: sum, size: 1, version: "1", when: "later"}, jobs.Request{Type: "update"}},
		{u, jobs.Request{Type: "unbind"}},
		{u, jobs.Request{Type: "update", Args: json.RawMessage(`{}`)}},
	} {
		if err := tc.u.apply(&tc.req); err == nil {
			t.Errorf("%+v with %s/%s: accepted", tc.u, tc.req.Type, tc.req.Args)
		}
	}
	// No update flag: the request is left alone.
	req = jobs.Request{Type: "unbind"}
	if err := (&updateFlags{}).apply(&req); err != nil || req.Args != nil {
		t.Fatalf("no flags: %v %s", err, req.Args)
	}
}
