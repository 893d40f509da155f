package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/conformance/apitest"
	"github.com/twistbench/twistbench/conformance/reactortest"
	"github.com/twistbench/twistbench/conformance/storetest"
	"github.com/twistbench/twistbench/containers"
	"github.com/twistbench/twistbench/impls/store"
)

func init() { commands = append(commands, newConformanceCmd) }

// conformanceOptions are the flags of `harness conformance`.
type conformanceOptions struct {
	suite    string         // reactor, store, http or all
	backends string         // comma-separated, or all
	dialects string         // store and http suites: comma-separated, or all
	out      string         // directory for conformance.json
	timeout  time.Duration  // budget of an ordinary case
	run      *regexp.Regexp // case IDs to run; nil for all
}

func newConformanceCmd() *cobra.Command {
	var o conformanceOptions
	var runPattern string
	cmd := &cobra.Command{
		Use:   "conformance",
		Short: "Run the conformance suites on the back-ends and write the verdict matrix",
		Long: `conformance runs every case of the selected suites on every selected
back-end, each case on a fresh instance with a watchdog, prints a matrix
(case x back-end) on stdout and progress on stderr, and writes
DIR/conformance.json for "harness report".

Verdicts: pass; fail (a MUST case failed, an optional capability is present
but broken, or the case timed out); non-strict (a SHOULD case failed); skip
(an optional capability is absent, with the reason). The exit code is 1 when
any case failed or a back-end could not start, 0 otherwise.

--backends takes names from any suite ("stdnet,epoll,gorm,fasthttp/sql");
each suite runs the names that belong to it. The store suite runs every
store back-end on every dialect of --dialects that can be had (SQLite
always; PostgreSQL and MySQL in containers when a Docker engine answers, or
from TWISTBENCH_POSTGRES_DSN / TWISTBENCH_MYSQL_DSN); the HTTP suite runs
both engines over every store back-end on the same databases. A dialect
that cannot be had is listed as not run, with the reason; under
TWISTBENCH_REQUIRE_DOCKER=1 it is a failure.`,
		Example: `  harness conformance --suite reactor --backends stdnet,epoll --out out
  harness conformance --suite reactor --run 'RX-(LIFE|CLOSE)-' --out out
  harness conformance --suite store --dialects sqlite,postgres --out out`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.timeout <= 0 {
				return fmt.Errorf("--timeout must be positive, got %v", o.timeout)
			}
			if runPattern != "" {
				re, err := regexp.Compile(runPattern)
				if err != nil {
					return fmt.Errorf("--run %q: %w", runPattern, err)
				}
				o.run = re
			}
			return runConformance(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.suite, "suite", "all", "suite to run: reactor, store, http or all")
	f.StringVar(&o.dialects, "dialects", "all", "store and http suites: dialects to run (sqlite, postgres, mysql), comma-separated, or all")
	f.StringVar(&o.backends, "backends", "all", "back-ends to run, comma-separated (reactors: "+strings.Join(reactorOrder, ", ")+"; stores: "+strings.Join(storeOrder, ", ")+"), or all")
	f.StringVar(&o.out, "out", "", "directory to write conformance.json to (created if missing)")
	f.DurationVar(&o.timeout, "timeout", reactortest.DefaultTimeout, "budget of one ordinary case, shutdown included (slow cases get 4x)")
	f.StringVar(&runPattern, "run", "", "run only the cases whose ID matches this regular expression")
	cmd.MarkFlagRequired("out")
	return cmd
}

// conformanceSuite is one suite as this command drives it. A suite whose
// record is nil is known but not wired yet: it is reported as skipped.
type conformanceSuite struct {
	name   string
	order  []string // its back-ends, in report order
	cases  func() []conformance.Info
	record func(backend string, timeout time.Duration, run *regexp.Regexp) []conformance.Result
	start  func(backend string) error // can the back-end start at all?
}

// suiteEnv is what the store and HTTP suites need at run time: the
// databases, and the dialects found available.
type suiteEnv struct {
	ctx       context.Context
	dbs       *databases
	available []store.Dialect
}

// conformanceSuites lists the suites in the order they run. env may be nil
// when only names and orders are wanted.
func conformanceSuites(env *suiteEnv) []conformanceSuite {
	if env == nil {
		env = &suiteEnv{ctx: context.Background()}
	}
	return []conformanceSuite{
		{
			name:  reactortest.Suite,
			order: reactorOrder,
			cases: reactortest.Cases,
			record: func(backend string, timeout time.Duration, run *regexp.Regexp) []conformance.Result {
				return reactortest.RecordMatching(reactors[backend], backend, timeout, run)
			},
			start: startReactorProbe,
		},
		storeSuite(env),
		httpSuite(env),
	}
}

// startReactorProbe starts and stops a reactor once, so that a back-end
// that cannot start is reported once instead of failing every case.
func startReactorProbe(backend string) error {
	r, err := reactors[backend]()
	if err != nil {
		return err
	}
	if r == nil {
		return errors.New("constructor returned a nil Reactor")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.Shutdown(ctx)
}

// selectSuites resolves --suite and --backends: the suites to run and, for
// each, its selected back-ends. Every name in --backends must belong to one
// of the selected suites.
func selectSuites(suite, backends string, env *suiteEnv) ([]conformanceSuite, [][]string, error) {
	all := conformanceSuites(env)
	var chosen []conformanceSuite
	for _, s := range all {
		if suite == "all" || suite == s.name {
			chosen = append(chosen, s)
		}
	}
	if len(chosen) == 0 {
		names := make([]string, len(all))
		for i, s := range all {
			names[i] = s.name
		}
		return nil, nil, fmt.Errorf("unknown suite %q (known: %s, all)", suite, strings.Join(names, ", "))
	}
	if len(chosen) == 1 {
		sel, err := pick(chosen[0].name+" back-end", backends, chosen[0].order)
		return chosen, [][]string{inOrder(sel, chosen[0].order)}, err
	}
	if backends == "" || backends == "all" {
		sels := make([][]string, len(chosen))
		for i, s := range chosen {
			sels[i] = s.order
		}
		return chosen, sels, nil
	}
	sels := make([][]string, len(chosen))
	var known []string
	for _, n := range strings.Split(backends, ",") {
		n = strings.TrimSpace(n)
		found := false
		for i, s := range chosen {
			for _, b := range s.order {
				if b == n {
					sels[i] = append(sels[i], n)
					found = true
				}
			}
		}
		if !found {
			for _, s := range chosen {
				known = append(known, s.order...)
			}
			return nil, nil, fmt.Errorf("unknown back-end %q (known: %s)", n, strings.Join(known, ", "))
		}
	}
	for i, s := range chosen {
		sels[i] = inOrder(sels[i], s.order)
	}
	return chosen, sels, nil
}

// inOrder returns the names of sel in the registry's order (the order of
// the matrix's columns), each once.
func inOrder(sel, order []string) []string {
	want := map[string]bool{}
	for _, n := range sel {
		want[n] = true
	}
	var out []string
	for _, n := range order {
		if want[n] {
			out = append(out, n)
		}
	}
	return out
}

func runConformance(ctx context.Context, o conformanceOptions, stdout, stderr io.Writer) error {
	dialects, err := parseDialects(o.dialects)
	if err != nil {
		return fmt.Errorf("--dialects: %w", err)
	}
	env := &suiteEnv{ctx: ctx}
	suites, sels, err := selectSuites(o.suite, o.backends, env)
	if err != nil {
		return err
	}
	// The cases of each suite that --run selects; none at all is a usage
	// error, found before anything runs.
	selected := make([][]conformance.Info, len(suites))
	total := 0
	for i, s := range suites {
		if s.cases == nil {
			continue
		}
		for _, c := range s.cases() {
			if o.run == nil || o.run.MatchString(c.ID) {
				selected[i] = append(selected[i], c)
			}
		}
		total += len(selected[i])
	}
	if total == 0 && o.run != nil {
		return fmt.Errorf("--run %q matches no case of the selected suites", o.run)
	}
	if !reactortest.InChild() {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	m := &conformance.Matrix{Schema: conformance.MatrixSchema, Started: time.Now().UTC()}
	var broken []string
	if needsDatabases(suites, sels) && !reactortest.InChild() {
		env.dbs = newDatabases(containers.NewProvider(), dialects, stderr)
		env.dbs.viaProxy = true
		defer env.dbs.close()
		avail, skipped, required := env.dbs.available(ctx)
		env.available = avail
		for _, line := range skipped {
			m.Skipped = append(m.Skipped, "database "+line)
			fmt.Fprintf(stderr, "conformance: not running %s\n", line)
		}
		for _, line := range required {
			m.Skipped = append(m.Skipped, "database "+line)
			broken = append(broken, "database "+line)
			fmt.Fprintf(stderr, "conformance: cannot run %s\n", line)
		}
	}
	ran := false
	for i, s := range suites {
		if s.record == nil {
			msg := fmt.Sprintf("%s suite: not wired into harness conformance yet", s.name)
			if len(suites) == 1 {
				return errors.New(msg)
			}
			m.Skipped = append(m.Skipped, msg)
			fmt.Fprintf(stderr, "conformance: %s, skipped\n", msg)
			continue
		}
		if len(sels[i]) == 0 {
			m.Skipped = append(m.Skipped, fmt.Sprintf("%s suite: no %s back-end selected", s.name, s.name))
			continue
		}
		cases := selected[i]
		m.Cases = append(m.Cases, cases...)
		for _, b := range sels[i] {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("conformance interrupted before %s/%s: %w", s.name, b, err)
			}
			if reactortest.InChild() {
				// A child re-executed by a reactor case: its Record
				// call for the right back-end exits, the others return
				// nothing; no other suite runs.
				if s.name == reactortest.Suite {
					s.record(b, o.timeout, o.run)
				}
				continue
			}
			if err := s.start(b); err != nil {
				msg := fmt.Sprintf("%s/%s: cannot start: %v", s.name, b, err)
				m.Skipped = append(m.Skipped, msg)
				broken = append(broken, msg)
				fmt.Fprintf(stderr, "conformance: %s\n", msg)
				continue
			}
			ran = true
			for _, c := range cases {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("conformance interrupted before %s/%s %s: %w", s.name, b, c.ID, err)
				}
				res := s.record(b, o.timeout, regexp.MustCompile("^"+regexp.QuoteMeta(c.ID)+"$"))
				for _, r := range res {
					line := fmt.Sprintf("conformance: %s/%s %s %s (%v)", s.name, b, r.Case, r.Verdict, r.Duration.Round(time.Millisecond))
					if r.Message != "" {
						line += ": " + firstLineOf(r.Message)
					}
					fmt.Fprintln(stderr, line)
				}
				m.Results = append(m.Results, res...)
			}
		}
	}
	if reactortest.InChild() {
		return errors.New("conformance: re-executed as a case's child process, but no Record call ran the case")
	}
	if !ran && len(broken) == 0 {
		return fmt.Errorf("conformance: nothing ran: %s", strings.Join(m.Skipped, "; "))
	}
	m.Finished = time.Now().UTC()
	printMatrix(stdout, m)
	path := filepath.Join(o.out, "conformance.json")
	if err := m.WriteFile(path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	fmt.Fprintf(stderr, "conformance: wrote %s\n", path)
	var failed []string
	for _, r := range m.Results {
		if r.Verdict == conformance.Fail {
			failed = append(failed, r.Backend+"/"+r.Case)
		}
	}
	if len(failed) > 0 || len(broken) > 0 {
		parts := []string{}
		if len(failed) > 0 {
			parts = append(parts, fmt.Sprintf("%d failed case(s): %s", len(failed), strings.Join(failed, ", ")))
		}
		if len(broken) > 0 {
			parts = append(parts, strings.Join(broken, "; "))
		}
		return findings("conformance: %s", strings.Join(parts, "; "))
	}
	return nil
}

// needsDatabases reports whether a selected suite with back-ends selected
// runs on databases.
func needsDatabases(suites []conformanceSuite, sels [][]string) bool {
	for i, s := range suites {
		if (s.name == storetest.Suite || s.name == apitest.Suite) && len(sels[i]) > 0 {
			return true
		}
	}
	return false
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// printMatrix writes the verdicts as a table: a row per case, a column per
// back-end (suite/back-end when more than one suite ran), then a summary
// line per column.
func printMatrix(w io.Writer, m *conformance.Matrix) {
	type col struct{ suite, backend, dialect string }
	var cols []col
	seen := map[col]bool{}
	cell := map[string]conformance.Verdict{}
	suites := map[string]bool{}
	for _, r := range m.Results {
		c := col{r.Suite, r.Backend, r.Dialect}
		if !seen[c] {
			seen[c] = true
			cols = append(cols, c)
			suites[r.Suite] = true
		}
		cell[r.Suite+"\x00"+r.Backend+"\x00"+r.Dialect+"\x00"+r.Case] = r.Verdict
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "case\tlevel"
	for _, c := range cols {
		name := c.backend
		if c.dialect != "" {
			name += "@" + c.dialect
		}
		if len(suites) > 1 {
			name = c.suite + ":" + name
		}
		head += "\t" + name
	}
	fmt.Fprintln(tw, head)
	counts := make([]map[conformance.Verdict]int, len(cols))
	for i := range counts {
		counts[i] = map[conformance.Verdict]int{}
	}
	for _, c := range m.Cases {
		row := c.ID + "\t" + string(c.Level)
		shown := false
		for i, k := range cols {
			v, ok := cell[k.suite+"\x00"+k.backend+"\x00"+k.dialect+"\x00"+c.ID]
			switch {
			case !ok:
				row += "\t-"
			case v == conformance.Fail:
				row += "\tFAIL"
			default:
				row += "\t" + string(v)
			}
			if ok {
				counts[i][v]++
				shown = true
			}
		}
		if shown {
			fmt.Fprintln(tw, row)
		}
	}
	sum := "total\t"
	for i := range cols {
		c := counts[i]
		sum += fmt.Sprintf("\t%d pass %d fail", c[conformance.Pass], c[conformance.Fail])
		if n := c[conformance.NonStrict]; n > 0 {
			sum += fmt.Sprintf(" %d non-strict", n)
		}
		if n := c[conformance.Skip]; n > 0 {
			sum += fmt.Sprintf(" %d skip", n)
		}
	}
	fmt.Fprintln(tw, sum)
	tw.Flush()
	for _, s := range m.Skipped {
		fmt.Fprintf(w, "not run: %s\n", s)
	}
}
