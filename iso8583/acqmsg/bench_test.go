package acqmsg

import (
	"testing"

	"github.com/posagent/posagent/terminal"
)

// BenchmarkVoid: a void built and MACed, and its approval read and its
// MAC verified, with the story's MAK in software: the message work of one
// void round trip, without the link and the stores.
func BenchmarkVoid(b *testing.B) {
	var c Codec
	macer := storyMACer(b)
	answer := answerFrame(b, "0210", answerHeader, with(saleAnswer(), 11, "000003"), true)
	var dst [FrameSize]byte
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Build(dst[:], reqVoidA, macer); err != nil {
			b.Fatal(err)
		}
		if r := c.Answer(reqVoidA, answer, nil, macer).Reply.Resp; !r.Approved() || r.MACBad {
			b.Fatalf("%+v", r)
		}
	}
}

// BenchmarkBuild: each request alone.
func BenchmarkBuild(b *testing.B) {
	macer := storyMACer(b)
	for _, q := range []terminal.Request{reqSaleA, reqVoidA, reqReversal, reqSettlement, reqUpload} {
		b.Run(q.Kind.String(), func(b *testing.B) {
			var c Codec
			var dst [FrameSize]byte
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Build(dst[:], q, macer); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
