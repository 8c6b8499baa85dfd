package iso8583

import (
	"bytes"
	goldenpkg "github.com/posagent/posagent/iso8583/internal/golden"
	"os"
	"path/filepath"
	"testing"
)

// goldenCopy is this package's own copy, so `go test` works from a bare
// module; TestGoldenCopyInSync keeps it equal to the shared one.
const goldenCopy = "testdata/golden"

type golden = goldenpkg.Message

// goldenSets returns the shared golden files, failing if they are missing.
func goldenSets(t testing.TB) []golden { return goldenpkg.Shared(t) }

func TestGoldenCopyInSync(t *testing.T) {
	sharedTestdata := goldenpkg.SharedDir(t)
	shared, err := filepath.Glob(filepath.Join(sharedTestdata, "*"))
	if err != nil || len(shared) == 0 {
		t.Fatalf("shared testdata %s missing: %v", sharedTestdata, err)
	}
	local, _ := filepath.Glob(filepath.Join(goldenCopy, "*"))
	if len(local) != len(shared) {
		t.Errorf("%s has %d files, %s has %d: copy them again", goldenCopy, len(local), sharedTestdata, len(shared))
	}
	for _, p := range shared {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(goldenCopy, filepath.Base(p)))
		if err != nil {
			t.Errorf("copy of %s: %v", filepath.Base(p), err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/%s differs from the shared copy", goldenCopy, filepath.Base(p))
		}
	}
}

func TestGoldenLocalCopyLoads(t *testing.T) {
	if got, want := len(goldenpkg.Load(t, goldenCopy)), len(goldenSets(t)); got != want {
		t.Fatalf("local golden copy has %d messages, shared has %d", got, want)
	}
}

func assertFields(t *testing.T, got, want map[int]string) {
	t.Helper()
	for id, w := range want {
		if g, ok := got[id]; !ok || g != w {
			t.Errorf("field %d: got %q (present %v), want %q", id, g, ok, w)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("field %d: unexpected %q", id, g)
		}
	}
}

// isBinaryField: fields holding raw bytes, whose semantic strings in the
// golden files are upper-case hex.
func isBinaryField(id int) bool { return id == 62 || id == 64 }
