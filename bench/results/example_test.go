package results_test

import (
	"fmt"
	"os"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/twistbench/twistbench/bench/results"
)

// A results file is built from raw repeats; Summarize computes the medians
// and intervals, and WriteBenchfmt gives the lines benchstat reads. The
// latencies come back as 1.500159 ms, not 1.5 ms: a histogram percentile is
// the top of its bucket, within the 3 significant digits (0.1%) kept.
func Example() {
	h := hdrhistogram.New(1, int64(100*time.Second), 3)
	b := results.Benchmark{
		Suite: "reactor", Scenario: "echo-closed", Backend: "epoll",
		Params: []results.Param{{Key: "conns", Value: "64"}, {Key: "size", Value: "64"}},
	}
	for _, ops := range []int64{40000, 42000, 41000} {
		for range 10 {
			h.RecordValue(int64(1500 * time.Microsecond))
		}
		cpu := 0.4
		b.Repeats = append(b.Repeats, results.Repeat{
			Ops: ops, Duration: time.Second, Throughput: float64(ops),
			ServerCPU: &cpu, ClientCPU: 0.5, ClientCores: 1,
			Latency: results.LatencyOf(h),
		})
	}
	b.Histogram, _ = results.EncodeHistogram(h)
	b.Summarize()
	fmt.Println(b.Key())
	fmt.Println("throughput:", b.Summaries["throughput"])

	f := &results.File{Schema: results.Schema, RunID: "example", Benchmarks: []results.Benchmark{b}}
	f.Environment.GOOS, f.Environment.GOARCH = "linux", "amd64"
	f.WriteBenchfmt(os.Stdout)
	// Output:
	// EchoClosed/backend=epoll/conns=64/size=64
	// throughput: 4.1e+04 ops/s (n=3)
	// goos: linux
	// goarch: amd64
	// run: example
	//
	// BenchmarkEchoClosed/backend=epoll/conns=64/size=64 40000 25000 ns/op 40000 ops/s 1.500159e+06 p50-ns 1.500159e+06 p90-ns 1.500159e+06 p99-ns 1.500159e+06 p99.9-ns 1.500159e+06 max-ns 0 errors 0 B/s 10000 server-cpu-ns/op 12500 client-cpu-ns/op
	// BenchmarkEchoClosed/backend=epoll/conns=64/size=64 42000 23809.52380952381 ns/op 42000 ops/s 1.500159e+06 p50-ns 1.500159e+06 p90-ns 1.500159e+06 p99-ns 1.500159e+06 p99.9-ns 1.500159e+06 max-ns 0 errors 0 B/s 9523.809523809523 server-cpu-ns/op 11904.761904761905 client-cpu-ns/op
	// BenchmarkEchoClosed/backend=epoll/conns=64/size=64 41000 24390.243902439026 ns/op 41000 ops/s 1.500159e+06 p50-ns 1.500159e+06 p90-ns 1.500159e+06 p99-ns 1.500159e+06 p99.9-ns 1.500159e+06 max-ns 0 errors 0 B/s 9756.09756097561 server-cpu-ns/op 12195.121951219513 client-cpu-ns/op
}
