package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twistbench/twistbench/impls/httpapi"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
	"github.com/twistbench/twistbench/impls/store/sqlstore"
)

// httpData is a data set that seeds SQLite in milliseconds.
var httpData = DataSet{Hosts: 50, Groups: 2, Users: 5, Parents: 2, Children: 1}

// fakeAPI is a plain net/http stand-in for the front-ends' echo, poem and
// host endpoints, answering for httpData, with one deliberate fault.
type fakeAPI struct {
	poem  []byte
	delay time.Duration // before every answer
	// fault is "" (correct), "echo-byte" (one echoed byte flipped),
	// "status" (500 with the right body), "poem-short" (the poem less its
	// last byte), "read-host" (another host's JSON), "write-port" (the
	// host with its old port), "stall" (no answer until released).
	fault   string
	release chan struct{}
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.delay > 0 {
		time.Sleep(f.delay) // the synthetic server's fixed service time
	}
	status := http.StatusOK
	if f.fault == "status" {
		status = http.StatusInternalServerError
	}
	if f.fault == "stall" {
		select {
		case <-f.release:
		case <-r.Context().Done():
		}
		return
	}
	host := func(name string, port int) {
		i, err := strconv.Atoi(strings.TrimPrefix(name, "host-"))
		if err != nil || i < 0 || i >= httpData.Hosts {
			http.NotFound(w, r)
			return
		}
		if f.fault == "read-host" {
			i = (i + 1) % httpData.Hosts
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"id": i + 1, "hostname": hostName(i), "ip_addr": seededIP(i), "port": port})
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/echo":
		b, _ := io.ReadAll(r.Body)
		if f.fault == "echo-byte" && len(b) > 10 {
			b[10] ^= 1
		}
		w.WriteHeader(status)
		w.Write(b)
	case r.Method == http.MethodGet && r.URL.Path == "/poem":
		p := f.poem
		if f.fault == "poem-short" {
			p = p[:len(p)-1]
		}
		w.WriteHeader(status)
		w.Write(p)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/hosts/"):
		host(strings.TrimPrefix(r.URL.Path, "/hosts/"), 22)
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/hosts/"):
		var req struct{ Port int }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if f.fault == "write-port" {
			req.Port = 22
		}
		host(strings.TrimPrefix(r.URL.Path, "/hosts/"), req.Port)
	default:
		http.NotFound(w, r)
	}
}

// fakeServer serves f on a loopback port until the test ends.
func fakeServer(t *testing.T, f *fakeAPI) string {
	t.Helper()
	if f.poem == nil {
		f.poem = Poem(HTTPPoemSize)
	}
	f.release = make(chan struct{})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(f.release) }) // runs first: unblocks a stall
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestHTTPKnownDelay(t *testing.T) {
	const delay = 10 * time.Millisecond
	const conns = 4
	addr := fakeServer(t, &fakeAPI{delay: delay})
	m, err := HTTP(t.Context(), HTTPConfig{
		Window: Window{Warmup: 100 * time.Millisecond, Duration: time.Second},
		Addr:   addr, Scenario: "poem", Conns: conns,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Errors != 0 {
		t.Errorf("errors = %d, want 0", m.Errors)
	}
	p50 := time.Duration(m.Hist.ValueAtPercentile(50))
	if p50 < delay || p50 > 2*delay {
		t.Errorf("p50 = %v, want within [%v, %v]", p50, delay, 2*delay)
	}
	if lo := time.Duration(m.Hist.Min()); lo < delay {
		t.Errorf("min latency %v is below the server's fixed delay %v", lo, delay)
	}
	// Each connection completes at most one request per delay.
	if most := int64(conns * time.Second / delay); m.Ops < 10 || m.Ops > most {
		t.Errorf("ops = %d, want between 10 and %d", m.Ops, most)
	}
	if m.Bytes != m.Ops*HTTPPoemSize {
		t.Errorf("bytes = %d, want ops x poem = %d", m.Bytes, m.Ops*HTTPPoemSize)
	}
	if m.Hist.TotalCount() != m.Ops {
		t.Errorf("histogram holds %d values, ops = %d", m.Hist.TotalCount(), m.Ops)
	}
}

// TestHTTPWrongResponsesAreErrors checks that every response is checked:
// each fault turns every request of its scenario into an error, and the
// correct server, for contrast, gives none.
func TestHTTPWrongResponsesAreErrors(t *testing.T) {
	for _, tc := range []struct {
		scenario, fault string
	}{
		{scenario: "echo", fault: ""},
		{scenario: "poem", fault: ""},
		{scenario: "read", fault: ""},
		{scenario: "write", fault: ""},
		{scenario: "echo", fault: "echo-byte"},
		{scenario: "echo", fault: "status"},
		{scenario: "poem", fault: "poem-short"},
		{scenario: "poem", fault: "status"},
		{scenario: "read", fault: "read-host"},
		{scenario: "read", fault: "status"},
		{scenario: "write", fault: "write-port"},
	} {
		t.Run(tc.scenario+"/"+cmpOr(tc.fault, "correct"), func(t *testing.T) {
			addr := fakeServer(t, &fakeAPI{fault: tc.fault})
			var log strings.Builder
			m, err := HTTP(t.Context(), HTTPConfig{
				Window: Window{Warmup: 20 * time.Millisecond, Duration: 150 * time.Millisecond},
				Addr:   addr, Scenario: tc.scenario, Conns: 2, Data: httpData, ErrorLog: &log,
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.fault == "" {
				if m.Errors != 0 || m.Ops == 0 {
					t.Errorf("ops %d, errors %d; want some ops and no error (%s)", m.Ops, m.Errors, log.String())
				}
				return
			}
			if m.Ops != 0 || m.Errors == 0 {
				t.Errorf("ops %d, errors %d; want every request an error", m.Ops, m.Errors)
			}
			if !strings.Contains(log.String(), "first error") {
				t.Errorf("error log %q does not report the first error", log.String())
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestHTTPStalledServerIsErrors: requests that time out count as errors,
// so a stalled server does not show as an empty but clean window.
func TestHTTPStalledServerIsErrors(t *testing.T) {
	addr := fakeServer(t, &fakeAPI{fault: "stall"})
	m, err := HTTP(t.Context(), HTTPConfig{
		Window: Window{Duration: 300 * time.Millisecond},
		Addr:   addr, Scenario: "poem", Conns: 2, Timeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Ops != 0 || m.Errors < 2 {
		t.Errorf("ops %d, errors %d; want no op and an error per timed-out request", m.Ops, m.Errors)
	}
}

func TestHTTPRefusedConnectionsAreErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m, err := HTTP(t.Context(), HTTPConfig{Window: Window{Duration: 50 * time.Millisecond}, Addr: addr, Scenario: "echo", Conns: 2})
	if err != nil {
		t.Fatal(err)
	}
	if m.Ops != 0 || m.Errors == 0 {
		t.Errorf("ops %d, errors %d; want only errors", m.Ops, m.Errors)
	}
}

func TestHTTPConfigErrors(t *testing.T) {
	w := Window{Duration: time.Second}
	for _, tc := range []struct {
		name string
		cfg  HTTPConfig
		want string
	}{
		{"addr", HTTPConfig{Window: w, Scenario: "echo", Conns: 1}, "no address"},
		{"conns", HTTPConfig{Window: w, Addr: "127.0.0.1:1", Scenario: "echo"}, "0 connections"},
		{"duration", HTTPConfig{Addr: "127.0.0.1:1", Scenario: "echo", Conns: 1}, "need a positive window"},
		{"scenario", HTTPConfig{Window: w, Addr: "127.0.0.1:1", Scenario: "delete", Conns: 1}, `unknown scenario "delete"`},
		{"timeout", HTTPConfig{Window: w, Addr: "127.0.0.1:1", Scenario: "poem", Conns: 1, Timeout: -1}, "timeout -1ns is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := HTTP(t.Context(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestHTTPCancelled(t *testing.T) {
	addr := fakeServer(t, &fakeAPI{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := HTTP(ctx, HTTPConfig{Window: Window{Duration: time.Minute}, Addr: addr, Scenario: "poem", Conns: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

// httpChildEnv makes the test binary, run by HTTPChild, serve instead of
// testing (see TestHTTPChildHelper).
const httpChildEnv = "TWISTBENCH_TEST_HTTP_CHILD"

// TestHTTPChildHelper is not a test: it is the child HTTP server of the
// tests below, in the test binary, as `harness bench http-server` is in
// the harness. It serves the real front-ends over sqlstore.
func TestHTTPChildHelper(t *testing.T) {
	if os.Getenv(httpChildEnv) != "1" {
		t.Skip("the child server of the HTTP tests; runs only when they start it")
	}
	spec, err := ParseHTTPSpec(flag.Args(), os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, cancel := UntilEOF(context.Background(), os.Stdin)
	defer cancel()
	if err := ServeHTTP(ctx, spec, serveFrontEnd, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Exit here: fasthttp keeps a process-wide goroutine (its Date
	// header clock) that the test main's leak check would report.
	os.Exit(0)
}

// serveFrontEnd is the test's HTTPServeFunc: impls/httpapi over sqlstore.
func serveFrontEnd(ctx context.Context, spec HTTPSpec) (string, func() error, error) {
	cfg := httpapi.Config{Poem: Poem(spec.PoemSize)}
	var closers []func() error
	if spec.Store != "" {
		db, err := sqlconn.Open(ctx, spec.DSN)
		if err != nil {
			return "", nil, err
		}
		st, err := sqlstore.Open(ctx, db)
		if err != nil {
			return "", nil, errors.Join(err, db.SQL.Close())
		}
		cfg.Store = st
		closers = append(closers, st.Close, db.SQL.Close)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv, err := httpapi.Start(httpapi.Engine(spec.Engine), ln, cfg)
	if err != nil {
		return "", nil, err
	}
	return ln.Addr().String(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errs := []error{srv.Shutdown(ctx)}
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}, nil
}

func httpChildLauncher(t *testing.T) HTTPChild {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var cpus []int
	if AvailableCPUs() >= 2 {
		cpus = []int{0}
	}
	return HTTPChild{Child{
		Command: []string{exe, "-test.run=^TestHTTPChildHelper$", "--"},
		Env:     append(os.Environ(), httpChildEnv+"=1"),
		CPUs:    cpus, Stderr: os.Stderr,
	}}
}

// seededSQLite returns the DSN of a SQLite database seeded with data.
func seededSQLite(t *testing.T, data DataSet) (string, store.Store) {
	t.Helper()
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "inventory.db")
	db, err := sqlconn.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.SQL.Close() })
	st, err := sqlstore.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := Seed(t.Context(), st, data); err != nil {
		t.Fatal(err)
	}
	return dsn, st
}

// TestHTTPFrontEnds measures both real front-ends, each in a child process
// over a seeded SQLite database, on every scenario: no errors, the bytes
// add up, the child's CPU is measured, and the writes reached the database.
func TestHTTPFrontEnds(t *testing.T) {
	dsn, st := seededSQLite(t, httpData)
	l := httpChildLauncher(t)
	for _, e := range httpapi.Engines {
		for _, sc := range HTTPScenarios {
			t.Run(string(e)+"/"+sc, func(t *testing.T) {
				spec := HTTPSpec{Engine: string(e), PoemSize: HTTPPoemSize}
				if sc == "read" || sc == "write" {
					spec.Store, spec.Dialect, spec.DSN = "sql", store.SQLite, dsn
				}
				srv, err := l.LaunchHTTP(t.Context(), spec)
				if err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := srv.Close(); err != nil {
						t.Error(err)
					}
				}()
				var log strings.Builder
				m, err := HTTP(t.Context(), HTTPConfig{
					Window: Window{Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, CPU: ServerCPU{srv}},
					Addr:   srv.Addrs()[0], Scenario: sc, Conns: 4, Data: httpData, ErrorLog: &log,
				})
				if err != nil {
					t.Fatal(err)
				}
				if m.Ops == 0 || m.Errors != 0 {
					t.Fatalf("ops %d, errors %d; want ops and no error (%s)", m.Ops, m.Errors, log.String())
				}
				if !m.ServerCPUOK || m.ServerCPU <= 0 {
					t.Errorf("server CPU %v (ok %v); want the child's CPU measured", m.ServerCPU, m.ServerCPUOK)
				}
				switch sc {
				case "echo":
					if m.Bytes != m.Ops*HTTPEchoSize {
						t.Errorf("bytes %d, want ops x %d = %d", m.Bytes, HTTPEchoSize, m.Ops*HTTPEchoSize)
					}
				case "poem":
					if m.Bytes != m.Ops*HTTPPoemSize {
						t.Errorf("bytes %d, want ops x %d = %d", m.Bytes, HTTPPoemSize, m.Ops*HTTPPoemSize)
					}
				case "write":
					hs, err := st.HostsPage(t.Context(), 0, httpData.Hosts)
					if err != nil {
						t.Fatal(err)
					}
					changed := 0
					for _, h := range hs {
						if h.Port != 22 {
							changed++
						}
					}
					// Each of the 4 workers writes first to a host of its
					// own, and no write sets port 22.
					if want := min(int(m.Ops), 4); changed < want {
						t.Errorf("%d hosts have a new port after %d writes, want at least %d", changed, m.Ops, want)
					}
				}
			})
		}
	}
}

func TestParseHTTPSpec(t *testing.T) {
	env := func(dsn string) func(string) string {
		return func(k string) string {
			if k == HTTPDSNEnv {
				return dsn
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		dsn  string
		want HTTPSpec
		err  string
	}{
		{
			name: "store",
			args: []string{"--store", "sql", "--dialect", "sqlite", "--proto", "http", "--reactor", "nethttp", "--listeners", "1", "--poem-size", "10"},
			dsn:  "sqlite:///x.db",
			want: HTTPSpec{Engine: "nethttp", Store: "sql", Dialect: store.SQLite, DSN: "sqlite:///x.db", PoemSize: 10},
		},
		{
			name: "no store",
			args: []string{"--store", "", "--dialect", "", "--proto", "http", "--reactor", "fasthttp", "--listeners", "1", "--poem-size", "1024"},
			want: HTTPSpec{Engine: "fasthttp", PoemSize: 1024},
		},
		{name: "proto", args: []string{"--proto", "echo", "--reactor", "fasthttp"}, err: `--proto "echo", want http`},
		{name: "engine", args: []string{"--proto", "http"}, err: "no engine"},
		{name: "listeners", args: []string{"--proto", "http", "--reactor", "fasthttp", "--listeners", "3"}, err: "--listeners 3"},
		{name: "unknown", args: []string{"--port", "1"}, err: `unknown flag "--port"`},
		{name: "missing value", args: []string{"--proto"}, err: "flag --proto needs a value"},
		{name: "dsn without store", args: []string{"--proto", "http", "--reactor", "fasthttp"}, dsn: "sqlite:///x.db", err: "give both or neither"},
		{name: "store without dsn", args: []string{"--store", "sql", "--proto", "http", "--reactor", "fasthttp"}, err: "give both or neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHTTPSpec(tc.args, env(tc.dsn))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestHTTPGroupsKeys runs the suite's groups through the Runner against
// the fake server and checks the benchmarks it produces, key by key, and
// that a database that cannot be prepared skips its cases with the reason.
func TestHTTPGroupsKeys(t *testing.T) {
	var mu sync.Mutex
	var launched []HTTPSpec
	l := HTTPInProcess(func(_ context.Context, spec HTTPSpec) (string, func() error, error) {
		mu.Lock()
		launched = append(launched, spec)
		mu.Unlock()
		srv := httptest.NewServer(&fakeAPI{poem: Poem(spec.PoemSize)})
		return strings.TrimPrefix(srv.URL, "http://"), func() error { srv.Close(); return nil }, nil
	})
	fx := &HTTPFixtures{Data: httpData, Prepare: func(_ context.Context, backend string, d store.Dialect, _ DataSet) (string, func() error, error) {
		if d == store.Postgres {
			return "", nil, errors.New("no Docker engine")
		}
		return "dsn-of-" + backend, func() error { return nil }, nil
	}}
	p := Profile{Warmup: 10 * time.Millisecond, Duration: 40 * time.Millisecond, HTTPConns: []int{1, 2}}
	targets := []HTTPTarget{{Store: "sql", Dialect: store.SQLite}, {Store: "sql", Dialect: store.Postgres}}
	benches, skipped, err := (&Runner{Repeats: 1}).Run(t.Context(), HTTPGroups(p, []string{"fasthttp", "nethttp"}, targets, fx, l, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.Close(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, b := range benches {
		keys = append(keys, b.Key())
		if r := b.Repeats[0]; b.Suite != "http" || r.Ops == 0 || r.Errors != 0 || r.ClientCores != 0 {
			t.Errorf("%s: suite %q, repeat %+v; want http, ops, no error, not judged for saturation (in-process)", b.Key(), b.Suite, r)
		}
	}
	var want []string
	for _, sc := range []string{"Echo", "Poem"} {
		size := map[string]int{"Echo": HTTPEchoSize, "Poem": HTTPPoemSize}[sc]
		for _, c := range []int{1, 2} {
			for _, e := range []string{"fasthttp", "nethttp"} {
				want = append(want, fmt.Sprintf("HTTP%s/backend=%s/conns=%d/size=%d", sc, e, c, size))
			}
		}
	}
	for _, sc := range []string{"Read", "Write"} {
		for _, c := range []int{1, 2} {
			for _, e := range []string{"fasthttp", "nethttp"} {
				want = append(want, fmt.Sprintf("HTTP%s/backend=%s/dialect=sqlite/store=sql/conns=%d", sc, e, c))
			}
		}
	}
	if strings.Join(keys, "\n") != strings.Join(want, "\n") {
		t.Errorf("keys:\n%s\nwant:\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "HTTPRead/backend=fasthttp/dialect=postgres/store=sql/conns=1: no Docker engine") {
		t.Errorf("skipped %q; want the first postgres case, once, with its reason", skipped)
	}
	for _, s := range launched {
		if s.Store != "" && s.DSN != "dsn-of-"+s.Store {
			t.Errorf("launched %+v without the prepared database", s)
		}
	}
}

// wrkOutput is wrk 4.1.0's output against an endpoint that answers 404,
// with a socket errors line (as wrk prints it) added.
const wrkOutput = `Running 1s test @ http://127.0.0.1:33961/hosts/nope
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.22ms   12.64ms  79.83ms   91.55%
    Req/Sec    14.28k     4.94k   20.75k    60.00%
  Latency Distribution
     50%  179.00us
     75%  520.00us
     90%    8.49ms
     99%   66.34ms
  14320 requests in 1.03s, 2.29MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 14320
Requests/sec:  13916.53
Transfer/sec:      2.23MB
`

func TestParseWrk(t *testing.T) {
	r, err := ParseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]time.Duration{50: 179 * time.Microsecond, 75: 520 * time.Microsecond, 90: 8490 * time.Microsecond, 99: 66340 * time.Microsecond}
	for p, d := range want {
		if got := r.Latency[p]; got != d {
			t.Errorf("p%d = %v, want %v", p, got, d)
		}
	}
	if r.Requests != 14320 || r.Elapsed != 1030*time.Millisecond || r.RequestsPerSec != 13916.53 || r.Non2xx != 14320 || r.SocketErrors != 5 {
		t.Errorf("got %d requests in %v, %v/s, %d non-2xx, %d socket errors; want 14320 in 1.03s, 13916.53/s, 14320, 5",
			r.Requests, r.Elapsed, r.RequestsPerSec, r.Non2xx, r.SocketErrors)
	}
	for _, tc := range []struct{ name, out, err string }{
		{"empty", "", "no Requests/sec"},
		{"no latency", "  10 requests in 1.00s, 1KB read\nRequests/sec: 10.0\n", "no latency distribution"},
		{"bad duration", "  Latency Distribution\n     50%  12.00xs\n", `"12.00xs" is not a duration`},
		{"bad rate", "Requests/sec:  fast\n", `Requests/sec "fast"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseWrk(tc.out); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// fakeWrk writes a shell script standing in for wrk: it records its
// arguments and Lua script beside itself, and prints wrkOutput; with
// hangFirst, its first run hangs (as wrk sometimes does) instead.
func fakeWrk(t *testing.T, hangFirst bool) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "wrk")
	if err := os.WriteFile(path+".out", []byte(wrkOutput), 0o600); err != nil {
		t.Fatal(err)
	}
	hang := ""
	if hangFirst {
		hang = `[ -e "$0.ran" ] || { touch "$0.ran"; exec sleep 60; }` + "\n"
	}
	script := "#!/bin/sh\n" + hang +
		`printf '%s\n' "$@" > "$0.args"` + "\n" +
		`for a; do case "$a" in *.lua) cp "$a" "$0.lua";; esac; done` + "\n" +
		`cat "$0.out"` + "\n"
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWrkRun(t *testing.T) {
	path := fakeWrk(t, false)
	r, err := Wrk{Path: path, URL: "http://127.0.0.1:1/echo", Conns: 16, Duration: 2 * time.Second,
		Method: "POST", Body: []byte("hello"), ContentType: "application/octet-stream"}.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r.RequestsPerSec != 13916.53 {
		t.Errorf("rate %v, want wrkOutput's", r.RequestsPerSec)
	}
	args, _ := os.ReadFile(path + ".args")
	for _, want := range []string{"-t1\n", "-c16\n", "-d2s\n", "--latency\n", "http://127.0.0.1:1/echo\n"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("wrk arguments %q lack %q", args, want)
		}
	}
	lua, _ := os.ReadFile(path + ".lua")
	for _, want := range []string{`wrk.method = "POST"`, `wrk.body = "hello"`, `wrk.headers["Content-Type"] = "application/octet-stream"`} {
		if !strings.Contains(string(lua), want) {
			t.Errorf("Lua script %q lacks %q", lua, want)
		}
	}
	for _, tc := range []struct {
		name string
		w    Wrk
		want string
	}{
		{"url", Wrk{Path: path, Conns: 1, Duration: time.Second}, "no URL"},
		{"conns", Wrk{Path: path, URL: "http://x/", Threads: 2, Conns: 1, Duration: time.Second}, "1 connections for 2 threads"},
		{"duration", Wrk{Path: path, URL: "http://x/", Conns: 1, Duration: 500 * time.Millisecond}, "at least 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.w.Run(t.Context()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestWrkRunRetriesAHang: a wrk that does not exit is interrupted after
// its grace and run once more, and the result says so.
func TestWrkRunRetriesAHang(t *testing.T) {
	path := fakeWrk(t, true)
	r, err := Wrk{Path: path, URL: "http://127.0.0.1:1/poem", Conns: 1, Duration: time.Second, Grace: 100 * time.Millisecond}.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 14320 || !strings.Contains(r.Output, "attempt 2") || !strings.Contains(r.Output, "did not exit within 1.1s") {
		t.Errorf("requests %d, output:\n%s\nwant wrkOutput's figures from a second attempt, and why", r.Requests, r.Output)
	}
}

// TestWrkCrossCheck measures one front-end (fasthttp, in a child process)
// on GET /poem and POST /echo with the harness's generator and then with
// wrk -t1 -c16 -d2s, and logs both side by side. It asserts only that
// both ran cleanly and saw the server answer: speed is never asserted in
// tests. Without wrk it skips, unless TWISTBENCH_REQUIRE_WRK=1.
func TestWrkCrossCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("runs wrk for seconds")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		if os.Getenv("TWISTBENCH_REQUIRE_WRK") == "1" {
			t.Fatalf("TWISTBENCH_REQUIRE_WRK=1 but %v (apt-get install wrk)", err)
		}
		t.Skipf("wrk is not installed (%v); apt-get install wrk, or set TWISTBENCH_REQUIRE_WRK=1 to fail instead", err)
	}
	const conns = 16
	const window = 2 * time.Second
	srv, err := httpChildLauncher(t).LaunchHTTP(t.Context(), HTTPSpec{Engine: "fasthttp", PoemSize: HTTPPoemSize})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	}()
	addr := srv.Addrs()[0]
	for _, ep := range []struct {
		scenario, method string
		body             []byte
	}{
		{"poem", "GET", nil},
		{"echo", "POST", Poem(HTTPEchoSize)},
	} {
		t.Run(ep.scenario, func(t *testing.T) {
			var log strings.Builder
			m, err := HTTP(t.Context(), HTTPConfig{
				Window: Window{Warmup: 200 * time.Millisecond, Duration: window},
				Addr:   addr, Scenario: ep.scenario, Conns: conns, ErrorLog: &log,
			})
			if err != nil {
				t.Fatal(err)
			}
			r, err := Wrk{Path: wrk, URL: "http://" + addr + "/" + ep.scenario, Conns: conns, Duration: window,
				Method: ep.method, Body: ep.body, ContentType: "application/octet-stream"}.Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			ours := float64(m.Ops) / m.Duration.Seconds()
			t.Logf("%s %s at conns=%d:\n  twistbench %8.0f req/s  p50 %v  p90 %v  p99 %v  errors %d\n  wrk        %8.0f req/s  p50 %v  p90 %v  p99 %v  errors %d",
				ep.method, "/"+ep.scenario, conns,
				ours, time.Duration(m.Hist.ValueAtPercentile(50)), time.Duration(m.Hist.ValueAtPercentile(90)), time.Duration(m.Hist.ValueAtPercentile(99)), m.Errors,
				r.RequestsPerSec, r.Latency[50], r.Latency[90], r.Latency[99], r.Non2xx+r.SocketErrors)
			if m.Errors != 0 || ours <= 0 {
				t.Errorf("twistbench: %d errors, %.0f req/s; want none and a positive rate (%s)", m.Errors, ours, log.String())
			}
			if r.Non2xx != 0 || r.SocketErrors != 0 || r.RequestsPerSec <= 0 || r.Latency[50] <= 0 {
				t.Errorf("wrk: %d non-2xx, %d socket errors, %.0f req/s, p50 %v; want no error and positive figures\n%s",
					r.Non2xx, r.SocketErrors, r.RequestsPerSec, r.Latency[50], r.Output)
			}
		})
	}
}

// ExampleParseWrk reads the figures a cross-check compares off wrk's
// report (wrk -t1 -c4 -d1s --latency URL).
func ExampleParseWrk() {
	r, err := ParseWrk(wrkOutput)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.0f req/s, p50 %v, p99 %v, %d non-2xx, %d socket errors\n",
		r.RequestsPerSec, r.Latency[50], r.Latency[99], r.Non2xx, r.SocketErrors)
	// Output: 13917 req/s, p50 179µs, p99 66.34ms, 14320 non-2xx, 5 socket errors
}
