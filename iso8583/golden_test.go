package iso8583

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	goldenpkg "github.com/posagent/posagent/iso8583/internal/golden"
)

type golden = goldenpkg.Message

// goldenSets returns the repository's golden files, failing if they are
// missing.
func goldenSets(t testing.TB) []golden { return goldenpkg.All(t) }

// TestGoldenCopyInSync keeps the repository's copy equal to the contract's
// testdata where a workspace has it beside the checkout; in a bare clone it
// checks that the copy is complete (every file the contract's README
// lists is there and loads).
func TestGoldenCopyInSync(t *testing.T) {
	local := goldenpkg.RepoDir(t)
	shared, ok := goldenpkg.SharedDir(t)
	if !ok {
		t.Logf("no %s beside the checkout: checking the repository copy alone", shared)
		readme, err := os.ReadFile(filepath.Join(local, "README.md"))
		if err != nil {
			t.Fatalf("repository golden copy: %v", err)
		}
		for _, name := range regexp.MustCompile(`[a-z0-9-]+\.json`).FindAllString(string(readme), -1) {
			if _, err := os.Stat(filepath.Join(local, name)); err != nil {
				t.Errorf("%s names %s, missing from the copy: %v", "README.md", name, err)
			}
		}
		if n := len(goldenpkg.All(t)); n < 23 {
			t.Errorf("repository copy loads %d messages, want 23", n)
		}
		return
	}
	sharedFiles, err := filepath.Glob(filepath.Join(shared, "*"))
	if err != nil || len(sharedFiles) == 0 {
		t.Fatalf("shared testdata %s empty: %v", shared, err)
	}
	localFiles, _ := filepath.Glob(filepath.Join(local, "*"))
	if len(localFiles) != len(sharedFiles) {
		t.Errorf("%s has %d files, %s has %d: copy them again", local, len(localFiles), shared, len(sharedFiles))
	}
	for _, p := range sharedFiles {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(local, filepath.Base(p)))
		if err != nil {
			t.Errorf("copy of %s: %v", filepath.Base(p), err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/%s differs from the shared copy", local, filepath.Base(p))
		}
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
