package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

type result struct {
	ns, allocs float64
	runs       int // samples the medians are taken over
}

type pair struct {
	name       string
	fast, moov result
}

// parse collects the ns/op and allocs/op of every BenchmarkX/.../fast and
// .../moov line (the -N GOMAXPROCS suffix dropped) and pairs them by the
// name before the last slash, taking the median of repeated runs (-count).
func parse(r io.Reader) ([]pair, error) {
	type samples struct{ ns, allocs []float64 }
	got := map[string]map[string]*samples{}
	sc := scanLines(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		slash := strings.LastIndexByte(name, '/')
		if slash < 0 {
			continue
		}
		base, kind := name[:slash], name[slash+1:]
		if kind != "fast" && kind != "moov" {
			continue
		}
		s := &samples{}
		var ns, allocs float64 = -1, -1
		for i := 2; i+1 < len(f); i++ {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				ns = v
			case "allocs/op":
				allocs = v
			}
		}
		if ns < 0 {
			return nil, fmt.Errorf("no ns/op in %q", sc.Text())
		}
		if got[base] == nil {
			got[base] = map[string]*samples{}
		}
		if got[base][kind] == nil {
			got[base][kind] = s
		}
		s = got[base][kind]
		s.ns = append(s.ns, ns)
		if allocs >= 0 {
			s.allocs = append(s.allocs, allocs)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var out []pair
	for base, kinds := range got {
		f, m := kinds["fast"], kinds["moov"]
		if f == nil || m == nil {
			continue
		}
		out = append(out, pair{
			name: strings.TrimPrefix(base, "Benchmark"),
			fast: result{median(f.ns), median(f.allocs), len(f.ns)},
			moov: result{median(m.ns), median(m.allocs), len(m.ns)},
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
