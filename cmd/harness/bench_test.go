package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/perf/benchfmt"

	"github.com/twistbench/twistbench/bench/results"
)

// benchNoLeaks checks, after every cleanup of t (test servers included),
// that no goroutine started during t is left.
func benchNoLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// benchCLI runs the CLI in-process and returns its exit code and output.
func benchCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var o, e bytes.Buffer
	code := run(ctx, args, &o, &e)
	return code, o.String(), e.String()
}

// echoTarget is a plain-Go echo server standing in for `harness serve
// echo`; corrupt flips a byte of everything it echoes.
func echoTarget(t *testing.T, corrupt bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if corrupt {
							buf[0] ^= 1
						}
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func TestBenchRefuses(t *testing.T) {
	benchNoLeaks(t)
	out := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"suite", []string{"--suite", "tcp"}, `unknown suite "tcp" (known: reactor, store, http, all)`},
		{"profile", []string{"--profile", "huge"}, `unknown profile "huge" (known: quick, ci, full)`},
		{"backend", []string{"--backends", "epoll,twisted"}, `unknown back-end "twisted" (known: epoll, gnet, gorm, netpoll, sql, sqlx, stdnet)`},
		{"dialect", []string{"--dialects", "oracle"}, `unknown dialect "oracle"`},
		{"repeats", []string{"--repeats", "-1"}, "--repeats -1 is negative"},
		{"ratio", []string{"--read-ratio", "1.5"}, "--read-ratio 1.5 is outside [0, 1]"},
		{"target needs one reactor", []string{"--target", "127.0.0.1:1"}, "--target measures one echo server"},
		{"target address", []string{"--suite", "reactor", "--backends", "epoll", "--target", "localhost"}, `--target "localhost": address localhost: missing port in address`},
		{"duration", []string{"--duration", "soon"}, `invalid argument "soon" for "--duration"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := benchCLI(t, append([]string{"bench", "--out", out}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and one line with %q", code, stderr, tc.want)
			}
		})
	}
}

// TestBenchTarget runs the whole command against a server started
// elsewhere, and reads back both files it writes.
func TestBenchTarget(t *testing.T) {
	benchNoLeaks(t)
	addr := echoTarget(t, false)
	out := t.TempDir()
	code, stdout, stderr := benchCLI(t, "bench", "--suite", "reactor", "--backends", "stdnet", "--target", addr,
		"--repeats", "2", "--duration", "150ms", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	f, err := results.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	// quick: closed loop at conns 1 and 64, the open loop; no poetry
	// against a target.
	if len(f.Benchmarks) != 3 || len(f.Skipped) != 1 || !strings.Contains(f.Skipped[0], "poetry") {
		t.Errorf("%d benchmarks, skipped %q; want the 3 echo points and poetry skipped", len(f.Benchmarks), f.Skipped)
	}
	keys := map[string]*results.Benchmark{}
	for i := range f.Benchmarks {
		keys[f.Benchmarks[i].Key()] = &f.Benchmarks[i]
	}
	for _, k := range []string{
		"EchoClosed/backend=stdnet/conns=1/size=64",
		"EchoClosed/backend=stdnet/conns=64/size=64",
		"EchoOpen/backend=stdnet/conns=16/size=64/rate=5000",
	} {
		b, ok := keys[k]
		if !ok {
			t.Errorf("no benchmark %s in %v", k, keys)
			continue
		}
		if len(b.Repeats) != 2 || b.Summaries["errors"].Max != 0 || b.Summaries["throughput"].Median <= 0 {
			t.Errorf("%s: %d repeats, errors %v, throughput %v", k, len(b.Repeats), b.Summaries["errors"].Max, b.Summaries["throughput"].Median)
		}
		if _, ok := b.Summaries["server_cpu_per_op"]; ok {
			t.Errorf("%s: a server CPU figure for a --target server", k)
		}
		for _, r := range b.Repeats {
			if r.Bytes != r.Ops*64 {
				t.Errorf("%s: bytes %d for %d ops of 64", k, r.Bytes, r.Ops)
			}
		}
	}
	if f.Environment.GoVersion == "" || f.Environment.Flags["target"] != addr || f.RunID == "" {
		t.Errorf("environment incomplete: %+v", f.Environment)
	}
	txt, err := os.Open(filepath.Join(out, "results.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer txt.Close()
	r := benchfmt.NewReader(txt, "results.txt")
	n := 0
	for r.Scan() {
		if res, ok := r.Result().(*benchfmt.Result); ok {
			if !strings.Contains(string(res.Name), "/backend=stdnet/") {
				t.Errorf("benchmark name %s lacks the backend key", res.Name)
			}
			n++
		}
	}
	if r.Err() != nil || n != 2*len(f.Benchmarks) {
		t.Errorf("results.txt: %d results (err %v), want %d", n, r.Err(), 2*len(f.Benchmarks))
	}
	if !strings.Contains(stdout, "EchoClosed/backend=stdnet/conns=64/size=64") || !strings.Contains(stdout, "results.json") {
		t.Errorf("summary lacks the table or the file names:\n%s", stdout)
	}
}

// TestBenchCorruptingServerIsAFinding checks that wrong echoed bytes end
// as errors in the results and exit code 1, not as a crash.
func TestBenchCorruptingServerIsAFinding(t *testing.T) {
	benchNoLeaks(t)
	addr := echoTarget(t, true)
	out := t.TempDir()
	code, _, stderr := benchCLI(t, "bench", "--suite", "reactor", "--backends", "epoll", "--target", addr,
		"--repeats", "1", "--duration", "100ms", "--out", out)
	if code != 1 || !strings.Contains(stderr, "recorded errors") || !strings.Contains(stderr, "EchoClosed/backend=epoll/conns=1/size=64") {
		t.Fatalf("exit %d, stderr %q; want 1 and the erring benchmarks named", code, stderr)
	}
	f, err := results.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range f.Benchmarks {
		if b.Scenario == "echo-closed" && (b.Repeats[0].Errors == 0 || b.Repeats[0].Ops != 0) {
			t.Errorf("%s: ops %d errors %d; every message was corrupted", b.Key(), b.Repeats[0].Ops, b.Repeats[0].Errors)
		}
	}
}

// TestBenchInProcessReactor measures a real back-end in-process.
func TestBenchInProcessReactor(t *testing.T) {
	benchNoLeaks(t)
	out := t.TempDir()
	code, stdout, stderr := benchCLI(t, "bench", "--suite", "reactor", "--backends", "stdnet", "--in-process",
		"--repeats", "1", "--duration", "100ms", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	f, err := results.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Benchmarks) != 4 {
		t.Errorf("%d benchmarks, want 4 (2 closed, 1 open, 1 poetry)", len(f.Benchmarks))
	}
	for _, b := range f.Benchmarks {
		if b.Repeats[0].Ops == 0 || b.Repeats[0].Errors != 0 || b.Repeats[0].ClientCores != 0 {
			t.Errorf("%s: %+v", b.Key(), b.Repeats[0])
		}
	}
}

// TestBenchStoreSQLite measures one store back-end on SQLite.
func TestBenchStoreSQLite(t *testing.T) {
	benchNoLeaks(t)
	out := t.TempDir()
	code, stdout, stderr := benchCLI(t, "bench", "--suite", "store", "--backends", "sql", "--dialects", "sqlite",
		"--repeats", "1", "--duration", "100ms", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	f, err := results.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Benchmarks) != 7 || len(f.Environment.Databases) != 1 || !strings.HasPrefix(f.Environment.Databases[0].Flavor, "SQLite ") {
		t.Errorf("%d benchmarks, databases %+v; want the 7 quick operations on SQLite", len(f.Benchmarks), f.Environment.Databases)
	}
	for _, b := range f.Benchmarks {
		if b.Dialect != "sqlite" || b.Repeats[0].Ops == 0 || b.Repeats[0].Errors != 0 {
			t.Errorf("%s: %+v", b.Key(), b.Repeats[0])
		}
	}
}

// TestBenchPushesMetrics runs with --metrics-addr and --push-url: the
// metrics endpoint is announced on loopback, and the final figures reach
// the Pushgateway under {job="twistbench", run_id} of the results file.
func TestBenchPushesMetrics(t *testing.T) {
	benchNoLeaks(t)
	var mu sync.Mutex
	var pushes []string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		pushes = append(pushes, r.Method+" "+r.URL.Path+" "+strconv.Itoa(len(body)))
		mu.Unlock()
	}))
	t.Cleanup(gw.Close)
	addr := echoTarget(t, false)
	out := t.TempDir()
	code, stdout, stderr := benchCLI(t, "bench", "--suite", "reactor", "--backends", "gnet", "--target", addr,
		"--repeats", "1", "--duration", "100ms", "--out", out, "--metrics-addr", ":0", "--push-url", gw.URL)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "metrics: http://127.0.0.1:") {
		t.Errorf("no loopback metrics endpoint announced:\n%s", stderr)
	}
	f, err := results.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := "PUT /metrics/job/twistbench/run_id/" + f.RunID + " "
	if len(pushes) != 1 || !strings.HasPrefix(pushes[0], want) || strings.HasSuffix(pushes[0], " 0") {
		t.Errorf("pushes %q, want one non-empty %q", pushes, want)
	}
}
