package reports

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/twistbench/twistbench/bench/results"
	"github.com/twistbench/twistbench/conformance"
)

// fixtureEnv is a fixed environment, so that golden files do not depend on
// the machine that runs the test.
var fixtureEnv = results.Environment{
	GoVersion: "go1.26.8", GOOS: "linux", GOARCH: "amd64", CPUModel: "Test CPU @ 3.0GHz",
	Cores: 2, GOMAXPROCS: 2, Kernel: "Linux 6.1.0 x86_64", Hostname: "testhost", Commit: "0123456789ab",
	LoadAverage: []float64{0.5, 0.4, 0.3}, ServerCPUs: []int{0}, GeneratorCPUs: []int{1},
	Databases: []results.Database{{Dialect: "sqlite", Flavor: "SQLite 3.46.1"}},
}

// point describes one synthetic benchmark: its median throughput and
// latency; repeats scatter around them by a fixed-seed jitter.
type point struct {
	suite, scenario, backend, dialect string
	params                            []results.Param
	tput                              float64
	latency                           time.Duration
	saturated                         bool
}

func synth(t testing.TB, seed uint64, repeats int, pts []point) *results.File {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	f := &results.File{Schema: results.Schema, RunID: "test", Started: time.Unix(1700000000, 0).UTC(),
		Finished: time.Unix(1700000100, 0).UTC(), Environment: fixtureEnv}
	for _, p := range pts {
		b := results.Benchmark{Suite: p.suite, Scenario: p.scenario, Backend: p.backend, Dialect: p.dialect, Params: p.params}
		h := hdrhistogram.New(1, int64(10*time.Second), 3)
		for range repeats {
			rh := hdrhistogram.New(1, int64(10*time.Second), 3)
			for range 2000 {
				v := int64(float64(p.latency) * (0.5 + rng.ExpFloat64()*0.5))
				rh.RecordValue(max(v, 1))
			}
			h.Merge(rh)
			tput := p.tput * (1 + (rng.Float64()-0.5)*0.04)
			cpu := 0.4
			b.Repeats = append(b.Repeats, results.Repeat{
				Ops: int64(tput), Duration: time.Second, Throughput: tput, Bytes: int64(tput) * 64,
				ServerCPU: &cpu, ClientCPU: 0.9, ClientCores: 1, Saturated: p.saturated,
				Latency: results.LatencyOf(rh),
			})
		}
		enc, err := results.EncodeHistogram(h)
		if err != nil {
			t.Fatal(err)
		}
		b.Histogram = enc
		b.Summarize()
		f.Benchmarks = append(f.Benchmarks, b)
	}
	return f
}

func echoPoints(scale map[string]float64) []point {
	var pts []point
	for _, be := range []string{"stdnet", "epoll"} {
		for _, c := range []string{"1", "64", "1024"} {
			base := map[string]float64{"1": 20000, "64": 90000, "1024": 80000}[c]
			pts = append(pts, point{suite: "reactor", scenario: "echo-closed", backend: be,
				params: []results.Param{{Key: "conns", Value: c}, {Key: "size", Value: "64"}},
				tput:   base * scale[be], latency: time.Duration(float64(50*time.Microsecond) / scale[be]),
				saturated: be == "epoll" && c == "1024"})
		}
	}
	for _, be := range []string{"gorm", "sql"} {
		for _, op := range []string{"host_by_name", "create_host"} {
			pts = append(pts, point{suite: "store", scenario: op, backend: be, dialect: "sqlite",
				tput: map[string]float64{"gorm": 30000, "sql": 50000}[be] * scale[be], latency: 30 * time.Microsecond})
		}
	}
	return pts
}

func fixtureMatrix() *conformance.Matrix {
	cases := []conformance.Info{
		{ID: "RX-LIFE-001", Category: "lifecycle", Level: conformance.Must, Statement: "ConnectionMade is called once, before any data"},
		{ID: "RX-HALF-001", Category: "half-close", Level: conformance.May, Statement: "half-close keeps reading"},
		{ID: "RX-WRITE-009", Category: "writes", Level: conformance.Should, Statement: "a 64 MiB write does not block the writer"},
	}
	res := func(id, be string, v conformance.Verdict, msg string) conformance.Result {
		return conformance.Result{Suite: "reactor", Case: id, Backend: be, Verdict: v, Message: msg, Duration: 12 * time.Millisecond}
	}
	return &conformance.Matrix{
		Schema: conformance.MatrixSchema, Started: time.Unix(1700000000, 0).UTC(), Finished: time.Unix(1700000010, 0).UTC(),
		Cases: cases,
		Results: []conformance.Result{
			res("RX-LIFE-001", "stdnet", conformance.Pass, ""),
			res("RX-LIFE-001", "epoll", conformance.Fail, "ConnectionMade called 2 times, want 1"),
			res("RX-HALF-001", "stdnet", conformance.Pass, ""),
			res("RX-HALF-001", "epoll", conformance.Skip, "transport does not implement reactor.HalfCloser"),
			res("RX-WRITE-009", "stdnet", conformance.NonStrict, "Write blocked for 3s"),
		},
		Skipped: []string{"store/mysql: no Docker engine"},
	}
}

// writeFixtures writes a head run, a baseline in which epoll was 30%
// faster, and a conformance matrix, and returns their paths.
func writeFixtures(t testing.TB, dir string) (head, base, matrix string) {
	t.Helper()
	head = filepath.Join(dir, "head.json")
	base = filepath.Join(dir, "base.json")
	matrix = filepath.Join(dir, "conformance.json")
	hf := synth(t, 1, 6, echoPoints(map[string]float64{"stdnet": 1, "epoll": 1.0, "gorm": 1, "sql": 1}))
	bf := synth(t, 2, 6, echoPoints(map[string]float64{"stdnet": 1, "epoll": 1.3, "gorm": 1, "sql": 1}))
	if err := hf.WriteFile(head); err != nil {
		t.Fatal(err)
	}
	if err := bf.WriteFile(base); err != nil {
		t.Fatal(err)
	}
	if err := fixtureMatrix().WriteFile(matrix); err != nil {
		t.Fatal(err)
	}
	return head, base, matrix
}
