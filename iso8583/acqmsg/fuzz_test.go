// The oracle is the moov-io reference, which does not compile for 32-bit
// ARM (iso8583/doc.go): the fuzz target runs on the build host only.

//go:build !arm

package acqmsg

import (
	"bytes"
	"testing"

	"github.com/posagent/posagent/iso8583"
	"github.com/posagent/posagent/iso8583/internal/golden"
	"github.com/posagent/posagent/iso8583/reference"
	"github.com/posagent/posagent/terminal"
)

// fuzzRequests are the requests an answer is read against, by kind.
var fuzzRequests = []terminal.Request{reqSignIn, reqSaleA, reqVoidA, reqReversal, reqSettlement, reqUpload, reqUploadEnd202}

// FuzzAnswer: Answer never panics, and never reads garbage as an answer:
// whatever it does not call undecodable decodes with the reference
// (moov-io) codec, an independent decoder, as the answer to its request
// (response MTI, F11, F41, a response code but in a 0410), and an approval of a sale, void or reversal it does not
// flag MACBad carries field 64 equal to the MAC of its block under the MAK.
func FuzzAnswer(f *testing.F) {
	for _, g := range golden.All(f) {
		for i, q := range fuzzRequests {
			if _, ok := goldenAnswers[g.File]; ok && goldenAnswers[g.File].req.Kind == q.Kind {
				f.Add(uint8(i), g.Frame)
				f.Add(uint8(i), g.Frame[:len(g.Frame)/2])
			}
		}
	}
	f.Add(uint8(1), []byte{0, 0})
	f.Fuzz(func(t *testing.T, k uint8, frame []byte) {
		q := fuzzRequests[int(k)%len(fuzzRequests)]
		macer := storyMACer(t)
		var c Codec
		a := c.Answer(q, bytes.Clone(frame), nil, macer)
		r := a.Reply.Resp
		if a.Reply.Err != nil || a.Reply.Written || a.Reply.ID != q.ID {
			t.Fatalf("reply %+v to an answer that arrived", a.Reply)
		}
		if r.Undecodable {
			if r.DecodeErr == nil {
				t.Fatal("undecodable without a reason")
			}
			if a.WorkingKeys != nil {
				t.Fatal("working keys from an undecodable answer")
			}
			return
		}
		_, _, mti, fields, err := reference.Unpack(frame)
		if err != nil {
			t.Fatalf("read as %+v, the reference codec refuses it: %v", r, err)
		}
		s, _ := spec(q.Kind)
		want := q.STAN
		if q.Kind == terminal.MsgReversal {
			want = q.Txn.STAN
		}
		if mti != iso8583MTI(s.mti+0x10) || fields[11] != want.String() || fields[41] != q.Merchant.TID ||
			len(fields[39]) != 2 && q.Kind != terminal.MsgReversal {
			t.Fatalf("read as %+v: MTI %s F11 %q F41 %q F39 %q does not answer %s %s", r, mti, fields[11], fields[41], fields[39], q.Kind, want)
		}
		if r.RespCode != fields[39] {
			t.Fatalf("response code %q, field 39 %q", r.RespCode, fields[39])
		}
		financial := q.Kind == terminal.MsgSale || q.Kind == terminal.MsgVoid || q.Kind == terminal.MsgReversal
		if financial && r.Approved() && !r.MACBad {
			block, err := iso8583.MACBlock(frame)
			if err != nil {
				t.Fatalf("approved without a MAC block: %v", err)
			}
			sum, _ := macer.MAC(block)
			if fields[64] != hexUpper(sum[:]) {
				t.Fatalf("approved with field 64 %s, MAC %X", fields[64], sum)
			}
		}
		if a.WorkingKeys != nil && (q.Kind != terminal.MsgSignIn || !r.Approved() || len(a.WorkingKeys) != workingKeysLen) {
			t.Fatalf("working keys %X from %s answer %+v", a.WorkingKeys, q.Kind, r)
		}
	})
}

// iso8583MTI is the BCD-in-hex MTI as its four digits.
func iso8583MTI(v uint16) string {
	const digits = "0123456789"
	return string([]byte{digits[v>>12&0xF], digits[v>>8&0xF], digits[v>>4&0xF], digits[v&0xF]})
}

func hexUpper(b []byte) string {
	const h = "0123456789ABCDEF"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, h[c>>4], h[c&0xF])
	}
	return string(out)
}
