// Command benchratio reads `go test -bench` output on stdin and prints, for
// every benchmark that has a /fast and a /moov variant (BenchmarkPack/void/fast
// and BenchmarkPack/void/moov), the median ns/op and allocs/op of each and how
// many times faster the fast path is. With -min it exits 1 when a ratio is
// under that value or the fast path allocates.
//
//	go test -run XXX -bench . -count 5 ./iso8583 | go run ./iso8583/internal/benchratio -min 300
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	min := flag.Float64("min", 0, "fail when a moov/fast ratio is below this (0: report only)")
	flag.Parse()
	rows, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(2)
	}
	if len(rows) == 0 {
		fmt.Fprintln(os.Stderr, "benchratio: no fast/moov benchmark pairs on stdin")
		os.Exit(2)
	}
	if !report(os.Stdout, rows, *min) {
		os.Exit(1)
	}
}

func report(w io.Writer, rows []pair, min float64) bool {
	ok := true
	fmt.Fprintf(w, "%-24s %12s %8s %12s %8s %8s\n", "benchmark", "fast ns/op", "allocs", "moov ns/op", "allocs", "ratio")
	for _, r := range rows {
		ratio := r.moov.ns / r.fast.ns
		mark := ""
		if min > 0 && (ratio < min || r.fast.allocs != 0) {
			mark = "  BELOW TARGET"
			ok = false
		}
		fmt.Fprintf(w, "%-24s %12.1f %8.0f %12.1f %8.0f %7.0fx%s\n", r.name, r.fast.ns, r.fast.allocs, r.moov.ns, r.moov.allocs, ratio, mark)
	}
	return ok
}

// scanLines is bufio.Scanner over r; split out for the test.
func scanLines(r io.Reader) *bufio.Scanner { return bufio.NewScanner(r) }
