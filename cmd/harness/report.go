package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/twistbench/twistbench/reports"
)

func init() { commands = append(commands, newReportCmd) }

func newReportCmd() *cobra.Command {
	var (
		out, title     string
		baseline       []string
		baselineGlob   string
		failRegression float64
	)
	c := &cobra.Command{
		Use:   "report [flags] RESULTS...",
		Short: "Write the HTML report and Markdown summary from results and conformance files",
		Long: `report reads results.json files (from "harness bench") and conformance.json
files (from "harness conformance"), or directories holding them, and writes
OUT/index.html (one self-contained page: inline CSS and SVG, nothing fetched
from the network) and OUT/summary.md (for a CI job summary).

Several results files of the same benchmarks (rounds of one run) are merged
repeat by repeat. With --baseline, every figure is compared against the
baseline: ratio of medians, its interval, and Mann-Whitney U significance.
--fail-on-regression P makes the exit code 1 when any figure regressed
significantly by more than P percent.`,
		Example: `  harness report --out report out/results.json out/conformance.json
  harness report --baseline old/results.json --fail-on-regression 10 --out report new/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			paths, err := expandInputs(args)
			if err != nil {
				return err
			}
			if baselineGlob != "" {
				m, err := filepath.Glob(baselineGlob)
				if err != nil {
					return fmt.Errorf("--baseline-glob %q: %w", baselineGlob, err)
				}
				if len(m) == 0 {
					return fmt.Errorf("--baseline-glob %q matches no file", baselineGlob)
				}
				sort.Strings(m)
				baseline = append(baseline, m...)
			}
			in, err := reports.Load(paths, baseline)
			if err != nil {
				return err
			}
			threshold := failRegression
			if threshold <= 0 {
				threshold = 5
			}
			r, err := reports.Build(in, reports.Options{Title: title, Threshold: threshold})
			if err != nil {
				return err
			}
			if err := reports.WriteDir(out, r); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", filepath.Join(out, "index.html"))
			fmt.Fprintf(cmd.OutOrStdout(), "summary: %s\n", filepath.Join(out, "summary.md"))
			if failRegression > 0 && r.Comparison != nil && len(r.Comparison.Regressions) > 0 {
				return findings("%d significant regression(s) beyond %g%% (see %s)", len(r.Comparison.Regressions), failRegression, filepath.Join(out, "summary.md"))
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&out, "out", "report", "directory to write index.html and summary.md to")
	f.StringVar(&title, "title", "twistbench report", "title of the page")
	f.StringArrayVar(&baseline, "baseline", nil, "baseline results.json to compare against (repeatable; merged)")
	f.StringVar(&baselineGlob, "baseline-glob", "", "glob of baseline results.json files (merged), e.g. 'bench/base-*/results.json'")
	f.Float64Var(&failRegression, "fail-on-regression", 0, "exit 1 on a significant regression worse than this many percent (0: never)")
	return c
}

// expandInputs turns directories into the results.json and
// conformance.json they hold, and names a directory that holds neither.
func expandInputs(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		found := false
		for _, name := range []string{"results.json", "conformance.json"} {
			p := filepath.Join(a, name)
			if _, err := os.Stat(p); err == nil {
				out = append(out, p)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("%s: directory holds neither results.json nor conformance.json", a)
		}
	}
	return out, nil
}
