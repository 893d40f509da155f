package gnet_test

// Focused tests of this back-end, each against Go's net package as the
// referee on the other end. The conformance suite (conformance_test.go)
// covers the contract case by case; these pin the behaviours the back-end
// had to work around in its engine, and run fast enough to use while
// changing it.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twistbench/twistbench/impls/reactor"
)

// testTimeout bounds every wait of a test; a test that hits it fails and
// names what it waited for.
const testTimeout = 20 * time.Second

// rec is a Protocol that records what it hears. Its hooks run inside the
// callbacks.
type rec struct {
	onMade func(r *rec, t reactor.Transport)
	onData func(r *rec, b []byte)

	made   chan struct{}
	lostCh chan struct{}

	mu      sync.Mutex
	tr      reactor.Transport
	data    []byte
	lostErr error
	lostN   int
	atLost  int // bytes delivered when ConnectionLost was called
	change  chan struct{}
}

func newRec() *rec {
	return &rec{made: make(chan struct{}), lostCh: make(chan struct{}), change: make(chan struct{}, 1)}
}

func (r *rec) ConnectionMade(t reactor.Transport) {
	r.mu.Lock()
	r.tr = t
	r.mu.Unlock()
	close(r.made)
	if r.onMade != nil {
		r.onMade(r, t)
	}
}

func (r *rec) DataReceived(b []byte) {
	r.mu.Lock()
	r.data = append(r.data, b...)
	r.mu.Unlock()
	select {
	case r.change <- struct{}{}:
	default:
	}
	if r.onData != nil {
		r.onData(r, b)
	}
}

func (r *rec) ConnectionLost(err error) {
	r.mu.Lock()
	r.lostN++
	n := r.lostN
	r.lostErr = err
	r.atLost = len(r.data)
	r.mu.Unlock()
	if n == 1 {
		close(r.lostCh)
	}
}

func (r *rec) transport() reactor.Transport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tr
}

func (r *rec) received() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.data...)
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func (r *rec) waitLost(t *testing.T) error {
	t.Helper()
	wait(t, r.lostCh, "ConnectionLost")
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lostN != 1 {
		t.Errorf("ConnectionLost called %d times", r.lostN)
	}
	return r.lostErr
}

func (r *rec) waitData(t *testing.T, n int) []byte {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		if got := r.received(); len(got) >= n {
			return got
		}
		select {
		case <-r.change:
		case <-deadline:
			t.Fatalf("timed out waiting for %d bytes (got %d)", n, len(r.received()))
		}
	}
}

// start builds a reactor that the test shuts down at its end.
func start(t *testing.T) reactor.Reactor {
	t.Helper()
	r, err := newReactor()
	if err != nil {
		t.Fatalf("New: %v", err)
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

func listen(t *testing.T, r reactor.Reactor, f func(net.Addr) reactor.Protocol) reactor.Listener {
	t.Helper()
	ln, err := r.Listen("127.0.0.1:0", reactor.FactoryFunc(f))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	return ln
}

func dial(t *testing.T, a net.Addr) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", a.String(), testTimeout)
	if err != nil {
		t.Fatalf("dial %v: %v", a, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testTimeout))
	return c.(*net.TCPConn)
}

func readAll(t *testing.T, c net.Conn) ([]byte, error) {
	t.Helper()
	var out []byte
	buf := make([]byte, 256<<10)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("timed out reading to EOF (got %d bytes)", len(out))
		}
		if err != nil {
			return out, err
		}
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}

func echoRec() *rec {
	r := newRec()
	r.onData = func(r *rec, b []byte) { r.transport().Write(b) }
	return r
}

func TestEchoRoundTrip(t *testing.T) {
	r := start(t)
	p := echoRec()
	ln := listen(t, r, func(net.Addr) reactor.Protocol { return p })
	c := dial(t, ln.Addr())
	for _, msg := range []string{"hello", "", "a second message", string(pattern(100000))} {
		if msg == "" {
			continue
		}
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("reading echo of %d bytes: %v", len(msg), err)
		}
		if string(got) != msg {
			t.Fatalf("echo of %d bytes differs", len(msg))
		}
	}
	c.CloseWrite()
	if err := p.waitLost(t); err != nil {
		t.Errorf("ConnectionLost after the peer's clean close: %v, want nil", err)
	}
	if got, _ := readAll(t, c); len(got) != 0 {
		t.Errorf("got %d extra bytes after the peer closed", len(got))
	}
}

// TestPeerCloseAfterData: everything the peer sent before closing is
// delivered before ConnectionLost(nil), counted inside ConnectionLost.
func TestPeerCloseAfterData(t *testing.T) {
	r := start(t)
	want := pattern(256 << 10)
	for i := range 20 {
		p := newRec()
		ln := listen(t, r, func(net.Addr) reactor.Protocol { return p })
		c := dial(t, ln.Addr())
		wait(t, p.made, "ConnectionMade")
		if _, err := c.Write(want); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if err := p.waitLost(t); err != nil {
			t.Errorf("round %d: ConnectionLost(%v), want nil", i, err)
		}
		p.mu.Lock()
		at := p.atLost
		p.mu.Unlock()
		if at != len(want) {
			t.Fatalf("round %d: ConnectionLost came after %d of the %d bytes", i, at, len(want))
		}
		ln.Close()
	}
}

func TestOrderedSmallWritesThenLose(t *testing.T) {
	const n = 20000
	var want bytes.Buffer
	for i := range n {
		want.Write([]byte{byte(i >> 8), byte(i)})
	}
	r := start(t)
	p := newRec()
	p.onMade = func(_ *rec, tr reactor.Transport) {
		for i := range n {
			tr.Write([]byte{byte(i >> 8), byte(i)})
		}
		tr.LoseConnection()
		tr.Write([]byte("ignored after LoseConnection"))
	}
	ln := listen(t, r, func(net.Addr) reactor.Protocol { return p })
	got, err := readAll(t, dial(t, ln.Addr()))
	if err != nil {
		t.Fatalf("peer read: %v", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("got %d bytes, want %d in order", len(got), want.Len())
	}
	if err := p.waitLost(t); err != nil {
		t.Errorf("ConnectionLost after LoseConnection: %v, want nil", err)
	}
}

// TestLargeWriteDoesNotBlock writes 16 MiB at once to a peer that reads
// nothing until ConnectionMade has returned: a Write that waited for the
// network would never return.
func TestLargeWriteDoesNotBlock(t *testing.T) {
	payload := pattern(16 << 20)
	r := start(t)
	returned := make(chan struct{})
	p := newRec()
	p.onMade = func(_ *rec, tr reactor.Transport) {
		tr.Write(payload)
		tr.LoseConnection()
		close(returned)
	}
	ln := listen(t, r, func(net.Addr) reactor.Protocol { return p })
	c := dial(t, ln.Addr())
	wait(t, returned, "ConnectionMade to return after a 16 MiB Write")
	got, err := readAll(t, c)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("peer got %d of %d bytes (err %v)", len(got), len(payload), err)
	}
	if err := p.waitLost(t); err != nil {
		t.Errorf("ConnectionLost: %v, want nil", err)
	}
}

// TestWriteFromAnotherGoroutine writes from a goroutine that is not a
// callback and loses the connection right after, on many connections in
// turn: the close must wait for every byte queued before it.
func TestWriteFromAnotherGoroutine(t *testing.T) {
	const conns, n = 30, 500
	want := string(bytes.Repeat([]byte("x"), n)) + "abc"
	r := start(t)
	var wg sync.WaitGroup
	defer wg.Wait()
	ln := listen(t, r, func(net.Addr) reactor.Protocol {
		p := newRec()
		p.onMade = func(_ *rec, tr reactor.Transport) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n {
					tr.Write([]byte("x"))
				}
				tr.WriteSequence([][]byte{[]byte("a"), nil, []byte("bc")})
				tr.LoseConnection()
			}()
		}
		return p
	})
	for i := range conns {
		got, err := readAll(t, dial(t, ln.Addr()))
		if err != nil || string(got) != want {
			t.Fatalf("connection %d: peer got %d bytes (err %v), want %d x then abc", i, len(got), err, n)
		}
	}
}

func TestConnectRefused(t *testing.T) {
	r := start(t)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.Addr().String()
	dead.Close()
	failed := make(chan error, 1)
	r.Connect(context.Background(), addr, reactor.ClientFuncs{
		Build: func(net.Addr) reactor.Protocol {
			t.Error("BuildProtocol called for a refused connection")
			return nil
		},
		Failed: func(_ string, err error) { failed <- err },
	})
	select {
	case err := <-failed:
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("ClientConnectionFailed(%v), want ECONNREFUSED", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for ClientConnectionFailed")
	}
}

func TestConnectCancelled(t *testing.T) {
	r := start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	failed := make(chan error, 1)
	r.Connect(ctx, ln.Addr().String(), reactor.ClientFuncs{
		Build: func(net.Addr) reactor.Protocol {
			t.Error("BuildProtocol called for a cancelled connect")
			return nil
		},
		Failed: func(_ string, err error) { failed <- err },
	})
	select {
	case err := <-failed:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ClientConnectionFailed(%v), want context.Canceled", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for ClientConnectionFailed")
	}
}

func TestClientEchoAndLost(t *testing.T) {
	r := start(t)
	ln := listen(t, r, func(net.Addr) reactor.Protocol { return echoRec() })
	lost := make(chan error, 1)
	cp := newRec()
	cp.onMade = func(_ *rec, tr reactor.Transport) { tr.Write([]byte("ping")) }
	cp.onData = func(r *rec, _ []byte) {
		if len(r.received()) >= 4 {
			r.transport().LoseConnection()
		}
	}
	r.Connect(context.Background(), ln.Addr().String(), reactor.ClientFuncs{
		Build: func(net.Addr) reactor.Protocol { return cp },
		Lost:  func(_ string, err error) { lost <- err },
	})
	if got := cp.waitData(t, 4); string(got) != "ping" {
		t.Errorf("client got %q, want ping", got)
	}
	if err := cp.waitLost(t); err != nil {
		t.Errorf("client ConnectionLost: %v, want nil", err)
	}
	select {
	case err := <-lost:
		if err != nil {
			t.Errorf("ClientConnectionLost(%v), want nil", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for ClientConnectionLost")
	}
}

func TestPauseResume(t *testing.T) {
	r := start(t)
	p := newRec()
	p.onMade = func(_ *rec, tr reactor.Transport) { tr.PauseReading() }
	ln := listen(t, r, func(net.Addr) reactor.Protocol { return p })
	c := dial(t, ln.Addr())
	wait(t, p.made, "ConnectionMade")
	payload := pattern(256 << 10)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	// An absence cannot be waited for: watch a bounded window.
	select {
	case <-p.change:
		t.Fatalf("DataReceived while paused (%d bytes)", len(p.received()))
	case <-time.After(200 * time.Millisecond):
	}
	p.transport().ResumeReading()
	if got := p.waitData(t, len(payload)); !bytes.Equal(got, payload) {
		t.Fatalf("after resume got %d bytes, want the %d sent, in order", len(got), len(payload))
	}
}

// TestPeerCloseWhilePaused: the peer's end of stream waits behind the bytes
// that preceded it, as it would in the kernel of a reactor that stopped
// reading.
func TestPeerCloseWhilePaused(t *testing.T) {
	r := start(t)
	p := newRec()
	p.onMade = func(_ *rec, tr reactor.Transport) { tr.PauseReading() }
	ln := listen(t, r, func(net.Addr) reactor.Protocol { return p })
	c := dial(t, ln.Addr())
	wait(t, p.made, "ConnectionMade")
	c.Write([]byte("last words"))
	c.Close()
	select {
	case <-p.lostCh:
		t.Fatal("ConnectionLost while paused, before the bytes that preceded the close")
	case <-time.After(200 * time.Millisecond):
	}
	p.transport().ResumeReading()
	if err := p.waitLost(t); err != nil {
		t.Errorf("ConnectionLost: %v, want nil", err)
	}
	if got := p.received(); string(got) != "last words" {
		t.Errorf("got %q before ConnectionLost, want %q", got, "last words")
	}
}

func TestAbortDropsPendingAndLoseAfterIsIgnored(t *testing.T) {
	r := start(t)
	p := newRec()
	p.onMade = func(_ *rec, tr reactor.Transport) {
		tr.Write(pattern(64 << 20))
		tr.AbortConnection()
		tr.AbortConnection()
		tr.LoseConnection()
		tr.Write([]byte("ignored"))
	}
	ln := listen(t, r, func(net.Addr) reactor.Protocol { return p })
	c := dial(t, ln.Addr())
	if err := p.waitLost(t); !errors.Is(err, reactor.ErrConnectionAborted) {
		t.Errorf("ConnectionLost(%v), want ErrConnectionAborted", err)
	}
	got, _ := readAll(t, c)
	if len(got) >= 64<<20 {
		t.Errorf("peer got all %d bytes: pending data was not dropped", len(got))
	}
}

func TestBuildProtocolNilClosesWithoutCallbacks(t *testing.T) {
	r := start(t)
	ln := listen(t, r, func(net.Addr) reactor.Protocol { return nil })
	got, err := readAll(t, dial(t, ln.Addr()))
	if len(got) != 0 {
		t.Errorf("refused connection sent %d bytes", len(got))
	}
	_ = err // a clean EOF or a reset: either way closed
}

func TestPanicAbortsOnlyThatConnection(t *testing.T) {
	r := start(t)
	bad := newRec()
	bad.onData = func(*rec, []byte) { panic("boom") }
	good := echoRec()
	n := 0
	var mu sync.Mutex
	ln := listen(t, r, func(net.Addr) reactor.Protocol {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n == 1 {
			return bad
		}
		return good
	})
	c1 := dial(t, ln.Addr())
	wait(t, bad.made, "first ConnectionMade")
	c1.Write([]byte("x"))
	err := bad.waitLost(t)
	if !errors.Is(err, reactor.ErrProtocolPanic) {
		t.Fatalf("ConnectionLost(%v), want ErrProtocolPanic", err)
	}
	c2 := dial(t, ln.Addr())
	c2.Write([]byte("still here"))
	got := make([]byte, len("still here"))
	if _, err := io.ReadFull(c2, got); err != nil || string(got) != "still here" {
		t.Fatalf("second connection echo %q, %v", got, err)
	}
}

func TestPeerResetIsAnError(t *testing.T) {
	r := start(t)
	p := newRec()
	ln := listen(t, r, func(net.Addr) reactor.Protocol { return p })
	c := dial(t, ln.Addr())
	wait(t, p.made, "ConnectionMade")
	c.SetLinger(0)
	c.Close()
	if err := p.waitLost(t); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("ConnectionLost(%v) after a reset, want ECONNRESET", err)
	}
}

func TestListenerCloseKeepsConnections(t *testing.T) {
	r := start(t)
	p := echoRec()
	ln := listen(t, r, func(net.Addr) reactor.Protocol { return p })
	addr := ln.Addr()
	c := dial(t, addr)
	wait(t, p.made, "ConnectionMade")
	if err := ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := ln.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if nc, err := net.Dial("tcp", addr.String()); err == nil {
		nc.Close()
		t.Errorf("dial after Listener.Close succeeded")
	}
	c.Write([]byte("still echoed"))
	got := make([]byte, len("still echoed"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "still echoed" {
		t.Fatalf("existing connection after Listener.Close: %q, %v", got, err)
	}
	ln2, err := r.Listen(addr.String(), reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return echoRec() }))
	if err != nil {
		t.Fatalf("listening again on %v: %v", addr, err)
	}
	defer ln2.Close()
	c2 := dial(t, ln2.Addr())
	c2.Write([]byte("again"))
	got = make([]byte, 5)
	if _, err := io.ReadFull(c2, got); err != nil || string(got) != "again" {
		t.Fatalf("echo on the reopened port: %q, %v", got, err)
	}
}

func TestShutdownClosesEverything(t *testing.T) {
	before := openFDs(t)
	r, err := newReactor()
	if err != nil {
		t.Fatal(err)
	}
	var servers []*rec
	var mu sync.Mutex
	accepted := make(chan *rec, 3)
	ln, err := r.Listen("127.0.0.1:0", reactor.FactoryFunc(func(net.Addr) reactor.Protocol {
		mu.Lock()
		defer mu.Unlock()
		p := newRec()
		if len(servers) == 1 {
			// One of them paused with unread bytes, one losing
			// with a backlog: Shutdown must end them all.
			p.onMade = func(_ *rec, tr reactor.Transport) { tr.PauseReading() }
		}
		if len(servers) == 2 {
			p.onMade = func(_ *rec, tr reactor.Transport) { tr.Write(pattern(32 << 20)); tr.LoseConnection() }
		}
		servers = append(servers, p)
		accepted <- p
		return p
	}))
	if err != nil {
		t.Fatal(err)
	}
	var peers []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("unread"))
		peers = append(peers, c)
	}
	ref, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	clientLost := make(chan error, 1)
	cp := newRec()
	r.Connect(context.Background(), ref.Addr().String(), reactor.ClientFuncs{
		Build: func(net.Addr) reactor.Protocol { return cp },
		Lost:  func(_ string, err error) { clientLost <- err },
	})
	rc, err := ref.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	wait(t, cp.made, "client ConnectionMade")
	for range 3 {
		select {
		case p := <-accepted:
			wait(t, p.made, "server ConnectionMade")
		case <-time.After(testTimeout):
			t.Fatal("timed out waiting for three accepted connections")
		}
	}
	mu.Lock()
	servers = append([]*rec(nil), servers...)
	mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i, p := range append(servers, cp) {
		select {
		case <-p.lostCh:
		default:
			t.Fatalf("protocol %d: no ConnectionLost when Shutdown returned", i)
		}
		if err := p.waitLost(t); !errors.Is(err, reactor.ErrShutdown) {
			t.Errorf("protocol %d: ConnectionLost(%v), want ErrShutdown", i, err)
		}
	}
	select {
	case err := <-clientLost:
		if !errors.Is(err, reactor.ErrShutdown) {
			t.Errorf("ClientConnectionLost(%v), want ErrShutdown", err)
		}
	default:
		t.Errorf("no ClientConnectionLost when Shutdown returned")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Errorf("listener still accepts after Shutdown")
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if _, err := r.Listen("127.0.0.1:0", reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return nil })); !errors.Is(err, reactor.ErrShutdown) {
		t.Errorf("Listen after Shutdown: %v, want ErrShutdown", err)
	}
	failed := make(chan error, 1)
	r.Connect(context.Background(), ref.Addr().String(), reactor.ClientFuncs{
		Build:  func(net.Addr) reactor.Protocol { return newRec() },
		Failed: func(_ string, err error) { failed <- err },
	})
	select {
	case err := <-failed:
		if !errors.Is(err, reactor.ErrShutdown) {
			t.Errorf("Connect after Shutdown failed with %v, want ErrShutdown", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Connect after Shutdown reported nothing")
	}
	for _, c := range peers {
		c.Close()
	}
	rc.Close()
	ref.Close()
	if leaked := newFDs(before); len(leaked) > 0 {
		t.Errorf("descriptors left open after Shutdown: %v", leaked)
	}
}

func openFDs(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list descriptors: %v", err)
	}
	m := make(map[string]string)
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			m[e.Name()] = target
		}
	}
	return m
}

func newFDs(before map[string]string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && before[e.Name()] != target {
			out = append(out, e.Name()+" -> "+target)
		}
	}
	return out
}
