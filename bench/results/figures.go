package results

import (
	"sort"
	"strings"
	"unicode"

	"golang.org/x/perf/benchmath"
)

// Confidence is the level of the confidence intervals in Summaries.
const Confidence = 0.95

// SaturationThreshold is the share of its CPUs above which a load generator
// counts as saturated: at ~90% the generator's own scheduling, not the
// server, starts to set the pace.
const SaturationThreshold = 0.9

// Figure is one per-repeat figure that is summarised and written to the Go
// benchmark format.
type Figure struct {
	// Name keys Benchmark.Summaries.
	Name string
	// Unit is the unit of the value, as written in results.txt
	// (benchfmt's conventions: "ns/op", "ops/s", "B/s").
	Unit string
	// Of extracts the figure from a repeat; ok is false when the repeat
	// does not have it (server CPU not measured).
	Of func(r Repeat) (v float64, ok bool)
}

// Figures lists the summarised figures in report order. Latencies are per
// operation (from the HDR histogram); "sec/op" is wall time per operation
// (the inverse of throughput, the unit benchstat expects first).
var Figures = []Figure{
	{"sec_per_op", "ns/op", func(r Repeat) (float64, bool) {
		if r.Ops == 0 {
			return 0, false
		}
		return float64(r.Duration) / float64(r.Ops), true
	}},
	{"throughput", "ops/s", func(r Repeat) (float64, bool) { return r.Throughput, true }},
	{"p50", "p50-ns", func(r Repeat) (float64, bool) { return float64(r.Latency.P50), r.Ops > 0 }},
	{"p90", "p90-ns", func(r Repeat) (float64, bool) { return float64(r.Latency.P90), r.Ops > 0 }},
	{"p99", "p99-ns", func(r Repeat) (float64, bool) { return float64(r.Latency.P99), r.Ops > 0 }},
	{"p99.9", "p99.9-ns", func(r Repeat) (float64, bool) { return float64(r.Latency.P999), r.Ops > 0 }},
	{"max", "max-ns", func(r Repeat) (float64, bool) { return float64(r.Latency.Max), r.Ops > 0 }},
	{"errors", "errors", func(r Repeat) (float64, bool) { return float64(r.Errors), true }},
	{"bytes_per_sec", "B/s", func(r Repeat) (float64, bool) {
		if r.Duration <= 0 {
			return 0, false
		}
		return float64(r.Bytes) / r.Duration.Seconds(), true
	}},
	{"server_cpu_per_op", "server-cpu-ns/op", func(r Repeat) (float64, bool) {
		if r.ServerCPU == nil || r.Ops == 0 {
			return 0, false
		}
		return *r.ServerCPU * 1e9 / float64(r.Ops), true
	}},
	{"client_cpu_per_op", "client-cpu-ns/op", func(r Repeat) (float64, bool) {
		if r.Ops == 0 {
			return 0, false
		}
		return r.ClientCPU * 1e9 / float64(r.Ops), true
	}},
	{"other_cpu_share", "other-cpu-s/s", func(r Repeat) (float64, bool) {
		if r.OtherCPU == nil || r.Duration <= 0 {
			return 0, false
		}
		return *r.OtherCPU / r.Duration.Seconds(), true
	}},
}

// extraFigures returns the names of the Extra figures present in any
// repeat, sorted, so that their summaries and benchfmt units are stable.
func extraFigures(reps []Repeat) []string {
	seen := map[string]bool{}
	for _, r := range reps {
		for k := range r.Extra {
			seen[k] = true
		}
	}
	names := make([]string, 0, len(seen))
	for k := range seen {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Summarize computes b.Summaries and b.Saturated from b.Repeats. A figure
// that no repeat has (server CPU of an in-process server) gets no summary.
func (b *Benchmark) Summarize() {
	b.Summaries = map[string]Summary{}
	b.Saturated = false
	for _, r := range b.Repeats {
		b.Saturated = b.Saturated || r.Saturated
	}
	for _, f := range Figures {
		var vs []float64
		for _, r := range b.Repeats {
			if v, ok := f.Of(r); ok {
				vs = append(vs, v)
			}
		}
		if len(vs) > 0 {
			b.Summaries[f.Name] = Summarize(f.Unit, vs)
		}
	}
	for _, name := range extraFigures(b.Repeats) {
		var vs []float64
		for _, r := range b.Repeats {
			if v, ok := r.Extra[name]; ok {
				vs = append(vs, v)
			}
		}
		b.Summaries[name] = Summarize(extraUnit(name), vs)
	}
}

// Summarize summarises values (in unit) with benchmath.AssumeNothing at
// Confidence. values is not modified.
func Summarize(unit string, values []float64) Summary {
	vs := append([]float64(nil), values...)
	s := benchmath.NewSample(vs, &benchmath.DefaultThresholds) // sorts vs
	sum := benchmath.AssumeNothing.Summary(s, Confidence)
	out := Summary{
		Unit:       unit,
		N:          len(vs),
		Median:     sum.Center,
		Lo:         ptr(sum.Lo),
		Hi:         ptr(sum.Hi),
		Confidence: sum.Confidence,
	}
	if out.Lo == nil || out.Hi == nil {
		// Half an interval is no interval: keep neither bound
		// (benchmath calls (-Inf, +Inf) a 100% interval).
		out.Lo, out.Hi, out.Confidence = nil, nil, 0
	}
	if len(vs) > 0 {
		out.Min, out.Max = vs[0], vs[len(vs)-1]
	}
	var warn []string
	for _, w := range sum.Warnings {
		warn = append(warn, w.Error())
	}
	out.Warning = strings.Join(warn, "; ")
	return out
}

// extraUnit turns an Extra figure name ("poems_per_sec") into its benchfmt
// unit ("poems/s").
func extraUnit(name string) string {
	if base, ok := strings.CutSuffix(name, "_per_sec"); ok {
		return strings.ReplaceAll(base, "_", "-") + "/s"
	}
	return strings.ReplaceAll(name, "_", "-")
}

// camel builds the benchmark base name: "echo-closed" -> "EchoClosed"; store
// operations are prefixed with "Store" ("host_by_name" -> "StoreHostByName")
// so that they group together.
func camel(suite, scenario string) string {
	var sb strings.Builder
	switch suite {
	case "store":
		sb.WriteString("Store")
	case "http":
		sb.WriteString("HTTP")
	}
	up := true
	for _, r := range scenario {
		if r == '-' || r == '_' || r == ' ' || r == '/' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
