package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/twistbench/twistbench/bench"
	"github.com/twistbench/twistbench/bench/metrics"
	"github.com/twistbench/twistbench/bench/progress"
	"github.com/twistbench/twistbench/bench/results"
	"github.com/twistbench/twistbench/containers"
	"github.com/twistbench/twistbench/impls/echo"
	"github.com/twistbench/twistbench/impls/poetry"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

func init() { commands = append(commands, newBenchCmd) }

// benchOptions are the flags of `harness bench`; `harness run` takes
// defaultBenchOptions, adjusts them and calls runBench. ReadRatio < 0 and
// zero Repeats, Duration and Depth mean the profile's.
type benchOptions struct {
	Suite, Backends, Dialects, Profile string
	Repeats                            int
	Duration                           time.Duration
	Out                                string
	Target                             string
	MetricsAddr, PushURL               string
	InProcess                          bool
	Pin                                bool
	ReadRatio                          float64
	Depth                              int
	HTTP                               httpOptions // bench_http.go
}

// protocols are the server sides of the reactor scenarios, written once in
// impls/echo and impls/poetry.
var protocols = bench.Protocols{Echo: echo.ServerFactory, Poetry: poetry.NewServerFactory}

// defaultBenchOptions are the flags' defaults; `harness run` starts from
// them (a zero benchOptions would mean a read ratio of 0 and no pinning).
func defaultBenchOptions() benchOptions {
	return benchOptions{
		Suite: "all", Backends: "all", Dialects: "all", Profile: "quick",
		Out: "bench-results", Pin: true, ReadRatio: -1,
		HTTP: httpOptions{Engines: "all", WrkPath: "wrk"},
	}
}

func newBenchCmd() *cobra.Command {
	o := defaultBenchOptions()
	d := o
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run the load benchmarks and write results.json and results.txt",
		Long: `bench measures every selected back-end on every scenario of the profile,
repeating each point --repeats times in interleaved order (A B C, A B C, ...),
and writes DIR/results.json (the schema in docs/results.md) and
DIR/results.txt (the Go benchmark format: benchstat -col /backend results.txt).

Reactor servers run in a child process of the harness, one per trial, so that
their CPU time is measured apart from the load generator's; with two CPUs or
more the server is pinned to one and the generator to the others. Stores run
in-process on a fresh, seeded database per back-end and dialect (SQLite
always; PostgreSQL and MySQL when Docker or a DSN provides them). The HTTP
suite (--suite http) measures the fasthttp and net/http front-ends, each
trial on a child "harness bench http-server" like the reactors' (see
bench/http.go); --wrk adds the wrk cross-check.

--target measures an echo server started elsewhere ("harness serve echo"), so
that it can run on other CPUs (taskset) or another machine; its CPU is then
not measured, and poetry is not run. Name the back-end it runs with
--backends.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := runBench(cmd.Context(), o, flagValues(cmd.Flags()), cmd.OutOrStdout(), cmd.ErrOrStderr())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Suite, "suite", d.Suite, "suites to run: reactor, store, http or all")
	f.StringVar(&o.Backends, "backends", d.Backends, "comma-separated back-ends (reactors: "+strings.Join(reactorOrder, ", ")+"; stores: "+strings.Join(storeOrder, ", ")+")")
	f.StringVar(&o.Dialects, "dialects", d.Dialects, "comma-separated store dialects: sqlite, postgres, mysql")
	f.StringVar(&o.Profile, "profile", d.Profile, "sweep size: "+strings.Join(bench.ProfileNames, ", "))
	f.IntVar(&o.Repeats, "repeats", 0, "repeats per point (0: the profile's)")
	f.DurationVar(&o.Duration, "duration", 0, "measured window per trial (0: the profile's); warm-up is a quarter of it")
	f.StringVar(&o.Out, "out", d.Out, "directory for results.json and results.txt")
	f.StringVar(&o.Target, "target", "", "measure the echo server at host:port instead of starting one")
	f.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve live Prometheus metrics on this address (\":9464\" binds loopback; name a host to expose)")
	f.StringVar(&o.PushURL, "push-url", "", "push the final metrics to this Pushgateway under {job=\"twistbench\", run_id}")
	f.BoolVar(&o.InProcess, "in-process", false, "run reactor and HTTP servers inside the harness (no server CPU figure)")
	f.BoolVar(&o.Pin, "pin", d.Pin, "pin the child server and the generator to different CPUs when there are two or more")
	f.Float64Var(&o.ReadRatio, "read-ratio", d.ReadRatio, "share of reads in the mixed store workload, 0 to 1 (negative: the profile's)")
	f.IntVar(&o.Depth, "depth", 0, "pipelining depth of the closed-loop echo (0: the profile's)")
	addHTTPFlags(f, &o.HTTP)
	cmd.AddCommand(newBenchServerCmd(), newBenchHTTPServerCmd())
	return cmd
}

// newBenchServerCmd is the child server of a reactor trial: the harness
// re-executes itself as `harness bench server --proto P --reactor R ...`,
// reads the addresses it prints, and closes its standard input to stop it.
func newBenchServerCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "server",
		Short:              "Serve one trial's echo or poetry server (run by harness bench itself)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := bench.ParseServerSpec(args)
			if err != nil {
				return err
			}
			names, err := pick("reactor", spec.Backend, reactorOrder)
			if err != nil {
				return err
			}
			ctx, cancel := bench.UntilEOF(cmd.Context(), cmd.InOrStdin())
			defer cancel()
			return bench.Serve(ctx, spec, reactors[names[0]], protocols, cmd.OutOrStdout())
		},
	}
}

// flagValues records every flag's effective value, for the environment.
func flagValues(fs *pflag.FlagSet) map[string]string {
	out := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) { out[f.Name] = f.Value.String() })
	return out
}

// splitBackends sorts a --backends list into reactor and store names,
// naming any that neither registry knows. "all" selects every back-end of
// both.
func splitBackends(sel string) (rs, ss []string, err error) {
	if sel == "" || sel == "all" {
		return reactorOrder, storeOrder, nil
	}
	for _, n := range strings.Split(sel, ",") {
		n = strings.TrimSpace(n)
		switch {
		case slices.Contains(reactorOrder, n):
			rs = append(rs, n)
		case slices.Contains(storeOrder, n):
			ss = append(ss, n)
		default:
			known := append(append([]string(nil), reactorOrder...), storeOrder...)
			sort.Strings(known)
			return nil, nil, fmt.Errorf("unknown back-end %q (known: %s)", n, strings.Join(known, ", "))
		}
	}
	return rs, ss, nil
}

func pickDialects(sel string) ([]store.Dialect, error) {
	order := make([]string, len(store.Dialects))
	for i, d := range store.Dialects {
		order[i] = string(d)
	}
	names, err := pick("dialect", sel, order)
	if err != nil {
		return nil, err
	}
	out := make([]store.Dialect, len(names))
	for i, n := range names {
		out[i] = store.Dialect(n)
	}
	return out, nil
}

func newRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// runBench runs the selected suites and writes the results files; it
// returns what it wrote. Benchmarks that recorded errors make it return a
// finding (exit 1) after the files are written.
func runBench(ctx context.Context, o benchOptions, flags map[string]string, stdout, stderr io.Writer) (*results.File, error) {
	prof, err := bench.LookupProfile(o.Profile)
	if err != nil {
		return nil, err
	}
	if o.Repeats < 0 {
		return nil, fmt.Errorf("--repeats %d is negative", o.Repeats)
	}
	if o.Repeats > 0 {
		prof.Repeats = o.Repeats
	}
	if o.Duration < 0 {
		return nil, fmt.Errorf("--duration %v is negative", o.Duration)
	}
	if o.Duration > 0 {
		prof = prof.WithDuration(o.Duration)
	}
	if o.ReadRatio >= 0 {
		if o.ReadRatio > 1 {
			return nil, fmt.Errorf("--read-ratio %v is outside [0, 1]", o.ReadRatio)
		}
		prof.ReadRatio = o.ReadRatio
	}
	if o.Depth < 0 {
		return nil, fmt.Errorf("--depth %d is negative", o.Depth)
	}
	if o.Depth > 0 {
		prof.Depth = o.Depth
	}
	var runReactor, runStore, runHTTP bool
	switch o.Suite {
	case "all", "":
		runReactor, runStore, runHTTP = true, true, true
	case "reactor":
		runReactor = true
	case "store":
		runStore = true
	case "http":
		runHTTP = true
	default:
		return nil, fmt.Errorf("unknown suite %q (known: reactor, store, http, all)", o.Suite)
	}
	if err := o.HTTP.check(); err != nil {
		return nil, err
	}
	rs, ss, err := splitBackends(o.Backends)
	if err != nil {
		return nil, err
	}
	dialects, err := pickDialects(o.Dialects)
	if err != nil {
		return nil, err
	}
	var targets []string
	if o.Target != "" {
		if _, _, err := net.SplitHostPort(o.Target); err != nil {
			return nil, fmt.Errorf("--target %q: %w", o.Target, err)
		}
		if o.Suite != "reactor" || len(rs) != 1 || len(ss) != 0 {
			return nil, errors.New("--target measures one echo server: give --suite reactor and the one reactor it runs with --backends")
		}
		targets = []string{o.Target}
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}

	runID := newRunID()
	file := &results.File{Schema: results.Schema, RunID: runID, Started: time.Now().UTC()}
	file.Environment = results.CollectEnvironment(ctx, 300*time.Millisecond)
	file.Environment.Args = os.Args
	file.Environment.Flags = flags

	prog := progress.New(stderr)
	runner := &bench.Runner{Repeats: prof.Repeats, Progress: prog}

	// Live metrics, only when asked.
	var reg *prometheus.Registry
	if o.MetricsAddr != "" || o.PushURL != "" {
		reg = prometheus.NewRegistry()
		rec, err := metrics.NewRecorder(reg, runID)
		if err != nil {
			return nil, err
		}
		runner.Observer = func(c *bench.Case) bench.Observer {
			return rec.Observer(c.Suite, c.Scenario, c.Backend, c.Dialect)
		}
		if o.MetricsAddr != "" {
			mctx, stop := context.WithCancel(ctx)
			addr, done, err := metrics.Serve(mctx, o.MetricsAddr, reg)
			if err != nil {
				stop()
				return nil, err
			}
			defer func() { stop(); <-done }()
			fmt.Fprintf(stderr, "metrics: http://%s/metrics (run_id %s)\n", addr, runID)
		}
	}

	if runReactor {
		switch {
		case len(rs) == 0:
			file.Skipped = append(file.Skipped, "reactor suite: no reactor back-end in --backends")
		default:
			benches, skipped, err := runReactorSuite(ctx, o, prof, rs, targets, runner, file, stderr)
			file.Benchmarks = append(file.Benchmarks, benches...)
			file.Skipped = append(file.Skipped, skipped...)
			if err != nil {
				return nil, err
			}
		}
	}
	if runStore {
		switch {
		case len(ss) == 0:
			file.Skipped = append(file.Skipped, "store suite: no store back-end in --backends")
		default:
			benches, skipped, err := runStoreSuite(ctx, prof, ss, dialects, runner, file, stderr)
			file.Benchmarks = append(file.Benchmarks, benches...)
			file.Skipped = append(file.Skipped, skipped...)
			if err != nil {
				return nil, err
			}
		}
	}
	if runHTTP {
		benches, skipped, err := runHTTPSuite(ctx, o, prof, ss, dialects, runner, file, stdout, stderr)
		file.Benchmarks = append(file.Benchmarks, benches...)
		file.Skipped = append(file.Skipped, skipped...)
		if err != nil {
			return nil, err
		}
	}
	file.Finished = time.Now().UTC()

	if err := writeResults(file, o.Out); err != nil {
		return nil, err
	}
	if o.PushURL != "" {
		if err := metrics.Push(ctx, o.PushURL, "twistbench", runID, reg); err != nil {
			return file, err
		}
	}
	printSummary(stdout, file, o.Out)
	var bad []string
	for _, b := range file.Benchmarks {
		if s, ok := b.Summaries["errors"]; ok && s.Max > 0 {
			bad = append(bad, b.Key())
		}
	}
	if len(bad) > 0 {
		return file, findings("%d benchmarks recorded errors: %s", len(bad), strings.Join(bad, ", "))
	}
	return file, nil
}

func runReactorSuite(ctx context.Context, o benchOptions, prof bench.Profile, rs, targets []string, runner *bench.Runner, file *results.File, stderr io.Writer) ([]results.Benchmark, []string, error) {
	var l bench.Launcher
	switch {
	case len(targets) > 0:
		l = bench.Fixed(targets)
	case o.InProcess:
		l = bench.InProcess{Reactors: reactors, Protocols: protocols}
	default:
		exe, err := os.Executable()
		if err != nil {
			return nil, nil, fmt.Errorf("finding the harness executable for the child servers: %w", err)
		}
		child := bench.Child{Command: []string{exe, "bench", "server"}, Stderr: stderr}
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
	groups := bench.ReactorGroups(prof, rs, l)
	var skipped []string
	if len(targets) > 0 {
		// A poetry server started elsewhere serves its own poem, which
		// the generator cannot check byte for byte: only echo is
		// measured against --target.
		groups = slices.DeleteFunc(groups, func(g bench.Group) bool { return g[0].Scenario == "poetry" })
		skipped = append(skipped, "reactor suite, poetry: not measured against --target (the generator checks every byte of its own poem)")
	}
	benches, more, err := runner.Run(ctx, groups)
	return benches, append(skipped, more...), err
}

func runStoreSuite(ctx context.Context, prof bench.Profile, ss []string, dialects []store.Dialect, runner *bench.Runner, file *results.File, stderr io.Writer) ([]results.Benchmark, []string, error) {
	prov := containers.NewProvider()
	// One server per dialect for the whole run (every back-end gets a
	// fresh database on it), stopped when the suite ends.
	prov.Keep = true
	defer prov.Close()
	var skipped []string
	var usable []store.Dialect
	for _, d := range dialects {
		c := prov.Choose(ctx, d, true)
		if c.Err != nil {
			if u, ok := containers.Skippable(c.Err); ok {
				skipped = append(skipped, fmt.Sprintf("store suite, %s: %s", d, u.Reason))
				fmt.Fprintf(stderr, "skipping %s: %s\n", d, u.Reason)
				continue
			}
			return nil, skipped, c.Err
		}
		usable = append(usable, d)
	}
	var mu sync.Mutex
	seen := map[store.Dialect]bool{}
	failed := map[store.Dialect]bool{}
	fx := &bench.StoreFixtures{Data: bench.DefaultDataSet, ContainerID: prov.ContainerID, Open: func(ctx context.Context, backend string, d store.Dialect) (store.Store, func() error, error) {
		mu.Lock()
		gaveUp := failed[d]
		mu.Unlock()
		if gaveUp {
			// The database could not be had for another back-end;
			// each attempt can take minutes (a container start).
			return nil, nil, bench.ErrReported
		}
		dsn, cleanup, err := prov.Get(ctx, d)
		if err != nil {
			cleanup()
			mu.Lock()
			failed[d] = true
			mu.Unlock()
			return nil, nil, fmt.Errorf("%w (every store back-end on %s skipped)", err, d)
		}
		db, err := sqlconn.Open(ctx, dsn)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		st, err := stores[backend](ctx, db)
		if err != nil {
			db.SQL.Close()
			cleanup()
			return nil, nil, fmt.Errorf("opening %s: %w", backend, err)
		}
		mu.Lock()
		if !seen[d] {
			seen[d] = true
			file.Environment.Databases = append(file.Environment.Databases,
				results.Database{Dialect: string(d), Flavor: db.Flavor, Image: prov.Choose(ctx, d, false).Image})
		}
		mu.Unlock()
		return st, func() error {
			err := errors.Join(st.Close(), db.SQL.Close())
			cleanup()
			return err
		}, nil
	}}
	benches, more, err := runner.Run(ctx, bench.StoreGroups(prof, ss, usable, fx))
	// fx.Notes: the server dialects whose database CPU could not be read.
	return benches, append(append(skipped, more...), fx.Notes()...), errors.Join(err, fx.Close())
}

func writeResults(f *results.File, dir string) error {
	if err := f.WriteFile(filepath.Join(dir, "results.json")); err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(dir, "results.txt"))
	if err != nil {
		return err
	}
	if err := f.WriteBenchfmt(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// printSummary prints one line per benchmark: the medians people look for
// first, and where the files are.
func printSummary(w io.Writer, f *results.File, dir string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tops/s\tp50\tp99\tserver CPU/op\terrors\tother load\t")
	for _, b := range f.Benchmarks {
		s := b.Summaries
		cpu := "-"
		if c, ok := s["server_cpu_per_op"]; ok {
			cpu = time.Duration(c.Median).String()
		}
		other := "-"
		if o, ok := s["other_cpu_share"]; ok {
			other = fmt.Sprintf("%.1f CPUs", o.Median)
		}
		flag := ""
		if b.Saturated {
			flag = "generator saturated"
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%v\t%v\t%s\t%.0f\t%s\t%s\n", b.Key(), s["throughput"].Median,
			time.Duration(s["p50"].Median), time.Duration(s["p99"].Median), cpu, s["errors"].Max, other, flag)
	}
	tw.Flush()
	for _, s := range f.Skipped {
		fmt.Fprintln(w, "skipped: "+s)
	}
	fmt.Fprintf(w, "wrote %s and %s (median of %d repeats; benchstat -col /backend %s)\n",
		filepath.Join(dir, "results.json"), filepath.Join(dir, "results.txt"),
		repeatsOf(f), filepath.Join(dir, "results.txt"))
}

func repeatsOf(f *results.File) int {
	if len(f.Benchmarks) == 0 {
		return 0
	}
	return len(f.Benchmarks[0].Repeats)
}
