package reference

import (
	"encoding/binary"
	"github.com/posagent/posagent/iso8583"
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
		if g.File != file {
			continue
		}
		bm := benchMsg{name: name, g: g}
		v, err := strconv.ParseUint(g.MTI, 16, 16)
		if err != nil {
			b.Fatal(err)
		}
		bm.mti = uint16(v)
		for id := range g.Fields {
			bm.ids = append(bm.ids, id)
		}
		sort.Ints(bm.ids)
		for _, id := range bm.ids {
			s := g.Fields[id]
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

// The benchmarks compare the same job on both sides, as a caller does it:
//
//   - Pack: build the message from its field values and pack it into a
//     whole frame (length, TPDU, header included). moov-io: NewMessage, MTI,
//     Field/BinaryField per field, Pack, frame around it (moovPack). Fast
//     path: Reset, TPDU/Header/MTI, SetString per field, Pack into a reused
//     buffer (fastPack).
//   - Unpack: decode a whole frame and read every field's value. moov-io:
//     NewMessage, Unpack, GetString per field (GetBytes for the b fields 62
//     and 64), as its README reads fields (moovUnpack). Fast path: Unpack
//     into a reused iso8583.Message, Get per field (fastUnpack).
//
// Neither side is timed without the setting or the reading: a decoder that
// defers work to the getters would look faster than it is otherwise.

// moovPack is moov-io used as its README shows: NewMessage, MTI, Field /
// BinaryField, Pack; then the frame (length, TPDU, header) around it.
func moovPack(bm *benchMsg) ([]byte, error) {
	msg := moov.NewMessage(Spec)
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
	frame = append(frame, bm.g.TPDU[:]...)
	frame = append(frame, bm.g.Header[:]...)
	return append(frame, body...), nil
}

// fastPack sets every field and packs: the whole job of building a request.
func fastPack(m *iso8583.Message, bm *benchMsg, dst []byte) (int, error) {
	m.Reset()
	m.TPDU, m.Header, m.MTI = bm.g.TPDU, bm.g.Header, bm.mti
	for i, id := range bm.ids {
		if err := m.SetString(id, bm.rawStr[i]); err != nil {
			return 0, err
		}
	}
	return m.Pack(dst)
}

// moovUnpack decodes a frame with moov-io and reads every field, as its
// README does (GetString, GetBytes for binary fields). It returns the total
// size of the values read, so nothing is optimised away.
func moovUnpack(bm *benchMsg, frame []byte) (int, error) {
	msg := moov.NewMessage(Spec)
	if err := msg.Unpack(frame[offMTI:]); err != nil {
		return 0, err
	}
	total := 0
	for _, id := range bm.ids {
		if isBinaryField(id) {
			v, err := msg.GetBytes(id)
			if err != nil {
				return 0, err
			}
			total += len(v)
			continue
		}
		v, err := msg.GetString(id)
		if err != nil {
			return 0, err
		}
		total += len(v)
	}
	return total, nil
}

// fastUnpack decodes a frame into m and reads every field with Get.
func fastUnpack(m *iso8583.Message, bm *benchMsg, frame []byte) (int, error) {
	if err := m.Unpack(frame); err != nil {
		return 0, err
	}
	total := 0
	for _, id := range bm.ids {
		total += len(m.Get(id))
	}
	return total, nil
}

// wantTotal is the size of bm's values as fastUnpack and moovUnpack count
// them, to check both really read every field.
func wantTotal(bm *benchMsg) (n int) {
	for _, r := range bm.raw {
		n += len(r)
	}
	return n
}

func BenchmarkPack(b *testing.B) {
	for _, bm := range benchMessages(b) {
		b.Run(bm.name+"/fast", func(b *testing.B) {
			var m iso8583.Message
			dst := make([]byte, iso8583.MaxFrameSize)
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
		frame := bm.g.Frame
		want := wantTotal(&bm)
		b.Run(bm.name+"/fast", func(b *testing.B) {
			var m iso8583.Message
			b.ReportAllocs()
			for b.Loop() {
				if n, err := fastUnpack(&m, &bm, frame); err != nil || n != want {
					b.Fatalf("read %d bytes of values, want %d: %v", n, want, err)
				}
			}
		})
		b.Run(bm.name+"/moov", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if n, err := moovUnpack(&bm, frame); err != nil || n != want {
					b.Fatalf("read %d bytes of values, want %d: %v", n, want, err)
				}
			}
		})
	}
}

// TestZeroAllocs pins the fast path's contract: no allocation to build,
// pack or decode any golden message (benchmarks report the same).
func TestZeroAllocs(t *testing.T) {
	var m iso8583.Message
	dst := make([]byte, iso8583.MaxFrameSize)
	for _, g := range goldenSets(t) {
		bm := benchMsg{g: g}
		v, _ := strconv.ParseUint(g.MTI, 16, 16)
		bm.mti = uint16(v)
		for id, s := range g.Fields {
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
			t.Errorf("%s: SetString+Pack: %v allocs/op, err %v", g.File, a, packErr)
		}
		if a := testing.AllocsPerRun(50, func() {
			unpackErr = m.Unpack(g.Frame)
			for id := 2; id <= 64; id++ {
				_ = m.Get(id)
			}
			_, _ = m.Uint(11)
		}); a != 0 || unpackErr != nil {
			t.Errorf("%s: Unpack: %v allocs/op, err %v", g.File, a, unpackErr)
		}
		if g.MACBlock == "" {
			continue // iso8583.MACBlock's error path may allocate
		}
		if a := testing.AllocsPerRun(50, func() { _, _ = iso8583.MACBlock(g.Frame) }); a != 0 {
			t.Errorf("%s: MACBlock: %v allocs/op", g.File, a)
		}
	}
}
