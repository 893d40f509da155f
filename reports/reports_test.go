package reports

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twistbench/twistbench/conformance"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func buildFixture(t *testing.T) *Report {
	t.Helper()
	head, base, matrix := writeFixtures(t, t.TempDir())
	in, err := Load([]string{head, matrix}, []string{base})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build(in, Options{Threshold: 10, Generated: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	// Paths come from a temporary directory; keep only the base names.
	for i, p := range r.Paths {
		r.Paths[i] = filepath.Base(p)
	}
	return r
}

var svgBody = regexp.MustCompile(`(?s)<svg.*?</svg>`)

// TestGolden pins the structure of the page and the summary. Chart bodies
// are replaced by a marker (their drawing is gonum/plot's business; that
// each chart is there and drawn is checked in TestCharts).
func TestGolden(t *testing.T) {
	r := buildFixture(t)
	var html, md bytes.Buffer
	if err := WriteHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	structure := svgBody.ReplaceAllString(html.String(), "<svg><!-- chart --></svg>")
	golden(t, "testdata/report.golden.html", structure)
	golden(t, "testdata/summary.golden.md", md.String())
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -update to create it)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %q\nwant: %q\n(run go test ./reports -update if the change is intended)", path, i+1, g, w)
			}
		}
	}
}

func TestOverviewAndMatrix(t *testing.T) {
	r := buildFixture(t)
	verdicts := map[string]string{}
	for _, v := range r.Overview {
		verdicts[v.Suite+":"+v.Backend] = v.Verdict()
	}
	for k, want := range map[string]string{
		"reactor:epoll":     "FAILS",
		"reactor:stdnet":    "non-strict",
		"store:gorm/sqlite": "not checked",
		"store:sql/sqlite":  "not checked",
	} {
		if verdicts[k] != want {
			t.Errorf("verdict of %s = %q, want %q (all: %v)", k, verdicts[k], want, verdicts)
		}
	}
	cells := map[string]string{}
	if len(r.Matrices) != 1 || r.Matrices[0].Suite != "reactor" {
		t.Fatalf("%d matrices, want one for the reactor suite", len(r.Matrices))
	}
	m := r.Matrices[0]
	for _, cat := range m.Categories {
		for _, row := range cat.Rows {
			for i, c := range row.Cells {
				cells[row.Info.ID+"@reactor:"+m.Columns[i]] = c.Class
			}
		}
	}
	for k, want := range map[string]string{
		"RX-LIFE-001@reactor:epoll":   "fail",
		"RX-HALF-001@reactor:epoll":   "info",
		"RX-WRITE-009@reactor:stdnet": "non-strict",
		"RX-WRITE-009@reactor:epoll":  "missing",
		"RX-LIFE-001@reactor:stdnet":  "pass",
	} {
		if cells[k] != want {
			t.Errorf("cell %s = %q, want %q", k, cells[k], want)
		}
	}
}

func TestComparison(t *testing.T) {
	r := buildFixture(t)
	c := r.Comparison
	if c == nil {
		t.Fatal("no comparison built")
	}
	byKey := map[string]CompareRow{}
	for _, row := range c.Rows {
		byKey[row.Key+" "+row.Figure] = row
	}
	// epoll lost ~23% of its throughput against the baseline: a
	// significant regression beyond the 10% threshold.
	reg := byKey["EchoClosed/backend=epoll/conns=64/size=64 throughput"]
	if !reg.Significant || !reg.Regression || reg.Ratio > 0.8 || reg.Ratio < 0.73 {
		t.Errorf("epoll throughput: %+v, want a significant regression with ratio ~0.77", reg)
	}
	if !(reg.Lo <= reg.Ratio && reg.Ratio <= reg.Hi) {
		t.Errorf("ratio %v outside its interval [%v, %v]", reg.Ratio, reg.Lo, reg.Hi)
	}
	// stdnet is the same distribution on both sides, up to jitter: not a
	// regression (and most likely "~").
	same := byKey["EchoClosed/backend=stdnet/conns=64/size=64 throughput"]
	if same.Regression {
		t.Errorf("stdnet throughput flagged as a regression: %+v", same)
	}
	if len(c.Regressions) == 0 {
		t.Error("no regressions listed")
	}
	var g *Geomean
	for i := range c.Geomeans {
		if c.Geomeans[i].Backend == "epoll" && c.Geomeans[i].Figure == "throughput" {
			g = &c.Geomeans[i]
		}
	}
	if g == nil || g.Ratio > 0.8 || g.N != 3 {
		t.Errorf("epoll throughput geomean %+v, want ~0.77 over 3 benchmarks", g)
	}
	if len(c.EnvWarnings) != 0 {
		t.Errorf("identical environments warned about: %v", c.EnvWarnings)
	}
}

func TestEnvWarnings(t *testing.T) {
	dir := t.TempDir()
	head, base, _ := writeFixtures(t, dir)
	bf := synth(t, 3, 3, echoPoints(map[string]float64{"stdnet": 1, "epoll": 1, "gorm": 1, "sql": 1}))
	bf.Environment.CPUModel = "Other CPU"
	bf.Environment.GoVersion = "go1.25.0"
	if err := bf.WriteFile(base); err != nil {
		t.Fatal(err)
	}
	in, err := Load([]string{head}, []string{base})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build(in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(r.Comparison.EnvWarnings, "\n")
	if !strings.Contains(w, "CPU model") || !strings.Contains(w, "Go version") {
		t.Errorf("warnings %q do not name the CPU model and Go version", w)
	}
}

func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	head, _, _ := writeFixtures(t, dir)
	good, err := os.ReadFile(head)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, content, want string
	}{
		{"empty.json", "", "empty file"},
		{"truncated.json", string(good[:len(good)/2]), "truncated"},
		{"future.json", `{"schema": 99, "benchmarks": []}`, "newer"},
		{"other.json", `{"hello": "world"}`, "neither a results file"},
		{"array.json", `[1,2]`, "not a JSON object"},
		{"badrepeat.json", strings.Replace(string(good), `"duration_ns": 1000000000`, `"duration_ns": -5`, 1), "duration"},
		{"futurematrix.json", `{"schema": 7, "cases": [], "results": []}`, "conformance schema 7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load([]string{p}, nil)
			if err == nil {
				t.Fatalf("Load accepted %s", c.name)
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not name the file and %q", err, c.want)
			}
		})
	}
}

func TestMergeRounds(t *testing.T) {
	dir := t.TempDir()
	a := synth(t, 5, 2, echoPoints(map[string]float64{"stdnet": 1, "epoll": 1, "gorm": 1, "sql": 1}))
	b := synth(t, 6, 3, echoPoints(map[string]float64{"stdnet": 1, "epoll": 1, "gorm": 1, "sql": 1}))
	pa, pb := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	if err := a.WriteFile(pa); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteFile(pb); err != nil {
		t.Fatal(err)
	}
	in, err := Load([]string{pa, pb}, nil)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := merge(in.Results)
	if err != nil {
		t.Fatal(err)
	}
	if len(merged) != len(a.Benchmarks) {
		t.Fatalf("%d merged benchmarks, want %d", len(merged), len(a.Benchmarks))
	}
	for _, m := range merged {
		if len(m.Repeats) != 5 || m.Summaries["throughput"].N != 5 {
			t.Errorf("%s: %d repeats, summary n=%d; want 5 and 5", m.Key(), len(m.Repeats), m.Summaries["throughput"].N)
		}
		h, err := m.DecodeHistogram()
		if err != nil || h.TotalCount() != 5*2000 {
			t.Errorf("%s: merged histogram holds %d values (%v), want 10000", m.Key(), h.TotalCount(), err)
		}
	}
}

func TestCharts(t *testing.T) {
	r := buildFixture(t)
	kinds := map[string]int{}
	for _, c := range r.Charts {
		kinds[c.Kind]++
		if !strings.HasPrefix(string(c.SVG), "<svg") || !strings.Contains(string(c.SVG), "<path") {
			t.Errorf("chart %s is not an inline SVG with paths: %.80q", c.ID, c.SVG)
		}
	}
	if kinds["throughput"] != 1 || kinds["latency"] != 1 || kinds["store"] != 1 {
		t.Errorf("charts by kind %v, want one throughput, one latency, one store", kinds)
	}
}

// TestMatrixPerSuite: each suite gets its own matrix with its own columns,
// so a reactor case shows no "Missing" cell under a store back-end.
func TestMatrixPerSuite(t *testing.T) {
	m := fixtureMatrix()
	m.Cases = append(m.Cases, conformance.Info{ID: "ST-HOST-001", Category: "hosts", Level: conformance.Must, Statement: "CreateHost sets an ID"})
	for _, d := range []string{"sqlite", "postgres"} {
		m.Results = append(m.Results, conformance.Result{Suite: "store", Case: "ST-HOST-001", Backend: "gorm", Dialect: d, Verdict: conformance.Pass})
	}
	ms := buildMatrices([]*conformance.Matrix{m})
	if len(ms) != 2 || ms[0].Suite != "reactor" || ms[1].Suite != "store" {
		t.Fatalf("matrices %v, want reactor then store", ms)
	}
	if got := strings.Join(ms[1].Columns, ","); got != "gorm/sqlite,gorm/postgres" {
		t.Errorf("store columns %q", got)
	}
	for _, cat := range ms[1].Categories {
		for _, row := range cat.Rows {
			for _, c := range row.Cells {
				if c.Class != "pass" {
					t.Errorf("store cell of %s is %s", row.Info.ID, c.Class)
				}
			}
		}
	}
	for _, cat := range ms[0].Categories {
		for _, row := range cat.Rows {
			if len(row.Cells) != len(ms[0].Columns) || len(ms[0].Columns) != 2 {
				t.Errorf("reactor row %s has %d cells for columns %v", row.Info.ID, len(row.Cells), ms[0].Columns)
			}
		}
	}
}
