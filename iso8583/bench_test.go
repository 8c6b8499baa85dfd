package iso8583

import (
	"encoding/binary"
	"sort"
	"strconv"
	"testing"

	moov "github.com/moov-io/iso8583"
)

// benchMsg is a golden message prepared for the benchmarks: its fields in
// ascending order, as strings for moov-io and raw for the fast path.
type benchMsg struct {
	name   string
	g      golden
	mti    uint16
	ids    []int
	str    []string // semantic strings (hex for 62/64), moov-io input
	raw    [][]byte // fast-path input (raw bytes for 62/64)
	rawStr []string
}

func loadBench(b *testing.B, name, file string) benchMsg {
	b.Helper()
	for _, g := range goldenSets(b) {
		if g.file != file {
			continue
		}
		bm := benchMsg{name: name, g: g}
		v, err := strconv.ParseUint(g.MTI, 16, 16)
		if err != nil {
			b.Fatal(err)
		}
		bm.mti = uint16(v)
		for id := range g.fields {
			bm.ids = append(bm.ids, id)
		}
		sort.Ints(bm.ids)
		for _, id := range bm.ids {
			s := g.fields[id]
			bm.str = append(bm.str, s)
			if isBinaryField(id) {
				r, err := hexDecode(s)
				if err != nil {
					b.Fatal(err)
				}
				bm.raw = append(bm.raw, r)
				bm.rawStr = append(bm.rawStr, string(r))
			} else {
				bm.raw = append(bm.raw, []byte(s))
				bm.rawStr = append(bm.rawStr, s)
			}
		}
		return bm
	}
	b.Fatalf("no golden %s", file)
	return benchMsg{}
}

func benchMessages(b *testing.B) []benchMsg {
	return []benchMsg{
		loadBench(b, "void", "void-request.json"),
		loadBench(b, "settlement", "settlement-request.json"),
	}
}

// moovPack is moov-io used as its README shows: NewMessage, MTI, Field /
// BinaryField, Pack; then the frame (length, TPDU, header) around it.
func moovPack(bm *benchMsg) ([]byte, error) {
	msg := moov.NewMessage(ReferenceSpec)
	msg.MTI(bm.g.MTI)
	for i, id := range bm.ids {
		var err error
		if isBinaryField(id) {
			err = msg.BinaryField(id, bm.raw[i])
		} else {
			err = msg.Field(id, bm.str[i])
		}
		if err != nil {
			return nil, err
		}
	}
	body, err := msg.Pack()
	if err != nil {
		return nil, err
	}
	frame := make([]byte, 0, offMTI+len(body))
	frame = binary.BigEndian.AppendUint16(frame, uint16(11+len(body)))
	frame = append(frame, bm.g.tpdu[:]...)
	frame = append(frame, bm.g.header[:]...)
	return append(frame, body...), nil
}

// fastPack sets every field and packs: the whole job of building a request.
func fastPack(m *Message, bm *benchMsg, dst []byte) (int, error) {
	m.Reset()
	m.TPDU, m.Header, m.MTI = bm.g.tpdu, bm.g.header, bm.mti
	for i, id := range bm.ids {
		if err := m.SetString(id, bm.rawStr[i]); err != nil {
			return 0, err
		}
	}
	return m.Pack(dst)
}

func BenchmarkPack(b *testing.B) {
	for _, bm := range benchMessages(b) {
		b.Run(bm.name+"/fast", func(b *testing.B) {
			var m Message
			dst := make([]byte, MaxFrameSize)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fastPack(&m, &bm, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bm.name+"/moov", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := moovPack(&bm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnpack(b *testing.B) {
	for _, bm := range benchMessages(b) {
		frame := bm.g.frame
		b.Run(bm.name+"/fast", func(b *testing.B) {
			var m Message
			b.ReportAllocs()
			for b.Loop() {
				if err := m.Unpack(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bm.name+"/moov", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				msg := moov.NewMessage(ReferenceSpec)
				if err := msg.Unpack(frame[offMTI:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestZeroAllocs pins the fast path's contract: no allocation to build,
// pack or decode any golden message (benchmarks report the same).
func TestZeroAllocs(t *testing.T) {
	var m Message
	dst := make([]byte, MaxFrameSize)
	for _, g := range goldenSets(t) {
		bm := benchMsg{g: g}
		v, _ := strconv.ParseUint(g.MTI, 16, 16)
		bm.mti = uint16(v)
		for id, s := range g.fields {
			bm.ids = append(bm.ids, id)
			if isBinaryField(id) {
				r, _ := hexDecode(s)
				s = string(r)
			}
			bm.rawStr = append(bm.rawStr, s)
		}
		var packErr, unpackErr error
		if a := testing.AllocsPerRun(50, func() {
			_, packErr = fastPack(&m, &bm, dst)
		}); a != 0 || packErr != nil {
			t.Errorf("%s: SetString+Pack: %v allocs/op, err %v", g.file, a, packErr)
		}
		if a := testing.AllocsPerRun(50, func() {
			unpackErr = m.Unpack(g.frame)
			_ = m.Get(11)
			_, _ = m.Uint(11)
		}); a != 0 || unpackErr != nil {
			t.Errorf("%s: Unpack: %v allocs/op, err %v", g.file, a, unpackErr)
		}
		if g.MACBlock == "" {
			continue // MACBlock's error path may allocate
		}
		if a := testing.AllocsPerRun(50, func() { _, _ = MACBlock(g.frame) }); a != 0 {
			t.Errorf("%s: MACBlock: %v allocs/op", g.file, a)
		}
	}
}
