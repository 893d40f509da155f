package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/twistbench/twistbench/bench/results"
	"github.com/twistbench/twistbench/impls/store"
)

// The HTTP suite measures the HTTP front-ends (impls/httpapi) end to end:
// the load is real HTTP/1.1 over keep-alive connections, generated with
// fasthttp's client, and every response is checked (status, and the body
// byte for byte or field by field), so a front-end that answers fast but
// wrong shows errors, not speed.
//
// Its scenarios, in report order:
//
//	echo   POST /echo with a HTTPEchoSize-byte body; the same bytes must come back
//	poem   GET /poem; the HTTPPoemSize-byte Poem must come back
//	read   GET /hosts/{hostname} of a random seeded host; its hostname and
//	       address must come back
//	write  PATCH /hosts/{hostname} {"port": N}; the host must come back with
//	       port N
//
// echo and poem touch no store and run once per engine; read and write run
// per engine x store back-end x dialect over a database seeded with
// DefaultDataSet.
//
// The write scenario is a PATCH rather than POST+DELETE pairs: one request
// is one operation (a pair would mix two latencies into one figure), and it
// is a real UPDATE every time. Each connection's worker owns its own hosts
// (host w, w+C, w+2C, ...; shared only when there are more connections
// than hosts), and the ports come from one process-wide counter
// (1024 + n mod 64000), so a write always sets a port other than the one
// the host has unless exactly a multiple of 64000 writes passed in between;
// even then it is still a matched row and a 200 (the store contract counts
// matched rows, clientFoundRows on MySQL), never a spurious error.
var HTTPScenarios = []string{"echo", "poem", "read", "write"}

// The sizes of the HTTP suite's fixed payloads.
const (
	HTTPEchoSize = 64
	HTTPPoemSize = 1 << 10
)

// HTTPConfig describes one HTTP load: Conns workers, each with its own
// keep-alive connection to Addr, sending Scenario's request back to back
// (a closed loop) and checking every response.
type HTTPConfig struct {
	Window
	// Addr is the server's host:port.
	Addr string
	// Scenario is one of HTTPScenarios.
	Scenario string
	// Conns is the number of concurrent connections (and workers).
	Conns int
	// Poem is what GET /poem must return (poem); default Poem(HTTPPoemSize).
	Poem []byte
	// Data is the data set the server's store was seeded with (read,
	// write); default DefaultDataSet.
	Data DataSet
	// Timeout bounds each request; 0 means 5 s. A request still running
	// when the window closes is given at most Grace more.
	Timeout time.Duration
	// ErrorLog, if set, hears the first failed response of the run, so
	// that an error count comes with its cause.
	ErrorLog io.Writer
}

func (c *HTTPConfig) check() error {
	switch {
	case c.Addr == "":
		return errors.New("http: no address")
	case c.Conns < 1:
		return fmt.Errorf("http: %d connections, need at least 1", c.Conns)
	case c.Duration <= 0:
		return fmt.Errorf("http: duration %v, need a positive window", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("http: warm-up %v is negative", c.Warmup)
	case c.Timeout < 0:
		return fmt.Errorf("http: timeout %v is negative", c.Timeout)
	}
	if _, ok := httpOps[c.Scenario]; !ok {
		return fmt.Errorf("http: unknown scenario %q (known: %v)", c.Scenario, HTTPScenarios)
	}
	if (c.Scenario == "read" || c.Scenario == "write") && c.Data.Hosts < 1 {
		return errors.New("http: the data set has no hosts")
	}
	return nil
}

// httpWorker is one connection's request loop state.
type httpWorker struct {
	cfg  *HTTPConfig
	id   int
	rng  *rand.Rand
	seq  int
	buf  []byte // the echo body sent
	want []byte // the expected body, when checked byte for byte
	host int    // the host the request names, for read and write
	port int    // the port a write sets
	mine []int  // the hosts a write worker owns
}

// httpOp prepares req for the worker's next request and checks resp.
type httpOp struct {
	prepare func(w *httpWorker, req *fasthttp.Request)
	check   func(w *httpWorker, resp *fasthttp.Response) error
}

// writePorts numbers the writes of this process (see HTTPScenarios).
var writePorts atomic.Uint64

// seededIP is the address Seed gives host i.
func seededIP(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// hostJSON is what the read and write checks read of a host.
type hostJSON struct {
	Hostname string `json:"hostname"`
	IPAddr   string `json:"ip_addr"`
	Port     int    `json:"port"`
}

func checkStatus(resp *fasthttp.Response) error {
	if s := resp.StatusCode(); s != fasthttp.StatusOK {
		return fmt.Errorf("status %d, want 200 (body %.120q)", s, resp.Body())
	}
	return nil
}

func checkBody(w *httpWorker, resp *fasthttp.Response) error {
	if err := checkStatus(resp); err != nil {
		return err
	}
	if got := resp.Body(); !bytes.Equal(got, w.want) {
		i := 0
		for i < len(got) && i < len(w.want) && got[i] == w.want[i] {
			i++
		}
		return fmt.Errorf("body of %d bytes differs from the %d expected at byte %d", len(got), len(w.want), i)
	}
	return nil
}

func checkHost(w *httpWorker, resp *fasthttp.Response, port bool) error {
	if err := checkStatus(resp); err != nil {
		return err
	}
	var h hostJSON
	if err := json.Unmarshal(resp.Body(), &h); err != nil {
		return fmt.Errorf("host JSON: %w (body %.120q)", err, resp.Body())
	}
	switch {
	case h.Hostname != hostName(w.host):
		return fmt.Errorf("hostname %q, want %q", h.Hostname, hostName(w.host))
	case h.IPAddr != seededIP(w.host):
		return fmt.Errorf("%s: ip_addr %q, want %q", h.Hostname, h.IPAddr, seededIP(w.host))
	case port && h.Port != w.port:
		return fmt.Errorf("%s: port %d after the PATCH, want %d", h.Hostname, h.Port, w.port)
	}
	return nil
}

var httpOps = map[string]httpOp{
	"echo": {
		prepare: func(w *httpWorker, req *fasthttp.Request) {
			// A body unique to this request, so a response meant for
			// another request (or another connection) is caught.
			b := strconv.AppendInt(append(w.buf[:0], 'w'), int64(w.id), 10)
			b = strconv.AppendInt(append(b, '-'), int64(w.seq), 10)
			for i := len(b); i < HTTPEchoSize; i++ {
				b = append(b, 'a'+byte(i%26))
			}
			w.buf, w.want = b, b
			req.Header.SetMethod(fasthttp.MethodPost)
			req.URI().SetPath("/echo")
			req.Header.SetContentType("application/octet-stream")
			req.SetBody(w.buf)
		},
		check: checkBody,
	},
	"poem": {
		prepare: func(w *httpWorker, req *fasthttp.Request) {
			w.want = w.cfg.Poem
			req.Header.SetMethod(fasthttp.MethodGet)
			req.URI().SetPath("/poem")
		},
		check: checkBody,
	},
	"read": {
		prepare: func(w *httpWorker, req *fasthttp.Request) {
			w.host = w.rng.IntN(w.cfg.Data.Hosts)
			req.Header.SetMethod(fasthttp.MethodGet)
			req.URI().SetPath("/hosts/" + hostName(w.host))
		},
		check: func(w *httpWorker, resp *fasthttp.Response) error { return checkHost(w, resp, false) },
	},
	"write": {
		prepare: func(w *httpWorker, req *fasthttp.Request) {
			w.host = w.mine[w.seq%len(w.mine)]
			w.port = 1024 + int(writePorts.Add(1)%64000)
			req.Header.SetMethod(fasthttp.MethodPatch)
			req.URI().SetPath("/hosts/" + hostName(w.host))
			req.Header.SetContentType("application/json")
			w.buf = append(strconv.AppendInt(append(w.buf[:0], `{"port":`...), int64(w.port), 10), '}')
			req.SetBody(w.buf)
		},
		check: func(w *httpWorker, resp *fasthttp.Response) error { return checkHost(w, resp, true) },
	},
}

// HTTP runs the HTTP load and returns what it measured. A failed request,
// a wrong status and a wrong byte are all errors in the measurement, never
// returned: the error result is for a configuration that cannot run, or a
// cancelled ctx. An error counts when its request started inside the
// window (a server that stalls until the requests time out shows as
// errors, not as an empty window); a success counts when it started and
// ended inside it.
func HTTP(ctx context.Context, cfg HTTPConfig) (Measurement, error) {
	if cfg.Poem == nil {
		cfg.Poem = Poem(HTTPPoemSize)
	}
	if cfg.Data == (DataSet{}) {
		cfg.Data = DefaultDataSet
	}
	if err := cfg.check(); err != nil {
		return Measurement{}, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	op := httpOps[cfg.Scenario]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	client := &fasthttp.HostClient{
		Addr:     cfg.Addr,
		MaxConns: cfg.Conns,
		// Every failure is counted: no retry may hide one.
		MaxIdemponentCallAttempts: 1,
		MaxConnWaitTimeout:        cfg.Timeout,
		// The pool's cleaner goroutine sleeps this long between rounds
		// and outlives the last connection by up to as much, so it is
		// short; in a closed loop a connection is idle only between one
		// worker's request and the next (microseconds), never this long.
		MaxIdleConnDuration:      100 * time.Millisecond,
		MaxResponseBodySize:      max(len(cfg.Poem), 1<<16) + 1<<10,
		NoDefaultUserAgentHeader: true,
		// A plain dialer: fasthttp's default one caches DNS answers in a
		// process-wide goroutine that outlives the run by a minute, and
		// the address is an IP anyway.
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			return (&net.Dialer{Timeout: timeout}).Dial("tcp", addr)
		},
	}
	t := newTally(cfg.Conns, cfg.Observer)
	sched := newSchedule(cfg.Window)
	cpu := sampleCPU(ctx, cfg.CPU, sched)
	run := runSeq.Add(1)
	var logOnce sync.Once
	var wg sync.WaitGroup
	for i := range cfg.Conns {
		w := &httpWorker{cfg: &cfg, id: i, rng: rand.New(rand.NewPCG(uint64(run), uint64(i))), buf: make([]byte, HTTPEchoSize)}
		for h := i; h < cfg.Data.Hosts; h += cfg.Conns {
			w.mine = append(w.mine, h)
		}
		if len(w.mine) == 0 && cfg.Data.Hosts > 0 {
			w.mine = []int{i % cfg.Data.Hosts}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + cfg.Addr + "/")
			for ; ctx.Err() == nil && time.Now().Before(sched.close); w.seq++ {
				op.prepare(w, req)
				begin := time.Now()
				deadline := begin.Add(cfg.Timeout)
				if late := sched.close.Add(Grace); deadline.After(late) {
					deadline = late
				}
				err := client.DoDeadline(req, resp, deadline)
				end := time.Now()
				if err == nil {
					err = op.check(w, resp)
				}
				switch {
				case err != nil && !begin.Before(sched.open):
					t.fail(i)
					if cfg.ErrorLog != nil {
						logOnce.Do(func() {
							fmt.Fprintf(cfg.ErrorLog, "http %s %s: first error: %v\n", cfg.Scenario, cfg.Addr, err)
						})
					}
				case err != nil || !sched.counts(begin, end):
				default:
					t.op(i, end.Sub(begin), len(resp.Body()))
				}
				resp.Reset()
			}
		}()
	}
	wg.Wait()
	client.CloseIdleConnections()
	if err := ctx.Err(); err != nil {
		return Measurement{}, err
	}
	m := t.measurement(cfg.Duration)
	cpu(&m)
	return m, nil
}

// HTTPSpec says which HTTP server a trial needs.
type HTTPSpec struct {
	// Engine is "fasthttp" or "nethttp".
	Engine string
	// Store is the store back-end's registry name, Dialect its
	// database's, and DSN the seeded database; all empty for echo and
	// poem, which touch no store.
	Store   string
	Dialect store.Dialect
	DSN     string
	// PoemSize is the size of the poem GET /poem serves (Poem(PoemSize)).
	PoemSize int
}

// HTTPServeFunc starts the HTTP server spec asks for on a loopback port
// and returns its address and the function that stops it and releases
// what it opened (its store). The CLI builds it from impls/httpapi; the
// bench package does not import the front-ends it measures.
type HTTPServeFunc func(ctx context.Context, spec HTTPSpec) (addr string, stop func() error, err error)

// HTTPLauncher starts a fresh HTTP server for each trial.
type HTTPLauncher interface {
	LaunchHTTP(ctx context.Context, spec HTTPSpec) (Server, error)
}

// HTTPInProcess launches the servers inside this process: no server CPU
// figure (see InProcess).
type HTTPInProcess HTTPServeFunc

// LaunchHTTP implements HTTPLauncher.
func (f HTTPInProcess) LaunchHTTP(ctx context.Context, spec HTTPSpec) (Server, error) {
	addr, stop, err := f(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &httpInProcess{addr: addr, stop: stop}, nil
}

type httpInProcess struct {
	addr string
	stop func() error
	once sync.Once
	err  error
}

func (s *httpInProcess) Addrs() []string            { return []string{s.addr} }
func (s *httpInProcess) CPU() (time.Duration, bool) { return 0, false }
func (s *httpInProcess) Close() error {
	s.once.Do(func() { s.err = s.stop() })
	return s.err
}

// HTTPDSNEnv is the environment variable that hands a child HTTP server
// its database: the DSN may hold a password, which the command line would
// show to every user of the machine (ps).
const HTTPDSNEnv = "TWISTBENCH_BENCH_HTTP_DSN"

// HTTPChild launches each HTTP server as a child process, as Child does
// for reactors (its CPU read from /proc, pinned to Child.CPUs): Command is
// the child's command ("harness bench http-server"), which gets
// --store S --dialect D followed by ServerSpec.Args (with --proto http and
// the engine as --reactor), the DSN in HTTPDSNEnv, and runs ServeHTTP.
type HTTPChild struct{ Child }

// LaunchHTTP implements HTTPLauncher.
func (l HTTPChild) LaunchHTTP(ctx context.Context, spec HTTPSpec) (Server, error) {
	c := l.Child
	c.Command = append(append([]string(nil), c.Command...), "--store", spec.Store, "--dialect", string(spec.Dialect))
	env := c.Env
	if env == nil {
		env = os.Environ()
	}
	c.Env = append(append([]string(nil), env...), HTTPDSNEnv+"="+spec.DSN)
	return c.Launch(ctx, ServerSpec{Proto: "http", Backend: spec.Engine, PoemSize: spec.PoemSize})
}

// ParseHTTPSpec parses the arguments HTTPChild gives its command and the
// DSN from getenv(HTTPDSNEnv).
func ParseHTTPSpec(args []string, getenv func(string) string) (HTTPSpec, error) {
	var s HTTPSpec
	var proto string
	listeners := 1
	for i := 0; i < len(args); i++ {
		if i+1 >= len(args) {
			return HTTPSpec{}, fmt.Errorf("bench http-server: flag %s needs a value", args[i])
		}
		v := args[i+1]
		switch args[i] {
		case "--store":
			s.Store = v
		case "--dialect":
			s.Dialect = store.Dialect(v)
		case "--proto":
			proto = v
		case "--reactor":
			s.Engine = v
		case "--listeners":
			n, err := strconv.Atoi(v)
			if err != nil {
				return HTTPSpec{}, fmt.Errorf("bench http-server: --listeners %q: %w", v, err)
			}
			listeners = n
		case "--poem-size":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return HTTPSpec{}, fmt.Errorf("bench http-server: --poem-size %q: want a positive integer", v)
			}
			s.PoemSize = n
		default:
			return HTTPSpec{}, fmt.Errorf("bench http-server: unknown flag %q", args[i])
		}
		i++
	}
	switch {
	case proto != "http":
		return HTTPSpec{}, fmt.Errorf("bench http-server: --proto %q, want http", proto)
	case s.Engine == "":
		return HTTPSpec{}, errors.New("bench http-server: no engine (--reactor)")
	case listeners != 1:
		return HTTPSpec{}, fmt.Errorf("bench http-server: --listeners %d, an HTTP server listens once", listeners)
	}
	s.DSN = getenv(HTTPDSNEnv)
	if (s.Store == "") != (s.DSN == "") {
		return HTTPSpec{}, fmt.Errorf("bench http-server: --store %q with %s %s; give both or neither", s.Store, HTTPDSNEnv,
			map[bool]string{true: "empty", false: "set"}[s.DSN == ""])
	}
	if s.PoemSize == 0 {
		s.PoemSize = HTTPPoemSize
	}
	return s, nil
}

// ServeHTTP is the child side of HTTPChild: it starts spec with serve,
// writes "listen ADDR" and "ready" to w, and serves until ctx ends.
func ServeHTTP(ctx context.Context, spec HTTPSpec, serve HTTPServeFunc, w io.Writer) error {
	addr, stop, err := serve(ctx, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "listen %s\nready\n", addr)
	<-ctx.Done()
	return stop()
}

// PrepareDB returns the DSN of a fresh database of dialect d seeded with
// data for store back-end backend (seeded through that back-end, so the
// schema is its own), and what drops it.
type PrepareDB func(ctx context.Context, backend string, d store.Dialect, data DataSet) (dsn string, drop func() error, err error)

// HTTPFixtures prepares one seeded database per (store, dialect) the first
// time a case needs it and shares it between that pair's cases and
// engines. Close drops them all.
type HTTPFixtures struct {
	Prepare PrepareDB
	Data    DataSet

	mu   sync.Mutex
	open map[string]*dbFixture
}

type dbFixture struct {
	dsn  string
	drop func() error
	err  error
}

func (f *HTTPFixtures) get(ctx context.Context, backend string, d store.Dialect) (string, error) {
	key := backend + "/" + string(d)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == nil {
		f.open = map[string]*dbFixture{}
	}
	if fx, ok := f.open[key]; ok {
		if fx.err != nil {
			return "", ErrReported
		}
		return fx.dsn, nil
	}
	fx := &dbFixture{}
	f.open[key] = fx
	fx.dsn, fx.drop, fx.err = f.Prepare(ctx, backend, d, f.Data)
	return fx.dsn, fx.err
}

// Close drops every database prepared.
func (f *HTTPFixtures) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for k, fx := range f.open {
		if fx.drop != nil {
			if err := fx.drop(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
		}
	}
	f.open = nil
	return errors.Join(errs...)
}

// HTTPTarget is a store back-end on a dialect, for the read and write
// scenarios.
type HTTPTarget struct {
	Store   string
	Dialect store.Dialect
}

// HTTPGroups builds the HTTP suite's cases: echo and poem at every
// p.HTTPConns per engine, then read and write at every p.HTTPConns per
// target, each group holding one case per engine (interleaved by the
// runner). Keys: HTTPEcho/backend=fasthttp/conns=16/size=64,
// HTTPRead/backend=nethttp/dialect=sqlite/store=sql/conns=16.
func HTTPGroups(p Profile, engines []string, targets []HTTPTarget, fx *HTTPFixtures, l HTTPLauncher, errLog io.Writer) []Group {
	_, shared := l.(HTTPInProcess)
	est := p.Warmup + p.Duration + 200*time.Millisecond // + server start
	var groups []Group
	build := func(scenario string, t HTTPTarget, params []results.Param, conns int) {
		var g Group
		for _, e := range engines {
			g = append(g, &Case{
				Suite: "http", Scenario: scenario, Backend: e, Dialect: string(t.Dialect), Params: params,
				Estimate: est, SharedCPU: shared,
				Setup: func(ctx context.Context) (Trial, func() error, error) {
					spec := HTTPSpec{Engine: e, Store: t.Store, Dialect: t.Dialect, PoemSize: HTTPPoemSize}
					if t.Store != "" {
						dsn, err := fx.get(ctx, t.Store, t.Dialect)
						if err != nil {
							return nil, nil, err
						}
						spec.DSN = dsn
					}
					return httpTrial(l, spec, p, HTTPConfig{Scenario: scenario, Conns: conns, Data: fx.data(), ErrorLog: errLog}), nil, nil
				},
			})
		}
		groups = append(groups, g)
	}
	for _, sc := range []string{"echo", "poem"} {
		size := map[string]int{"echo": HTTPEchoSize, "poem": HTTPPoemSize}[sc]
		for _, c := range p.HTTPConns {
			build(sc, HTTPTarget{}, []results.Param{param("conns", c), param("size", size)}, c)
		}
	}
	for _, t := range targets {
		for _, sc := range []string{"read", "write"} {
			for _, c := range p.HTTPConns {
				build(sc, t, []results.Param{param("store", t.Store), param("conns", c)}, c)
			}
		}
	}
	return groups
}

func (f *HTTPFixtures) data() DataSet {
	if f == nil || f.Data == (DataSet{}) {
		return DefaultDataSet
	}
	return f.Data
}

func httpTrial(l HTTPLauncher, spec HTTPSpec, p Profile, cfg HTTPConfig) Trial {
	return func(ctx context.Context, obs Observer) (m Measurement, err error) {
		srv, err := l.LaunchHTTP(ctx, spec)
		if err != nil {
			return Measurement{}, err
		}
		defer func() {
			if cerr := srv.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
		if len(srv.Addrs()) == 0 {
			return Measurement{}, errNoServer
		}
		cfg := cfg
		cfg.Addr = srv.Addrs()[0]
		cfg.Window = Window{Warmup: p.Warmup, Duration: p.Duration, Observer: obs, CPU: ServerCPU{srv}}
		return HTTP(ctx, cfg)
	}
}

// Wrk is one run of wrk (https://github.com/wg/wrk, the Debian package
// "wrk"), the reference the HTTP generator is cross-checked against: both
// measure the same server one after the other, and their figures should
// tell the same story. wrk checks no bodies, only statuses.
type Wrk struct {
	// Path is the wrk executable; default "wrk" from PATH.
	Path string
	// URL is the endpoint ("http://127.0.0.1:8080/poem").
	URL string
	// Threads and Conns are wrk's -t and -c; Threads defaults to 1.
	Threads, Conns int
	// Duration is wrk's -d, whole seconds (wrk takes no less); at least 1 s.
	Duration time.Duration
	// Method and Body, when Method is not GET, are sent through a Lua
	// script (wrk.method, wrk.body), as for POST /echo.
	Method string
	Body   []byte
	// ContentType goes with Body.
	ContentType string
	// Grace is how long past Duration a run may take before it is
	// interrupted (see Run); 0 means 10 s.
	Grace time.Duration
}

// WrkResult is what wrk reported.
type WrkResult struct {
	// Requests completed in Elapsed, and wrk's own Requests/sec.
	Requests       int64
	Elapsed        time.Duration
	RequestsPerSec float64
	// Latency holds the "Latency Distribution" of --latency, keyed by
	// percentile (50, 75, 90, 99).
	Latency map[int]time.Duration
	// Non2xx counts responses with a status other than 2xx or 3xx;
	// SocketErrors sums connect, read, write and timeout errors.
	Non2xx, SocketErrors int64
	// Output is wrk's output as printed.
	Output string
}

// Run runs wrk and parses what it prints; ctx ends it early (an error).
func (w Wrk) Run(ctx context.Context) (WrkResult, error) {
	path := w.Path
	if path == "" {
		path = "wrk"
	}
	threads := max(w.Threads, 1)
	switch {
	case w.URL == "":
		return WrkResult{}, errors.New("wrk: no URL")
	case w.Conns < threads:
		return WrkResult{}, fmt.Errorf("wrk: %d connections for %d threads, need at least one each", w.Conns, threads)
	case w.Duration < time.Second:
		return WrkResult{}, fmt.Errorf("wrk: duration %v, wrk measures whole seconds (at least 1s)", w.Duration)
	}
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(w.Conns),
		"-d" + strconv.Itoa(int(w.Duration/time.Second)) + "s", "--latency", "--timeout", "5s"}
	if w.Method != "" && w.Method != "GET" {
		dir, err := os.MkdirTemp("", "twistbench-wrk-")
		if err != nil {
			return WrkResult{}, fmt.Errorf("wrk: %w", err)
		}
		defer os.RemoveAll(dir)
		script := fmt.Sprintf("wrk.method = %q\nwrk.body = %q\n", w.Method, w.Body)
		if w.ContentType != "" {
			script += fmt.Sprintf("wrk.headers[\"Content-Type\"] = %q\n", w.ContentType)
		}
		lua := dir + "/request.lua"
		if err := os.WriteFile(lua, []byte(script), 0o600); err != nil {
			return WrkResult{}, fmt.Errorf("wrk: %w", err)
		}
		args = append(args, "-s", lua)
	}
	args = append(args, w.URL)
	// wrk now and then finishes its run but does not exit (seen here
	// under heavy load; wg/wrk#304 reports the same of some builds), and
	// it prints nothing until it exits (its output is a pipe). So a run
	// that outlives its duration by w.Grace is interrupted (SIGINT:
	// wrk stops and prints its report), then killed, and tried once more.
	var errs []error
	for attempt := 1; attempt <= 2; attempt++ {
		out, err := runWrk(ctx, w.Duration+cmp.Or(w.Grace, 10*time.Second), path, args)
		if ctx.Err() != nil {
			return WrkResult{Output: out}, ctx.Err()
		}
		r, perr := ParseWrk(out)
		if perr == nil {
			if err != nil {
				r.Output = fmt.Sprintf("(wrk %v, but printed its report)\n%s", err, r.Output)
			}
			if attempt > 1 {
				r.Output = fmt.Sprintf("(attempt %d; before: %v)\n%s", attempt, errors.Join(errs...), r.Output)
			}
			return r, nil
		}
		if err == nil {
			return r, perr // wrk ran and said something we cannot read
		}
		errs = append(errs, fmt.Errorf("attempt %d: wrk %v: %w\n%s", attempt, args, err, out))
	}
	return WrkResult{}, errors.Join(errs...)
}

// runWrk runs wrk for at most limit: then SIGINT, and 5 s later SIGKILL.
// It returns wrk's standard output and error together.
func runWrk(ctx context.Context, limit time.Duration, path string, args []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("did not exit within %v; interrupted (%v)", limit, err)
	}
	return string(out), err
}

// ParseWrk reads the figures off wrk's output (wrk 4.x with --latency).
func ParseWrk(out string) (WrkResult, error) {
	r := WrkResult{Latency: map[int]time.Duration{}, Output: out}
	var sawRate, sawTotal bool
	inDist := false
	for _, line := range bytes.Split([]byte(out), []byte("\n")) {
		f := bytes.Fields(line)
		switch {
		case len(f) == 0:
		case string(f[0]) == "Latency" && len(f) >= 2 && string(f[1]) == "Distribution":
			inDist = true
		case inDist && len(f) == 2 && bytes.HasSuffix(f[0], []byte("%")):
			pct, err := strconv.ParseFloat(string(f[0][:len(f[0])-1]), 64)
			if err != nil {
				return r, fmt.Errorf("wrk output: percentile %q: %w", f[0], err)
			}
			d, err := parseWrkDuration(string(f[1]))
			if err != nil {
				return r, err
			}
			r.Latency[int(pct)] = d
		case len(f) >= 4 && string(f[1]) == "requests" && string(f[2]) == "in":
			inDist = false
			n, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk output: request count %q: %w", f[0], err)
			}
			d, err := parseWrkDuration(string(bytes.TrimSuffix(f[3], []byte(","))))
			if err != nil {
				return r, err
			}
			r.Requests, r.Elapsed, sawTotal = n, d, true
		case string(f[0]) == "Requests/sec:" && len(f) == 2:
			v, err := strconv.ParseFloat(string(f[1]), 64)
			if err != nil {
				return r, fmt.Errorf("wrk output: Requests/sec %q: %w", f[1], err)
			}
			r.RequestsPerSec, sawRate = v, true
		case bytes.HasPrefix(bytes.TrimSpace(line), []byte("Non-2xx or 3xx responses:")):
			n, err := strconv.ParseInt(string(f[len(f)-1]), 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk output: %q: %w", bytes.TrimSpace(line), err)
			}
			r.Non2xx = n
		case bytes.HasPrefix(bytes.TrimSpace(line), []byte("Socket errors:")):
			// "Socket errors: connect 0, read 0, write 0, timeout 0"
			for i := 3; i < len(f); i += 2 {
				n, err := strconv.ParseInt(string(bytes.TrimSuffix(f[i], []byte(","))), 10, 64)
				if err != nil {
					return r, fmt.Errorf("wrk output: %q: %w", bytes.TrimSpace(line), err)
				}
				r.SocketErrors += n
			}
		}
	}
	switch {
	case !sawRate || !sawTotal:
		return r, fmt.Errorf("wrk output has no Requests/sec or request count:\n%s", out)
	case len(r.Latency) == 0:
		return r, fmt.Errorf("wrk output has no latency distribution (run with --latency):\n%s", out)
	}
	return r, nil
}

// parseWrkDuration reads wrk's "123.45us", "1.20ms", "2.00s", "1.00m".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := bytes.CutSuffix([]byte(s), []byte(u.suffix)); ok {
			v, err := strconv.ParseFloat(string(num), 64)
			if err != nil || v < 0 {
				break
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("wrk output: %q is not a duration", s)
}
