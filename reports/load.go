// Package reports turns results files (results.json from `harness bench`,
// conformance.json from `harness conformance`) into what people read: one
// self-contained HTML page (inline CSS and SVG, no script, nothing fetched
// from the network) and a Markdown summary for a CI job summary or a pull
// request comment.
//
// The page answers three questions for a reader who never saw the project:
// which back-end is fastest (benchmark tables and charts), which failed what
// (the conformance matrix, after the Autobahn testsuite's report), and
// whether a change regressed (the comparison against a baseline, with
// Mann-Whitney U significance as benchstat computes it).
package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/twistbench/twistbench/bench/results"
	"github.com/twistbench/twistbench/conformance"
)

// Inputs are the files a report is built from.
type Inputs struct {
	// Results are the measured runs; several files (rounds of the same
	// benchmarks) are merged repeat by repeat.
	Results []*results.File
	// Baseline are the runs to compare against, merged likewise.
	Baseline []*results.File
	// Conformance are verdict matrices; several are concatenated.
	Conformance []*conformance.Matrix
	// Paths name every file read, for the page's "what ran" block.
	Paths []string
}

// Load reads paths, telling results files from conformance matrices by
// their content, and baseline as results files. Every error names the file
// and the problem; nothing is half-loaded.
func Load(paths, baseline []string) (*Inputs, error) {
	in := &Inputs{}
	if len(paths) == 0 {
		return nil, errors.New("no input files: give results.json and/or conformance.json files")
	}
	for _, p := range paths {
		kind, err := sniff(p)
		if err != nil {
			return nil, err
		}
		switch kind {
		case "results":
			f, err := results.ReadFile(p)
			if err != nil {
				return nil, err
			}
			in.Results = append(in.Results, f)
		case "conformance":
			m, err := conformance.ReadMatrix(p)
			if err != nil {
				return nil, err
			}
			in.Conformance = append(in.Conformance, m)
		}
		in.Paths = append(in.Paths, p)
	}
	for _, p := range baseline {
		f, err := results.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("baseline %w", err)
		}
		in.Baseline = append(in.Baseline, f)
		in.Paths = append(in.Paths, p+" (baseline)")
	}
	return in, nil
}

// sniff says whether path holds a results file or a conformance matrix.
func sniff(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "", fmt.Errorf("%s: empty file", path)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return "", fmt.Errorf("%s: not JSON: %v (at byte %d of %d; truncated?)", path, err, se.Offset, len(b))
		}
		return "", fmt.Errorf("%s: not a JSON object: %v", path, err)
	}
	switch {
	case probe["benchmarks"] != nil:
		return "results", nil
	case probe["cases"] != nil && probe["results"] != nil:
		return "conformance", nil
	}
	return "", fmt.Errorf("%s: neither a results file (no \"benchmarks\") nor a conformance matrix (no \"cases\"/\"results\")", path)
}

// merge folds files into one list of benchmarks keyed by Benchmark.Key:
// repeats are concatenated in file order, histograms added, and summaries
// recomputed. The first file's environment stands for all.
func merge(files []*results.File) ([]results.Benchmark, error) {
	var order []string
	byKey := map[string]*results.Benchmark{}
	hists := map[string]*hdrhistogram.Histogram{}
	for _, f := range files {
		for _, b := range f.Benchmarks {
			k := b.Key()
			h, err := b.DecodeHistogram()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if cur, ok := byKey[k]; ok {
				cur.Repeats = append(cur.Repeats, b.Repeats...)
				hists[k].Merge(h)
				continue
			}
			c := b
			c.Repeats = append([]results.Repeat(nil), b.Repeats...)
			byKey[k] = &c
			hists[k] = h
			order = append(order, k)
		}
	}
	out := make([]results.Benchmark, 0, len(order))
	for _, k := range order {
		b := byKey[k]
		enc, err := results.EncodeHistogram(hists[k])
		if err != nil {
			return nil, err
		}
		b.Histogram = enc
		b.Summarize()
		out = append(out, *b)
	}
	return out, nil
}

// skippedOf collects the distinct skip notes of every file, sorted.
func skippedOf(files []*results.File, ms []*conformance.Matrix) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, f := range files {
		for _, s := range f.Skipped {
			add(s)
		}
	}
	for _, m := range ms {
		for _, s := range m.Skipped {
			add(s)
		}
	}
	sort.Strings(out)
	return out
}
