// Package epoll is the hand-written back-end of the reactor contract: raw
// epoll(7) event loops over golang.org/x/sys/unix, with no goroutine per
// connection; sockets never go through package net or the runtime's
// netpoller.
//
// # Architecture
//
// The reactor runs Options.Loops event loops (GOMAXPROCS by default), one
// goroutine each. A loop owns an epoll descriptor, an eventfd that other
// goroutines write to wake it, a reusable read buffer (64 KiB by default)
// and a table of the descriptors registered with it, indexed by fd. Every
// socket is non-blocking and level-triggered, and belongs to exactly one
// loop for its whole life: all of its Protocol callbacks run on that loop's
// goroutine, so callbacks of one connection never overlap.
//
// # Accepting
//
// Each listening socket is owned by one loop (chosen round-robin), which
// accepts and hands the new descriptors round-robin to all loops (keeping
// its own share without any hand-off). The alternative, one SO_REUSEPORT
// socket per loop, was rejected because:
//   - Serve takes over a single existing descriptor, so it needs the
//     hand-off path anyway; one design serves both Listen and Serve.
//   - The kernel spreads SO_REUSEPORT connections by a hash of the 4-tuple:
//     on loopback with a few dozen benchmark connections the spread is
//     lumpy, while round-robin is exact.
//   - Closing one of several SO_REUSEPORT sockets resets the connections
//     queued in its backlog, and any process of the same user may bind the
//     same port; a single socket makes Listener.Close exact.
//
// The cost is one task post (and at most one eventfd write per burst) per
// connection accepted on behalf of another loop, which is small beside the
// life of a connection.
//
// # Writing
//
// Write copies nothing it can send at once. When nothing is pending it
// writes straight to the socket from whichever goroutine calls it; what the
// kernel does not take is copied into the connection's outbound queue (small
// writes share pooled 16 KiB blocks, large ones get one exact-size copy, so
// a 64 MiB write is copied once, never re-copied while it drains), and
// EPOLLOUT is asked for only while that queue is not empty; the loop drains
// it with writev. Inside a callback, the first Write goes straight to the
// socket and later ones are queued and flushed together when the callback
// returns, as Twisted does, so a protocol that writes in many small pieces
// costs one writev, not one syscall per piece.
//
// Go exposes no goroutine identity, and asking the kernel (gettid, with the
// loop locked to its thread) costs a syscall per Write: 300-600 ns here,
// against 5-11 ns for an uncontended mutex. So every Transport method takes
// the connection's mutex, uncontended on the loop's own path, and a Write
// from another goroutine writes to the socket itself when the queue is
// empty rather than enqueueing and waking the loop (one write instead of an
// eventfd write, an eventfd read and the write, plus a hop to the loop's
// goroutine). Reading and delivering take no lock; the
// hand-over between a callback and the loop is lock-free (see conn).
//
// # Errors
//
// ConnectionLost gets nil for a clean close (either side's LoseConnection,
// or the peer's EOF), reactor.ErrConnectionAborted, reactor.ErrShutdown, a
// reactor.PanicError, or a *net.OpError wrapping the *os.SyscallError of
// the read or write that failed, so errors.Is(err, syscall.ECONNRESET)
// holds for a reset.
//
// # Idle loops
//
// A busy loop calls epoll_wait with a zero timeout and never sleeps. An
// idle one, by default, parks its goroutine on the Go runtime's poller,
// which watches the loop's epoll descriptor (readable while events are
// ready), instead of blocking its thread in epoll_wait: a thread blocked in
// a syscall keeps its P until the runtime's monitor takes it back, which
// holds up the process's other goroutines (clients in the same benchmark,
// for one). Options.BlockInEpollWait selects the textbook blocking wait,
// for comparison; the conformance suite runs against both.
//
// # Descriptor exhaustion
//
// When accept fails with EMFILE, ENFILE, ENOBUFS or ENOMEM the listener is
// taken out of epoll and retried after a timer (10 ms, doubling to 1 s), so
// the loop neither dies nor spins; pending connections wait in the kernel's
// backlog and are accepted once descriptors free up.
package epoll

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/twistbench/twistbench/impls/reactor"
)

// Tuning constants. The ones a benchmark may want to vary are in Options.
const (
	defaultReadBuffer = 64 << 10 // per-loop read buffer
	defaultMaxEvents  = 256      // events fetched per epoll_wait
	blockSize         = 16 << 10 // pooled outbound block for small writes
	maxReadsPerEvent  = 8        // full-buffer reads per readiness event, for fairness
	maxAcceptsPerWake = 64       // accepts per listener readiness event
	maxIovecs         = 64       // iovecs per writev
	listenBacklog     = 4096     // the kernel clamps it to net.core.somaxconn
)

// Options tunes a reactor. The zero value gives the defaults New uses.
type Options struct {
	// Loops is the number of event loops; 0 means runtime.GOMAXPROCS(0).
	Loops int
	// ReadBufferSize is the size of each loop's read buffer, and so the
	// largest slice one DataReceived call gets; 0 means 64 KiB.
	ReadBufferSize int
	// MaxEvents is how many readiness events one epoll_wait returns at
	// most; 0 means 256.
	MaxEvents int
	// BlockInEpollWait makes an idle loop block its thread in epoll_wait,
	// the textbook way. By default an idle loop instead parks on the Go
	// runtime's poller, which watches the loop's epoll descriptor: a
	// thread blocked in a syscall keeps its P until the runtime's monitor
	// (sysmon) takes it back, 20 µs at the soonest, which delays the
	// process's other goroutines, such as clients in the same benchmark.
	// A busy loop never parks, so the two differ only in how an idle loop
	// wakes up.
	BlockInEpollWait bool
}

// New starts a reactor with default options. It matches reactor.New.
func New() (reactor.Reactor, error) { return NewWithOptions(Options{}) }

// NewWithOptions starts a reactor with o. The reactor runs until Shutdown,
// which the caller must call to release its goroutines and descriptors.
func NewWithOptions(o Options) (reactor.Reactor, error) {
	switch {
	case o.Loops < 0:
		return nil, fmt.Errorf("epoll: Options.Loops is %d, want 0 (GOMAXPROCS) or more", o.Loops)
	case o.ReadBufferSize < 0:
		return nil, fmt.Errorf("epoll: Options.ReadBufferSize is %d, want 0 (64 KiB) or more", o.ReadBufferSize)
	case o.MaxEvents < 0:
		return nil, fmt.Errorf("epoll: Options.MaxEvents is %d, want 0 (256) or more", o.MaxEvents)
	}
	if o.Loops == 0 {
		o.Loops = runtime.GOMAXPROCS(0)
	}
	if o.ReadBufferSize == 0 {
		o.ReadBufferSize = defaultReadBuffer
	}
	if o.MaxEvents == 0 {
		o.MaxEvents = defaultMaxEvents
	}
	r := &Reactor{
		listeners:     make(map[*listener]struct{}),
		resolversDone: make(chan struct{}),
	}
	for i := range o.Loops {
		l, err := newLoop(r, i, o)
		if err != nil {
			for _, l := range r.loops {
				l.closeFDs()
			}
			return nil, err
		}
		r.loops = append(r.loops, l)
	}
	for _, l := range r.loops {
		go l.run()
	}
	return r, nil
}

// Reactor is the epoll reactor. Its methods are safe from any goroutine,
// including from inside Protocol callbacks.
type Reactor struct {
	loops []*loop
	next  atomic.Uint32 // round-robin over loops for Listen and Connect

	mu        sync.Mutex
	shut      bool
	listeners map[*listener]struct{}

	resolvers     sync.WaitGroup // goroutines resolving a Connect address
	resolversDone chan struct{}  // closed when resolvers is done, after Shutdown
	result        error          // the first complete Shutdown's result
	resultSet     bool           // guarded by mu
}

var _ reactor.Reactor = (*Reactor)(nil)

func (r *Reactor) pick() *loop {
	return r.loops[int(r.next.Add(1)-1)%len(r.loops)]
}

// Listen binds addr with SO_REUSEADDR (so a port can be listened on again
// right after its listener is closed) and serves f on it. A host-less
// address (":0") binds every IPv4 address.
func (r *Reactor) Listen(addr string, f reactor.Factory) (reactor.Listener, error) {
	if f == nil {
		return nil, fmt.Errorf("epoll: listen %s: nil Factory", addr)
	}
	if r.isShut() {
		return nil, fmt.Errorf("epoll: listen %s: %w", addr, reactor.ErrShutdown)
	}
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("epoll: listen %s: %w", addr, err)
	}
	fd, err := listenSocket(ta)
	if err != nil {
		return nil, fmt.Errorf("epoll: listen %s: %w", addr, err)
	}
	return r.serveFD(fd, addr, f)
}

// Serve takes over ln: it duplicates ln's descriptor, closes ln, and serves
// f on the duplicate. ln must be a TCP listener that implements
// syscall.Conn (*net.TCPListener does). The reactor owns ln from the call
// on, so ln is closed even when Serve fails.
func (r *Reactor) Serve(ln net.Listener, f reactor.Factory) (reactor.Listener, error) {
	if ln == nil {
		return nil, errors.New("epoll: serve: nil net.Listener")
	}
	name := ln.Addr().String()
	if f == nil {
		ln.Close()
		return nil, fmt.Errorf("epoll: serve %s: nil Factory", name)
	}
	if r.isShut() {
		ln.Close()
		return nil, fmt.Errorf("epoll: serve %s: %w", name, reactor.ErrShutdown)
	}
	fd, err := takeOver(ln)
	if err != nil {
		return nil, fmt.Errorf("epoll: serve %s: %w", name, err)
	}
	return r.serveFD(fd, name, f)
}

// takeOver duplicates a TCP listener's descriptor (close-on-exec,
// non-blocking) and closes the original.
func takeOver(ln net.Listener) (int, error) {
	defer ln.Close()
	if _, ok := ln.Addr().(*net.TCPAddr); !ok {
		return -1, fmt.Errorf("not a TCP listener (%T)", ln)
	}
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T does not expose its descriptor (syscall.Conn)", ln)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, os.NewSyscallError("dup", dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
}

// serveFD registers a listening descriptor with a loop; it owns fd.
func (r *Reactor) serveFD(fd int, name string, f reactor.Factory) (reactor.Listener, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("epoll: listen %s: %w", name, os.NewSyscallError("getsockname", err))
	}
	ln := &listener{r: r, l: r.pick(), f: f, fd: fd, addr: sockaddrToTCP(sa)}
	ln.unspecified = ln.addr.IP.IsUnspecified()
	r.mu.Lock()
	if r.shut {
		r.mu.Unlock()
		unix.Close(fd)
		return nil, fmt.Errorf("epoll: listen %s: %w", name, reactor.ErrShutdown)
	}
	r.listeners[ln] = struct{}{}
	r.mu.Unlock()
	if !ln.l.post(task{kind: taskListen, ln: ln}) {
		ln.Close()
		return nil, fmt.Errorf("epoll: listen %s: %w", name, reactor.ErrShutdown)
	}
	return ln, nil
}

func (r *Reactor) isShut() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shut
}

func (r *Reactor) forget(ln *listener) {
	r.mu.Lock()
	delete(r.listeners, ln)
	r.mu.Unlock()
}

// Connect dials addr with a non-blocking connect on one of the loops and
// reports the outcome through f on that loop. An address that is not an IP
// literal is resolved on a goroutine of its own first. ctx bounds the
// connect only: once connected, cancelling ctx does nothing. After
// Shutdown, f hears ClientConnectionFailed(ErrShutdown) on the caller's
// goroutine, before Connect returns. f must not be nil.
func (r *Reactor) Connect(ctx context.Context, addr string, f reactor.ClientFactory) {
	if f == nil {
		panic("epoll: Connect with a nil ClientFactory")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	d := &dialer{f: f, addr: addr, ctx: ctx, fd: -1}
	ap, perr := netip.ParseAddrPort(addr)
	r.mu.Lock()
	if r.shut {
		r.mu.Unlock()
		d.fail(reactor.ErrShutdown)
		return
	}
	d.l = r.pick()
	if perr == nil {
		r.mu.Unlock()
		d.setAddr(ap)
		if !d.l.post(task{kind: taskDial, d: d}) {
			d.fail(reactor.ErrShutdown)
		}
		return
	}
	r.resolvers.Add(1)
	r.mu.Unlock()
	go r.resolve(d)
}

// resolve looks up a host name for Connect, then hands the dial to its loop.
func (r *Reactor) resolve(d *dialer) {
	ap, err := resolveAddr(d.ctx, d.addr)
	if err != nil {
		d.err = fmt.Errorf("resolve %s: %w", d.addr, err)
	} else {
		d.setAddr(ap)
	}
	posted := d.l.post(task{kind: taskDial, d: d})
	// Done before the factory hears of a failure, so that a Shutdown called
	// from ClientConnectionFailed does not wait for this goroutine.
	r.resolvers.Done()
	if !posted {
		d.fail(reactor.ErrShutdown)
	}
}

func resolveAddr(ctx context.Context, addr string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := net.DefaultResolver.LookupPort(ctx, "tcp", port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("no address for %q", host)
	}
	best := ips[0]
	for _, ip := range ips { // prefer IPv4, as loopback services usually are
		if ip.Unmap().Is4() {
			best = ip
			break
		}
	}
	return netip.AddrPortFrom(best.Unmap(), uint16(p)), nil
}

// Shutdown closes every listener, then has every loop close its
// connections (ConnectionLost(ErrShutdown), then ClientConnectionLost) and
// fail its pending connects (ClientConnectionFailed(ErrShutdown)), and
// waits until every loop and resolver goroutine has exited and every
// descriptor is closed, or ctx ends.
//
// Called from a callback (on a loop goroutine), Shutdown starts the
// shutdown and returns nil at once, as Twisted's reactor.stop does: its own
// loop cannot stop while the callback runs, and waiting for the other
// loops could deadlock with a callback there doing the same. The loops
// stop as soon as their callbacks return. Only a Shutdown that waited for
// everything records its result; later calls return that first result
// without waiting again.
func (r *Reactor) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if r.resultSet {
		defer r.mu.Unlock()
		return r.result
	}
	first := !r.shut
	r.shut = true
	var lns []*listener
	if first {
		for ln := range r.listeners {
			lns = append(lns, ln)
		}
	}
	r.mu.Unlock()
	if first {
		for _, ln := range lns {
			ln.Close()
		}
		for _, l := range r.loops {
			l.post(task{kind: taskStop})
		}
		go func() {
			r.resolvers.Wait()
			close(r.resolversDone)
		}()
	}

	if r.callerLoop() != nil {
		return nil
	}
	var err error
	for _, l := range r.loops {
		select {
		case <-l.done:
			continue
		case <-ctx.Done():
			err = fmt.Errorf("epoll: shutdown: %w", ctx.Err())
		}
		break
	}
	if err == nil {
		select {
		case <-r.resolversDone:
		case <-ctx.Done():
			err = fmt.Errorf("epoll: shutdown: %w", ctx.Err())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.resultSet {
		r.result, r.resultSet = err, true
	}
	return r.result
}

// callerLoop returns the loop whose goroutine calls it, or nil. It reads
// the goroutine id from runtime.Stack, which costs a microsecond or so:
// fine for Shutdown, far too slow for Write.
func (r *Reactor) callerLoop() *loop {
	id := goroutineID()
	for _, l := range r.loops {
		if l.goid.Load() == id {
			return l
		}
	}
	return nil
}

// goroutineID parses "goroutine 42 [running]:" from the caller's stack.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = b[len("goroutine "):]
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
