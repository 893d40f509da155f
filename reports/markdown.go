package reports

import (
	"fmt"
	"io"
	"strings"
)

// WriteMarkdown writes the short summary for a CI job summary or a pull
// request comment: verdicts, conformance failures, the fastest back-end at
// each point, and the significant changes against the baseline.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	if r.Env != nil {
		fmt.Fprintf(&b, "%s, %d cores, %s, commit %s\n\n", r.Env.CPUModel, r.Env.Cores, r.Env.GoVersion, orUnknown(r.Env.Commit))
	}
	if len(r.Overview) > 0 {
		b.WriteString("| suite | back-end | verdict | conformance (pass/non-strict/fail/info) | fastest at |\n|---|---|---|---|---|\n")
		for _, v := range r.Overview {
			conf, fast := "-", "-"
			if v.HasConformance {
				conf = fmt.Sprintf("%d/%d/%d/%d", v.Pass, v.NonStrict, v.Fail, v.Skip)
			}
			if v.Points > 0 {
				fast = fmt.Sprintf("%d of %d", v.Wins, v.Points)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", v.Suite, v.Backend, v.Verdict(), conf, fast)
		}
		b.WriteString("\n")
	}
	if len(r.Skipped) > 0 {
		b.WriteString("**Not run:**\n\n")
		for _, s := range r.Skipped {
			fmt.Fprintf(&b, "- %s\n", s)
		}
		b.WriteString("\n")
	}
	if len(r.Matrices) > 0 {
		var fails []string
		for _, m := range r.Matrices {
			for _, cat := range m.Categories {
				for _, row := range cat.Rows {
					for i, c := range row.Cells {
						if c.Class == "fail" || c.Class == "non-strict" {
							fails = append(fails, fmt.Sprintf("- `%s` on %s %s (%s): %s", row.Info.ID, m.Suite, m.Columns[i], c.Label, oneLine(c.Message)))
						}
					}
				}
			}
		}
		if len(fails) > 0 {
			fmt.Fprintf(&b, "## Conformance failures (%d)\n\n%s\n\n", len(fails), strings.Join(fails, "\n"))
		} else {
			b.WriteString("## Conformance\n\nEvery case passed or was an absent optional capability.\n\n")
		}
	}
	if len(r.Scenarios) > 0 {
		b.WriteString("## Fastest at each point (median throughput)\n\n| scenario | point | back-end | ops/s |\n|---|---|---|---|\n")
		for _, t := range r.Scenarios {
			for _, row := range t.Rows {
				if row.Best {
					sat := ""
					if row.Saturated {
						sat = " (generator saturated)"
					}
					fmt.Fprintf(&b, "| %s/%s | %s | %s | %s%s |\n", t.Suite, t.Scenario, row.Point, row.Backend, num(row.Summaries["throughput"].Median), sat)
				}
			}
		}
		b.WriteString("\n")
	}
	if c := r.Comparison; c != nil {
		b.WriteString("## Against the baseline\n\n")
		for _, w := range c.EnvWarnings {
			fmt.Fprintf(&b, "> Environments differ: %s\n\n", w)
		}
		if len(c.Regressions) > 0 {
			fmt.Fprintf(&b, "**%d significant regression(s) beyond %g%%.**\n\n", len(c.Regressions), c.Threshold)
		} else {
			fmt.Fprintf(&b, "No significant regression beyond %g%%.\n\n", c.Threshold)
		}
		var sig []CompareRow
		for _, row := range c.Rows {
			if row.Significant {
				sig = append(sig, row)
			}
		}
		if len(sig) > 0 {
			b.WriteString("| benchmark | figure | baseline | results | delta | p |\n|---|---|---|---|---|---|\n")
			for _, row := range sig {
				mark := ""
				if row.Regression {
					mark = " ❌"
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s%s | %.3f |\n", row.Key, row.Figure, figure(row.Base, row.Unit), figure(row.Head, row.Unit), row.Delta(), mark, row.P)
			}
			b.WriteString("\n")
		}
		if len(c.Geomeans) > 0 {
			b.WriteString("| back-end | figure | geomean ratio |\n|---|---|---|\n")
			for _, g := range c.Geomeans {
				fmt.Fprintf(&b, "| %s | %s | %.3f |\n", g.Backend, g.Figure, g.Ratio)
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
