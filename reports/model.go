package reports

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twistbench/twistbench/bench/results"
	"github.com/twistbench/twistbench/conformance"
)

// Options tune a report.
type Options struct {
	// Title heads the page; default "twistbench report".
	Title string
	// Threshold is the regression, in percent, beyond which a significant
	// change counts as a regression (default 5).
	Threshold float64
	// Generated is the time stamped on the page; zero means now. Golden
	// tests fix it.
	Generated time.Time
}

// Report is everything the page and the summary show, computed once.
type Report struct {
	Title     string
	Generated time.Time
	Paths     []string
	Env       *results.Environment // nil when only conformance was given
	Skipped   []string

	Overview   []BackendVerdict
	Matrices   []*MatrixView // one per suite
	Scenarios  []ScenarioTable
	Charts     []Chart
	Comparison *Comparison
}

// BackendVerdict is one line of the overview.
type BackendVerdict struct {
	Suite   string
	Backend string // with "/dialect" for stores
	// Conformance counts, when a matrix covers this back-end.
	Pass, NonStrict, Fail, Skip int
	HasConformance              bool
	// Wins is how many benchmark points this back-end had the best median
	// throughput at, out of Points it took part in.
	Wins, Points int
	// Saturated counts its points measured with a saturated generator.
	Saturated int
}

// Verdict is the one-word verdict of the overview.
func (v BackendVerdict) Verdict() string {
	switch {
	case !v.HasConformance:
		return "not checked"
	case v.Fail > 0:
		return "FAILS"
	case v.NonStrict > 0:
		return "non-strict"
	}
	return "conforms"
}

// Build computes the report from loaded inputs.
func Build(in *Inputs, opt Options) (*Report, error) {
	if opt.Title == "" {
		opt.Title = "twistbench report"
	}
	if opt.Threshold == 0 {
		opt.Threshold = 5
	}
	if opt.Generated.IsZero() {
		opt.Generated = time.Now().UTC()
	}
	r := &Report{
		Title:     opt.Title,
		Generated: opt.Generated,
		Paths:     in.Paths,
		Skipped:   skippedOf(append(append([]*results.File(nil), in.Results...), in.Baseline...), in.Conformance),
	}
	if len(in.Results) > 0 {
		env := in.Results[0].Environment
		r.Env = &env
	}
	head, err := merge(in.Results)
	if err != nil {
		return nil, fmt.Errorf("merging results: %w", err)
	}
	if len(in.Conformance) > 0 {
		r.Matrices = buildMatrices(in.Conformance)
	}
	r.Scenarios = buildScenarios(head)
	r.Overview = buildOverview(r.Matrices, r.Scenarios)
	r.Charts = buildCharts(head)
	if len(in.Baseline) > 0 {
		base, err := merge(in.Baseline)
		if err != nil {
			return nil, fmt.Errorf("merging baseline: %w", err)
		}
		r.Comparison = compare(base, head, opt.Threshold)
		r.Comparison.EnvWarnings = envWarnings(in.Baseline[0].Environment, in.Results)
	}
	return r, nil
}

// MatrixView is one suite's conformance matrix: rows are cases grouped by
// category, columns are back-ends (x dialect).
type MatrixView struct {
	Suite      string
	Columns    []string
	Categories []CategoryRows
	// Details has one entry per case, for the detail sections.
	Details []CaseDetail
}

// CategoryRows is one category's cases.
type CategoryRows struct {
	Category string
	Rows     []MatrixRow
}

// MatrixRow is one case across the columns.
type MatrixRow struct {
	Info  conformance.Info
	Suite string
	Cells []Cell
}

// Cell is one verdict; Class is "pass", "non-strict", "fail", "info"
// (skipped: an optional capability absent) or "missing" (not run).
type Cell struct {
	Class   string
	Label   string
	Message string
}

// CaseDetail is a case's statement and what every column observed.
type CaseDetail struct {
	Info     conformance.Info
	Suite    string
	Observed []Observation
}

// Observation is one column's outcome of one case.
type Observation struct {
	Column, Verdict, Message, Log string
	Duration                      time.Duration
}

// column names a matrix column within its suite: the back-end, and the
// dialect where there is one.
func column(res conformance.Result) string {
	c := res.Backend
	if res.Dialect != "" {
		c += "/" + res.Dialect
	}
	return c
}

// buildMatrices builds one matrix per suite, in the order the suites first
// appear: a reactor case has no cell in a store column, so one table of
// every column would be mostly "Missing" that means "not applicable".
// Cases no result names (not run anywhere) are left out.
func buildMatrices(ms []*conformance.Matrix) []*MatrixView {
	infos := map[string]conformance.Info{} // by case ID
	var caseOrder []string
	suiteOf := map[string]string{}
	var suiteOrder []string
	cols := map[string][]string{}                       // suite -> columns
	seenCol := map[string]bool{}                        // suite + column
	cells := map[string]map[string]conformance.Result{} // case ID -> column -> result
	for _, m := range ms {
		for _, c := range m.Cases {
			if _, ok := infos[c.ID]; !ok {
				infos[c.ID] = c
				caseOrder = append(caseOrder, c.ID)
			}
		}
		for _, res := range m.Results {
			if _, ok := cols[res.Suite]; !ok {
				suiteOrder = append(suiteOrder, res.Suite)
				cols[res.Suite] = nil
			}
			col := column(res)
			if !seenCol[res.Suite+"\x00"+col] {
				seenCol[res.Suite+"\x00"+col] = true
				cols[res.Suite] = append(cols[res.Suite], col)
			}
			suiteOf[res.Case] = res.Suite
			if cells[res.Case] == nil {
				cells[res.Case] = map[string]conformance.Result{}
			}
			cells[res.Case][col] = res
		}
	}
	var out []*MatrixView
	for _, suite := range suiteOrder {
		mv := &MatrixView{Suite: suite, Columns: cols[suite]}
		byCat := map[string]*CategoryRows{}
		var catOrder []string
		for _, id := range caseOrder {
			if suiteOf[id] != suite {
				continue
			}
			info := infos[id]
			cat := info.Category
			if byCat[cat] == nil {
				byCat[cat] = &CategoryRows{Category: cat}
				catOrder = append(catOrder, cat)
			}
			row := MatrixRow{Info: info, Suite: suite}
			det := CaseDetail{Info: info, Suite: suite}
			for _, col := range mv.Columns {
				res, ok := cells[id][col]
				if !ok {
					row.Cells = append(row.Cells, Cell{Class: "missing", Label: "Missing"})
					continue
				}
				row.Cells = append(row.Cells, cellOf(res))
				det.Observed = append(det.Observed, Observation{
					Column: col, Verdict: string(res.Verdict), Message: res.Message, Log: res.Log, Duration: res.Duration,
				})
			}
			byCat[cat].Rows = append(byCat[cat].Rows, row)
			mv.Details = append(mv.Details, det)
		}
		for _, c := range catOrder {
			mv.Categories = append(mv.Categories, *byCat[c])
		}
		out = append(out, mv)
	}
	return out
}

func cellOf(res conformance.Result) Cell {
	switch res.Verdict {
	case conformance.Pass:
		return Cell{Class: "pass", Label: "Pass"}
	case conformance.NonStrict:
		return Cell{Class: "non-strict", Label: "Non-strict", Message: res.Message}
	case conformance.Fail:
		return Cell{Class: "fail", Label: "Fail", Message: res.Message}
	case conformance.Skip:
		return Cell{Class: "info", Label: "Info", Message: res.Message}
	}
	return Cell{Class: "missing", Label: "Missing"}
}

// ScenarioTable is one scenario's benchmark table.
type ScenarioTable struct {
	Suite, Scenario string
	Rows            []ScenarioRow
}

// ScenarioRow is one benchmark point.
type ScenarioRow struct {
	Key       string
	Backend   string
	Dialect   string
	Params    string // "conns=64 size=64"
	Point     string // Params plus dialect: what rows of one point share
	Summaries map[string]results.Summary
	Saturated bool
	Best      bool // best median throughput at this point
	params    []results.Param
}

// Get returns the summary of a figure, and whether it exists.
func (r ScenarioRow) Get(fig string) (results.Summary, bool) {
	s, ok := r.Summaries[fig]
	return s, ok
}

func paramString(b results.Benchmark) string {
	var parts []string
	for _, p := range b.Params {
		parts = append(parts, p.Key+"="+p.Value)
	}
	return strings.Join(parts, " ")
}

func buildScenarios(bs []results.Benchmark) []ScenarioTable {
	var order []string
	tables := map[string]*ScenarioTable{}
	for _, b := range bs {
		k := b.Suite + "/" + b.Scenario
		if tables[k] == nil {
			tables[k] = &ScenarioTable{Suite: b.Suite, Scenario: b.Scenario}
			order = append(order, k)
		}
		point := paramString(b)
		if b.Dialect != "" {
			point = strings.TrimSpace("dialect=" + b.Dialect + " " + point)
		}
		tables[k].Rows = append(tables[k].Rows, ScenarioRow{
			Key: b.Key(), Backend: b.Backend, Dialect: b.Dialect, Params: paramString(b), Point: point,
			Summaries: b.Summaries, Saturated: b.Saturated, params: b.Params,
		})
	}
	out := make([]ScenarioTable, 0, len(order))
	for _, k := range order {
		t := tables[k]
		sort.SliceStable(t.Rows, func(i, j int) bool { return pointLess(t.Rows[i], t.Rows[j]) })
		markBest(t.Rows)
		out = append(out, *t)
	}
	return out
}

// pointLess orders rows by dialect, then by each parameter, numerically
// where both values are numbers (conns=64 before conns=1024).
func pointLess(a, b ScenarioRow) bool {
	if a.Dialect != b.Dialect {
		return a.Dialect < b.Dialect
	}
	for i := 0; i < len(a.params) && i < len(b.params); i++ {
		av, bv := a.params[i].Value, b.params[i].Value
		if av == bv {
			continue
		}
		an, aerr := strconv.ParseFloat(av, 64)
		bn, berr := strconv.ParseFloat(bv, 64)
		if aerr == nil && berr == nil {
			return an < bn
		}
		return av < bv
	}
	return len(a.params) < len(b.params)
}

// markBest flags, at every point, the row with the highest median
// throughput; a point with one back-end has no winner.
func markBest(rows []ScenarioRow) {
	byPoint := map[string][]int{}
	for i, r := range rows {
		byPoint[r.Point] = append(byPoint[r.Point], i)
	}
	for _, idx := range byPoint {
		if len(idx) < 2 {
			continue
		}
		best, bestV := -1, 0.0
		for _, i := range idx {
			if s, ok := rows[i].Summaries["throughput"]; ok && s.Median > bestV {
				best, bestV = i, s.Median
			}
		}
		if best >= 0 {
			rows[best].Best = true
		}
	}
}

func buildOverview(ms []*MatrixView, ts []ScenarioTable) []BackendVerdict {
	byName := map[string]*BackendVerdict{}
	var order []string
	get := func(suite, name string) *BackendVerdict {
		k := suite + ":" + name
		if byName[k] == nil {
			byName[k] = &BackendVerdict{Suite: suite, Backend: name}
			order = append(order, k)
		}
		return byName[k]
	}
	for _, m := range ms {
		for _, cat := range m.Categories {
			for _, row := range cat.Rows {
				for i, cell := range row.Cells {
					v := get(m.Suite, m.Columns[i])
					v.HasConformance = true
					switch cell.Class {
					case "pass":
						v.Pass++
					case "non-strict":
						v.NonStrict++
					case "fail":
						v.Fail++
					case "info":
						v.Skip++
					}
				}
			}
		}
	}
	for _, t := range ts {
		for _, r := range t.Rows {
			// Named as the conformance columns are: an HTTP engine with
			// the store behind it ("fasthttp/sql/sqlite").
			name := r.Backend
			for _, p := range r.params {
				if p.Key == "store" {
					name += "/" + p.Value
				}
			}
			if r.Dialect != "" {
				name += "/" + r.Dialect
			}
			v := get(t.Suite, name)
			v.Points++
			if r.Best {
				v.Wins++
			}
			if r.Saturated {
				v.Saturated++
			}
		}
	}
	out := make([]BackendVerdict, 0, len(order))
	for _, k := range order {
		out = append(out, *byName[k])
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Suite != out[j].Suite {
			return out[i].Suite < out[j].Suite
		}
		return out[i].Backend < out[j].Backend
	})
	return out
}

// envWarnings lists what differs between the baseline's environment and the
// results', where a difference makes the comparison doubtful.
func envWarnings(base results.Environment, head []*results.File) []string {
	if len(head) == 0 {
		return nil
	}
	h := head[0].Environment
	var w []string
	check := func(what, a, b string) {
		if a != b {
			w = append(w, fmt.Sprintf("%s differs: baseline %q, results %q", what, a, b))
		}
	}
	check("CPU model", base.CPUModel, h.CPUModel)
	check("Go version", base.GoVersion, h.GoVersion)
	check("kernel", base.Kernel, h.Kernel)
	if base.Cores != h.Cores {
		w = append(w, fmt.Sprintf("core count differs: baseline %d, results %d", base.Cores, h.Cores))
	}
	if base.GOMAXPROCS != h.GOMAXPROCS {
		w = append(w, fmt.Sprintf("GOMAXPROCS differs: baseline %d, results %d", base.GOMAXPROCS, h.GOMAXPROCS))
	}
	return w
}
