package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twistbench/twistbench/bench/results"
	"github.com/twistbench/twistbench/conformance"
)

// TestRun runs the main job on one reactor and one store on SQLite and
// checks that each stage left its output: the matrix, the results of the
// back-ends that passed, and the report built from both.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs conformance and a quick benchmark")
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var o, e bytes.Buffer
	// In-process: a test binary cannot be re-executed as the harness's
	// child server.
	code := run(ctx, []string{"run", "--backends", "stdnet,sql", "--dialects", "sqlite", "--repeats", "1", "--in-process", "--out", out}, &o, &e)
	stdout, stderr := o.String(), e.String()
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	m, err := conformance.ReadMatrix(filepath.Join(out, "conformance.json"))
	if err != nil {
		t.Fatal(err)
	}
	suites := map[string]int{}
	for _, r := range m.Results {
		suites[r.Suite]++
		if r.Verdict == conformance.Fail {
			t.Errorf("%s/%s %s failed: %s", r.Suite, r.Backend, r.Case, r.Message)
		}
	}
	for _, s := range []string{"reactor", "store", "http"} {
		if suites[s] == 0 {
			t.Errorf("no %s results in the matrix (%v)", s, suites)
		}
	}
	f, err := results.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	backends := map[string]bool{}
	for _, b := range f.Benchmarks {
		backends[b.Backend] = true
	}
	if !backends["stdnet"] || !backends["sql"] {
		t.Errorf("benchmarked back-ends %v, want stdnet and sql", backends)
	}
	for _, other := range []string{"epoll", "netpoll", "gnet", "gorm", "sqlx"} {
		if backends[other] {
			t.Errorf("%s was benchmarked though not selected (%v)", other, backends)
		}
	}
	page, err := os.ReadFile(filepath.Join(out, "report", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`id="matrix-table-reactor"`, `id="matrix-table-store"`, `id="matrix-table-http"`, `id="verdicts"`, "reactor / echo-closed", "stdnet", "sql/sqlite"} {
		if !strings.Contains(string(page), want) && !strings.Contains(string(page), strings.ToLower(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
	if !strings.Contains(stdout, "report: "+filepath.Join(out, "report", "index.html")) {
		t.Errorf("stdout does not name the report:\n%s", stdout)
	}
}
