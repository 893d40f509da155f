package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/twistbench/twistbench/bench/results"
)

// Case is one benchmark point: a scenario with its parameters on one
// back-end (and dialect).
type Case struct {
	Suite, Scenario, Backend, Dialect string
	Params                            []results.Param
	// Estimate is how long one trial takes, warm-up included, for the
	// progress display's time left.
	Estimate time.Duration
	// SharedCPU says the server runs inside the generator's process (an
	// embedded SQLite, an in-process reactor): the generator's CPU then
	// includes the server's, and a busy process is the server working,
	// not the generator saturated, so no repeat is flagged.
	SharedCPU bool
	// Setup prepares the case before its first repeat (seeds a database)
	// and returns the trial to repeat and what to do after the last one.
	Setup func(ctx context.Context) (Trial, func() error, error)
}

// Trial runs one repeat of a case and returns what it measured; obs hears
// each operation live.
type Trial func(ctx context.Context, obs Observer) (Measurement, error)

// Name is the case's benchmark key (results.Benchmark.Key).
func (c *Case) Name() string {
	b := results.Benchmark{Suite: c.Suite, Scenario: c.Scenario, Backend: c.Backend, Dialect: c.Dialect, Params: c.Params}
	return b.Key()
}

// Group is the cases of one scenario and parameter set, one per back-end:
// the runner interleaves them, repeat by repeat (A B C, A B C, ...), so
// that whatever drifts during the run (thermal state, a neighbour's load)
// affects every back-end alike.
type Group []*Case

// Progress hears where the runner is.
type Progress interface {
	// Begin announces the whole run: trials in total and their estimate.
	Begin(trials int, estimate time.Duration)
	// Trial announces a trial: case c, repeat rep of reps.
	Trial(c *Case, rep, reps int)
	// Note reports something the reader should know (a skipped back-end).
	Note(msg string)
	// End closes the display.
	End()
}

// Runner repeats groups of cases and collects the results.
type Runner struct {
	// Repeats is R, how many times each case is measured; at least 1.
	Repeats int
	// Cores is how many CPUs the generator runs on, for the saturation
	// flag; 0 means AvailableCPUs().
	Cores int
	// Observer, if set, returns the live observer of a case's operations.
	Observer func(c *Case) Observer
	// Progress, if set, hears the runner's progress.
	Progress Progress
}

// Run measures every case of every group Repeats times and returns one
// Benchmark per case that completed, and a line per case that did not
// (its setup or a trial failed: the back-end is then skipped, the run goes
// on). Only a cancelled ctx stops the run, with its error.
func (r *Runner) Run(ctx context.Context, groups []Group) ([]results.Benchmark, []string, error) {
	if r.Repeats < 1 {
		return nil, nil, fmt.Errorf("repeats %d, need at least 1", r.Repeats)
	}
	cores := r.Cores
	if cores == 0 {
		cores = AvailableCPUs()
	}
	prog := r.Progress
	if prog == nil {
		prog = nopProgress{}
	}
	trials, est := 0, time.Duration(0)
	for _, g := range groups {
		for _, c := range g {
			trials += r.Repeats
			est += time.Duration(r.Repeats) * c.Estimate
		}
	}
	prog.Begin(trials, est)
	defer prog.End()

	var out []results.Benchmark
	var skipped []string
	for _, g := range groups {
		benches, skip, err := r.runGroup(ctx, g, cores, prog)
		out = append(out, benches...)
		skipped = append(skipped, skip...)
		if err != nil {
			return out, skipped, err
		}
	}
	return out, skipped, nil
}

type running struct {
	c       *Case
	trial   Trial
	cleanup func() error
	reps    []results.Repeat
	hist    *hdrhistogram.Histogram
	failed  error
}

func (r *Runner) runGroup(ctx context.Context, g Group, cores int, prog Progress) ([]results.Benchmark, []string, error) {
	var skipped []string
	skip := func(c *Case, err error) {
		if errors.Is(err, ErrReported) {
			return
		}
		msg := fmt.Sprintf("%s: %v", c.Name(), err)
		skipped = append(skipped, msg)
		prog.Note("skipped " + msg)
	}
	var live []*running
	defer func() {
		for _, x := range live {
			if x.cleanup != nil {
				if err := x.cleanup(); err != nil {
					skip(x.c, fmt.Errorf("cleanup: %w", err))
				}
			}
		}
	}()
	for _, c := range g {
		trial, cleanup, err := c.Setup(ctx)
		if ctx.Err() != nil {
			return nil, skipped, ctx.Err()
		}
		if err != nil {
			skip(c, err)
			continue
		}
		live = append(live, &running{c: c, trial: trial, cleanup: cleanup, hist: NewHistogram()})
	}
	for rep := 1; rep <= r.Repeats; rep++ {
		for _, x := range live {
			if x.failed != nil {
				continue
			}
			prog.Trial(x.c, rep, r.Repeats)
			var obs Observer
			if r.Observer != nil {
				obs = r.Observer(x.c)
			}
			m, err := x.trial(ctx, obs)
			if ctx.Err() != nil {
				return nil, skipped, ctx.Err()
			}
			if err != nil {
				x.failed = fmt.Errorf("repeat %d: %w", rep, err)
				skip(x.c, x.failed)
				continue
			}
			if x.c.SharedCPU {
				x.reps = append(x.reps, m.Repeat(0))
			} else {
				x.reps = append(x.reps, m.Repeat(cores))
			}
			if m.Hist != nil {
				x.hist.Merge(m.Hist)
			}
		}
	}
	var out []results.Benchmark
	for _, x := range live {
		if x.failed != nil {
			continue
		}
		b := results.Benchmark{
			Suite: x.c.Suite, Scenario: x.c.Scenario, Backend: x.c.Backend,
			Dialect: x.c.Dialect, Params: x.c.Params, Repeats: x.reps,
		}
		h, err := results.EncodeHistogram(x.hist)
		if err != nil {
			skip(x.c, err)
			continue
		}
		b.Histogram = h
		b.Summarize()
		out = append(out, b)
	}
	return out, skipped, nil
}

type nopProgress struct{}

func (nopProgress) Begin(int, time.Duration) {}
func (nopProgress) Trial(*Case, int, int)    {}
func (nopProgress) Note(string)              {}
func (nopProgress) End()                     {}

// ErrReported marks a setup error whose cause was already reported by an
// earlier case (a database that could not be provisioned fails every case
// on it): the runner skips the case without another line.
var ErrReported = errors.New("cause already reported")

// errNoServer is returned by a trial whose launcher gave no address.
var errNoServer = errors.New("the server has no listening address")
