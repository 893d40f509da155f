// Package conformance holds what the suites (reactortest, storetest, and the
// HTTP suite) share: the shape of a case, the testing interface a case is
// written against, and the verdict matrix that `harness conformance` writes
// and the report reads.
//
// A case is written once against T, a subset of testing.TB that *testing.T
// satisfies. Under `go test`, each suite's Run hands every case a *testing.T
// in its own subtest. Outside `go test` (the harness), Record runs a case
// against a recorder that implements T the way package testing does (Fatal
// ends the case's goroutine, cleanups run last-in first-out), with a
// watchdog, and returns a Result. This is the split of testing/slogtest: one
// case table feeding both callers.
package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// T is the part of testing.TB a case may use. *testing.T implements it.
type T interface {
	Helper()
	Name() string
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Failed() bool
	Cleanup(func())
	Context() context.Context
}

// Level says how binding a case is, in the words of RFC 2119.
type Level string

// Levels.
const (
	// Must: a back-end that fails it does not conform.
	Must Level = "MUST"
	// Should: expected of a good back-end; failing it is reported as
	// non-strict, not as a failure.
	Should Level = "SHOULD"
	// May: an optional capability; a back-end without it is reported as
	// unsupported (skipped with a reason), never as failed.
	May Level = "MAY"
)

// Verdict is the outcome of one case on one back-end.
type Verdict string

// Verdicts, as the report shows them (after Autobahn's testsuite).
const (
	Pass      Verdict = "pass"
	NonStrict Verdict = "non-strict" // a SHOULD case failed
	Fail      Verdict = "fail"       // a MUST case failed, or the case timed out
	Skip      Verdict = "skip"       // the case skipped itself (capability absent); Message says why
)

// Info describes a case: what the report lists beside its verdicts.
type Info struct {
	ID        string `json:"id"`        // stable, e.g. "RX-CONN-001"
	Category  string `json:"category"`  // grouping in the report, e.g. "lifecycle"
	Level     Level  `json:"level"`     //
	Statement string `json:"statement"` // the property, one sentence
}

// Result is one cell of the matrix.
type Result struct {
	Suite    string        `json:"suite"`             // "reactor", "store", "http"
	Case     string        `json:"case"`              // Info.ID
	Backend  string        `json:"backend"`           // "epoll", "gorm", ...
	Dialect  string        `json:"dialect,omitempty"` // stores and HTTP only
	Verdict  Verdict       `json:"verdict"`
	Message  string        `json:"message,omitempty"` // first failure or skip reason
	Log      string        `json:"log,omitempty"`     // everything the case logged
	Duration time.Duration `json:"duration_ns"`
}

// Matrix is what `harness conformance` writes (conformance.json).
type Matrix struct {
	Schema   int       `json:"schema"` // MatrixSchema
	Started  time.Time `json:"started"`
	Cases    []Info    `json:"cases"`
	Results  []Result  `json:"results"`
	Skipped  []string  `json:"skipped,omitempty"` // whole back-ends or dialects not run, with why
	Finished time.Time `json:"finished"`
}

// MatrixSchema is the version of Matrix's JSON; readers refuse a newer one.
const MatrixSchema = 1

// WriteFile writes m as indented JSON.
func (m *Matrix) WriteFile(path string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadMatrix reads a conformance.json, refusing malformed or newer files
// with an error that names the file.
func ReadMatrix(path string) (*Matrix, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Matrix
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: not a conformance matrix: %w", path, err)
	}
	if m.Schema == 0 || m.Schema > MatrixSchema {
		return nil, fmt.Errorf("%s: conformance schema %d, this harness reads up to %d", path, m.Schema, MatrixSchema)
	}
	return &m, nil
}

// Record runs one case outside `go test` and returns its verdict. body gets
// a T whose Fatalf and Skipf end the case the way package testing does.
// When timeout passes first, the case is failed as timed out; its goroutine
// is abandoned (reported in Message), as testing would panic instead.
func Record(info Info, timeout time.Duration, body func(T)) Result {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{name: info.ID, ctx: ctx}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.runCleanups()
		defer func() {
			if v := recover(); v != nil {
				r.fail(fmt.Sprintf("panic: %v", v))
			}
		}()
		body(r)
	}()
	timedOut := false
	select {
	case <-done:
	case <-time.After(timeout):
		timedOut = true
	}
	cancel()
	res := Result{Case: info.ID, Duration: time.Since(start)}
	r.mu.Lock()
	defer r.mu.Unlock()
	res.Log = r.log.String()
	switch {
	case timedOut:
		res.Verdict = Fail
		res.Message = fmt.Sprintf("timed out after %v (case goroutine abandoned)", timeout)
	case r.failed:
		res.Verdict = Fail
		if info.Level == Should {
			res.Verdict = NonStrict
		}
		res.Message = r.first
	case r.skipped:
		res.Verdict = Skip
		res.Message = r.first
	default:
		res.Verdict = Pass
	}
	return res
}

type recorder struct {
	name     string
	ctx      context.Context
	mu       sync.Mutex
	log      strings.Builder
	first    string
	failed   bool
	skipped  bool
	cleanups []func()
}

func (r *recorder) Helper()                  {}
func (r *recorder) Name() string             { return r.name }
func (r *recorder) Context() context.Context { return r.ctx }

func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(&r.log, format+"\n", args...)
}

func (r *recorder) fail(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	if r.first == "" {
		r.first = msg
	}
	r.log.WriteString(msg + "\n")
}

func (r *recorder) Errorf(format string, args ...any) { r.fail(fmt.Sprintf(format, args...)) }

func (r *recorder) Fatalf(format string, args ...any) {
	r.fail(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.skipped = true
	if r.first == "" {
		r.first = msg
	}
	r.log.WriteString("skip: " + msg + "\n")
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *recorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// runCleanups runs cleanups last-in first-out, each guarded so a failing
// cleanup (Fatalf inside it) does not skip the others.
func (r *recorder) runCleanups() {
	for {
		r.mu.Lock()
		n := len(r.cleanups)
		if n == 0 {
			r.mu.Unlock()
			return
		}
		f := r.cleanups[n-1]
		r.cleanups = r.cleanups[:n-1]
		r.mu.Unlock()
		func() {
			done := make(chan struct{})
			go func() {
				defer close(done)
				defer func() {
					if v := recover(); v != nil {
						r.fail(fmt.Sprintf("panic in cleanup: %v", v))
					}
				}()
				f()
			}()
			<-done
		}()
	}
}
