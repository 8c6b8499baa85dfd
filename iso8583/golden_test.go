package iso8583

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// sharedTestdata is the project's golden directory, beside the module
// checkout: /work/main + /work/shared here, <clone> + <clone>/../shared in CI.
const sharedTestdata = "../../shared/testdata"

// goldenCopy is this package's own copy, so `go test` works from a bare
// module; TestGoldenCopyInSync keeps it equal to the shared one.
const goldenCopy = "testdata/golden"

// notThisProfile lists golden files of another CUP-style profile.
var notThisProfile = map[string]bool{"mac-cnblogs.json": true}

type golden struct {
	file      string
	Name      string            `json:"name"`
	MTI       string            `json:"mti"`
	TPDUHex   string            `json:"tpdu_hex"`
	HeaderHex string            `json:"header_hex"`
	Fields    map[string]string `json:"fields"`
	FrameHex  string            `json:"frame_hex"`
	MACBlock  string            `json:"mac_block_hex"`
	MACASCII  string            `json:"mac_ascii"`

	tpdu   [5]byte
	header [6]byte
	fields map[int]string
	frame  []byte
}

func loadGoldenDir(t testing.TB, dir string) []golden {
	t.Helper()
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		t.Fatalf("golden testdata directory %s is missing (resolved from %s): the shared/ checkout must sit beside the module: %v", dir, mustAbs(dir), err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	var out []golden
	for _, p := range paths {
		base := filepath.Base(p)
		if notThisProfile[base] {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		g := golden{file: base}
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		mustHex(t, base, g.TPDUHex, g.tpdu[:])
		mustHex(t, base, g.HeaderHex, g.header[:])
		g.frame, err = hex.DecodeString(g.FrameHex)
		if err != nil {
			t.Fatalf("%s: frame_hex: %v", base, err)
		}
		g.fields = make(map[int]string, len(g.Fields))
		for k, v := range g.Fields {
			id, err := strconv.Atoi(k)
			if err != nil {
				t.Fatalf("%s: field key %q: %v", base, k, err)
			}
			g.fields[id] = v
		}
		out = append(out, g)
	}
	if len(out) < 20 {
		t.Fatalf("%s: only %d golden messages of this profile, want at least 20", dir, len(out))
	}
	return out
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func mustHex(t testing.TB, file, s string, dst []byte) {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		t.Fatalf("%s: hex %q: want %d bytes: %v", file, s, len(dst), err)
	}
	copy(dst, b)
}

// goldenSets returns the shared golden files, failing if they are missing.
func goldenSets(t testing.TB) []golden { return loadGoldenDir(t, sharedTestdata) }

func TestGoldenCopyInSync(t *testing.T) {
	shared, err := filepath.Glob(filepath.Join(sharedTestdata, "*"))
	if err != nil || len(shared) == 0 {
		t.Fatalf("shared testdata %s missing (%s): %v", sharedTestdata, mustAbs(sharedTestdata), err)
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
	if got, want := len(loadGoldenDir(t, goldenCopy)), len(goldenSets(t)); got != want {
		t.Fatalf("local golden copy has %d messages, shared has %d", got, want)
	}
}

func TestGoldenReference(t *testing.T) {
	for _, g := range goldenSets(t) {
		t.Run(strings.TrimSuffix(g.file, ".json"), func(t *testing.T) {
			frame, err := PackReference(g.tpdu, g.header, g.MTI, g.fields)
			if err != nil {
				t.Fatalf("PackReference: %v", err)
			}
			if !bytes.Equal(frame, g.frame) {
				t.Fatalf("PackReference:\n got %X\nwant %X", frame, g.frame)
			}
			tpdu, header, mti, fields, err := UnpackReference(g.frame)
			if err != nil {
				t.Fatalf("UnpackReference: %v", err)
			}
			if tpdu != g.tpdu || header != g.header || mti != g.MTI {
				t.Errorf("frame: got %X %X %s, want %X %X %s", tpdu, header, mti, g.tpdu, g.header, g.MTI)
			}
			assertFields(t, fields, g.fields)
		})
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

// TestProfileMatchesReference checks that the fast path's table and the
// moov-io spec name the same fields with the same maximum lengths.
func TestProfileMatchesReference(t *testing.T) {
	for id := 2; id <= 128; id++ {
		f, inRef := ReferenceSpec.Fields[id]
		if inRef != InProfile(id) {
			t.Errorf("field %d: in moov-io spec %v, in fast-path table %v", id, inRef, InProfile(id))
			continue
		}
		if inRef && f.Spec().Length != profile[id].max {
			t.Errorf("field %d: moov-io length %d, table max %d", id, f.Spec().Length, profile[id].max)
		}
	}
}
