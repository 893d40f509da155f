package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"golang.org/x/perf/benchfmt"
)

// WriteFile writes f as indented JSON to path, stamping Schema.
func (f *File) WriteFile(path string) error {
	f.Schema = Schema
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadFile reads a results.json. A file that is not JSON, is truncated,
// has a schema newer than Schema, or holds figures that cannot be right
// (a negative count, a histogram that does not decode) is refused with one
// error that names the file and the problem.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse decodes and validates a results document (see ReadFile).
func Parse(b []byte) (*File, error) {
	// Look at the version first, so that a newer file is refused as
	// newer rather than as whatever its new layout breaks.
	var head struct {
		Schema *int `json:"schema"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("not a results file: %w", jsonErr(b, err))
	}
	switch {
	case head.Schema == nil:
		return nil, errors.New("not a results file: no \"schema\" field")
	case *head.Schema > Schema:
		return nil, fmt.Errorf("results schema %d is newer than this harness reads (up to %d)", *head.Schema, Schema)
	case *head.Schema < 1:
		return nil, fmt.Errorf("results schema %d is not a valid version", *head.Schema)
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("malformed results: %w", jsonErr(b, err))
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// jsonErr adds the byte offset to a syntax error, which encoding/json
// leaves out of the message.
func jsonErr(b []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w (at byte %d of %d)", err, se.Offset, len(b))
	}
	return err
}

// Validate checks what a reader relies on: every benchmark is named, has at
// least one repeat with sane figures, and its histogram decodes.
func (f *File) Validate() error {
	for i := range f.Benchmarks {
		b := &f.Benchmarks[i]
		where := fmt.Sprintf("benchmarks[%d]", i)
		if b.Suite == "" || b.Scenario == "" || b.Backend == "" {
			return fmt.Errorf("%s: suite, scenario and backend are required", where)
		}
		where += " (" + b.Key() + ")"
		if len(b.Repeats) == 0 {
			return fmt.Errorf("%s: no repeats", where)
		}
		for j, r := range b.Repeats {
			if err := r.validate(); err != nil {
				return fmt.Errorf("%s: repeats[%d]: %w", where, j, err)
			}
		}
		if _, err := b.DecodeHistogram(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

func (r Repeat) validate() error {
	switch {
	case r.Ops < 0 || r.Errors < 0 || r.Bytes < 0:
		return fmt.Errorf("negative count (ops %d, errors %d, bytes %d)", r.Ops, r.Errors, r.Bytes)
	case r.Duration <= 0:
		return fmt.Errorf("duration %v is not positive", r.Duration)
	case r.ClientCPU < 0 || (r.ServerCPU != nil && *r.ServerCPU < 0) || (r.OtherCPU != nil && *r.OtherCPU < 0):
		return errors.New("negative CPU time")
	case math.IsNaN(r.Throughput) || r.Throughput < 0:
		return fmt.Errorf("throughput %v is not a rate", r.Throughput)
	}
	return nil
}

// WriteBenchfmt writes every repeat of every benchmark as one line of the Go
// benchmark format, with the environment as file configuration, so that
// `benchstat -col /backend results.txt` compares back-ends. The iteration
// count is the repeat's Ops; values are the repeat's figures in Figures'
// units, followed by its Extra figures.
func (f *File) WriteBenchfmt(w io.Writer) error {
	bw := benchfmt.NewWriter(w)
	var cfg []benchfmt.Config
	add := func(k, v string) {
		if v != "" {
			cfg = append(cfg, benchfmt.Config{Key: k, Value: []byte(v), File: true})
		}
	}
	add("goos", f.Environment.GOOS)
	add("goarch", f.Environment.GOARCH)
	add("cpu", f.Environment.CPUModel)
	add("go", f.Environment.GoVersion)
	add("commit", f.Environment.Commit)
	add("run", f.RunID)
	for i := range f.Benchmarks {
		b := &f.Benchmarks[i]
		for _, r := range b.Repeats {
			res := &benchfmt.Result{
				Config: cfg,
				Name:   benchfmt.Name(b.Key()),
				Iters:  int(max(r.Ops, 1)),
			}
			for _, fig := range Figures {
				if v, ok := fig.Of(r); ok {
					res.Values = append(res.Values, benchfmt.Value{Value: v, Unit: fig.Unit})
				}
			}
			for _, name := range extraFigures([]Repeat{r}) {
				res.Values = append(res.Values, benchfmt.Value{Value: r.Extra[name], Unit: extraUnit(name)})
			}
			if err := bw.Write(res); err != nil {
				return err
			}
		}
	}
	return nil
}

// String renders a summary as "median ±CI" for plain output.
func (s Summary) String() string {
	v := strconv.FormatFloat(s.Median, 'g', 4, 64)
	if s.Lo == nil || s.Hi == nil || s.Median == 0 {
		return v + " " + s.Unit + " (n=" + strconv.Itoa(s.N) + ")"
	}
	pct := math.Max(*s.Hi/s.Median-1, 1-*s.Lo/s.Median) * 100
	return fmt.Sprintf("%s %s ±%.0f%% (n=%d)", v, s.Unit, pct, s.N)
}
