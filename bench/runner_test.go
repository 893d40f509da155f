package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twistbench/twistbench/bench/results"
)

func TestSaturatedGeneratorIsFlagged(t *testing.T) {
	addr := synthServer(t, 16, delayed(0))
	for _, tc := range []struct {
		name  string
		rate  float64 // fake generator CPU-seconds per wall second
		cores int
		want  bool
	}{
		{"two cores busy", 1.9, 2, true},
		{"one core busy of one", 0.95, 1, true},
		{"one core busy of two", 0.95, 2, false},
		{"idle", 0.1, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cpu := &fakeCPU{start: time.Now(), rate: tc.rate, serverRate: 0.5}
			m, err := Echo(t.Context(), EchoConfig{
				Window: Window{Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond, CPU: cpu},
				Addr:   addr, Conns: 1, Size: 16,
			})
			if err != nil {
				t.Fatal(err)
			}
			r := m.Repeat(tc.cores)
			if r.Saturated != tc.want {
				t.Errorf("saturated = %v with client CPU %v over %v on %d cores, want %v",
					r.Saturated, m.ClientCPU, m.Duration, tc.cores, tc.want)
			}
			// The fake clock's rate comes back as the figure, within
			// the timer's slack.
			if got := m.ClientCPU.Seconds() / m.Duration.Seconds(); got < tc.rate*0.9 || got > tc.rate*1.2 {
				t.Errorf("client CPU rate %.2f, want about %.2f", got, tc.rate)
			}
			if r.ServerCPU == nil || *r.ServerCPU < 0.09 || *r.ServerCPU > 0.13 {
				t.Errorf("server CPU = %v s, want about 0.1 s (0.5 x 0.2 s)", deref(r.ServerCPU))
			}
		})
	}
}

// TestOtherCPU checks that what the machine did beyond the generator and
// the server is reported: here 1.8 CPU-s/s busy in all, 0.5 of them the
// generator's and 0.3 the server's, so 1.0 someone else's.
func TestOtherCPU(t *testing.T) {
	addr := synthServer(t, 16, delayed(0))
	cpu := &fakeCPU{start: time.Now(), rate: 0.5, serverRate: 0.3, hostRate: 1.8}
	m, err := Echo(t.Context(), EchoConfig{
		Window: Window{Duration: 200 * time.Millisecond, CPU: cpu}, Addr: addr, Conns: 1, Size: 16,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := m.Repeat(2)
	if r.OtherCPU == nil || *r.OtherCPU < 0.19 || *r.OtherCPU > 0.21 {
		t.Errorf("other CPU = %v s, want 0.2 (1.0 x 0.2 s)", deref(r.OtherCPU))
	}
	if busy, ok := HostBusy(); !ok || busy <= 0 {
		t.Errorf("HostBusy() = %v, %v; want this machine's busy time", busy, ok)
	}
}

func TestSaturated(t *testing.T) {
	for _, tc := range []struct {
		cpu, wall time.Duration
		cores     int
		want      bool
	}{
		{900 * time.Millisecond, time.Second, 1, true},
		{899 * time.Millisecond, time.Second, 1, false},
		{1800 * time.Millisecond, time.Second, 2, true},
		{time.Second, time.Second, 2, false},
		{time.Second, 0, 1, false},
		{time.Second, time.Second, 0, false},
	} {
		if got := Saturated(tc.cpu, tc.wall, tc.cores); got != tc.want {
			t.Errorf("Saturated(%v, %v, %d) = %v, want %v", tc.cpu, tc.wall, tc.cores, got, tc.want)
		}
	}
}

// recordProgress records the order of trials.
type recordProgress struct {
	trials []string
	notes  []string
	total  int
}

func (p *recordProgress) Begin(n int, _ time.Duration) { p.total = n }
func (p *recordProgress) Trial(c *Case, rep, reps int) {
	p.trials = append(p.trials, fmt.Sprintf("%s#%d/%d", c.Backend, rep, reps))
}
func (p *recordProgress) Note(msg string) { p.notes = append(p.notes, msg) }
func (p *recordProgress) End()            {}

// fixedCase is a case whose every trial measures ops operations of latency
// lat over one second, with the repeat number as errors (so the summaries
// can be checked against known figures).
func fixedCase(backend string, ops int64, lat time.Duration, failAt int) *Case {
	rep := 0
	return &Case{
		Suite: "reactor", Scenario: "synthetic", Backend: backend,
		Params: []results.Param{{Key: "conns", Value: "1"}}, Estimate: time.Second,
		Setup: func(context.Context) (Trial, func() error, error) {
			if failAt == 0 {
				return nil, nil, errors.New("no such engine")
			}
			return func(context.Context, Observer) (Measurement, error) {
				rep++
				if rep == failAt {
					return Measurement{}, errors.New("server crashed")
				}
				h := NewHistogram()
				for range ops {
					h.RecordValue(int64(lat))
				}
				return Measurement{Ops: ops, Errors: int64(rep), Duration: time.Second, Hist: h,
					ClientCPU: 100 * time.Millisecond, ServerCPU: time.Duration(rep) * 100 * time.Millisecond, ServerCPUOK: true}, nil
			}, nil, nil
		},
	}
}

func TestRunnerInterleavesAndSummarises(t *testing.T) {
	prog := &recordProgress{}
	r := &Runner{Repeats: 3, Cores: 1, Progress: prog}
	groups := []Group{{
		fixedCase("a", 1000, time.Millisecond, -1),
		fixedCase("b", 500, 2*time.Millisecond, -1),
		fixedCase("broken", 1, time.Millisecond, 0),
		fixedCase("flaky", 1, time.Millisecond, 2),
	}}
	benches, skipped, err := r.Run(t.Context(), groups)
	if err != nil {
		t.Fatal(err)
	}
	want := "a#1/3 b#1/3 flaky#1/3 a#2/3 b#2/3 flaky#2/3 a#3/3 b#3/3"
	if got := strings.Join(prog.trials, " "); got != want {
		t.Errorf("trial order:\n got %s\nwant %s", got, want)
	}
	if prog.total != 12 {
		t.Errorf("progress total = %d, want 12", prog.total)
	}
	if len(skipped) != 2 || !strings.Contains(skipped[0], "broken") || !strings.Contains(skipped[0], "no such engine") ||
		!strings.Contains(skipped[1], "flaky") || !strings.Contains(skipped[1], "repeat 2: server crashed") {
		t.Errorf("skipped = %q", skipped)
	}
	if len(benches) != 2 {
		t.Fatalf("%d benchmarks, want 2 (a and b)", len(benches))
	}
	a := benches[0]
	if a.Backend != "a" || len(a.Repeats) != 3 {
		t.Fatalf("first benchmark %s with %d repeats", a.Key(), len(a.Repeats))
	}
	checks := []struct {
		fig  string
		want float64
	}{
		{"throughput", 1000},
		{"sec_per_op", 1e6}, // 1 s / 1000 ops, in ns
		{"errors", 2},       // median of 1, 2, 3
		{"server_cpu_per_op", 2e5},
		{"client_cpu_per_op", 1e5},
	}
	for _, c := range checks {
		s, ok := a.Summaries[c.fig]
		if !ok {
			t.Errorf("no summary of %s", c.fig)
			continue
		}
		if s.Median != c.want || s.N != 3 {
			t.Errorf("%s: median %v n %d, want %v n 3", c.fig, s.Median, s.N, c.want)
		}
	}
	if s := a.Summaries["errors"]; s.Min != 1 || s.Max != 3 {
		t.Errorf("errors min/max = %v/%v, want 1/3", s.Min, s.Max)
	}
	if s := a.Summaries["p50"]; s.Median < 0.999e6 || s.Median > 1.001e6 {
		t.Errorf("p50 median = %v ns, want 1 ms", s.Median)
	}
	h, err := a.DecodeHistogram()
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalCount() != 3000 {
		t.Errorf("merged histogram holds %d, want 3 x 1000", h.TotalCount())
	}
	if a.Saturated {
		t.Error("100 ms of CPU per second on one core flagged as saturated")
	}
}

func TestRunnerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	c := &Case{Suite: "reactor", Scenario: "s", Backend: "x", Setup: func(context.Context) (Trial, func() error, error) {
		return func(context.Context, Observer) (Measurement, error) {
			cancel()
			return Measurement{}, context.Canceled
		}, nil, nil
	}}
	_, _, err := (&Runner{Repeats: 2}).Run(ctx, []Group{{c}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if _, _, err := (&Runner{}).Run(t.Context(), nil); err == nil {
		t.Error("0 repeats accepted")
	}
}

func deref(p *float64) any {
	if p == nil {
		return "<nil>"
	}
	return *p
}
