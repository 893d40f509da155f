package main

import (
	"github.com/twistbench/twistbench/bench"

	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/bench/results"
)

// httpNoLeaks is benchNoLeaks for tests that serve fasthttp in-process:
// fasthttp starts a process-wide goroutine for its Date header on first
// use, and its worker pool's cleaner exits a moment after Shutdown.
func httpNoLeaks(t *testing.T) {
	opts := []goleak.Option{goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	}
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

// TestBenchHTTPInProcess runs the quick HTTP suite in-process and checks
// what results.json and results.txt hold: the quick profile's 16 points
// (echo and poem per engine, read and write over sql on SQLite), every one
// measured without error.
func TestBenchHTTPInProcess(t *testing.T) {
	httpNoLeaks(t)
	out := t.TempDir()
	code, stdout, stderr := benchCLI(t, "bench", "--suite", "http", "--in-process", "--repeats", "1", "--duration", "300ms", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	f, err := results.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, b := range f.Benchmarks {
		keys = append(keys, b.Key())
		r := b.Repeats[0]
		if b.Suite != "http" || r.Ops == 0 || r.Errors != 0 || r.ServerCPU != nil {
			t.Errorf("%s: suite %q, %+v; want http, ops, no error, no server CPU (in-process)", b.Key(), b.Suite, r)
		}
	}
	for _, want := range []string{
		"HTTPEcho/backend=fasthttp/conns=16/size=64",
		"HTTPEcho/backend=nethttp/conns=16/size=64",
		"HTTPPoem/backend=fasthttp/conns=16/size=1024",
		"HTTPRead/backend=nethttp/dialect=sqlite/store=sql/conns=16",
		"HTTPWrite/backend=fasthttp/dialect=sqlite/store=sql/conns=16",
	} {
		if !slices.Contains(keys, want) {
			t.Errorf("no benchmark %s in %q", want, keys)
		}
	}
	// The quick profile's sweep is one concurrency (16).
	if want := 4 * 2 * len(bench.Profiles["quick"].HTTPConns); len(keys) != want {
		t.Errorf("%d benchmarks, want %d (4 scenarios x 2 engines x the quick profile's conns): %q", len(keys), want, keys)
	}
	if len(f.Environment.Databases) != 1 || f.Environment.Databases[0].Dialect != "sqlite" {
		t.Errorf("databases %+v, want SQLite only (the quick profile's)", f.Environment.Databases)
	}
	txt, err := os.ReadFile(filepath.Join(out, "results.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(txt), "BenchmarkHTTPWrite/backend=nethttp/dialect=sqlite/store=sql/conns=16 ") {
		t.Errorf("results.txt has no BenchmarkHTTPWrite line:\n%s", txt)
	}
}

func TestBenchHTTPRefuses(t *testing.T) {
	httpNoLeaks(t)
	out := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"engine", []string{"--suite", "http", "--engines", "fasthttp,spdy"}, `unknown engine "spdy" (known: fasthttp, nethttp)`},
		{"wrk", []string{"--suite", "http", "--wrk", "--wrk-path", "/nonexistent/wrk"}, "--wrk: exec: \"/nonexistent/wrk\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := benchCLI(t, append([]string{"bench", "--out", out}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and one line with %q", code, stderr, tc.want)
			}
		})
	}
}

// TestBenchHTTPWrk runs --wrk on one engine and checks the table it prints
// and writes: both tools on both endpoints, without errors.
func TestBenchHTTPWrk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs wrk for seconds")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		if os.Getenv("TWISTBENCH_REQUIRE_WRK") == "1" {
			t.Fatalf("TWISTBENCH_REQUIRE_WRK=1 but %v (apt-get install wrk)", err)
		}
		t.Skipf("wrk is not installed (%v); apt-get install wrk, or set TWISTBENCH_REQUIRE_WRK=1 to fail instead", err)
	}
	httpNoLeaks(t)
	out := t.TempDir()
	code, stdout, stderr := benchCLI(t, "bench", "--suite", "http", "--in-process", "--engines", "nethttp",
		"--repeats", "1", "--duration", "100ms", "--wrk", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	table, err := os.ReadFile(filepath.Join(out, "wrk.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, string(table)) {
		t.Errorf("stdout does not show wrk.txt:\n%s", stdout)
	}
	var rows int
	for _, line := range strings.Split(string(table), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[0] != "nethttp" {
			continue
		}
		rows++
		// engine, method, path, tool, req/s, p50, p90, p99, server CPU/op, errors
		if f[3] != "twistbench" && f[3] != "wrk" || f[4] == "0" || f[9] != "0" {
			t.Errorf("row %q: want a tool, a positive rate and no error", line)
		}
	}
	if rows != 4 {
		t.Errorf("%d rows, want 4 (poem and echo, each by both tools):\n%s", rows, table)
	}
}
