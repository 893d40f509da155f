package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// childEnv marks the test binary re-executed as a child server by
// TestChildLauncher: it then serves instead of testing.
const childEnv = "TWISTBENCH_BENCH_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childMain(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// childMain is the child server, as `harness bench server` runs it, over
// the test's miniature reactor.
func childMain(args []string) int {
	spec, err := ParseServerSpec(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := UntilEOF(context.Background(), os.Stdin)
	defer cancel()
	if err := Serve(ctx, spec, newMiniReactor, miniProtocols, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestEchoClosedKnownDelay(t *testing.T) {
	const delay = 20 * time.Millisecond
	addr := synthServer(t, 64, delayed(delay))
	m, err := Echo(t.Context(), EchoConfig{
		Window: Window{Warmup: 100 * time.Millisecond, Duration: time.Second},
		Addr:   addr, Conns: 4, Size: 64,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Errors != 0 {
		t.Errorf("errors = %d, want 0", m.Errors)
	}
	p50 := time.Duration(m.Hist.ValueAtPercentile(50))
	if p50 < delay || p50 > delay+10*time.Millisecond {
		t.Errorf("p50 = %v, want within [%v, %v]", p50, delay, delay+10*time.Millisecond)
	}
	if min := time.Duration(m.Hist.Min()); min < delay {
		t.Errorf("min latency %v is below the server's fixed delay %v", min, delay)
	}
	// 4 connections, one message per >=20 ms each, over 1 s: at most 200.
	if m.Ops < 40 || m.Ops > 4*int64(time.Second/delay) {
		t.Errorf("ops = %d, want between 40 and %d", m.Ops, 4*int64(time.Second/delay))
	}
	if m.Bytes != m.Ops*64 {
		t.Errorf("bytes = %d, want ops*size = %d", m.Bytes, m.Ops*64)
	}
	if m.Hist.TotalCount() != m.Ops {
		t.Errorf("histogram holds %d values, ops = %d", m.Hist.TotalCount(), m.Ops)
	}
}

func TestEchoCorruptByteIsAnError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		depth int
		rate  float64
	}{
		{name: "closed", depth: 1},
		{name: "pipelined", depth: 4},
		{name: "open", rate: 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const every = 10
			addr := synthServer(t, 32, corrupting(every))
			m, err := Echo(t.Context(), EchoConfig{
				Window: Window{Duration: 300 * time.Millisecond},
				Addr:   addr, Conns: 2, Size: 32, Depth: tc.depth, Rate: tc.rate,
			})
			if err != nil {
				t.Fatal(err)
			}
			total := m.Ops + m.Errors
			if total < 50 {
				t.Fatalf("only %d messages in the window; the test needs more to judge", total)
			}
			// One message in ten is corrupted; allow for the window's
			// edges cutting the count.
			if got, want := float64(m.Errors)/float64(total), 1.0/every; got < want*0.7 || got > want*1.3 {
				t.Errorf("errors = %d of %d (%.3f), want about %.3f", m.Errors, total, got, want)
			}
			if m.Hist.TotalCount() != m.Ops {
				t.Errorf("a corrupted message was recorded as a latency: hist %d, ops %d", m.Hist.TotalCount(), m.Ops)
			}
		})
	}
}

// TestEchoOpenLoopSeesStall checks the coordinated-omission correction: one
// 300 ms stall delays every message due during it, so at 200 msg/s about 60
// messages are late by up to 300 ms and the p90 shows it, where the closed
// loop hides the stall in a single sample.
func TestEchoOpenLoopSeesStall(t *testing.T) {
	const stall = 300 * time.Millisecond
	addr := synthServer(t, 16, stallOnce(100, stall)) // mid-window at 200/s with a 100 ms warm-up
	m, err := Echo(t.Context(), EchoConfig{
		Window: Window{Warmup: 100 * time.Millisecond, Duration: time.Second},
		Addr:   addr, Conns: 1, Size: 16, Rate: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Errors != 0 {
		t.Errorf("errors = %d", m.Errors)
	}
	if p90 := time.Duration(m.Hist.ValueAtPercentile(90)); p90 < 50*time.Millisecond {
		t.Errorf("open loop p90 = %v, want the stall to show (>= 50ms)", p90)
	}
	if mx := time.Duration(m.Hist.Max()); mx < stall-5*time.Millisecond {
		t.Errorf("open loop max = %v, want >= the stall %v", mx, stall)
	}
	// Open loop at 200/s for 1 s: about 200 messages, minus those cut by
	// the window's close.
	if m.Ops < 150 || m.Ops > 201 {
		t.Errorf("ops = %d, want about 200", m.Ops)
	}
}

func TestEchoRefusedConnectionsAreErrors(t *testing.T) {
	dead := closedPort(t) // a port nobody listens on
	m, err := Echo(t.Context(), EchoConfig{
		Window: Window{Duration: 50 * time.Millisecond}, Addr: dead, Conns: 3, Size: 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Errors != 3 || m.Ops != 0 {
		t.Errorf("against a closed port: errors %d ops %d, want 3 and 0", m.Errors, m.Ops)
	}
}

func TestEchoConfigErrors(t *testing.T) {
	ok := EchoConfig{Window: Window{Duration: time.Second}, Addr: "127.0.0.1:1", Conns: 1, Size: 1}
	for _, tc := range []struct {
		name string
		edit func(*EchoConfig)
		want string
	}{
		{"no addr", func(c *EchoConfig) { c.Addr = "" }, "no address"},
		{"no conns", func(c *EchoConfig) { c.Conns = 0 }, "0 connections"},
		{"no size", func(c *EchoConfig) { c.Size = 0 }, "message size 0"},
		{"no window", func(c *EchoConfig) { c.Duration = 0 }, "positive window"},
		{"bad rate", func(c *EchoConfig) { c.Rate = -1 }, "rate -1"},
		{"rate too high", func(c *EchoConfig) { c.Rate = 1e7 }, "above 1 message per microsecond"},
		{"batch too big", func(c *EchoConfig) { c.Depth, c.Size = 64, 8192 }, "depth 64 x size 8192"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			_, err := Echo(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestEchoCancelled(t *testing.T) {
	addr := synthServer(t, 8, delayed(0))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Echo(ctx, EchoConfig{Window: Window{Duration: time.Hour}, Addr: addr, Conns: 2, Size: 8}); err == nil {
		t.Fatal("a cancelled run returned no error")
	}
}
