package bench

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twistbench/twistbench/impls/reactor"
)

func childLauncher(t *testing.T, cpus []int) Child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Child{Command: []string{exe}, Env: append(os.Environ(), childEnv+"=1"), CPUs: cpus, Stderr: os.Stderr}
}

func TestChildLauncherMeasuresServerCPU(t *testing.T) {
	var cpus []int
	if AvailableCPUs() >= 2 {
		cpus = []int{0}
	}
	srv, err := childLauncher(t, cpus).Launch(t.Context(), ServerSpec{Proto: "echo", Backend: "mini"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if len(srv.Addrs()) != 1 || !strings.HasPrefix(srv.Addrs()[0], "127.0.0.1:") {
		t.Fatalf("addrs = %v, want one loopback address", srv.Addrs())
	}
	m, err := Echo(t.Context(), EchoConfig{
		Window: Window{Warmup: 50 * time.Millisecond, Duration: 500 * time.Millisecond, CPU: ServerCPU{srv}},
		Addr:   srv.Addrs()[0], Conns: 8, Size: 512,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Errors != 0 || m.Ops == 0 {
		t.Fatalf("ops %d errors %d, want a clean run", m.Ops, m.Errors)
	}
	// A server echoing as fast as it can for 0.5 s burns CPU; /proc
	// counts in 10 ms ticks, so it must show at least one.
	if !m.ServerCPUOK || m.ServerCPU < 10*time.Millisecond {
		t.Errorf("server CPU = %v (ok %v), want a measured, non-zero figure", m.ServerCPU, m.ServerCPUOK)
	}
	// The server is one process, the generator another: the child's CPU
	// cannot exceed the wall time times its CPUs.
	if len(cpus) == 1 && m.ServerCPU > m.Duration+20*time.Millisecond {
		t.Errorf("server pinned to one CPU used %v in %v", m.ServerCPU, m.Duration)
	}
}

func TestChildLauncherPoetryListeners(t *testing.T) {
	srv, err := childLauncher(t, nil).Launch(t.Context(), ServerSpec{Proto: "poetry", Backend: "mini", Listeners: 3, PoemSize: 5000})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if len(srv.Addrs()) != 3 {
		t.Fatalf("addrs = %v, want 3", srv.Addrs())
	}
	m, err := Poetry(t.Context(), PoetryConfig{Window: Window{Duration: 300 * time.Millisecond}, Addrs: srv.Addrs(), Clients: 2, Poem: Poem(5000)})
	if err != nil {
		t.Fatal(err)
	}
	if m.Errors != 0 || m.Ops == 0 || m.Bytes != m.Ops*5000 {
		t.Errorf("ops %d errors %d bytes %d, want clean whole poems", m.Ops, m.Errors, m.Bytes)
	}
}

func TestChildLauncherErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec ServerSpec
		want string
	}{
		{"unknown protocol", ServerSpec{Proto: "gopher", Backend: "mini"}, "exited before it was ready"},
		{"poem of nothing", ServerSpec{Proto: "poetry", Backend: "mini"}, "exited before it was ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := childLauncher(t, nil)
			l.Stderr = nil
			srv, err := l.Launch(t.Context(), tc.spec)
			if err == nil {
				srv.Close()
				t.Fatal("launched")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestInProcessLauncher(t *testing.T) {
	l := InProcess{Reactors: map[string]reactor.New{"mini": newMiniReactor}, Protocols: miniProtocols}
	srv, err := l.Launch(t.Context(), ServerSpec{Proto: "echo", Backend: "mini"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, ok := srv.CPU(); ok {
		t.Error("an in-process server claims a CPU figure of its own")
	}
	m, err := Echo(t.Context(), EchoConfig{Window: Window{Duration: 200 * time.Millisecond}, Addr: srv.Addrs()[0], Conns: 2, Size: 100, Depth: 3})
	if err != nil || m.Errors != 0 || m.Ops == 0 {
		t.Fatalf("ops %d errors %d err %v", m.Ops, m.Errors, err)
	}
	if _, err := l.Launch(t.Context(), ServerSpec{Proto: "echo", Backend: "nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown reactor: err = %v", err)
	}
}

func TestPinProcess(t *testing.T) {
	if AvailableCPUs() < 2 {
		t.Skip("needs 2 CPUs")
	}
	before := AvailableCPUs()
	restore, err := PinProcess([]int{1})
	if err != nil {
		t.Fatal(err)
	}
	if got := AvailableCPUs(); got != 1 {
		t.Errorf("pinned: %d CPUs available, want 1", got)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	runtime.Gosched()
	if got := AvailableCPUs(); got != before {
		t.Errorf("restored: %d CPUs, want %d", got, before)
	}
}

func TestParseServerSpec(t *testing.T) {
	want := ServerSpec{Proto: "poetry", Backend: "epoll", Listeners: 3, PoemSize: 1024}
	got, err := ParseServerSpec(want.Args())
	if err != nil || got != want {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, want)
	}
	for _, args := range [][]string{
		{"--proto", "echo"},
		{"--proto", "echo", "--reactor", "x", "--listeners", "0"},
		{"--proto", "echo", "--reactor", "x", "stray"},
		{"--bogus"},
	} {
		if _, err := ParseServerSpec(args); err == nil {
			t.Errorf("%q parsed", args)
		}
	}
}

func TestFixedLauncher(t *testing.T) {
	srv, err := Fixed{"127.0.0.1:1"}.Launch(context.Background(), ServerSpec{})
	if err != nil || srv.Addrs()[0] != "127.0.0.1:1" {
		t.Fatalf("%v %v", srv, err)
	}
	if _, ok := srv.CPU(); ok {
		t.Error("a remote server claims a CPU figure")
	}
}
