package reports

import (
	"fmt"
	"math"
	"sort"

	"golang.org/x/perf/benchmath"

	"github.com/twistbench/twistbench/bench/results"
)

// Comparison is the baseline comparison: per benchmark and figure, the
// ratio of medians with its interval and the U-test's verdict.
type Comparison struct {
	Threshold   float64 // percent
	Rows        []CompareRow
	Geomeans    []Geomean
	Regressions []CompareRow
	// OnlyBase and OnlyHead list benchmarks present on one side only.
	OnlyBase, OnlyHead []string
	EnvWarnings        []string
}

// CompareRow is one figure of one benchmark, baseline against results.
type CompareRow struct {
	Key, Backend, Figure, Unit string
	Base, Head                 float64 // medians
	// Ratio is Head/Base; Lo and Hi bound it from the two medians'
	// confidence intervals (NaN when either has none).
	Ratio, Lo, Hi float64
	P             float64
	N1, N2        int
	Significant   bool
	// Better is true when the change is an improvement for this figure
	// (higher throughput, lower latency or CPU).
	Better     bool
	Regression bool // significant, worse, and beyond the threshold
	Warning    string
}

// Delta renders the change as benchstat does: "~" when not significant.
func (c CompareRow) Delta() string {
	if !c.Significant {
		return "~"
	}
	return fmt.Sprintf("%+.1f%%", (c.Ratio-1)*100)
}

// Geomean is the geometric mean of a back-end's ratios for one figure.
type Geomean struct {
	Backend, Figure string
	Ratio           float64
	N               int
}

// compared are the figures compared, and whether higher is better.
var compared = []struct {
	name         string
	higherBetter bool
}{
	{"throughput", true},
	{"p50", false},
	{"p99", false},
	{"server_cpu_per_op", false},
}

func figureOf(name string) (results.Figure, bool) {
	for _, f := range results.Figures {
		if f.Name == name {
			return f, true
		}
	}
	return results.Figure{}, false
}

func compare(base, head []results.Benchmark, threshold float64) *Comparison {
	c := &Comparison{Threshold: threshold}
	baseBy := map[string]results.Benchmark{}
	for _, b := range base {
		baseBy[b.Key()] = b
	}
	seen := map[string]bool{}
	type gkey struct{ backend, fig string }
	logs := map[gkey][]float64{}
	var gorder []gkey
	for _, h := range head {
		k := h.Key()
		seen[k] = true
		b, ok := baseBy[k]
		if !ok {
			c.OnlyHead = append(c.OnlyHead, k)
			continue
		}
		backend := h.Backend
		if h.Dialect != "" {
			backend += "/" + h.Dialect
		}
		for _, fig := range compared {
			f, ok := figureOf(fig.name)
			if !ok {
				continue
			}
			bv, hv := values(b.Repeats, f), values(h.Repeats, f)
			if len(bv) == 0 || len(hv) == 0 {
				continue
			}
			row := compareRow(k, backend, f, bv, hv, fig.higherBetter, threshold)
			c.Rows = append(c.Rows, row)
			if row.Regression {
				c.Regressions = append(c.Regressions, row)
			}
			if row.Base > 0 && row.Head > 0 {
				gk := gkey{backend, f.Name}
				if logs[gk] == nil {
					gorder = append(gorder, gk)
				}
				logs[gk] = append(logs[gk], math.Log(row.Ratio))
			}
		}
	}
	for _, b := range base {
		if !seen[b.Key()] {
			c.OnlyBase = append(c.OnlyBase, b.Key())
		}
	}
	for _, gk := range gorder {
		ls := logs[gk]
		sum := 0.0
		for _, l := range ls {
			sum += l
		}
		c.Geomeans = append(c.Geomeans, Geomean{Backend: gk.backend, Figure: gk.fig, Ratio: math.Exp(sum / float64(len(ls))), N: len(ls)})
	}
	sort.SliceStable(c.Geomeans, func(i, j int) bool { return c.Geomeans[i].Backend < c.Geomeans[j].Backend })
	return c
}

func values(reps []results.Repeat, f results.Figure) []float64 {
	var vs []float64
	for _, r := range reps {
		if v, ok := f.Of(r); ok {
			vs = append(vs, v)
		}
	}
	return vs
}

// compareRow compares one figure: the Mann-Whitney U test of
// benchmath.AssumeNothing (what benchstat uses), the ratio of medians and a
// conservative interval for it from the two medians' intervals.
func compareRow(key, backend string, f results.Figure, bv, hv []float64, higherBetter bool, threshold float64) CompareRow {
	bs := benchmath.NewSample(append([]float64(nil), bv...), &benchmath.DefaultThresholds)
	hs := benchmath.NewSample(append([]float64(nil), hv...), &benchmath.DefaultThresholds)
	bsum := benchmath.AssumeNothing.Summary(bs, results.Confidence)
	hsum := benchmath.AssumeNothing.Summary(hs, results.Confidence)
	cmp := benchmath.AssumeNothing.Compare(bs, hs)
	row := CompareRow{
		Key: key, Backend: backend, Figure: f.Name, Unit: f.Unit,
		Base: bsum.Center, Head: hsum.Center,
		Ratio: math.NaN(), Lo: math.NaN(), Hi: math.NaN(),
		P: cmp.P, N1: cmp.N1, N2: cmp.N2,
		Significant: cmp.P <= cmp.Alpha,
	}
	if len(cmp.Warnings) > 0 {
		row.Warning = cmp.Warnings[0].Error()
	}
	if bsum.Center != 0 {
		row.Ratio = hsum.Center / bsum.Center
	}
	if finite(bsum.Lo) && finite(bsum.Hi) && finite(hsum.Lo) && finite(hsum.Hi) && bsum.Lo > 0 && bsum.Hi > 0 {
		row.Lo, row.Hi = hsum.Lo/bsum.Hi, hsum.Hi/bsum.Lo
	}
	if math.IsNaN(row.Ratio) || !row.Significant {
		return row
	}
	if higherBetter {
		row.Better = row.Ratio > 1
		row.Regression = row.Ratio < 1-threshold/100
	} else {
		row.Better = row.Ratio < 1
		row.Regression = row.Ratio > 1+threshold/100
	}
	return row
}

func finite(v float64) bool { return !math.IsInf(v, 0) && !math.IsNaN(v) }
