package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkPack/void/fast-2         	 2895319	       400.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkPack/void/moov-2         	   10000	    120000 ns/op	    9329 B/op	     196 allocs/op
BenchmarkPack/void/fast-2         	 2895319	       200.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkPack/void/fast-2         	 2895319	       300.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkUnpack/settlement/fast   	 6900432	       100.0 ns/op
BenchmarkUnpack/settlement/moov   	   26839	     20000 ns/op
BenchmarkOther-2                  	   26839	     20000 ns/op
PASS
`

func TestParseAndReport(t *testing.T) {
	rows, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("got %d pairs, want 2: %+v", len(rows), rows)
	}
	if rows[0].name != "Pack/void" || rows[0].fast.ns != 300 || rows[0].moov.ns != 120000 || rows[0].moov.allocs != 196 {
		t.Errorf("Pack/void = %+v", rows[0])
	}
	if rows[1].name != "Unpack/settlement" || rows[1].moov.ns/rows[1].fast.ns != 200 {
		t.Errorf("Unpack/settlement = %+v", rows[1])
	}
	var out bytes.Buffer
	if report(&out, rows, 300) {
		t.Errorf("report passed with a 200x ratio under -min 300")
	}
	if !strings.Contains(out.String(), "400x") || !strings.Contains(out.String(), "BELOW TARGET") {
		t.Errorf("report:\n%s", out.String())
	}
	if !report(&out, rows, 150) {
		t.Errorf("report failed with ratios 400x and 200x over -min 150")
	}
}
