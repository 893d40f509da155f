package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/twistbench/twistbench/bench/results"
)

// Chart is one figure of the page: an inline SVG drawn with gonum/plot.
type Chart struct {
	ID, Title, Caption string
	Kind               string // "throughput", "latency", "store"
	SVG                template.HTML
}

// buildCharts draws, from the merged benchmarks: throughput against
// connections per back-end (each scenario with a conns parameter, one chart
// per value of its other parameters), the latency percentile spectrum of the
// busiest point of each such group (HDR style: the x axis stretches the
// tail), and store throughput per operation per back-end, one chart per
// dialect.
func buildCharts(bs []results.Benchmark) []Chart {
	var charts []Chart
	type group struct {
		title string
		bs    []results.Benchmark
	}
	var order []string
	groups := map[string]*group{}
	stores := map[string][]results.Benchmark{}
	var dialects []string
	for _, b := range bs {
		if b.Suite == "store" {
			if stores[b.Dialect] == nil {
				dialects = append(dialects, b.Dialect)
			}
			stores[b.Dialect] = append(stores[b.Dialect], b)
			continue
		}
		if b.Param("conns") == "" {
			continue
		}
		var rest []string
		for _, p := range b.Params {
			if p.Key != "conns" {
				rest = append(rest, p.Key+"="+p.Value)
			}
		}
		k := b.Suite + " " + b.Scenario + " " + strings.Join(rest, " ")
		if groups[k] == nil {
			groups[k] = &group{title: strings.TrimSpace(b.Scenario + " " + strings.Join(rest, " "))}
			order = append(order, k)
		}
		groups[k].bs = append(groups[k].bs, b)
	}
	for i, k := range order {
		g := groups[k]
		if c, err := throughputChart(fmt.Sprintf("chart-tput-%d", i), g.title, g.bs); err == nil {
			charts = append(charts, c)
		}
		if c, err := latencyChart(fmt.Sprintf("chart-lat-%d", i), g.title, g.bs); err == nil {
			charts = append(charts, c)
		}
	}
	for i, d := range dialects {
		if c, err := storeChart(fmt.Sprintf("chart-store-%d", i), d, stores[d]); err == nil {
			charts = append(charts, c)
		}
	}
	return charts
}

func backendsOf(bs []results.Benchmark) []string {
	seen := map[string]bool{}
	var out []string
	for _, b := range bs {
		if !seen[b.Backend] {
			seen[b.Backend] = true
			out = append(out, b.Backend)
		}
	}
	return out
}

func throughputChart(id, title string, bs []results.Benchmark) (Chart, error) {
	p := plot.New()
	p.Title.Text = "Throughput vs connections: " + title
	p.X.Label.Text = "connections"
	p.Y.Label.Text = "round trips / s (median)"
	p.Legend.Top = true
	p.Legend.Left = true
	minX, maxX := math.Inf(1), 0.0
	for i, be := range backendsOf(bs) {
		var pts plotter.XYs
		for _, b := range bs {
			if b.Backend != be {
				continue
			}
			c, err := strconv.ParseFloat(b.Param("conns"), 64)
			s, ok := b.Summaries["throughput"]
			if err != nil || !ok || c <= 0 {
				continue
			}
			pts = append(pts, plotter.XY{X: c, Y: s.Median})
			minX, maxX = math.Min(minX, c), math.Max(maxX, c)
		}
		if len(pts) == 0 {
			continue
		}
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return Chart{}, err
		}
		l.Color = plotutil.Color(i)
		sc.Color = plotutil.Color(i)
		sc.Shape = plotutil.Shape(i)
		p.Add(l, sc)
		p.Legend.Add(be, l, sc)
	}
	if maxX/minX >= 10 {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Y.Min = 0
	svg, err := renderSVG(p, 16*vg.Centimeter, 9*vg.Centimeter)
	return Chart{ID: id, Title: p.Title.Text, Kind: "throughput", SVG: svg,
		Caption: "Median over the repeats at each connection count; higher is better."}, err
}

// percentileTicks label the stretched percentile axis.
var percentileTicks = []float64{50, 90, 99, 99.9, 99.99, 99.999}

func latencyChart(id, title string, bs []results.Benchmark) (Chart, error) {
	// The busiest point: the highest conns any back-end ran.
	top := 0.0
	for _, b := range bs {
		if c, err := strconv.ParseFloat(b.Param("conns"), 64); err == nil && c > top {
			top = c
		}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Latency by percentile: %s, conns=%g", title, top)
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.Legend.Top = true
	p.Legend.Left = true
	p.X.Scale = plot.LogScale{}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var ticks plot.ConstantTicks
	for _, q := range percentileTicks {
		ticks = append(ticks, plot.Tick{Value: 1 / (1 - q/100), Label: strconv.FormatFloat(q, 'f', -1, 64) + "%"})
	}
	p.X.Tick.Marker = ticks
	drawn := 0
	for i, be := range backendsOf(bs) {
		for _, b := range bs {
			c, _ := strconv.ParseFloat(b.Param("conns"), 64)
			if b.Backend != be || c != top {
				continue
			}
			h, err := b.DecodeHistogram()
			if err != nil || h.TotalCount() == 0 {
				continue
			}
			var pts plotter.XYs
			for _, br := range h.CumulativeDistribution() {
				q := br.Quantile
				if q < 50 || q >= 100 || br.ValueAt <= 0 {
					continue
				}
				pts = append(pts, plotter.XY{X: 1 / (1 - q/100), Y: float64(br.ValueAt) / 1e6})
			}
			if len(pts) < 2 {
				continue
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return Chart{}, err
			}
			l.Color = plotutil.Color(i)
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(be, l)
			drawn++
		}
	}
	if drawn == 0 {
		return Chart{}, fmt.Errorf("no latency to draw")
	}
	p.X.Min = 2
	svg, err := renderSVG(p, 16*vg.Centimeter, 9*vg.Centimeter)
	return Chart{ID: id, Title: p.Title.Text, Kind: "latency", SVG: svg,
		Caption: "From the merged HDR histogram of all repeats; the x axis stretches the tail, as HdrHistogram's plots do; lower is better."}, err
}

func storeChart(id, dialect string, bs []results.Benchmark) (Chart, error) {
	var ops []string
	seenOp := map[string]bool{}
	for _, b := range bs {
		if !seenOp[b.Scenario] {
			seenOp[b.Scenario] = true
			ops = append(ops, b.Scenario)
		}
	}
	backends := backendsOf(bs)
	p := plot.New()
	p.Title.Text = "Store operations per second: " + dialect
	p.Y.Label.Text = "operations / s (median)"
	p.Legend.Top = true
	w := vg.Points(math.Max(4, 40/float64(len(backends))))
	for i, be := range backends {
		vals := make(plotter.Values, len(ops))
		for j, op := range ops {
			for _, b := range bs {
				if b.Backend == be && b.Scenario == op {
					vals[j] = b.Summaries["throughput"].Median
				}
			}
		}
		bar, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return Chart{}, err
		}
		bar.Color = plotutil.Color(i)
		bar.LineStyle.Width = 0
		bar.Offset = w * vg.Length(float64(i)-float64(len(backends)-1)/2)
		p.Add(bar)
		p.Legend.Add(be, bar)
	}
	p.NominalX(ops...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = -0.9
	svg, err := renderSVG(p, 18*vg.Centimeter, 10*vg.Centimeter)
	return Chart{ID: id, Title: p.Title.Text, Kind: "store", SVG: svg,
		Caption: "Median operations per second of each contract operation; higher is better."}, err
}

// xmlHeader matches what precedes the <svg> element in a standalone SVG
// file: the XML declaration, a DOCTYPE and comments.
var xmlHeader = regexp.MustCompile(`(?s)^.*?(<svg)`)

// renderSVG draws p as an SVG element to inline in the page (no XML
// header, fonts named, not embedded: the browser's own fallback is used).
func renderSVG(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	wt, err := p.WriterTo(w, h, "svg")
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return "", err
	}
	svg := xmlHeader.ReplaceAllString(buf.String(), "$1")
	return template.HTML(svg), nil
}
