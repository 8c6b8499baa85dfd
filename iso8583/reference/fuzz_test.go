package reference

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"github.com/posagent/posagent/iso8583"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var updateCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite testdata/fuzz/FuzzUnpack from the golden frames")

const corpusDir = "testdata/fuzz/FuzzUnpack"

// unpackReferenceSafe runs the moov-io reference decoder, turning a panic
// into an error: moov-io is the reference for valid frames, not hardened
// against every hostile byte string (only tests do this).
func unpackReferenceSafe(frame []byte) (tpdu [5]byte, header [6]byte, mti string, fields map[int]string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("moov-io panic: %v", r)
		}
	}()
	return Unpack(frame)
}

func FuzzUnpack(f *testing.F) {
	for _, g := range goldenSets(f) {
		f.Add(g.Frame)
	}
	buf := make([]byte, iso8583.MaxFrameSize)
	f.Fuzz(func(t *testing.T, frame []byte) {
		var m iso8583.Message
		fastErr := m.Unpack(frame)
		rt, rh, rmti, rfields, refErr := unpackReferenceSafe(frame)
		if fastErr != nil {
			if _, ok := fastErr.(*iso8583.FieldError); !ok {
				t.Fatalf("Unpack error %T %v is not a *iso8583.FieldError", fastErr, fastErr)
			}
			return
		}
		// A frame the fast path accepts is canonical: packing it again
		// gives the same bytes.
		n, err := m.Pack(buf)
		if err != nil {
			t.Fatalf("Pack of an accepted frame: %v", err)
		}
		if !bytes.Equal(buf[:n], frame) {
			t.Fatalf("accepted frame does not round-trip:\n in %X\nout %X", frame, buf[:n])
		}
		if refErr != nil {
			return
		}
		mti, fields := toFields(&m)
		if rt != m.TPDU || rh != m.Header || rmti != mti {
			t.Fatalf("frame head: moov %X %X %s, fast %X %X %s", rt, rh, rmti, m.TPDU, m.Header, mti)
		}
		assertFields(t, fields, rfields)
	})
}

// TestFuzzCorpus checks the committed seed corpus is there and that both
// decoders survive it (it also runs as part of FuzzUnpack's seeds).
func TestFuzzCorpus(t *testing.T) {
	if *updateCorpus {
		writeCorpus(t)
	}
	files, err := filepath.Glob(filepath.Join(corpusDir, "*"))
	if err != nil || len(files) < 50 {
		t.Fatalf("%s: %d seed files, want at least 50 (regenerate with -update-fuzz-corpus): %v", corpusDir, len(files), err)
	}
	accepted := 0
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		frame, err := parseCorpusFile(raw)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		var m iso8583.Message
		if m.Unpack(frame) == nil {
			accepted++
		}
		_, _, _, _, _ = unpackReferenceSafe(frame)
	}
	if accepted < 23 || accepted == len(files) {
		t.Errorf("corpus: %d of %d frames decode; want the goldens to decode and the mutations mostly not", accepted, len(files))
	}
}

// parseCorpusFile reads the "go test fuzz v1" format with one []byte value.
func parseCorpusFile(raw []byte) ([]byte, error) {
	const head = "go test fuzz v1\n[]byte("
	if !bytes.HasPrefix(raw, []byte(head)) {
		return nil, fmt.Errorf("not a go fuzz v1 []byte file")
	}
	body := bytes.TrimSpace(raw[len(head):])
	body = bytes.TrimSuffix(body, []byte(")"))
	s, err := strconv.Unquote(string(body))
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

func writeCorpus(t *testing.T) {
	if err := os.MkdirAll(corpusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(corpusDir, "*"))
	for _, p := range old {
		os.Remove(p)
	}
	write := func(name string, frame []byte) {
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(frame)) + ")\n"
		if err := os.WriteFile(filepath.Join(corpusDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, g := range goldenSets(t) {
		base := g.File[:len(g.File)-len(".json")]
		write(base, g.Frame)
		// Mutations: a flipped byte, a cut frame with its length fixed, an
		// extra byte, a stray bitmap bit.
		flip := bytes.Clone(g.Frame)
		i := offFields + r.IntN(len(flip)-offFields)
		flip[i] ^= byte(1 + r.IntN(255))
		write(base+"-flip", flip)
		cut := fixLength(bytes.Clone(g.Frame[:offFields+r.IntN(len(g.Frame)-offFields)]))
		write(base+"-cut", cut)
		write(base+"-extra", fixLength(append(bytes.Clone(g.Frame), 0x00)))
		bm := bytes.Clone(g.Frame)
		bm[offBitmap+r.IntN(8)] ^= 1 << r.IntN(8)
		write(base+"-bitmap", bm)
	}
}

// fixLength sets a frame's 2-byte length prefix to what follows it.
func fixLength(f []byte) []byte {
	binary.BigEndian.PutUint16(f, uint16(len(f)-2))
	return f
}
