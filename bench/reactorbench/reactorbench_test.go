//go:build linux

package reactorbench

import (
	"flag"
	"net"
	"testing"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/impls/reactor"
	"github.com/twistbench/twistbench/impls/reactor/stdnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// shortBench makes testing.Benchmark run a fixed, small number of
// iterations for the rest of the test, instead of -test.benchtime's second.
func shortBench(t *testing.T) {
	f := flag.Lookup("test.benchtime")
	old := f.Value.String()
	if err := f.Value.Set("200x"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Value.Set(old) })
}

// TestMeasures runs the benchmarks' bodies on the stdnet back-end and checks
// that they complete and report every metric, with the client's share no
// more than the whole.
func TestMeasures(t *testing.T) {
	shortBench(t)
	cases := []struct {
		name  string
		bench func(b *testing.B)
	}{
		{name: "echo conns=1", bench: func(b *testing.B) { benchEcho(b, stdnet.New, 1, 64) }},
		{name: "echo conns=64", bench: func(b *testing.B) { benchEcho(b, stdnet.New, 64, 4096) }},
		{name: "poetry 1MiB", bench: func(b *testing.B) { benchPoetry(b, stdnet.New, 1<<20) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testing.Benchmark(tc.bench)
			if r.N != 200 {
				t.Fatalf("ran %d iterations, want 200 (a failed benchmark runs none)", r.N)
			}
			for _, k := range []string{"cpu-ns/op", "client-cpu-ns/op", "server-cpu-ns/op"} {
				if v, ok := r.Extra[k]; !ok || v <= 0 {
					t.Errorf("metric %s = %v (reported %v), want a positive figure", k, v, ok)
				}
			}
			if r.Extra["client-cpu-ns/op"] > r.Extra["cpu-ns/op"] {
				t.Errorf("client CPU %v ns/op exceeds the process's %v", r.Extra["client-cpu-ns/op"], r.Extra["cpu-ns/op"])
			}
			if r.Bytes == 0 {
				t.Errorf("no bytes per op set: MB/s would be missing")
			}
		})
	}
}

func TestBackendName(t *testing.T) {
	if got := backendName(stdnet.New); got != "stdnet" {
		t.Errorf("backendName(stdnet.New) = %q, want stdnet", got)
	}
}

// TestCatchesCorruption runs the benchmarks against a server whose
// transport flips the first byte it writes: the benchmark must fail rather
// than time a wrong answer.
func TestCatchesCorruption(t *testing.T) {
	shortBench(t)
	broken := func() (reactor.Reactor, error) {
		r, err := stdnet.New()
		return corrupting{r}, err
	}
	cases := []struct {
		name  string
		bench func(b *testing.B)
	}{
		{name: "echo", bench: func(b *testing.B) { benchEcho(b, broken, 2, 64) }},
		{name: "poetry", bench: func(b *testing.B) { benchPoetry(b, broken, 1<<10) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if r := testing.Benchmark(tc.bench); r.N != 0 {
				t.Fatalf("benchmark ran %d iterations against a corrupting server, want it to fail", r.N)
			}
		})
	}
}

// corrupting is a reactor whose servers' first Write has its first byte
// flipped.
type corrupting struct{ reactor.Reactor }

func (c corrupting) Listen(addr string, f reactor.Factory) (reactor.Listener, error) {
	return c.Reactor.Listen(addr, reactor.FactoryFunc(func(remote net.Addr) reactor.Protocol {
		return &corruptProto{Protocol: f.BuildProtocol(remote)}
	}))
}

type corruptProto struct{ reactor.Protocol }

func (p *corruptProto) ConnectionMade(t reactor.Transport) {
	p.Protocol.ConnectionMade(&corruptTransport{Transport: t})
}

type corruptTransport struct {
	reactor.Transport
	done bool
}

func (t *corruptTransport) Write(b []byte) {
	if !t.done && len(b) > 0 {
		t.done = true
		c := append([]byte(nil), b...)
		c[0] ^= 0xff
		b = c
	}
	t.Transport.Write(b)
}
