// Package golden loads the golden messages (made by an independent moov-io
// encoder, copied from the contract's testdata into iso8583/testdata/golden)
// for the tests of both codecs.
package golden

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
)

// NotThisProfile lists golden files of another CUP-style profile.
var NotThisProfile = map[string]bool{"mac-cnblogs.json": true}

// Message is one golden file, decoded.
type Message struct {
	File     string
	Name     string
	MTI      string
	TPDU     [5]byte
	Header   [6]byte
	Fields   map[int]string // semantic values: digits, exact characters, hex for 62 and 64
	Frame    []byte         // the whole frame, length included
	MACBlock string         // hex, when the message carries field 64
	MACASCII string
	Keys     Keys // the clear keys the story's messages were made with
}

// Keys are the story's clear keys (the same in every file): the TMK that
// wraps the sign-in's working keys, and the MAK of field 64.
type Keys struct {
	TMK, PIK, MAK []byte
}

type file struct {
	Name      string            `json:"name"`
	MTI       string            `json:"mti"`
	TPDUHex   string            `json:"tpdu_hex"`
	HeaderHex string            `json:"header_hex"`
	Fields    map[string]string `json:"fields"`
	FrameHex  string            `json:"frame_hex"`
	MACBlock  string            `json:"mac_block_hex"`
	MACASCII  string            `json:"mac_ascii"`
	Keys      struct {
		TMK string `json:"tmk"`
		PIK string `json:"pik"`
		MAK string `json:"mak"`
	} `json:"keys"`
}

// ModuleRoot is the directory holding go.mod above the test's directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("golden: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// RepoDir is the repository's own copy of the golden files: the tests
// read it, so a clone with nothing beside it runs every test.
func RepoDir(t testing.TB) string {
	return filepath.Join(ModuleRoot(t), "iso8583", "testdata", "golden")
}

// SharedDir is the contract's golden directory, ../shared/testdata beside
// the checkout, where a workspace has one; ok is false in a bare clone.
func SharedDir(t testing.TB) (dir string, ok bool) {
	dir = filepath.Join(ModuleRoot(t), "..", "shared", "testdata")
	st, err := os.Stat(dir)
	return dir, err == nil && st.IsDir()
}

// All loads the repository's golden files, failing (never skipping) when
// they are missing.
func All(t testing.TB) []Message { return Load(t, RepoDir(t)) }

// Load loads every golden file of this profile in dir.
func Load(t testing.TB, dir string) []Message {
	t.Helper()
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		abs, _ := filepath.Abs(dir)
		t.Fatalf("golden testdata directory %s is missing: %v", abs, err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	var out []Message
	for _, p := range paths {
		base := filepath.Base(p)
		if NotThisProfile[base] {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var f file
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		g := Message{File: base, Name: f.Name, MTI: f.MTI, MACBlock: f.MACBlock, MACASCII: f.MACASCII}
		mustHex(t, base, f.TPDUHex, g.TPDU[:])
		mustHex(t, base, f.HeaderHex, g.Header[:])
		g.Keys.TMK = mustHexN(t, base, f.Keys.TMK, 16)
		g.Keys.PIK = mustHexN(t, base, f.Keys.PIK, 16)
		g.Keys.MAK = mustHexN(t, base, f.Keys.MAK, 8)
		if g.Frame, err = hex.DecodeString(f.FrameHex); err != nil {
			t.Fatalf("%s: frame_hex: %v", base, err)
		}
		g.Fields = make(map[int]string, len(f.Fields))
		for k, v := range f.Fields {
			id, err := strconv.Atoi(k)
			if err != nil {
				t.Fatalf("%s: field key %q: %v", base, k, err)
			}
			g.Fields[id] = v
		}
		out = append(out, g)
	}
	if len(out) < 20 {
		t.Fatalf("%s: only %d golden messages of this profile, want at least 20", dir, len(out))
	}
	return out
}

func mustHex(t testing.TB, file, s string, dst []byte) {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		t.Fatalf("%s: hex %q: want %d bytes: %v", file, s, len(dst), err)
	}
	copy(dst, b)
}

func mustHexN(t testing.TB, file, s string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	mustHex(t, file, s, b)
	return b
}
