// Package results is the model of a benchmark run as `harness bench` writes
// it and `harness report` reads it: one versioned JSON document
// (results.json) holding the environment, every repeat's raw figures, the
// merged HDR latency histogram of each benchmark and the summaries computed
// from the repeats, plus the same figures in the Go benchmark format
// (results.txt) so that benchstat compares back-ends with no extra code.
//
// The JSON schema is documented field by field in docs/results.md; a change
// that a reader of the previous version would misread bumps Schema.
//
// Why both raw repeats and summaries: the summaries (median, min, max and a
// 95% confidence interval from golang.org/x/perf/benchmath) are what people
// read, but a comparison against a baseline needs the raw repeats (the
// Mann-Whitney U test works on samples), and merging runs later needs the
// histograms, not their percentiles.
package results

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Schema is the version of the results.json layout this package writes and
// the newest it reads. Readers refuse a newer one rather than misread it.
const Schema = 1

// File is one results.json.
type File struct {
	// Schema is the layout version; always Schema when written.
	Schema int `json:"schema"`
	// RunID names this run; it is also the run_id label of the live
	// metrics, so figures and dashboards can be matched.
	RunID    string    `json:"run_id"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Environment is where and how the run happened.
	Environment Environment `json:"environment"`
	// Benchmarks holds one entry per (suite, scenario, backend, dialect,
	// params), in the order they were run.
	Benchmarks []Benchmark `json:"benchmarks"`
	// Skipped lists what was selected but not run, each with the reason
	// ("store/mysql: no Docker engine (set DOCKER_HOST or ...)").
	Skipped []string `json:"skipped,omitempty"`
}

// Benchmark is the figures of one (suite, scenario, backend, dialect,
// params) point over all its repeats.
type Benchmark struct {
	// Suite is "reactor" or "store".
	Suite string `json:"suite"`
	// Scenario is the workload: "echo-closed", "echo-open", "poetry",
	// or for stores the operation ("host_by_name", ..., "mixed").
	Scenario string `json:"scenario"`
	// Backend is the registry name of the back-end ("epoll", "gorm").
	Backend string `json:"backend"`
	// Dialect is the SQL dialect for stores, empty for reactors.
	Dialect string `json:"dialect,omitempty"`
	// Params are the scenario's parameters in a fixed order (the order of
	// the keys in the benchmark name), for example conns=64, size=64.
	Params []Param `json:"params,omitempty"`
	// Repeats are the raw figures of every measured repeat, in run order.
	Repeats []Repeat `json:"repeats"`
	// Histogram is the latency histogram of all repeats merged, in
	// nanoseconds, in the HdrHistogram V2 compressed encoding, base64
	// (what hdrhistogram.Histogram.Encode writes and Decode reads, and
	// what every HdrHistogram implementation understands).
	Histogram string `json:"histogram"`
	// Summaries maps a figure name (see Figures) to its summary over the
	// repeats.
	Summaries map[string]Summary `json:"summaries"`
	// Saturated is true when any repeat's load generator was saturated:
	// the figures then measure the generator, not the back-end.
	Saturated bool `json:"saturated"`
}

// Param is one key=value of a benchmark's parameters.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Repeat is the raw figures of one measured repeat (warm-up excluded).
type Repeat struct {
	// Ops is the number of completed operations (echo round trips, poems,
	// store calls) that started and ended inside the measured window.
	Ops int64 `json:"ops"`
	// Duration is the measured window, in nanoseconds.
	Duration time.Duration `json:"duration_ns"`
	// Throughput is Ops per second of Duration.
	Throughput float64 `json:"throughput_ops_per_sec"`
	// Errors counts failed operations: a wrong echoed byte, a short poem,
	// an I/O error, a store error.
	Errors int64 `json:"errors"`
	// Bytes counts payload bytes received and checked.
	Bytes int64 `json:"bytes"`
	// ServerCPU is the CPU time (user+system) the server process used
	// during the window, in seconds; nil when it could not be measured
	// (an in-process server, or --target).
	ServerCPU *float64 `json:"server_cpu_seconds,omitempty"`
	// ClientCPU is the CPU time the load generator's process used during
	// the window, in seconds.
	ClientCPU float64 `json:"client_cpu_seconds"`
	// OtherCPU is the CPU time every other process of the machine used
	// during the window, in seconds (from /proc/stat); nil when unknown.
	// A large figure means the repeat competed with a neighbour.
	OtherCPU *float64 `json:"other_cpu_seconds,omitempty"`
	// ClientCores is how many CPUs the generator could run on.
	ClientCores int `json:"client_cores"`
	// Saturated is true when ClientCPU reached SaturationThreshold of
	// ClientCores x Duration.
	Saturated bool `json:"saturated"`
	// Latency holds this repeat's percentiles in nanoseconds.
	Latency Latency `json:"latency_ns"`
	// Extra holds scenario-specific figures, by name with unit
	// ("poems_per_sec", "connections_per_sec").
	Extra map[string]float64 `json:"extra,omitempty"`
}

// Latency is a set of percentiles of a latency histogram, in nanoseconds.
type Latency struct {
	P50  int64 `json:"p50"`
	P90  int64 `json:"p90"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p99_9"`
	Max  int64 `json:"max"`
}

// LatencyOf reads the percentiles off h.
func LatencyOf(h *hdrhistogram.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50:  h.ValueAtPercentile(50),
		P90:  h.ValueAtPercentile(90),
		P99:  h.ValueAtPercentile(99),
		P999: h.ValueAtPercentile(99.9),
		Max:  h.Max(),
	}
}

// Summary is a figure summarised over the repeats with
// golang.org/x/perf/benchmath.AssumeNothing (the median and its
// distribution-free confidence interval, as benchstat reports).
type Summary struct {
	// Unit is the figure's unit ("ops/s", "ns", "s/op").
	Unit string `json:"unit"`
	// N is the number of repeats summarised.
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// Lo and Hi bound the confidence interval of the median; nil when
	// there are too few repeats for one at this level (AssumeNothing
	// needs 6 for 95%), and Warning says so.
	Lo *float64 `json:"ci_lo,omitempty"`
	Hi *float64 `json:"ci_hi,omitempty"`
	// Confidence is the interval's actual confidence level (>= 0.95);
	// 0 when there is no interval.
	Confidence float64 `json:"confidence,omitempty"`
	Warning    string  `json:"warning,omitempty"`
}

// EncodeHistogram returns h in the form Benchmark.Histogram holds.
func EncodeHistogram(h *hdrhistogram.Histogram) (string, error) {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("encoding histogram: %w", err)
	}
	return string(b), nil
}

// DecodeHistogram is the inverse of EncodeHistogram.
func DecodeHistogram(s string) (*hdrhistogram.Histogram, error) {
	if s == "" {
		return nil, errors.New("empty histogram")
	}
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		return nil, fmt.Errorf("histogram is not base64: %w", err)
	}
	h, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("histogram does not decode: %w", err)
	}
	return h, nil
}

// Histogram decodes b's merged histogram.
func (b *Benchmark) DecodeHistogram() (*hdrhistogram.Histogram, error) {
	return DecodeHistogram(b.Histogram)
}

// Key is the benchmark's name in the Go benchmark format, without the
// "Benchmark" prefix: the scenario in CamelCase followed by
// /backend=..., /dialect=... and each param as /key=value, in that order
// (for example "EchoClosed/backend=epoll/conns=64/size=64").
func (b *Benchmark) Key() string {
	name := camel(b.Suite, b.Scenario)
	name += "/backend=" + b.Backend
	if b.Dialect != "" {
		name += "/dialect=" + b.Dialect
	}
	for _, p := range b.Params {
		name += "/" + p.Key + "=" + p.Value
	}
	return name
}

// Param returns the value of the named parameter, or "".
func (b *Benchmark) Param(key string) string {
	for _, p := range b.Params {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

// ptr returns a pointer to a finite v, or nil for ±Inf and NaN (which JSON
// cannot hold).
func ptr(v float64) *float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return &v
}
