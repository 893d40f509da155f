package epoll_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/conformance/reactortest"
	"github.com/twistbench/twistbench/impls/reactor"
	"github.com/twistbench/twistbench/impls/reactor/epoll"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) { reactortest.Run(t, epoll.New) }

// TestConformanceBlocking runs the suite with loops that block their
// thread in epoll_wait instead of parking on the Go runtime's poller.
func TestConformanceBlocking(t *testing.T) {
	reactortest.Run(t, func() (reactor.Reactor, error) {
		return epoll.NewWithOptions(epoll.Options{BlockInEpollWait: true})
	})
}

// testTimeout bounds every wait in these tests.
const testTimeout = 20 * time.Second

// newReactor starts a reactor with two loops (so that hand-offs between
// loops are exercised even on one core) and shuts it down at cleanup.
func newReactor(t *testing.T) reactor.Reactor {
	t.Helper()
	r, err := epoll.NewWithOptions(epoll.Options{Loops: 2})
	if err != nil {
		t.Fatalf("NewWithOptions: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return r
}

// recorder is a Protocol that records what it hears and runs hooks.
type recorder struct {
	onMade func(t reactor.Transport)
	onData func(t reactor.Transport, b []byte)

	mu      sync.Mutex
	tr      reactor.Transport
	data    bytes.Buffer
	changed chan struct{} // signalled on every callback
	lost    chan error    // ConnectionLost's error, once
}

func newRecorder() *recorder {
	return &recorder{changed: make(chan struct{}, 1), lost: make(chan error, 1)}
}

func (p *recorder) ConnectionMade(t reactor.Transport) {
	p.mu.Lock()
	p.tr = t
	p.mu.Unlock()
	if p.onMade != nil {
		p.onMade(t)
	}
	p.signal()
}

func (p *recorder) DataReceived(b []byte) {
	p.mu.Lock()
	p.data.Write(b)
	tr := p.tr
	p.mu.Unlock()
	if p.onData != nil {
		p.onData(tr, b)
	}
	p.signal()
}

func (p *recorder) ConnectionLost(err error) {
	p.lost <- err
	p.signal()
}

func (p *recorder) signal() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (p *recorder) transport() reactor.Transport {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tr
}

func (p *recorder) received() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.data.Bytes())
}

// waitFor waits until cond holds, checking on every callback.
func (p *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-p.changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (p *recorder) waitLost(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.lost:
		return err
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for ConnectionLost")
		return nil
	}
}

// serve listens with a factory that hands out recorders on a channel.
func serve(t *testing.T, r reactor.Reactor, setup func(*recorder)) (reactor.Listener, <-chan *recorder) {
	t.Helper()
	protos := make(chan *recorder, 16)
	ln, err := r.Listen("127.0.0.1:0", reactor.FactoryFunc(func(net.Addr) reactor.Protocol {
		p := newRecorder()
		if setup != nil {
			setup(p)
		}
		protos <- p
		return p
	}))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	return ln, protos
}

func dial(t *testing.T, ln reactor.Listener) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), testTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testTimeout))
	return c.(*net.TCPConn)
}

func next(t *testing.T, protos <-chan *recorder) *recorder {
	t.Helper()
	select {
	case p := <-protos:
		return p
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for a connection")
		return nil
	}
}

func echo(tr reactor.Transport, b []byte) { tr.Write(b) }

func TestEchoRoundTrip(t *testing.T) {
	r := newReactor(t)
	ln, protos := serve(t, r, func(p *recorder) { p.onData = echo })
	c := dial(t, ln)
	msg := []byte("hello, reactor")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
	p := next(t, protos)
	c.Close()
	if err := p.waitLost(t); err != nil {
		t.Fatalf("ConnectionLost after peer close = %v, want nil", err)
	}
}

// TestManySmallWritesInOrder writes 10,000 numbered records, from inside
// ConnectionMade (batched by the loop) and then from another goroutine.
func TestManySmallWritesInOrder(t *testing.T) {
	const n = 10000
	record := func(i int) []byte { return []byte{byte(i >> 8), byte(i), '\n'} }
	var want bytes.Buffer
	for i := range 2 * n {
		want.Write(record(i))
	}
	r := newReactor(t)
	done := make(chan struct{})
	ln, _ := serve(t, r, func(p *recorder) {
		p.onMade = func(tr reactor.Transport) {
			for i := range n {
				tr.Write(record(i))
			}
			go func() {
				defer close(done)
				for i := n; i < 2*n; i++ {
					tr.Write(record(i))
				}
				tr.LoseConnection()
			}()
		}
	})
	c := dial(t, ln)
	got, err := io.ReadAll(c)
	<-done
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("got %d bytes, want %d in order (first difference at %d)", len(got), want.Len(), firstDiff(got, want.Bytes()))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestLargeWriteToSlowReader writes 64 MiB at once: Write must return
// before the peer reads anything, and every byte must arrive in order.
func TestLargeWriteToSlowReader(t *testing.T) {
	big := make([]byte, 64<<20)
	for i := range 251 { // a prime period, so misplaced chunks show
		big[i] = byte(i)
	}
	for n := 251; n < len(big); n *= 2 {
		copy(big[n:], big[:n])
	}
	r := newReactor(t)
	written := make(chan struct{})
	ln, protos := serve(t, r, func(p *recorder) {
		p.onMade = func(tr reactor.Transport) {
			tr.Write(big)
			close(written)
			tr.LoseConnection()
		}
	})
	c := dial(t, ln)
	select { // the peer has read nothing yet: Write must not wait for it
	case <-written:
	case <-time.After(testTimeout):
		t.Fatal("Write of 64 MiB blocked while the peer was not reading")
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, big) {
		t.Fatalf("got %d bytes, want %d identical (first difference at %d)", len(got), len(big), firstDiff(got, big))
	}
	if err := next(t, protos).waitLost(t); err != nil {
		t.Fatalf("ConnectionLost after LoseConnection = %v, want nil", err)
	}
}

// TestLargeReadInChunks sends 8 MiB to the reactor: it arrives whole, in
// DataReceived calls no larger than the read buffer.
func TestLargeReadInChunks(t *testing.T) {
	const size = 8 << 20
	r, err := epoll.NewWithOptions(epoll.Options{Loops: 1, ReadBufferSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	var mu sync.Mutex
	largest := 0
	ln, protos := serve(t, r, func(p *recorder) {
		p.onData = func(_ reactor.Transport, b []byte) {
			mu.Lock()
			largest = max(largest, len(b))
			mu.Unlock()
		}
	})
	c := dial(t, ln)
	go func() {
		c.Write(bytes.Repeat([]byte{'x'}, size))
		c.CloseWrite()
	}()
	p := next(t, protos)
	if err := p.waitLost(t); err != nil {
		t.Fatalf("ConnectionLost = %v, want nil", err)
	}
	if got := len(p.received()); got != size {
		t.Fatalf("received %d bytes, want %d", got, size)
	}
	mu.Lock()
	defer mu.Unlock()
	if largest > 4096 {
		t.Fatalf("a DataReceived got %d bytes, more than the 4096-byte read buffer", largest)
	}
}

func TestConnectRefused(t *testing.T) {
	// A port that was just free: listen, note it, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	r := newReactor(t)
	failed := make(chan error, 1)
	built := make(chan struct{}, 1)
	r.Connect(context.Background(), addr, reactor.ClientFuncs{
		Build:  func(net.Addr) reactor.Protocol { built <- struct{}{}; return newRecorder() },
		Failed: func(_ string, err error) { failed <- err },
	})
	select {
	case err := <-failed:
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("ClientConnectionFailed(%v), want ECONNREFUSED", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for ClientConnectionFailed")
	}
	if len(built) > 0 {
		t.Fatal("BuildProtocol was called for a refused connection")
	}
}

func TestConnectCancelled(t *testing.T) {
	r := newReactor(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	failed := make(chan error, 1)
	r.Connect(ctx, "127.0.0.1:9", reactor.ClientFuncs{
		Build:  func(net.Addr) reactor.Protocol { t.Error("BuildProtocol called"); return nil },
		Failed: func(_ string, err error) { failed <- err },
	})
	select {
	case err := <-failed:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ClientConnectionFailed(%v), want context.Canceled", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for ClientConnectionFailed")
	}
}

// TestConnectEcho connects the reactor to itself, client and server both
// on epoll, with a host name to resolve.
func TestConnectEcho(t *testing.T) {
	r := newReactor(t)
	ln, _ := serve(t, r, func(p *recorder) { p.onData = echo })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	client := newRecorder()
	client.onMade = func(tr reactor.Transport) { tr.Write([]byte("ping")) }
	lost := make(chan error, 1)
	r.Connect(context.Background(), net.JoinHostPort("localhost", port), reactor.ClientFuncs{
		Build:  func(net.Addr) reactor.Protocol { return client },
		Failed: func(_ string, err error) { t.Errorf("ClientConnectionFailed: %v", err) },
		Lost:   func(_ string, err error) { lost <- err },
	})
	client.waitFor(t, "the echo", func() bool { return string(client.received()) == "ping" })
	client.transport().LoseConnection()
	if err := client.waitLost(t); err != nil {
		t.Fatalf("client ConnectionLost = %v, want nil", err)
	}
	if err := <-lost; err != nil {
		t.Fatalf("ClientConnectionLost = %v, want nil", err)
	}
}

// openFDs counts this process's descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// TestShutdownClosesEverything: every connection hears ErrShutdown, client
// factories hear ClientConnectionLost, and no descriptor is left behind.
func TestShutdownClosesEverything(t *testing.T) {
	// Let the runtime open its own poller descriptors before counting.
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
	}
	before := openFDs(t)
	r, err := epoll.NewWithOptions(epoll.Options{Loops: 3})
	if err != nil {
		t.Fatal(err)
	}
	ln, protos := serve(t, r, nil)
	var servers []*recorder
	var peers []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, c)
		servers = append(servers, next(t, protos))
	}
	client := newRecorder()
	clientLost := make(chan error, 1)
	r.Connect(context.Background(), ln.Addr().String(), reactor.ClientFuncs{
		Build: func(net.Addr) reactor.Protocol { return client },
		Lost:  func(_ string, err error) { clientLost <- err },
	})
	client.waitFor(t, "the client connection", func() bool { return client.transport() != nil })
	servers = append(servers, next(t, protos))

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i, p := range append(servers, client) {
		select {
		case err := <-p.lost:
			if !errors.Is(err, reactor.ErrShutdown) {
				t.Errorf("connection %d: ConnectionLost(%v), want ErrShutdown", i, err)
			}
		default:
			t.Errorf("connection %d: no ConnectionLost by the time Shutdown returned", i)
		}
	}
	select {
	case err := <-clientLost:
		if !errors.Is(err, reactor.ErrShutdown) {
			t.Errorf("ClientConnectionLost(%v), want ErrShutdown", err)
		}
	default:
		t.Error("no ClientConnectionLost by the time Shutdown returned")
	}
	for _, c := range peers {
		c.Close()
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open after Shutdown, %d before", after, before)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown = %v, want the first result (nil)", err)
	}
	if _, err := r.Listen("127.0.0.1:0", reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return nil })); !errors.Is(err, reactor.ErrShutdown) {
		t.Errorf("Listen after Shutdown = %v, want ErrShutdown", err)
	}
}

// TestWriteFromAnotherGoroutine writes from outside the loop while the
// loop also echoes; the peer sees the goroutine's bytes whole.
func TestWriteFromAnotherGoroutine(t *testing.T) {
	r := newReactor(t)
	ln, protos := serve(t, r, nil)
	c := dial(t, ln)
	p := next(t, protos)
	p.waitFor(t, "ConnectionMade", func() bool { return p.transport() != nil })
	tr := p.transport()
	var wg sync.WaitGroup
	const writers, each = 4, 1000
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				tr.Write([]byte{byte('a' + w)})
			}
		}()
	}
	wg.Wait()
	tr.LoseConnection()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != writers*each {
		t.Fatalf("got %d bytes, want %d", len(got), writers*each)
	}
	for w := range writers {
		if n := bytes.Count(got, []byte{byte('a' + w)}); n != each {
			t.Errorf("writer %d: %d bytes arrived, want %d", w, n, each)
		}
	}
}

// TestPauseResume: nothing is delivered while paused, everything after.
func TestPauseResume(t *testing.T) {
	r := newReactor(t)
	ln, protos := serve(t, r, func(p *recorder) {
		p.onMade = func(tr reactor.Transport) { tr.PauseReading() }
	})
	c := dial(t, ln)
	p := next(t, protos)
	p.waitFor(t, "ConnectionMade", func() bool { return p.transport() != nil })
	if _, err := c.Write([]byte("while paused")); err != nil {
		t.Fatal(err)
	}
	// An absence cannot be waited for: look again after a bounded window.
	time.Sleep(100 * time.Millisecond)
	if got := p.received(); len(got) > 0 {
		t.Fatalf("DataReceived(%q) while paused", got)
	}
	p.transport().ResumeReading()
	p.waitFor(t, "data after resume", func() bool { return string(p.received()) == "while paused" })
	p.transport().PauseReading()
	p.transport().LoseConnection()
	if err := p.waitLost(t); err != nil {
		t.Fatalf("ConnectionLost of a paused connection = %v, want nil", err)
	}
}

func TestAbortThenLose(t *testing.T) {
	r := newReactor(t)
	ln, protos := serve(t, r, func(p *recorder) {
		p.onMade = func(tr reactor.Transport) {
			tr.Write([]byte("dropped?"))
			tr.AbortConnection()
			tr.LoseConnection()
			tr.AbortConnection()
			tr.Write([]byte("ignored"))
		}
	})
	dial(t, ln)
	p := next(t, protos)
	if err := p.waitLost(t); !errors.Is(err, reactor.ErrConnectionAborted) {
		t.Fatalf("ConnectionLost(%v), want ErrConnectionAborted", err)
	}
	select {
	case err := <-p.lost:
		t.Fatalf("second ConnectionLost(%v)", err)
	default:
	}
}

type panicky struct{ *recorder }

func (p panicky) DataReceived(b []byte) { panic("boom: " + string(b)) }

func TestPanicAbortsOnlyThatConnection(t *testing.T) {
	r := newReactor(t)
	p := newRecorder()
	ln, err := r.Listen("127.0.0.1:0", reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return panicky{p} }))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ln)
	c.Write([]byte("x"))
	err = p.waitLost(t)
	if !errors.Is(err, reactor.ErrProtocolPanic) || !strings.Contains(err.Error(), "boom: x") {
		t.Fatalf("ConnectionLost(%v), want a PanicError with the value", err)
	}
	// The reactor goes on.
	ln2, protos := serve(t, r, func(p *recorder) { p.onData = echo })
	c2 := dial(t, ln2)
	c2.Write([]byte("still here"))
	buf := make([]byte, 10)
	if _, err := io.ReadFull(c2, buf); err != nil || string(buf) != "still here" {
		t.Fatalf("echo after a panic = %q, %v", buf, err)
	}
	_ = next(t, protos)
}

func TestPeerResetIsAnError(t *testing.T) {
	r := newReactor(t)
	ln, protos := serve(t, r, nil)
	c := dial(t, ln)
	p := next(t, protos)
	p.waitFor(t, "ConnectionMade", func() bool { return p.transport() != nil })
	c.SetLinger(0) // close sends RST
	c.Close()
	if err := p.waitLost(t); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("ConnectionLost(%v), want ECONNRESET", err)
	}
}

type halfProto struct {
	*recorder
	readLost chan struct{}
}

func (h halfProto) ReadConnectionLost() {
	close(h.readLost)
	h.transport().Write([]byte("bye"))
	h.transport().(reactor.HalfCloser).LoseWriteConnection()
}

func TestHalfClose(t *testing.T) {
	r := newReactor(t)
	h := halfProto{newRecorder(), make(chan struct{})}
	ln, err := r.Listen("127.0.0.1:0", reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return h }))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ln)
	c.Write([]byte("hi"))
	c.CloseWrite()
	got, err := io.ReadAll(c) // EOF comes from LoseWriteConnection
	if err != nil || string(got) != "bye" {
		t.Fatalf("read after half-close = %q, %v; want \"bye\"", got, err)
	}
	if err := h.waitLost(t); err != nil {
		t.Fatalf("ConnectionLost = %v, want nil", err)
	}
	if string(h.received()) != "hi" {
		t.Fatalf("received %q, want \"hi\"", h.received())
	}
}

func TestListenerCloseAndRelisten(t *testing.T) {
	r := newReactor(t)
	ln, protos := serve(t, r, func(p *recorder) { p.onData = echo })
	addr := ln.Addr().String()
	c := dial(t, ln)
	_ = next(t, protos)
	if err := ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := ln.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	if c2, err := net.Dial("tcp", addr); err == nil {
		c2.Close()
		t.Fatal("dial after Listener.Close succeeded")
	}
	c.Write([]byte("ok"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("existing connection after Listener.Close: %v", err)
	}
	ln2, err := r.Listen(addr, reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return newRecorder() }))
	if err != nil {
		t.Fatalf("Listen again on %s: %v", addr, err)
	}
	ln2.Close()
}

func TestServeTakesOverListener(t *testing.T) {
	r := newReactor(t)
	std, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := r.Serve(std, reactor.FactoryFunc(func(net.Addr) reactor.Protocol {
		p := newRecorder()
		p.onData = echo
		return p
	}))
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := std.Accept(); err == nil {
		t.Fatal("the original listener still accepts after Serve")
	}
	c := dial(t, ln)
	c.Write([]byte("served"))
	buf := make([]byte, 6)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "served" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts epoll.Options
		want string // substring of the error; "" for success
	}{
		{name: "defaults", opts: epoll.Options{}},
		{name: "one loop", opts: epoll.Options{Loops: 1, ReadBufferSize: 1024, MaxEvents: 8}},
		{name: "negative loops", opts: epoll.Options{Loops: -1}, want: "Options.Loops"},
		{name: "negative buffer", opts: epoll.Options{ReadBufferSize: -5}, want: "Options.ReadBufferSize"},
		{name: "negative events", opts: epoll.Options{MaxEvents: -1}, want: "Options.MaxEvents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := epoll.NewWithOptions(tt.opts)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("NewWithOptions: %v", err)
				}
				if err := r.Shutdown(context.Background()); err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewWithOptions(%+v) error = %v, want one naming %s", tt.opts, err, tt.want)
			}
		})
	}
}

// TestPeerCloseWhilePaused: data and EOF that arrive while paused are
// delivered, in that order, after ResumeReading.
func TestPeerCloseWhilePaused(t *testing.T) {
	r := newReactor(t)
	var atLost []byte
	ln, protos := serve(t, r, func(p *recorder) {
		p.onMade = func(tr reactor.Transport) { tr.PauseReading() }
	})
	c := dial(t, ln)
	p := next(t, protos)
	p.waitFor(t, "ConnectionMade", func() bool { return p.transport() != nil })
	want := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	c.Close()
	time.Sleep(100 * time.Millisecond) // let the FIN arrive while paused
	if got := p.received(); len(got) > 0 {
		t.Fatalf("DataReceived(%d bytes) while paused", len(got))
	}
	p.transport().ResumeReading()
	if err := p.waitLost(t); err != nil {
		t.Fatalf("ConnectionLost(%v), want nil", err)
	}
	atLost = p.received()
	if !bytes.Equal(atLost, want) {
		t.Fatalf("ConnectionLost after %d of %d bytes", len(atLost), len(want))
	}
}

// TestShutdownFromCallbacks: protocols on both loops call Shutdown from
// DataReceived at once. Both return without waiting (waiting for each
// other would deadlock); a Shutdown from outside then waits for everything.
func TestShutdownFromCallbacks(t *testing.T) {
	r, err := epoll.NewWithOptions(epoll.Options{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	returned := make(chan error, 2)
	ln, protos := serve(t, r, func(p *recorder) {
		p.onData = func(reactor.Transport, []byte) { returned <- r.Shutdown(ctx) }
	})
	var peers []*net.TCPConn
	var ps []*recorder
	for range 2 { // accepted round-robin: one connection per loop
		peers = append(peers, dial(t, ln))
		p := next(t, protos)
		p.waitFor(t, "ConnectionMade", func() bool { return p.transport() != nil })
		ps = append(ps, p)
	}
	for _, c := range peers {
		c.Write([]byte("x"))
	}
	// The first call must return; the other loop may have stopped before
	// its byte arrived, so it may never call.
	select {
	case err := <-returned:
		if err != nil {
			t.Errorf("Shutdown from a callback = %v, want nil", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Shutdown from a callback did not return")
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown from outside = %v, want nil", err)
	}
	close(returned) // every callback has returned by now
	for err := range returned {
		if err != nil {
			t.Errorf("second Shutdown from a callback = %v, want nil", err)
		}
	}
	for i, p := range ps {
		if err := p.waitLost(t); !errors.Is(err, reactor.ErrShutdown) {
			t.Errorf("connection %d: ConnectionLost(%v), want ErrShutdown", i, err)
		}
	}
}

func TestListenAddresses(t *testing.T) {
	r := newReactor(t)
	nop := reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return newRecorder() })
	tests := []struct {
		addr    string
		wantErr string // substring; "" for success
		ip      string // the bound IP on success
	}{
		{addr: "127.0.0.1:0", ip: "127.0.0.1"},
		{addr: "localhost:0", ip: "127.0.0.1"},
		{addr: "[::1]:0", ip: "::1"},
		{addr: "no-port", wantErr: "no-port"},
		{addr: "127.0.0.1:70000", wantErr: "127.0.0.1:70000"},
		{addr: "256.0.0.1:0", wantErr: "256.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ln, err := r.Listen(tt.addr, nop)
			if tt.wantErr != "" {
				if err == nil {
					ln.Close()
					t.Fatalf("Listen(%q) succeeded, want an error", tt.addr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Listen(%q) error %q does not name %q", tt.addr, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				if tt.ip == "::1" {
					t.Skipf("no IPv6 loopback here: %v", err)
				}
				t.Fatalf("Listen(%q): %v", tt.addr, err)
			}
			defer ln.Close()
			ta, ok := ln.Addr().(*net.TCPAddr)
			if !ok || ta.Port == 0 || ta.IP.String() != tt.ip {
				t.Fatalf("Addr() = %v, want %s with a real port", ln.Addr(), tt.ip)
			}
			c := dial(t, ln)
			c.Close()
		})
	}
}

// TestTransportAddrs: each end's LocalAddr is the other's RemoteAddr.
func TestTransportAddrs(t *testing.T) {
	r := newReactor(t)
	ln, protos := serve(t, r, nil)
	c := dial(t, ln)
	p := next(t, protos)
	p.waitFor(t, "ConnectionMade", func() bool { return p.transport() != nil })
	tr := p.transport()
	if got, want := tr.LocalAddr().String(), c.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddr() = %s, want %s", got, want)
	}
	if got, want := tr.RemoteAddr().String(), c.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr() = %s, want %s", got, want)
	}
}

// TestConnectBadAddress: an address that cannot be dialled is reported
// through ClientConnectionFailed with an error naming it.
func TestConnectBadAddress(t *testing.T) {
	r := newReactor(t)
	for _, addr := range []string{"no-port", "127.0.0.1:notaport", "[::1:80"} {
		t.Run(addr, func(t *testing.T) {
			failed := make(chan error, 1)
			r.Connect(context.Background(), addr, reactor.ClientFuncs{
				Build:  func(net.Addr) reactor.Protocol { t.Error("BuildProtocol called"); return nil },
				Failed: func(_ string, err error) { failed <- err },
			})
			select {
			case err := <-failed:
				if err == nil || !strings.Contains(err.Error(), addr) {
					t.Fatalf("ClientConnectionFailed(%v), want an error naming %q", err, addr)
				}
			case <-time.After(testTimeout):
				t.Fatal("timed out waiting for ClientConnectionFailed")
			}
		})
	}
}

// TestWriteEdges: what the peer reads for each way of writing, from
// inside ConnectionMade; every case ends with LoseConnection.
func TestWriteEdges(t *testing.T) {
	tests := []struct {
		name  string
		write func(tr reactor.Transport)
		want  string
	}{
		{name: "zero-length writes", want: "ab", write: func(tr reactor.Transport) {
			tr.Write(nil)
			tr.Write([]byte("a"))
			tr.Write([]byte{})
			tr.Write([]byte("b"))
		}},
		{name: "sequence with empty pieces", want: "abc", write: func(tr reactor.Transport) {
			tr.WriteSequence([][]byte{[]byte("a"), nil, []byte("b"), {}, []byte("c")})
		}},
		{name: "write after LoseConnection", want: "kept", write: func(tr reactor.Transport) {
			tr.Write([]byte("kept"))
			tr.LoseConnection()
			tr.Write([]byte("dropped"))
		}},
		{name: "caller reuses its buffer", want: "xy", write: func(tr reactor.Transport) {
			b := []byte("x")
			tr.Write(b)
			tr.Write([]byte("y")) // queued: the first went straight out
			b[0] = 'z'
		}},
		{name: "buffer reused after a queued write", want: "pq", write: func(tr reactor.Transport) {
			tr.Write([]byte("p"))
			b := []byte("q")
			tr.Write(b) // queued, so it must have been copied
			b[0] = 'z'
		}},
	}
	r := newReactor(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, _ := serve(t, r, func(p *recorder) {
				p.onMade = func(tr reactor.Transport) {
					tt.write(tr)
					tr.LoseConnection()
				}
			})
			defer ln.Close()
			got, err := io.ReadAll(dial(t, ln))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("peer read %q, want %q", got, tt.want)
			}
		})
	}
}

// TestServeRejectsNonTCP: Serve names what is wrong, and closes the
// listener it was given (the reactor owns it from the call on).
func TestServeRejectsNonTCP(t *testing.T) {
	r := newReactor(t)
	ul, err := net.Listen("unix", t.TempDir()+"/sock")
	if err != nil {
		t.Skipf("no unix sockets here: %v", err)
	}
	_, err = r.Serve(ul, reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return nil }))
	if err == nil || !strings.Contains(err.Error(), "not a TCP listener") {
		t.Fatalf("Serve(unix listener) = %v, want an error saying it is not TCP", err)
	}
	if _, err := ul.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the unix listener after a failed Serve: Accept = %v, want net.ErrClosed", err)
	}
}
