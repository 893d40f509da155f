package results

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"go.uber.org/goleak"
	"golang.org/x/perf/benchfmt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sample returns a results file with two back-ends of one echo point, five
// repeats each, with known figures.
func sample(t *testing.T) *File {
	t.Helper()
	f := &File{
		Schema: Schema, RunID: "run-1",
		Started:  time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC),
		Finished: time.Date(2026, 11, 25, 9, 1, 0, 0, time.UTC),
		Environment: Environment{GoVersion: "go1.26", GOOS: "linux", GOARCH: "amd64", CPUModel: "Test CPU @ 3GHz",
			Cores: 2, GOMAXPROCS: 2, Kernel: "Linux 6.1 x86_64", Commit: "abc123",
			Databases: []Database{{Dialect: "sqlite", Flavor: "SQLite 3.46.1"}},
			Flags:     map[string]string{"profile": "quick"}, ServerCPUs: []int{0}, GeneratorCPUs: []int{1}},
	}
	for bi, backend := range []string{"epoll", "stdnet"} {
		h := hdrhistogram.New(1, int64(100*time.Second), 3)
		b := Benchmark{Suite: "reactor", Scenario: "echo-closed", Backend: backend,
			Params: []Param{{"conns", "64"}, {"size", "64"}}}
		for i := range 5 {
			lat := int64(100_000 * (bi + 1))
			for range 100 {
				h.RecordValue(lat)
			}
			cpu := 0.25
			b.Repeats = append(b.Repeats, Repeat{
				Ops: 1000 * int64(i+1), Duration: time.Second, Throughput: 1000 * float64(i+1),
				Errors: int64(i), Bytes: 64000 * int64(i+1), ServerCPU: &cpu, ClientCPU: 0.5, ClientCores: 1,
				Latency: Latency{P50: lat, P90: lat, P99: lat, P999: lat, Max: lat},
			})
		}
		enc, err := EncodeHistogram(h)
		if err != nil {
			t.Fatal(err)
		}
		b.Histogram = enc
		b.Summarize()
		f.Benchmarks = append(f.Benchmarks, b)
	}
	return f
}

func TestSummaries(t *testing.T) {
	b := sample(t).Benchmarks[0]
	tp := b.Summaries["throughput"]
	if tp.Median != 3000 || tp.Min != 1000 || tp.Max != 5000 || tp.N != 5 || tp.Unit != "ops/s" {
		t.Errorf("throughput summary = %+v, want median 3000, min 1000, max 5000, n 5", tp)
	}
	// Five repeats are too few for a distribution-free 95% interval of
	// the median (AssumeNothing needs 6): no bounds, and a warning.
	if tp.Lo != nil || tp.Hi != nil || !strings.Contains(tp.Warning, "need >= 6 samples") {
		t.Errorf("5 repeats gave an interval %v..%v, warning %q", tp.Lo, tp.Hi, tp.Warning)
	}
	if s := b.Summaries["server_cpu_per_op"]; s.Median != 0.25e9/3000 {
		t.Errorf("server CPU per op median = %v ns, want %v", s.Median, 0.25e9/3000)
	}
	if s := b.Summaries["p99"]; s.Median != 100_000 {
		t.Errorf("p99 median = %v, want 100000", s.Median)
	}
	// With enough repeats the interval is there and brackets the median.
	s := Summarize("ops/s", []float64{9, 1, 8, 2, 7, 3, 6, 4, 5, 10})
	if s.Lo == nil || s.Hi == nil || *s.Lo > s.Median || *s.Hi < s.Median || s.Confidence < Confidence || s.Median != 5.5 {
		t.Errorf("10 repeats: %+v", s)
	}
}

func TestFileRoundTrip(t *testing.T) {
	f := sample(t)
	path := filepath.Join(t.TempDir(), "results.json")
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	g, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f, g) {
		a, _ := json.Marshal(f)
		b, _ := json.Marshal(g)
		t.Errorf("round trip changed the file:\n%s\n%s", a, b)
	}
	h, err := g.Benchmarks[1].DecodeHistogram()
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalCount() != 500 || h.ValueAtPercentile(50) < 199_900 || h.ValueAtPercentile(50) > 200_100 {
		t.Errorf("histogram after round trip: %d values, p50 %d; want 500 at 200000", h.TotalCount(), h.ValueAtPercentile(50))
	}
}

func TestReadFileRejects(t *testing.T) {
	good, err := json.Marshal(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(fn func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		fn(m)
		b, _ := json.Marshal(m)
		return b
	}
	bench0 := func(m map[string]any) map[string]any { return m["benchmarks"].([]any)[0].(map[string]any) }
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", good[:len(good)/2], "unexpected end of JSON input"},
		{"empty", nil, "not a results file"},
		{"not json", []byte("BenchmarkEcho 1 2 ns/op\n"), "not a results file"},
		{"no schema", []byte(`{"benchmarks": []}`), `no "schema" field`},
		{"future", []byte(`{"schema": 2, "benchmarks": [{"new": "layout"}]}`), "results schema 2 is newer than this harness reads (up to 1)"},
		{"zero schema", []byte(`{"schema": 0}`), "not a valid version"},
		{"wrong type", edit(func(m map[string]any) { m["benchmarks"] = "many" }), "malformed results"},
		{"no backend", edit(func(m map[string]any) { bench0(m)["backend"] = "" }), "benchmarks[0]: suite, scenario and backend are required"},
		{"no repeats", edit(func(m map[string]any) { bench0(m)["repeats"] = []any{} }), "EchoClosed/backend=epoll/conns=64/size=64): no repeats"},
		{"negative ops", edit(func(m map[string]any) {
			bench0(m)["repeats"].([]any)[2].(map[string]any)["ops"] = -5
		}), "repeats[2]: negative count"},
		{"zero duration", edit(func(m map[string]any) {
			bench0(m)["repeats"].([]any)[0].(map[string]any)["duration_ns"] = 0
		}), "repeats[0]: duration 0s is not positive"},
		{"bad histogram", edit(func(m map[string]any) { bench0(m)["histogram"] = "HIST-not-base64!" }), "histogram is not base64"},
		{"cut histogram", edit(func(m map[string]any) {
			h := bench0(m)["histogram"].(string)
			bench0(m)["histogram"] = h[:len(h)/2/4*4]
		}), "histogram does not decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.json")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadFile(path)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path+": ") || !strings.Contains(msg, tc.want) {
				t.Errorf("err = %q, want it to start with the path and contain %q", msg, tc.want)
			}
			if strings.Count(msg, "\n") > 0 {
				t.Errorf("err spans lines: %q", msg)
			}
		})
	}
}

func TestBenchfmtParsesBack(t *testing.T) {
	f := sample(t)
	var buf bytes.Buffer
	if err := f.WriteBenchfmt(&buf); err != nil {
		t.Fatal(err)
	}
	r := benchfmt.NewReader(&buf, "results.txt")
	type key struct{ name, backend string }
	n := 0
	tput := map[string][]float64{}
	for r.Scan() {
		res, ok := r.Result().(*benchfmt.Result)
		if !ok {
			t.Fatalf("not a result: %v", r.Result())
		}
		base, parts := res.Name.Parts()
		if string(base) != "EchoClosed" || len(parts) != 3 || string(parts[0]) != "/backend=epoll" && string(parts[0]) != "/backend=stdnet" {
			t.Errorf("name %s: base %q parts %q", res.Name, base, parts)
		}
		if res.GetConfig("goos") != "linux" || res.GetConfig("cpu") != "Test CPU @ 3GHz" || res.GetConfig("commit") != "abc123" {
			t.Errorf("file config lost: %v", res.Config)
		}
		v, ok := res.Value("ops/s")
		if !ok {
			t.Fatalf("no ops/s in %s", res.Name)
		}
		backend := strings.TrimPrefix(string(parts[0]), "/backend=")
		tput[backend] = append(tput[backend], v)
		if sec, ok := res.Value("sec/op"); !ok || sec != 1/v {
			t.Errorf("sec/op = %v, want 1/throughput = %v", sec, 1/v)
		}
		if p99, ok := res.Value("p99-sec"); !ok || (p99 != 100e-6 && p99 != 200e-6) {
			t.Errorf("p99 = %v (ok %v), want 100 or 200 µs", p99, ok)
		}
		if res.Iters != int(v) {
			t.Errorf("iterations %d, want ops %v", res.Iters, v)
		}
		n++
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Errorf("%d results, want 5 repeats x 2 back-ends", n)
	}
	want := []float64{1000, 2000, 3000, 4000, 5000}
	for _, b := range []string{"epoll", "stdnet"} {
		if !reflect.DeepEqual(tput[b], want) {
			t.Errorf("%s throughput %v, want %v", b, tput[b], want)
		}
	}
}

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		b    Benchmark
		want string
	}{
		{Benchmark{Suite: "reactor", Scenario: "echo-open", Backend: "gnet", Params: []Param{{"conns", "1"}}}, "EchoOpen/backend=gnet/conns=1"},
		{Benchmark{Suite: "store", Scenario: "host_by_name", Backend: "gorm", Dialect: "sqlite"}, "StoreHostByName/backend=gorm/dialect=sqlite"},
	} {
		if got := tc.b.Key(); got != tc.want {
			t.Errorf("Key = %q, want %q", got, tc.want)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	line := []byte("1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 0 0\n")
	comm, ticks, err := parseProcStat(line)
	if err != nil || comm != "my (odd) prog" || ticks != 300 {
		t.Errorf("= %q %d %v, want \"my (odd) prog\" 300", comm, ticks, err)
	}
	if _, _, err := parseProcStat([]byte("1234 (x) S 1")); err == nil {
		t.Error("short line accepted")
	}
}

func TestCollectEnvironment(t *testing.T) {
	env := CollectEnvironment(t.Context(), 50*time.Millisecond)
	if env.GoVersion == "" || env.Cores < 1 || env.GOMAXPROCS < 1 || !strings.HasPrefix(env.Kernel, "Linux ") || len(env.LoadAverage) != 3 {
		t.Errorf("environment missing basics: %+v", env)
	}
}
