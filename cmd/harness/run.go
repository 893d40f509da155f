package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/twistbench/twistbench/bench"
	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/conformance/reactortest"
	"github.com/twistbench/twistbench/reports"
)

func init() { commands = append(commands, newRunCmd) }

// runOptions are the flags of `harness run`.
type runOptions struct {
	profile  string
	out      string
	backends string
	dialects string
	repeats  int
	inProc   bool
}

func newRunCmd() *cobra.Command {
	o := runOptions{profile: "quick", out: "out", backends: "all", dialects: "all"}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "The main job: conformance, then benchmarks of what passed, then the report",
		Long: `run is the whole job in one command:

  1. conformance: the reactor, store and HTTP suites on every selected
     back-end (stores on every dialect that can be had) -> OUT/conformance.json
  2. benchmarks of the back-ends that failed no MUST case -> OUT/results.json,
     OUT/results.txt (Go benchmark format)
  3. the report -> OUT/report/index.html and OUT/report/summary.md

With no Docker engine it runs every reactor back-end and SQLite, and says
which dialects it skipped and how to enable them (a Docker engine, or
"harness images build" where no registry can be reached, or
TWISTBENCH_POSTGRES_DSN / TWISTBENCH_MYSQL_DSN). The quick profile is sized
to finish in about three minutes on two cores; ci and full sweep more.

The exit code is 1 when a conformance case failed or a benchmark recorded
errors (the report is written all the same), 2 when the job could not run.`,
		Example: `  harness run
  harness run --profile ci --out out-ci
  harness run --backends epoll,stdnet,sql --dialects sqlite`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAll(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.profile, "profile", o.profile, "benchmark sweep: "+strings.Join(bench.ProfileNames, ", "))
	f.StringVar(&o.out, "out", o.out, "directory for conformance.json, results.json and report/")
	f.StringVar(&o.backends, "backends", o.backends, "comma-separated back-ends (reactors and stores), or all")
	f.StringVar(&o.dialects, "dialects", o.dialects, "comma-separated store dialects (sqlite, postgres, mysql), or all")
	f.IntVar(&o.repeats, "repeats", 0, "benchmark repeats per point (0: the profile's)")
	f.BoolVar(&o.inProc, "in-process", false, "run reactor servers inside the harness (no server CPU figure)")
	return cmd
}

func runAll(ctx context.Context, o runOptions, stdout, stderr io.Writer) error {
	start := time.Now()
	if _, err := bench.LookupProfile(o.profile); err != nil {
		return err
	}
	if _, err := parseDialects(o.dialects); err != nil {
		return fmt.Errorf("--dialects: %w", err)
	}
	rs, ss, err := splitBackends(o.backends)
	if err != nil {
		return err
	}
	stage := func(n int, what string) {
		fmt.Fprintf(stderr, "\n== %d/3 %s (%s elapsed)\n", n, what, time.Since(start).Round(time.Second))
	}

	// 1. Conformance. Its findings do not stop the job: the failing
	// back-ends are left out of the benchmarks and the report shows why.
	stage(1, "conformance")
	co := conformanceOptions{
		suite:    "all",
		backends: conformanceBackends(rs, ss),
		dialects: o.dialects,
		out:      o.out,
		timeout:  reactortest.DefaultTimeout,
	}
	var findingsSeen []string
	cerr := runConformance(ctx, co, io.Discard, stderr)
	if cerr != nil && !errors.Is(cerr, errFindings) {
		return cerr
	}
	if cerr != nil {
		findingsSeen = append(findingsSeen, strings.TrimPrefix(cerr.Error(), errFindings.Error()+": "))
	}
	confPath := filepath.Join(o.out, "conformance.json")
	m, err := conformance.ReadMatrix(confPath)
	if err != nil {
		return err
	}
	failed := mustFailures(m)
	var benchRS, benchSS []string
	for _, r := range rs {
		if failed["reactor/"+r] == 0 {
			benchRS = append(benchRS, r)
		}
	}
	for _, s := range ss {
		if failed["store/"+s] == 0 {
			benchSS = append(benchSS, s)
		}
	}
	for _, k := range sortedKeys(failed) {
		fmt.Fprintf(stderr, "run: %s failed %d MUST case(s): left out of the benchmarks\n", k, failed[k])
	}

	// 2. Benchmarks of what passed.
	stage(2, "benchmarks")
	bo := defaultBenchOptions()
	bo.Profile, bo.Out, bo.Dialects, bo.Repeats, bo.InProcess = o.profile, o.out, o.dialects, o.repeats, o.inProc
	resultsPath := ""
	if len(benchRS)+len(benchSS) == 0 {
		fmt.Fprintln(stderr, "run: no back-end passed conformance; nothing to benchmark")
	} else {
		bo.Backends = strings.Join(append(append([]string(nil), benchRS...), benchSS...), ",")
		flags := map[string]string{"profile": bo.Profile, "backends": bo.Backends, "dialects": bo.Dialects, "out": bo.Out}
		_, berr := runBench(ctx, bo, flags, stderr, stderr)
		switch {
		case berr == nil:
		case errors.Is(berr, errFindings):
			findingsSeen = append(findingsSeen, strings.TrimPrefix(berr.Error(), errFindings.Error()+": "))
		default:
			return berr
		}
		resultsPath = filepath.Join(o.out, "results.json")
	}

	// 3. The report.
	stage(3, "report")
	inputs := []string{confPath}
	if resultsPath != "" {
		inputs = append(inputs, resultsPath)
	}
	in, err := reports.Load(inputs, nil)
	if err != nil {
		return err
	}
	rep, err := reports.Build(in, reports.Options{Title: "twistbench run (" + o.profile + " profile)"})
	if err != nil {
		return err
	}
	reportDir := filepath.Join(o.out, "report")
	if err := reports.WriteDir(reportDir, rep); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report: %s\n", filepath.Join(reportDir, "index.html"))
	fmt.Fprintf(stdout, "summary: %s\n", filepath.Join(reportDir, "summary.md"))
	for _, v := range rep.Overview {
		fast := "-"
		if v.Points > 0 {
			fast = fmt.Sprintf("fastest at %d of %d points", v.Wins, v.Points)
		}
		fmt.Fprintf(stdout, "  %-8s %-16s %-12s %s\n", v.Suite, v.Backend, v.Verdict(), fast)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(stdout, "  not run: %s\n", s)
	}
	fmt.Fprintf(stderr, "run: done in %s\n", time.Since(start).Round(time.Second))
	if len(findingsSeen) > 0 {
		return findings("%s", strings.Join(findingsSeen, "; "))
	}
	return nil
}

// conformanceBackends names, for `harness conformance`, the selected
// reactors and stores, and the HTTP engine/store pairs over the stores.
func conformanceBackends(rs, ss []string) string {
	names := append(append([]string(nil), rs...), ss...)
	for _, pair := range httpOrder() {
		_, st, _ := strings.Cut(pair, "/")
		if slices.Contains(ss, st) {
			names = append(names, pair)
		}
	}
	return strings.Join(names, ",")
}

// mustFailures counts, per "suite/backend", the failed cases of m (a
// failed case is a MUST case; SHOULD failures are non-strict).
func mustFailures(m *conformance.Matrix) map[string]int {
	out := map[string]int{}
	for _, r := range m.Results {
		if r.Verdict == conformance.Fail {
			out[r.Suite+"/"+r.Backend]++
		}
	}
	return out
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
