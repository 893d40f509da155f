package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/twistbench/twistbench/bench"
	"github.com/twistbench/twistbench/bench/results"
	"github.com/twistbench/twistbench/containers"
	"github.com/twistbench/twistbench/impls/httpapi"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

// httpOptions are the flags of `harness bench` that only the HTTP suite
// reads.
type httpOptions struct {
	// Engines selects the HTTP engines ("" or "all": every one).
	Engines string
	// Wrk runs the wrk cross-check after the suite; WrkPath is wrk.
	Wrk     bool
	WrkPath string
}

// wrkConns is the concurrency of the wrk cross-check.
const wrkConns = 16

func addHTTPFlags(f *pflag.FlagSet, o *httpOptions) {
	f.StringVar(&o.Engines, "engines", "all", "comma-separated HTTP engines for --suite http: fasthttp, nethttp")
	f.BoolVar(&o.Wrk, "wrk", false, fmt.Sprintf("after the HTTP suite, measure GET /poem and POST /echo of each engine at conns=%d with the harness and then with wrk, and print both (needs wrk: apt-get install wrk)", wrkConns))
	f.StringVar(&o.WrkPath, "wrk-path", "wrk", "the wrk executable for --wrk")
}

// engines resolves --engines.
func (o httpOptions) engines() ([]string, error) {
	order := make([]string, len(httpapi.Engines))
	for i, e := range httpapi.Engines {
		order[i] = string(e)
	}
	return pick("engine", o.Engines, order)
}

// check refuses, before any suite runs, what the HTTP suite would refuse
// after the others have taken their time.
func (o httpOptions) check() error {
	if _, err := o.engines(); err != nil {
		return err
	}
	if o.Wrk {
		if _, err := exec.LookPath(o.WrkPath); err != nil {
			return fmt.Errorf("--wrk: %v (Debian: apt-get install wrk)", err)
		}
	}
	return nil
}

// newBenchHTTPServerCmd is the child server of an HTTP trial: the harness
// re-executes itself as `harness bench http-server --store S --dialect D
// --proto http --reactor ENGINE ...` with the database in
// bench.HTTPDSNEnv, reads the address it prints, and closes its standard
// input to stop it.
func newBenchHTTPServerCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "http-server",
		Short:              "Serve one HTTP trial's front-end (run by harness bench itself)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := bench.ParseHTTPSpec(args, os.Getenv)
			if err != nil {
				return err
			}
			ctx, cancel := bench.UntilEOF(cmd.Context(), cmd.InOrStdin())
			defer cancel()
			return bench.ServeHTTP(ctx, spec, serveBenchHTTP, cmd.OutOrStdout())
		},
	}
}

// serveBenchHTTP is the bench.HTTPServeFunc of the HTTP suite: the
// front-end of impls/httpapi on a loopback port, over the store back-end
// and database the spec names (none for echo and poem).
func serveBenchHTTP(ctx context.Context, spec bench.HTTPSpec) (string, func() error, error) {
	eng := httpapi.Engine(spec.Engine)
	if !slices.Contains(httpapi.Engines, eng) {
		return "", nil, fmt.Errorf("unknown engine %q (known: fasthttp, nethttp)", spec.Engine)
	}
	cfg := httpapi.Config{Poem: bench.Poem(spec.PoemSize)}
	var closers []func() error
	release := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	if spec.Store != "" {
		open, ok := stores[spec.Store]
		if !ok {
			return "", nil, fmt.Errorf("unknown store back-end %q", spec.Store)
		}
		db, err := sqlconn.Open(ctx, spec.DSN)
		if err != nil {
			return "", nil, err
		}
		closers = append(closers, db.SQL.Close)
		st, err := open(ctx, db)
		if err != nil {
			return "", nil, errors.Join(fmt.Errorf("store %s: %w", spec.Store, err), release())
		}
		closers = append(closers, st.Close)
		cfg.Store = st
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, errors.Join(err, release())
	}
	srv, err := httpapi.Start(eng, ln, cfg)
	if err != nil {
		return "", nil, errors.Join(err, release())
	}
	return ln.Addr().String(), func() error {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		return errors.Join(srv.Shutdown(sctx), release())
	}, nil
}

// narrow returns the members of sel that are in keep, or sel itself when
// keep is empty or none of sel is in it (the user named what the profile
// would leave out: the user wins).
func narrow[T comparable](sel, keep []T) []T {
	var out []T
	for _, s := range sel {
		if slices.Contains(keep, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return sel
	}
	return out
}

// runHTTPSuite measures the HTTP front-ends: echo and poem per engine, read
// and write per engine x store back-end x dialect (narrowed by the
// profile), each trial on a fresh server (a pinned child process unless
// --in-process); then, with --wrk, the wrk cross-check.
func runHTTPSuite(ctx context.Context, o benchOptions, prof bench.Profile, ss []string, dialects []store.Dialect,
	runner *bench.Runner, file *results.File, stdout, stderr io.Writer) ([]results.Benchmark, []string, error) {
	engines, err := o.HTTP.engines()
	if err != nil {
		return nil, nil, err
	}
	var l bench.HTTPLauncher
	if o.InProcess {
		l = bench.HTTPInProcess(serveBenchHTTP)
	} else {
		exe, err := os.Executable()
		if err != nil {
			return nil, nil, fmt.Errorf("finding the harness executable for the child servers: %w", err)
		}
		child := bench.HTTPChild{Child: bench.Child{Command: []string{exe, "bench", "http-server"}, Stderr: stderr}}
		if srv, gen, ok := bench.SplitCPUs(); ok && o.Pin {
			child.CPUs = srv
			restore, err := bench.PinProcess(gen)
			if err != nil {
				return nil, nil, err
			}
			defer restore()
			file.Environment.ServerCPUs, file.Environment.GeneratorCPUs = srv, gen
		}
		l = child
	}

	var skipped []string
	ss = narrow(ss, prof.HTTPStores)
	dialects = narrow(dialects, prof.HTTPDialects)
	if len(ss) == 0 {
		skipped = append(skipped, "http suite, read and write: no store back-end in --backends")
	}
	prov := containers.NewProvider()
	prov.Keep = true
	defer prov.Close()
	var usable []store.Dialect
	if len(ss) > 0 {
		for _, d := range dialects {
			c := prov.Choose(ctx, d, true)
			if c.Err != nil {
				if u, ok := containers.Skippable(c.Err); ok {
					skipped = append(skipped, fmt.Sprintf("http suite, %s: %s", d, u.Reason))
					fmt.Fprintf(stderr, "skipping %s: %s\n", d, u.Reason)
					continue
				}
				return nil, skipped, c.Err
			}
			usable = append(usable, d)
		}
	}
	var targets []bench.HTTPTarget
	for _, d := range usable {
		for _, s := range ss {
			targets = append(targets, bench.HTTPTarget{Store: s, Dialect: d})
		}
	}
	var mu sync.Mutex
	failed := map[store.Dialect]bool{}
	fx := &bench.HTTPFixtures{Data: bench.DefaultDataSet, Prepare: func(ctx context.Context, backend string, d store.Dialect, data bench.DataSet) (string, func() error, error) {
		mu.Lock()
		gaveUp := failed[d]
		mu.Unlock()
		if gaveUp {
			return "", nil, bench.ErrReported
		}
		dsn, cleanup, err := prov.Get(ctx, d)
		if err != nil {
			cleanup()
			mu.Lock()
			failed[d] = true
			mu.Unlock()
			return "", nil, fmt.Errorf("%w (every store back-end on %s skipped)", err, d)
		}
		drop := func() error { cleanup(); return nil }
		db, err := sqlconn.Open(ctx, dsn)
		if err != nil {
			cleanup()
			return "", nil, err
		}
		st, err := stores[backend](ctx, db)
		if err != nil {
			db.SQL.Close()
			cleanup()
			return "", nil, fmt.Errorf("opening %s: %w", backend, err)
		}
		// Seeded through the back-end that will serve it, so that the
		// schema is that back-end's own; closed before the server opens it.
		err = errors.Join(bench.Seed(ctx, st, data), st.Close(), db.SQL.Close())
		if err != nil {
			cleanup()
			return "", nil, fmt.Errorf("seeding %s on %s: %w", backend, d, err)
		}
		mu.Lock()
		if !slices.ContainsFunc(file.Environment.Databases, func(x results.Database) bool { return x.Dialect == string(d) }) {
			file.Environment.Databases = append(file.Environment.Databases,
				results.Database{Dialect: string(d), Flavor: db.Flavor, Image: prov.Choose(ctx, d, false).Image})
		}
		mu.Unlock()
		return dsn, drop, nil
	}}
	benches, more, err := runner.Run(ctx, bench.HTTPGroups(prof, engines, targets, fx, l, stderr))
	skipped = append(skipped, more...)
	err = errors.Join(err, fx.Close())
	if err != nil || !o.HTTP.Wrk {
		return benches, skipped, err
	}
	rows, err := wrkCrossCheck(ctx, o.HTTP.WrkPath, engines, prof, l, stderr)
	if err != nil {
		return benches, skipped, err
	}
	var sb strings.Builder
	printWrkTable(&sb, rows)
	fmt.Fprint(stdout, sb.String())
	path := filepath.Join(o.Out, "wrk.txt")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		return benches, skipped, fmt.Errorf("--wrk: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s\n", path)
	return benches, skipped, nil
}

// wrkRow is one tool's figures on one endpoint of one engine.
type wrkRow struct {
	Engine, Endpoint, Tool string
	Rate                   float64
	P50, P90, P99          time.Duration
	// ServerCPUPerOp is 0 when not measured (in-process server).
	ServerCPUPerOp time.Duration
	// Errors: ours counts failed requests and wrong bodies; wrk's counts
	// socket errors and non-2xx/3xx statuses (it checks no bodies).
	Errors int64
}

// wrkCrossCheck measures, for every engine, GET /poem and POST /echo at
// conns=wrkConns on one server: first with the harness's generator, then
// with wrk (one thread, so that it has the generator's CPU share), for the
// same window, and returns both figures.
func wrkCrossCheck(ctx context.Context, wrkPath string, engines []string, prof bench.Profile, l bench.HTTPLauncher, stderr io.Writer) ([]wrkRow, error) {
	window := max(prof.Duration.Round(time.Second), time.Second)
	var rows []wrkRow
	for _, e := range engines {
		for _, ep := range []struct {
			scenario, label, method string
			body                    []byte
		}{
			{"poem", "GET /poem", "GET", nil},
			{"echo", "POST /echo", "POST", bench.Poem(bench.HTTPEchoSize)},
		} {
			fmt.Fprintf(stderr, "wrk cross-check: %s %s\n", e, ep.label)
			ours, theirs, err := wrkPair(ctx, wrkPath, e, ep.scenario, ep.method, ep.body, prof.Warmup, window, l, stderr)
			if err != nil {
				return rows, fmt.Errorf("wrk cross-check, %s %s: %w", e, ep.label, err)
			}
			ours.Engine, ours.Endpoint = e, ep.label
			theirs.Engine, theirs.Endpoint = e, ep.label
			rows = append(rows, ours, theirs)
		}
	}
	return rows, nil
}

func wrkPair(ctx context.Context, wrkPath, engine, scenario, method string, body []byte, warmup, window time.Duration,
	l bench.HTTPLauncher, stderr io.Writer) (ours, theirs wrkRow, err error) {
	srv, err := l.LaunchHTTP(ctx, bench.HTTPSpec{Engine: engine, PoemSize: bench.HTTPPoemSize})
	if err != nil {
		return ours, theirs, err
	}
	defer func() {
		if cerr := srv.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	addr := srv.Addrs()[0]
	m, err := bench.HTTP(ctx, bench.HTTPConfig{
		Window:   bench.Window{Warmup: warmup, Duration: window, CPU: bench.ServerCPU{Server: srv}},
		Addr:     addr,
		Scenario: scenario, Conns: wrkConns, ErrorLog: stderr,
	})
	if err != nil {
		return ours, theirs, err
	}
	ours = wrkRow{Tool: "twistbench", Rate: float64(m.Ops) / m.Duration.Seconds(), Errors: m.Errors}
	lat := results.LatencyOf(m.Hist)
	ours.P50, ours.P90, ours.P99 = time.Duration(lat.P50), time.Duration(lat.P90), time.Duration(lat.P99)
	if m.ServerCPUOK && m.Ops > 0 {
		ours.ServerCPUPerOp = m.ServerCPU / time.Duration(m.Ops)
	}
	cpu0, cpuOK := srv.CPU()
	w := bench.Wrk{Path: wrkPath, URL: "http://" + addr + "/" + scenario, Conns: wrkConns, Duration: window, Method: method, Body: body}
	if body != nil {
		w.ContentType = "application/octet-stream"
	}
	r, err := w.Run(ctx)
	if err != nil {
		return ours, theirs, err
	}
	theirs = wrkRow{Tool: "wrk", Rate: r.RequestsPerSec, P50: r.Latency[50], P90: r.Latency[90], P99: r.Latency[99],
		Errors: r.Non2xx + r.SocketErrors}
	if cpu1, ok := srv.CPU(); ok && cpuOK && r.Requests > 0 {
		theirs.ServerCPUPerOp = (cpu1 - cpu0) / time.Duration(r.Requests)
	}
	return ours, theirs, nil
}

func printWrkTable(w io.Writer, rows []wrkRow) {
	fmt.Fprintf(w, "wrk cross-check: conns=%d, the same server measured by the harness then by wrk -t1 --latency\n", wrkConns)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "engine\tendpoint\ttool\treq/s\tp50\tp90\tp99\tserver CPU/op\terrors\t")
	for _, r := range rows {
		cpu := "-"
		if r.ServerCPUPerOp > 0 {
			cpu = r.ServerCPUPerOp.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%v\t%v\t%v\t%s\t%d\t\n", r.Engine, r.Endpoint, r.Tool, r.Rate,
			r.P50.Round(time.Microsecond), r.P90.Round(time.Microsecond), r.P99.Round(time.Microsecond), cpu, r.Errors)
	}
	tw.Flush()
}
