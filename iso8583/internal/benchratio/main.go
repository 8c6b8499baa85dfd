// Command benchratio reads `go test -bench` output on stdin and prints, for
// every benchmark that has a /fast and a /moov variant (BenchmarkPack/void/fast
// and BenchmarkPack/void/moov), the median ns/op and allocs/op of each and how
// many times faster the fast path is, then one PASS/FAIL line per target: a
// pair passes when moov/fast reaches the target ratio and the fast path
// allocates nothing.
//
// It reports and exits 0 whatever the ratios (make bench runs it so, on a
// shared machine where a slow run is no verdict); with -min it exits 1 when a
// target is missed, for a gate.
//
//	go test -run '^$' -bench . -benchmem -count 5 ./iso8583 | go run ./iso8583/internal/benchratio
//	... | go run ./iso8583/internal/benchratio -min 300
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// targets are the pairs the speed target of the codec names: build+pack and
// unpack+read of the void 0200 and the settlement 0500.
const targets = "Pack/void,Pack/settlement,Unpack/void,Unpack/settlement"

func main() {
	target := flag.Float64("target", 300, "moov/fast ratio every target pair should reach (PASS/FAIL lines)")
	min := flag.Float64("min", 0, "exit 1 when a target pair is under this ratio, missing or allocating; it replaces -target (0: report only, exit 0)")
	want := flag.String("targets", targets, "comma-separated pairs that must be present")
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
	t := *target
	if *min > 0 {
		t = *min
	}
	ok := report(os.Stdout, rows, t, splitTargets(*want))
	if *min > 0 && !ok {
		os.Exit(1)
	}
}

func splitTargets(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// report prints the table and the PASS/FAIL lines and says whether every
// pair (and every wanted one, present or not) met the target ratio with a
// fast path that does not allocate.
func report(w io.Writer, rows []pair, target float64, want []string) bool {
	ok := true
	fmt.Fprintf(w, "%-24s %12s %8s %12s %8s %8s %5s\n", "benchmark (medians)", "fast ns/op", "allocs", "moov ns/op", "allocs", "ratio", "runs")
	for _, r := range rows {
		fmt.Fprintf(w, "%-24s %12.1f %8.0f %12.1f %8.0f %7.0fx %5d\n", r.name, r.fast.ns, r.fast.allocs, r.moov.ns, r.moov.allocs, r.moov.ns/r.fast.ns, min(r.fast.runs, r.moov.runs))
	}
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r.name] = true
		ratio := r.moov.ns / r.fast.ns
		switch {
		case ratio < target:
			fmt.Fprintf(w, "FAIL %-20s %.0fx < %.0fx\n", r.name, ratio, target)
			ok = false
		case r.fast.allocs != 0:
			fmt.Fprintf(w, "FAIL %-20s fast path allocates %.0f/op\n", r.name, r.fast.allocs)
			ok = false
		default:
			fmt.Fprintf(w, "PASS %-20s %.0fx >= %.0fx, 0 allocs/op\n", r.name, ratio, target)
		}
	}
	for _, name := range want {
		if !seen[name] {
			fmt.Fprintf(w, "FAIL %-20s no fast/moov results\n", name)
			ok = false
		}
	}
	return ok
}

// scanLines is bufio.Scanner over r; split out for the test.
func scanLines(r io.Reader) *bufio.Scanner { return bufio.NewScanner(r) }
