// Package golden loads the golden messages of ../shared/testdata (made by
// an independent moov-io encoder) for the tests of both codecs.
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
}

// SharedDir is the project's golden directory: shared/ sits beside the
// module checkout (/work/main + /work/shared, or <clone>/../shared in CI).
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "testdata")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("golden: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Shared loads the shared golden files, failing (never skipping) when the
// directory is missing.
func Shared(t testing.TB) []Message { return Load(t, SharedDir(t)) }

// Load loads every golden file of this profile in dir.
func Load(t testing.TB, dir string) []Message {
	t.Helper()
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		abs, _ := filepath.Abs(dir)
		t.Fatalf("golden testdata directory %s is missing: the shared/ checkout must sit beside the module: %v", abs, err)
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
