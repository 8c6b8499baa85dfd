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

func TestParse(t *testing.T) {
	rows, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("got %d pairs, want 2: %+v", len(rows), rows)
	}
	if rows[0].name != "Pack/void" || rows[0].fast.ns != 300 || rows[0].moov.ns != 120000 || rows[0].moov.allocs != 196 || rows[0].fast.runs != 3 {
		t.Errorf("Pack/void = %+v", rows[0])
	}
	if rows[1].name != "Unpack/settlement" || rows[1].moov.ns/rows[1].fast.ns != 200 {
		t.Errorf("Unpack/settlement = %+v", rows[1])
	}
}

func TestReport(t *testing.T) {
	rows, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	allocating := append([]pair(nil), rows...)
	allocating[0].fast.allocs = 1
	tests := []struct {
		name   string
		rows   []pair
		target float64
		want   []string
		ok     bool
		lines  []string
	}{
		{"one under", rows, 300, nil, false, []string{"PASS Pack/void", "400x >= 300x", "FAIL Unpack/settlement", "200x < 300x"}},
		{"both over", rows, 150, nil, true, []string{"PASS Pack/void", "PASS Unpack/settlement"}},
		{"target missing", rows, 150, []string{"Pack/void", "Pack/settlement"}, false, []string{"FAIL Pack/settlement", "no fast/moov results"}},
		{"fast allocates", allocating, 150, nil, false, []string{"FAIL Pack/void", "allocates 1/op"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if got := report(&out, tt.rows, tt.target, tt.want); got != tt.ok {
				t.Errorf("report = %v, want %v:\n%s", got, tt.ok, out.String())
			}
			for _, l := range tt.lines {
				if !strings.Contains(out.String(), l) {
					t.Errorf("report lacks %q:\n%s", l, out.String())
				}
			}
			if !strings.Contains(out.String(), "fast ns/op") || !strings.Contains(out.String(), "ratio") {
				t.Errorf("no table header:\n%s", out.String())
			}
		})
	}
}

func TestSplitTargets(t *testing.T) {
	got := splitTargets(" Pack/void, ,Unpack/void ")
	if len(got) != 2 || got[0] != "Pack/void" || got[1] != "Unpack/void" {
		t.Errorf("splitTargets = %q", got)
	}
}
