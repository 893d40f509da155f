//go:build linux

// Package reactorbench holds the Go benchmarks of the reactor back-ends, so
// that each back-end's bench_test.go is one line per benchmark and all of
// them measure the same thing:
//
//	func BenchmarkEcho(b *testing.B)   { reactorbench.Echo(b, epoll.New) }
//	func BenchmarkPoetry(b *testing.B) { reactorbench.Poetry(b, epoll.New) }
//
// The server under test runs the protocols of impls/echo and impls/poetry on
// the back-end. The load comes from a client that is the same for every
// back-end and does not use the reactor at all: plain blocking sockets driven
// from a few OS threads locked to their goroutines (one per GOMAXPROCS, at
// most one per connection). Differences between back-ends are then the
// servers' alone, and the client's own CPU can be measured exactly, per
// thread (getrusage RUSAGE_THREAD), and taken out of the process's.
//
// # Metrics
//
// Besides ns/op (wall time per operation, all connections together, so the
// inverse of throughput) and MB/s, each benchmark reports:
//
//	cpu-ns/op         CPU time of the whole process per operation (RUSAGE_SELF)
//	client-cpu-ns/op  CPU time of the client threads per operation (RUSAGE_THREAD)
//	server-cpu-ns/op  the difference: the server's loops and goroutines, plus
//	                  the runtime's shared work (GC, sysmon, netpoller wake-ups
//	                  of either side), which cannot be split between the two
//
// The client and the server share the process (and its two or so cores), as
// a benchmark run by go test must; server-cpu-ns/op is the honest share of
// the server, an upper bound rather than an exact figure.
//
// # Why not the generators of package bench
//
// `harness bench` drives servers with bench.Echo and bench.Poetry; these
// benchmarks deliberately do not, for two reasons. Those generators are
// windowed by the wall clock (warm-up, then a fixed Duration; an operation
// counts only inside the window, CPU is sampled on timers at the window's
// edges, rates divide by the configured Duration), so driving them by b.N
// would need a count-bounded mode threaded through their schedule, both
// echo loops, the poetry fetch loop, the CPU sampling and the rates, not an
// additive option. And they run one goroutine per connection on Go's
// netpoller, so in one process their CPU cannot be told from the server's
// (bench.InProcess reports no server CPU for that reason), whereas the
// locked client threads here are what make server-cpu-ns/op measurable. The
// protocols' server side is the same code in both (impls/echo,
// impls/poetry); for figures from the shared generators, with the server's
// CPU read from its own process, use `harness bench`.
//
// Sub-benchmarks are keyed for benchstat, back-end first
// (BenchmarkEcho/backend=epoll/conns=64/size=4096), so that the outputs of
// several back-ends, concatenated, compare with `benchstat -col /backend`
// and no extra code. The back-end's name is the last element of the import
// path of the package that defines newReactor (epoll.New gives "epoll").
// The package is Linux-only, like the epoll back-end.
//
// To compare the back-ends, run their packages one at a time (go test runs
// packages in parallel by default, and two benchmarks sharing the cores
// measure each other) and ignore the package key:
//
//	go test -p 1 -run '^$' -bench . -count 5 ./impls/reactor/... > out.txt
//	benchstat -ignore pkg -col /backend out.txt
package reactorbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/twistbench/twistbench/impls/echo"
	"github.com/twistbench/twistbench/impls/poetry"
	"github.com/twistbench/twistbench/impls/reactor"
)

// EchoConns and EchoSizes are the dimensions of Echo.
var (
	EchoConns = []int{1, 64, 1024}
	EchoSizes = []int{64, 4096}
)

// PoemSizes are the poems Poetry downloads, by key.
var PoemSizes = []struct {
	Key  string
	Size int
}{{Key: "1KiB", Size: 1 << 10}, {Key: "1MiB", Size: 1 << 20}}

// ioTimeout bounds every blocking socket call of the client, so that a
// back-end that loses a message fails the benchmark instead of hanging it.
const ioTimeout = 30 * time.Second

// Echo benchmarks echo round trips against newReactor's echo server, with
// sub-benchmarks conns=N/size=S for every EchoConns and EchoSizes: N
// connections are opened (and each used once) before the timer starts, then
// b.N round trips of S bytes are spread over them, all the connections of a
// client thread in flight at once. One op is one round trip; every echoed
// byte is checked.
func Echo(b *testing.B, newReactor reactor.New) {
	for _, conns := range EchoConns {
		for _, size := range EchoSizes {
			b.Run(fmt.Sprintf("backend=%s/conns=%d/size=%d", backendName(newReactor), conns, size), func(b *testing.B) {
				benchEcho(b, newReactor, conns, size)
			})
		}
	}
}

// Poetry benchmarks downloads from newReactor's poetry server, with a
// sub-benchmark size=K for each of PoemSizes. One op is one download: a new
// connection, the whole poem read until the server closes, every byte
// checked. Client threads download in parallel, one download each at a time.
func Poetry(b *testing.B, newReactor reactor.New) {
	for _, p := range PoemSizes {
		b.Run(fmt.Sprintf("backend=%s/size=%s", backendName(newReactor), p.Key), func(b *testing.B) {
			benchPoetry(b, newReactor, p.Size)
		})
	}
}

// backendName is the last element of the import path of the package that
// defines f: "epoll" for epoll.New.
func backendName(f reactor.New) string {
	fn := runtime.FuncForPC(reflect.ValueOf(f).Pointer())
	if fn == nil {
		return "unknown"
	}
	name := fn.Name() // "github.com/twistbench/twistbench/impls/reactor/epoll.New"
	name = name[strings.LastIndex(name, "/")+1:]
	pkg, _, _ := strings.Cut(name, ".")
	return pkg
}

func benchEcho(b *testing.B, newReactor reactor.New, conns, size int) {
	addr := listen(b, newReactor, echo.ServerFactory)
	msg := pattern(size)
	fds := make([]int, 0, conns)
	b.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	for range conns {
		fd, err := dial(addr)
		if err != nil {
			b.Fatalf("connection %d of %d: %v", len(fds)+1, conns, err)
		}
		fds = append(fds, fd)
	}
	buf := make([]byte, size)
	// One round trip on each connection first, so the server has accepted
	// them all and built their protocols before the timer starts.
	for i, fd := range fds {
		if err := roundtrip(fd, msg, buf); err != nil {
			b.Fatalf("warm-up on connection %d: %v", i, err)
		}
	}
	workers := min(conns, runtime.GOMAXPROCS(0))
	b.SetBytes(int64(size))
	measure(b, workers, func(w, ops int) error {
		mine := fds[w:]
		var own []int
		for i := 0; i < len(mine); i += workers {
			own = append(own, mine[i])
		}
		buf := make([]byte, size)
		for ops > 0 {
			k := min(ops, len(own))
			for _, fd := range own[:k] {
				if err := writeAll(fd, msg); err != nil {
					return err
				}
			}
			for _, fd := range own[:k] {
				if err := readFull(fd, buf); err != nil {
					return err
				}
				if !bytes.Equal(buf, msg) {
					return errors.New("echoed bytes differ from the message")
				}
			}
			ops -= k
		}
		return nil
	})
}

func benchPoetry(b *testing.B, newReactor reactor.New, size int) {
	poem := pattern(size)
	addr := listen(b, newReactor, poetry.NewServerFactory(poem))
	workers := runtime.GOMAXPROCS(0)
	b.SetBytes(int64(size))
	measure(b, workers, func(_, ops int) error {
		buf := make([]byte, 64<<10)
		for range ops {
			if err := download(addr, poem, buf); err != nil {
				return err
			}
		}
		return nil
	})
}

// listen starts a reactor from newReactor serving f on a loopback port and
// shuts it down when the benchmark ends.
func listen(b *testing.B, newReactor reactor.New, f reactor.Factory) netip.AddrPort {
	b.Helper()
	r, err := newReactor()
	if err != nil {
		b.Fatalf("new reactor: %v", err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			b.Errorf("reactor shutdown: %v", err)
		}
	})
	ln, err := r.Listen("127.0.0.1:0", f)
	if err != nil {
		b.Fatalf("listen: %v", err)
	}
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		b.Fatalf("listener address %v (%T) is not TCP", ln.Addr(), ln.Addr())
	}
	return tcp.AddrPort()
}

// measure runs b.N operations spread over workers client threads, each
// locked to its OS thread so that its CPU time can be read with
// RUSAGE_THREAD, and reports the CPU metrics of the package doc. work(w,
// ops) does ops operations as worker w.
func measure(b *testing.B, workers int, work func(w, ops int) error) {
	b.Helper()
	type outcome struct {
		cpu time.Duration
		err error
	}
	results := make(chan outcome, workers)
	var start sync.WaitGroup
	start.Add(1)
	before, err := cpuTime(unix.RUSAGE_SELF)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for w := range workers {
		ops := b.N / workers
		if w < b.N%workers {
			ops++
		}
		go func() {
			// Never unlocked: the thread exits with the goroutine, so no
			// other goroutine inherits a thread whose CPU we read.
			runtime.LockOSThread()
			start.Wait()
			t0, err := cpuTime(unix.RUSAGE_THREAD)
			if err == nil {
				err = work(w, ops)
			}
			t1, err1 := cpuTime(unix.RUSAGE_THREAD)
			results <- outcome{cpu: t1 - t0, err: errors.Join(err, err1)}
		}()
	}
	start.Done()
	var client time.Duration
	var errs []error
	for range workers {
		o := <-results
		client += o.cpu
		if o.err != nil {
			errs = append(errs, o.err)
		}
	}
	b.StopTimer()
	after, err := cpuTime(unix.RUSAGE_SELF)
	if err != nil {
		b.Fatal(err)
	}
	if len(errs) > 0 {
		b.Fatal(errors.Join(errs...))
	}
	total := after - before
	n := float64(b.N)
	b.ReportMetric(float64(total.Nanoseconds())/n, "cpu-ns/op")
	b.ReportMetric(float64(client.Nanoseconds())/n, "client-cpu-ns/op")
	b.ReportMetric(float64((total-client).Nanoseconds())/n, "server-cpu-ns/op")
}

// cpuTime is user plus system CPU time of who (RUSAGE_SELF or
// RUSAGE_THREAD).
func cpuTime(who int) (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// pattern returns n bytes that are not all alike, so that a server that
// reorders or repeats bytes is caught.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i/251)
	}
	return p
}

// dial opens a blocking TCP connection to addr with Nagle off and the I/O
// timeout set. Blocking sockets keep the client's work on its own thread,
// where RUSAGE_THREAD sees it, instead of in Go's netpoller.
func dial(addr netip.AddrPort) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	tv := unix.NsecToTimeval(ioTimeout.Nanoseconds())
	for _, o := range []struct {
		name string
		set  func() error
	}{
		{name: "TCP_NODELAY", set: func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) }},
		{name: "SO_RCVTIMEO", set: func() error { return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv) }},
		{name: "SO_SNDTIMEO", set: func() error { return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv) }},
	} {
		if err := o.set(); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("setsockopt %s: %w", o.name, err)
		}
	}
	sa := &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
	// A signal can interrupt a blocking connect, which then goes on in the
	// background: calling it again says EALREADY until it is done (EISCONN).
	deadline := time.Now().Add(ioTimeout)
	for err = unix.Connect(fd, sa); err == unix.EINTR || err == unix.EALREADY; err = unix.Connect(fd, sa) {
		if time.Now().After(deadline) {
			break
		}
	}
	if err == unix.EISCONN {
		err = nil
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect %v: %w", addr, err)
	}
	return fd, nil
}

// roundtrip writes msg and reads len(msg) bytes back into buf, checking them.
func roundtrip(fd int, msg, buf []byte) error {
	if err := writeAll(fd, msg); err != nil {
		return err
	}
	if err := readFull(fd, buf[:len(msg)]); err != nil {
		return err
	}
	if !bytes.Equal(buf[:len(msg)], msg) {
		return errors.New("echoed bytes differ from the message")
	}
	return nil
}

// download connects to addr, reads until the server closes, and checks that
// exactly poem arrived.
func download(addr netip.AddrPort, poem, buf []byte) error {
	fd, err := dial(addr)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	got := 0
	for {
		n, err := read(fd, buf)
		if err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", got, len(poem), err)
		}
		if n == 0 {
			break
		}
		if got+n > len(poem) || !bytes.Equal(buf[:n], poem[got:got+n]) {
			return fmt.Errorf("poem differs at or after byte %d", got)
		}
		got += n
	}
	if got != len(poem) {
		return fmt.Errorf("poem cut: %d of %d bytes before the server closed", got, len(poem))
	}
	return nil
}

// read is one read(2), retried on EINTR: the Go runtime signals its threads
// (preemption), and a socket with SO_RCVTIMEO is not restarted on signals.
func read(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Read(fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, fmt.Errorf("read: no data for %v", ioTimeout)
		case err != nil:
			return 0, fmt.Errorf("read: %w", err)
		}
		return n, nil
	}
}

func readFull(fd int, p []byte) error {
	for off := 0; off < len(p); {
		n, err := read(fd, p[off:])
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("connection closed after %d of %d bytes", off, len(p))
		}
		off += n
	}
	return nil
}

func writeAll(fd int, p []byte) error {
	for off := 0; off < len(p); {
		n, err := unix.Write(fd, p[off:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return fmt.Errorf("write: blocked for %v", ioTimeout)
		case err != nil:
			return fmt.Errorf("write: %w", err)
		}
		off += n
	}
	return nil
}
