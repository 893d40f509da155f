// Package bench holds twistbench's load generators and the runner that turns
// them into results: the echo closed and open loops and the poetry
// download against any TCP server, the store workloads against any
// store.Store, server launchers (a child process per trial by default, so
// that the server's CPU is measured apart from the generator's), and the
// Runner that repeats every case across back-ends in interleaved order.
//
// The generators are plain Go clients (net.Conn for the network suites, the
// store.Store interface for stores): they share no code with the engines
// they measure, so a bug in a reactor cannot flatter its own figures.
//
// Every generator works in two phases against the wall clock: a warm-up,
// whose operations are not recorded, then the measured window. An
// operation is counted only when it both started and finished inside the
// window, and the CPU clocks are sampled when the window opens and closes.
package bench

import (
	"context"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twistbench/twistbench/bench/results"
)

// Histogram bounds: 1 ns to 100 s at 3 significant digits (0.1%
// resolution); a latency above the top is clamped to it rather than lost.
const (
	histLowest  = 1
	histHighest = int64(100 * time.Second)
	histDigits  = 3
)

// NewHistogram returns an empty latency histogram in nanoseconds with the
// bounds every generator uses, so that histograms of any run merge.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// Observer hears every measured operation as it completes, for live
// metrics. Implementations must be safe for concurrent use.
type Observer interface {
	// Op reports a successful operation, its latency and payload bytes.
	Op(latency time.Duration, bytes int)
	// Error reports a failed operation.
	Error()
}

type nopObserver struct{}

func (nopObserver) Op(time.Duration, int) {}
func (nopObserver) Error()                {}

// CPUSample is a reading of the CPU clocks the figures need.
type CPUSample struct {
	// Client is the load generator's CPU time so far.
	Client time.Duration
	// Server is the server's CPU time so far, valid when ServerOK.
	Server   time.Duration
	ServerOK bool
	// HostBusy is the CPU time all processes of the machine have used so
	// far, summed over its CPUs (from /proc/stat), valid when HostOK: with
	// Client and Server, it tells how much CPU something else took.
	HostBusy time.Duration
	HostOK   bool
}

// CPUSampler reads the CPU clocks; the runner's default reads getrusage for
// the generator and /proc/PID/stat for a child server. Tests inject fakes.
type CPUSampler interface {
	Sample() CPUSample
}

// Window is what every generator shares: how long to warm up and measure,
// who hears each operation, and how CPU is read.
type Window struct {
	// Warmup runs the workload unrecorded before the measured window.
	Warmup time.Duration
	// Duration is the measured window; it must be positive.
	Duration time.Duration
	// Observer, if set, hears each measured operation live.
	Observer Observer
	// CPU, if set, is sampled when the window opens and closes.
	CPU CPUSampler
}

// Measurement is what one run of a generator measured inside its window.
type Measurement struct {
	Ops, Errors, Bytes int64
	// Duration is the measured window.
	Duration time.Duration
	// Hist holds the latency of every counted operation, in nanoseconds.
	Hist *hdrhistogram.Histogram
	// ClientCPU and ServerCPU are the CPU used during the window
	// (ServerCPU valid when ServerCPUOK).
	ClientCPU   time.Duration
	ServerCPU   time.Duration
	ServerCPUOK bool
	// OtherCPU is the CPU that processes other than the generator and
	// the server used during the window (valid when OtherCPUOK): a busy
	// neighbour makes the figures of that repeat suspect.
	OtherCPU   time.Duration
	OtherCPUOK bool
	// Extra holds scenario-specific rates (see results.Repeat.Extra).
	Extra map[string]float64
}

// Repeat converts m into the raw figures of one repeat; clientCores is how
// many CPUs the generator could use, for the saturation flag (0: not
// judged, see Case.SharedCPU).
func (m Measurement) Repeat(clientCores int) results.Repeat {
	r := results.Repeat{
		Ops:         m.Ops,
		Duration:    m.Duration,
		Errors:      m.Errors,
		Bytes:       m.Bytes,
		ClientCPU:   m.ClientCPU.Seconds(),
		ClientCores: clientCores,
		Saturated:   Saturated(m.ClientCPU, m.Duration, clientCores),
		Latency:     results.LatencyOf(m.Hist),
		Extra:       m.Extra,
	}
	if m.Duration > 0 {
		r.Throughput = float64(m.Ops) / m.Duration.Seconds()
	}
	if m.ServerCPUOK {
		s := m.ServerCPU.Seconds()
		r.ServerCPU = &s
	}
	if m.OtherCPUOK {
		o := max(m.OtherCPU, 0).Seconds()
		r.OtherCPU = &o
	}
	return r
}

// Saturated reports whether a generator that used cpu over wall on cores
// CPUs was at or above results.SaturationThreshold of what it had.
func Saturated(cpu, wall time.Duration, cores int) bool {
	if wall <= 0 || cores <= 0 {
		return false
	}
	return cpu.Seconds() >= results.SaturationThreshold*float64(cores)*wall.Seconds()
}

// tally collects the figures of many workers. It is sharded so that
// thousands of connection goroutines do not contend on one lock; each
// shard has its own histogram, merged at the end.
type tally struct {
	obs    Observer
	shards []shard
}

type shard struct {
	mu                 sync.Mutex
	ops, errors, bytes int64
	hist               *hdrhistogram.Histogram
	_                  [40]byte // keep shards on separate cache lines
}

func newTally(n int, obs Observer) *tally {
	n = max(1, min(n, 16))
	t := &tally{obs: obs, shards: make([]shard, n)}
	if t.obs == nil {
		t.obs = nopObserver{}
	}
	for i := range t.shards {
		t.shards[i].hist = NewHistogram()
	}
	return t
}

// op records a successful operation of worker w.
func (t *tally) op(w int, lat time.Duration, bytes int) {
	s := &t.shards[w%len(t.shards)]
	v := min(max(int64(lat), histLowest), histHighest)
	s.mu.Lock()
	s.ops++
	s.bytes += int64(bytes)
	_ = s.hist.RecordValue(v) // v is within bounds, RecordValue cannot fail
	s.mu.Unlock()
	t.obs.Op(lat, bytes)
}

// fail records a failed operation of worker w.
func (t *tally) fail(w int) {
	s := &t.shards[w%len(t.shards)]
	s.mu.Lock()
	s.errors++
	s.mu.Unlock()
	t.obs.Error()
}

func (t *tally) measurement(d time.Duration) Measurement {
	m := Measurement{Duration: d, Hist: NewHistogram()}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		m.Ops += s.ops
		m.Errors += s.errors
		m.Bytes += s.bytes
		m.Hist.Merge(s.hist)
		s.mu.Unlock()
	}
	return m
}

// schedule is the timeline of one generator run.
type schedule struct {
	start, open, close time.Time // warm-up start, window open, window close
}

func newSchedule(w Window) schedule {
	now := time.Now()
	return schedule{start: now, open: now.Add(w.Warmup), close: now.Add(w.Warmup + w.Duration)}
}

// counts reports whether an operation from begin to end lies inside the
// measured window.
func (s schedule) counts(begin, end time.Time) bool {
	return !begin.Before(s.open) && !end.After(s.close)
}

// sampleCPU samples cpu at the window's opening and closing and returns
// a function that waits for the second sample and fills m with the
// difference. Timers fire a little late, so the two samples span slightly
// more or less than the window; the differences are scaled to the window's
// length (CPU use is taken as even across the span, which it is, to the
// first order, in a steady load). It stops early, with no reading, if ctx
// ends.
func sampleCPU(ctx context.Context, cpu CPUSampler, s schedule) func(m *Measurement) {
	if cpu == nil {
		return func(*Measurement) {}
	}
	type reading struct {
		at time.Time
		CPUSample
	}
	done := make(chan [2]reading, 1)
	go func() {
		var out [2]reading
		for i, at := range []time.Time{s.open, s.close} {
			t := time.NewTimer(time.Until(at))
			select {
			case <-ctx.Done():
				t.Stop()
				close(done)
				return
			case <-t.C:
			}
			out[i] = reading{time.Now(), cpu.Sample()}
		}
		done <- out
	}()
	return func(m *Measurement) {
		out, ok := <-done
		if !ok {
			return
		}
		span := out[1].at.Sub(out[0].at)
		if span <= 0 {
			return
		}
		scale := func(d time.Duration) time.Duration {
			return time.Duration(float64(d) * float64(s.close.Sub(s.open)) / float64(span))
		}
		m.ClientCPU = scale(out[1].Client - out[0].Client)
		if out[0].ServerOK && out[1].ServerOK {
			m.ServerCPU, m.ServerCPUOK = scale(out[1].Server-out[0].Server), true
		}
		if out[0].HostOK && out[1].HostOK {
			// The server's share is inside the client's when they
			// share a process, and unseen for --target: then "other"
			// includes a remote-less server, which is still the truth
			// about this machine.
			m.OtherCPU = scale(out[1].HostBusy-out[0].HostBusy) - m.ClientCPU - m.ServerCPU
			m.OtherCPUOK = true
		}
	}
}
