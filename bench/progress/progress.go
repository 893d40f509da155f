// Package progress shows where a benchmark run is: on a terminal, a bar
// (github.com/schollz/progressbar/v3) naming the scenario, the back-end, the
// repeat and the time left; elsewhere (CI logs, a pipe), one plain line per
// trial, since a redrawn bar turns into noise in a log file.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/twistbench/twistbench/bench"
)

// New returns a display on w: a bar if w is a terminal, plain lines
// otherwise.
func New(w io.Writer) bench.Progress {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &bar{w: w}
	}
	return &Lines{W: w}
}

// Lines writes one line per trial and note:
//
//	[ 3/48] EchoClosed/backend=epoll/conns=64/size=64  repeat 2/3  ~1m20s left
type Lines struct {
	W io.Writer
	// Now is the clock; nil means time.Now (tests fix it).
	Now func() time.Time

	mu       sync.Mutex
	total, n int
	est      time.Duration
	perTrial time.Duration
	start    time.Time
}

func (l *Lines) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Begin implements bench.Progress.
func (l *Lines) Begin(trials int, est time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total, l.est, l.start = trials, est, l.now()
	if trials > 0 {
		l.perTrial = est / time.Duration(trials)
	}
	fmt.Fprintf(l.W, "benchmarks: %d trials, about %s\n", trials, round(est))
}

// Trial implements bench.Progress.
func (l *Lines) Trial(c *bench.Case, rep, reps int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	left := timeLeft(l.est, l.perTrial, l.n-1, l.total, l.now().Sub(l.start))
	w := len(fmt.Sprint(l.total))
	fmt.Fprintf(l.W, "[%*d/%d] %s  repeat %d/%d  ~%s left\n", w, l.n, l.total, c.Name(), rep, reps, round(left))
}

// Note implements bench.Progress.
func (l *Lines) Note(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.W, msg)
}

// End implements bench.Progress.
func (l *Lines) End() {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.W, "benchmarks: done in %s\n", round(l.now().Sub(l.start)))
}

// timeLeft estimates the time left after done of total trials: the
// estimate scaled by how the trials so far compared with theirs, so that a
// machine slower than the estimate is told the truth.
func timeLeft(est, perTrial time.Duration, done, total int, elapsed time.Duration) time.Duration {
	if total == 0 {
		return 0
	}
	rest := est - perTrial*time.Duration(done)
	if done > 0 && perTrial > 0 {
		ratio := float64(elapsed) / float64(perTrial*time.Duration(done))
		rest = time.Duration(float64(rest) * ratio)
	}
	return max(rest, 0)
}

func round(d time.Duration) time.Duration { return d.Round(time.Second) }

// bar is the terminal display.
type bar struct {
	w        io.Writer
	mu       sync.Mutex
	pb       *progressbar.ProgressBar
	total, n int
	est      time.Duration
	perTrial time.Duration
	start    time.Time
}

func (b *bar) Begin(trials int, est time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total, b.est, b.start = trials, est, time.Now()
	if trials > 0 {
		b.perTrial = est / time.Duration(trials)
	}
	b.pb = progressbar.NewOptions(trials,
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(false), // ours knows the trials' lengths
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
	)
}

func (b *bar) Trial(c *bench.Case, rep, reps int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	left := timeLeft(b.est, b.perTrial, b.n, b.total, time.Since(b.start))
	b.pb.Describe(fmt.Sprintf("%s %s · %s · repeat %d/%d · ~%s left", c.Suite, c.Scenario, c.Backend, rep, reps, round(left)))
	if b.n > 0 {
		_ = b.pb.Add(1) // the previous trial is done
	}
	b.n++
}

func (b *bar) Note(msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.pb.Clear()
	fmt.Fprintln(b.w, msg)
}

func (b *bar) End() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb != nil {
		_ = b.pb.Finish()
		fmt.Fprintf(b.w, "benchmarks: done in %s\n", round(time.Since(b.start)))
	}
}
