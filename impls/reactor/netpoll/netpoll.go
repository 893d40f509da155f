// Package netpoll is the reactor back-end over github.com/cloudwego/netpoll.
//
// Every byte a connection reads or writes goes through netpoll: its pollers
// read the socket into netpoll's input buffer and run OnRequest on its
// goroutine pool, and writes go through netpoll's Writer and Flush. What the
// back-end adds is only what the reactor contract asks for and netpoll does
// not give, each worked around below with the reason at the spot:
//
//   - Accepting and dialling use Go's net package, and each socket is then
//     handed to netpoll with netpoll.NewFDConnection. netpoll's EventLoop
//     cannot stop accepting without closing the connections it accepted
//     (EventLoop.Shutdown closes every idle connection), and its dialer
//     loses the cause of a failure: a refused connect comes back as
//     "connection has been closed by peer" (no ECONNREFUSED) and a
//     cancelled one as a private error that is not context.Canceled. (Its
//     listener wrapper, ConvertListener, also closes the same descriptor
//     number twice on Close, which can close a descriptor reused by
//     another goroutine in between.)
//   - netpoll's Flush blocks until the kernel has taken everything, so
//     Write queues the bytes and a flusher (a goroutine, or the OnRequest
//     goroutine right after DataReceived returns) hands them to netpoll.
//   - netpoll's callbacks of one connection (OnRequest, close callbacks)
//     are serialised by netpoll only among themselves; ConnectionMade,
//     bytes held back by PauseReading and the ConnectionLost of a shutdown
//     come from elsewhere, so every Protocol callback goes through one
//     per-connection queue (conn.run).
//   - netpoll always reads: there is no way to take a connection's read
//     interest out of its poller. PauseReading therefore stops delivery,
//     not reading; what arrives while paused waits in this back-end's
//     memory instead of the kernel's, and the peer feels no backpressure. A
//     peer's close seen while paused is held back too, and reported after
//     ResumeReading has delivered the bytes that preceded it, as a reactor
//     that had stopped reading would find it in the kernel.
//   - netpoll's close callbacks do not say why a connection ended; the
//     reason is read from the socket (SO_ERROR, then the TCP state: CLOSE
//     rather than CLOSE_WAIT means the peer reset it) before netpoll closes
//     the descriptor. netpoll closes it in its own close callback, which
//     runs after ours, so Shutdown also waits until each descriptor it saw
//     closing is really closed.
//   - netpoll has no half-close, so the optional reactor.HalfCloser is not
//     implemented, and a peer's shutdown of its write side ends the
//     connection (ConnectionLost(nil)).
//
// netpoll's pollers are process-wide: they start on first use and run until
// the process exits, whatever Shutdown does. They are not this reactor's
// goroutines, and a leak check must ignore them (EngineGoroutines names
// them for go.uber.org/goleak).
package netpoll

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/cloudwego/netpoll"
	"golang.org/x/sys/unix"

	"github.com/twistbench/twistbench/impls/reactor"
)

// EngineGoroutines names the functions of the goroutines that netpoll runs
// for the whole process, whatever any Reactor does: its pollers, started on
// first use and never stopped (netpoll keeps them in a package variable and
// exports no way to close them). A leak check passes each name to
// goleak.IgnoreAnyFunction; they belong to netpoll, and no Shutdown can end
// them.
func EngineGoroutines() []string {
	return []string{"github.com/cloudwego/netpoll.(*defaultPoll).Wait"}
}

// spareCap bounds the write buffer a connection keeps for reuse between
// flushes, so that one 64 MiB write does not pin 64 MiB for the life of the
// connection.
const spareCap = 1 << 20

// Reactor is a reactor.Reactor over netpoll. Build it with New.
type Reactor struct {
	ctx    context.Context // ends at Shutdown: cancels dials in flight
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[*listener]struct{}
	conns     map[*conn]struct{}
	active    int           // goroutines of ours and connections not yet lost
	idle      chan struct{} // closed when active drops to 0 during Shutdown
	closedFDs map[int]fileID

	shutdownOnce sync.Once
	shutdownErr  error
}

var _ reactor.Reactor = (*Reactor)(nil)

// New builds a Reactor. netpoll needs no per-reactor start-up: its pollers
// are shared by the process (see the package doc).
func New() (reactor.Reactor, error) {
	ctx, cancel := context.WithCancel(context.Background())
	return &Reactor{
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[*listener]struct{}),
		conns:     make(map[*conn]struct{}),
		closedFDs: make(map[int]fileID),
	}, nil
}

// begin counts one more goroutine or connection that Shutdown must wait
// for. It fails once Shutdown has started.
func (r *Reactor) begin() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.active++
	return true
}

// end undoes one begin.
func (r *Reactor) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active--
	if r.active == 0 && r.idle != nil {
		close(r.idle)
		r.idle = nil
	}
}

// Listen binds addr with Go's net package and serves f on it.
func (r *Reactor) Listen(addr string, f reactor.Factory) (reactor.Listener, error) {
	if f == nil {
		return nil, fmt.Errorf("netpoll: listen %s: nil Factory", addr)
	}
	if r.isClosed() {
		return nil, reactor.ErrShutdown
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("netpoll: %w", err)
	}
	return r.Serve(ln, f)
}

// Serve accepts on ln and hands every connection to netpoll. The accept
// loop is a goroutine of this back-end, not netpoll's EventLoop: see the
// package doc.
func (r *Reactor) Serve(ln net.Listener, f reactor.Factory) (reactor.Listener, error) {
	if ln == nil {
		return nil, errors.New("netpoll: Serve: nil net.Listener")
	}
	if f == nil {
		ln.Close()
		return nil, fmt.Errorf("netpoll: serve %v: nil Factory", ln.Addr())
	}
	l := &listener{r: r, ln: ln, f: f, done: make(chan struct{})}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		ln.Close()
		return nil, reactor.ErrShutdown
	}
	r.listeners[l] = struct{}{}
	r.active++
	r.mu.Unlock()
	go l.acceptLoop()
	return l, nil
}

func (r *Reactor) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Connect dials addr with Go's net package (netpoll's dialer loses
// ECONNREFUSED and context.Canceled, see the package doc) and hands the
// socket to netpoll.
func (r *Reactor) Connect(ctx context.Context, addr string, f reactor.ClientFactory) {
	if f == nil {
		return // nowhere to report the outcome to
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if !r.begin() {
		callFactory(func() { f.ClientConnectionFailed(addr, reactor.ErrShutdown) })
		return
	}
	go func() {
		defer r.end()
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(r.ctx, cancel)
		defer stop()
		var d net.Dialer
		nc, err := d.DialContext(dctx, "tcp", addr)
		if err != nil {
			switch {
			case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
				err = fmt.Errorf("netpoll: dial %s: %w (%v)", addr, ctx.Err(), err)
			case ctx.Err() == nil && r.ctx.Err() != nil:
				err = fmt.Errorf("netpoll: dial %s: %w", addr, reactor.ErrShutdown)
			}
			callFactory(func() { f.ClientConnectionFailed(addr, err) })
			return
		}
		if err := r.adopt(nc, f, f, addr); err != nil {
			callFactory(func() { f.ClientConnectionFailed(addr, err) })
		}
	}()
}

// Shutdown closes every listener and connection, then waits for every
// goroutine of this reactor to end and every descriptor it handed to
// netpoll to be closed.
func (r *Reactor) Shutdown(ctx context.Context) error {
	r.shutdownOnce.Do(func() { r.shutdownErr = r.shutdown(ctx) })
	return r.shutdownErr
}

func (r *Reactor) shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	lns := make([]*listener, 0, len(r.listeners))
	for l := range r.listeners {
		lns = append(lns, l)
	}
	conns := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	r.cancel()
	for _, l := range lns {
		l.Close()
	}
	for _, c := range conns {
		c.shutdown()
	}

	r.mu.Lock()
	var idle chan struct{}
	if r.active > 0 {
		idle = make(chan struct{})
		r.idle = idle
	}
	r.mu.Unlock()
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			return fmt.Errorf("netpoll: shutdown: %w", ctx.Err())
		}
	}
	return r.waitFDsClosed(ctx)
}

// fileID names the open file behind a descriptor, so that a descriptor
// number reused by someone else is not mistaken for ours.
type fileID struct{ dev, ino uint64 }

func identify(fd int) (fileID, bool) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fileID{}, false
	}
	return fileID{dev: st.Dev, ino: st.Ino}, true
}

// noteClosing records the descriptor of a connection whose close callback
// runs now. netpoll closes the descriptor in its own close callback, which
// always runs after ours (callbacks run newest first, and netpoll adds its
// own when it creates the connection), so by the time ConnectionLost has
// been delivered the descriptor may still be open for a moment;
// waitFDsClosed waits for that moment to pass.
func (r *Reactor) noteClosing(fd int) {
	id, ok := identify(fd)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.closedFDs) >= 256 {
		for fd, id := range r.closedFDs {
			if cur, ok := identify(fd); !ok || cur != id {
				delete(r.closedFDs, fd)
			}
		}
	}
	r.closedFDs[fd] = id
}

// waitFDsClosed waits until every recorded descriptor is closed (or reused
// for another file). The wait is bounded by ctx and is normally nil: netpoll
// closes each descriptor right after our close callback returns.
func (r *Reactor) waitFDsClosed(ctx context.Context) error {
	r.mu.Lock()
	fds := r.closedFDs
	r.closedFDs = make(map[int]fileID)
	r.mu.Unlock()
	delay := 50 * time.Microsecond
	for fd, id := range fds {
		for {
			if cur, ok := identify(fd); !ok || cur != id {
				break
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("netpoll: shutdown: descriptor %d still open: %w", fd, ctx.Err())
			}
			delay = min(2*delay, 10*time.Millisecond)
		}
	}
	return nil
}

// adopt hands an established Go connection to netpoll and runs the
// protocol's start. f builds the protocol; cf is non-nil for a client
// connection. An error means no protocol was built.
func (r *Reactor) adopt(nc net.Conn, f reactor.Factory, cf reactor.ClientFactory, addr string) error {
	local, remote := nc.LocalAddr(), nc.RemoteAddr()
	fd, err := dupFD(nc)
	nc.Close()
	if err != nil {
		return fmt.Errorf("netpoll: adopt %v: %w", remote, err)
	}
	npc, err := netpoll.NewFDConnection(fd)
	if err != nil {
		// NewFDConnection closes the descriptor when registering fails.
		return fmt.Errorf("netpoll: adopt %v: %w", remote, err)
	}
	if r.isClosed() {
		npc.Close()
		return reactor.ErrShutdown
	}
	var p reactor.Protocol
	callFactory(func() { p = f.BuildProtocol(remote) })
	if p == nil {
		npc.Close()
		return nil
	}
	c := &conn{r: r, npc: npc, proto: p, client: cf, addr: addr, local: local, remote: remote}
	if sc, ok := npc.(interface{ Fd() int }); ok {
		c.fd = sc.Fd()
	} else {
		c.fd = -1
	}
	// The queue is held until ConnectionMade has run, so that a close
	// racing with the start (a shutdown, a peer that hangs up at once)
	// cannot deliver ConnectionLost first.
	c.running = true
	npc.AddCloseCallback(c.onClosed)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		npc.Close()
		return reactor.ErrShutdown
	}
	r.conns[c] = struct{}{}
	r.active++
	r.mu.Unlock()

	c.call(func() { p.ConnectionMade(c) })
	npc.SetOnRequest(c.onRequest)
	c.drain()
	// A peer that hung up before OnRequest was set, without sending
	// anything, left netpoll nothing to run: netpoll runs close callbacks
	// of a connection without OnRequest only when the user closes it.
	if !npc.IsActive() && npc.Reader().Len() == 0 {
		npc.Close()
	}
	c.kickFlush()
	return nil
}

// dupFD returns a descriptor of nc's socket that survives nc.Close. Go's
// Close takes the original out of the runtime's poller first, so the copy
// is left to netpoll alone.
func dupFD(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T has no descriptor", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, os.NewSyscallError("dup", dupErr)
	}
	return fd, nil
}

// callFactory runs a Factory or ClientFactory hook. A panic there is
// recovered so that it cannot take the reactor down; the connection it
// concerned is refused (BuildProtocol) or already over (the others).
func callFactory(f func()) {
	defer func() { _ = recover() }()
	f()
}

// listener is one accept loop.
type listener struct {
	r    *Reactor
	ln   net.Listener
	f    reactor.Factory
	once sync.Once
	done chan struct{}
}

func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// Close closes the listening socket: new connections are refused from the
// moment it returns (Go's Close returns once the descriptor is closed),
// and connections already accepted are not touched.
func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.ln.Close()
		l.r.mu.Lock()
		delete(l.r.listeners, l)
		l.r.mu.Unlock()
	})
	return nil
}

// acceptLoop accepts until the listener is closed. Running out of
// descriptors (EMFILE, ENFILE) is not fatal: the loop backs off and tries
// again, as Go's net/http does.
func (l *listener) acceptLoop() {
	defer l.r.end()
	var delay time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		_ = l.r.adopt(nc, l.f, nil, "")
	}
}

// conn is one connection: the Transport its protocol sees.
type conn struct {
	r      *Reactor
	npc    netpoll.Connection
	fd     int
	proto  reactor.Protocol
	client reactor.ClientFactory // nil for an accepted connection
	addr   string                // what Connect was given
	local  net.Addr
	remote net.Addr

	mu sync.Mutex
	// The callback queue: running is true while some goroutine runs this
	// connection's callbacks; others append to queue for it to run.
	running bool
	queue   []func()
	// Closing: why we closed (closeSet), and how far it went.
	closeSet bool
	closeErr error
	losing   bool // LoseConnection: close once the writes are flushed
	closed   bool // netpoll's close callback has run
	finished bool // ConnectionLost has run
	// Writing: bytes not yet handed to netpoll, and who hands them.
	pending   []byte
	spare     []byte
	flushing  bool // a flusher owns netpoll's Writer
	taskFlush bool // the OnRequest goroutine will flush once DataReceived returns
	// Reading.
	paused   bool
	backlog  []byte // read but not delivered (paused, or queued behind a callback)
	drainJob bool   // a deliverBacklog is queued
	held     bool   // the peer closed while paused: ConnectionLost waits for ResumeReading
	heldErr  error
}

var _ reactor.Transport = (*conn)(nil)

// run runs f as this connection's next callback: now if no other callback
// is running, else after the running ones (by the goroutine running them).
// Callbacks therefore never overlap and each happens-before the next, also
// when a callback calls a Transport method that queues another.
func (c *conn) run(f func()) {
	c.mu.Lock()
	if c.running {
		c.queue = append(c.queue, f)
		c.mu.Unlock()
		return
	}
	c.running = true
	c.mu.Unlock()
	f()
	c.drain()
}

// drain runs queued callbacks until none is left, then lets go of the queue.
func (c *conn) drain() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		f := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.mu.Unlock()
		f()
	}
}

// call runs one Protocol callback and turns a panic into an abort of this
// connection with reactor.PanicError.
func (c *conn) call(f func()) {
	defer func() {
		if v := recover(); v != nil {
			c.closeWith(reactor.PanicError(v), true)
		}
	}()
	f()
}

// onRequest is netpoll's OnRequest: it runs on netpoll's goroutine pool,
// never twice at once for one connection, and must consume all input.
func (c *conn) onRequest(_ context.Context, npc netpoll.Connection) error {
	rd := npc.Reader()
	n := rd.Len()
	if n == 0 {
		return nil
	}
	b, err := rd.Next(n)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	switch {
	case c.finished || c.closeSet && !c.losing:
		// Aborted or over: nothing more is delivered.
		c.mu.Unlock()
	case c.paused || c.running || len(c.backlog) > 0:
		// Not deliverable now: keep a copy, since netpoll reuses its
		// buffer after Release.
		c.backlog = append(c.backlog, b...)
		job := !c.paused && !c.drainJob
		if job {
			c.drainJob = true
		}
		c.mu.Unlock()
		if job {
			c.run(c.deliverBacklog)
		}
	default:
		// The common case: deliver netpoll's own buffer, no copy, and
		// flush what the protocol wrote right here, after it returns.
		c.running = true
		c.taskFlush = true
		c.mu.Unlock()
		c.call(func() { c.proto.DataReceived(b) })
		c.drain()
	}
	rd.Release()
	c.flushAfterTask()
	return nil
}

// deliverBacklog delivers what was kept back, unless paused again.
func (c *conn) deliverBacklog() {
	for {
		c.mu.Lock()
		if c.finished || c.closeSet && !c.losing && !c.held {
			c.backlog, c.drainJob = nil, false
			c.mu.Unlock()
			return
		}
		if c.paused {
			c.drainJob = false
			c.mu.Unlock()
			return
		}
		if len(c.backlog) == 0 {
			c.drainJob = false
			held, err := c.held, c.heldErr
			c.held = false
			c.mu.Unlock()
			if held {
				c.lost(err)
			}
			return
		}
		b := c.backlog
		c.backlog = nil
		c.mu.Unlock()
		c.call(func() { c.proto.DataReceived(b) })
	}
}

// onClosed is netpoll's close callback: it runs once, after the last
// OnRequest, whoever closed the connection, and before netpoll closes the
// descriptor.
func (c *conn) onClosed(netpoll.Connection) error {
	c.mu.Lock()
	c.closed = true
	c.pending = nil
	closeSet, err := c.closeSet, c.closeErr
	c.mu.Unlock()
	if !closeSet {
		err = peerError(c.fd)
	}
	if c.fd >= 0 {
		c.r.noteClosing(c.fd)
	}
	c.run(func() {
		c.mu.Lock()
		if !closeSet && c.paused {
			// The peer hung up while we were paused. Had we stopped
			// reading, the kernel would hold its FIN behind the unread
			// bytes until ResumeReading; do the same.
			c.held, c.heldErr = true, err
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.lost(err)
	})
	return nil
}

// peerError says why a connection that we did not close ended: the
// socket's pending error, else a reset when the TCP state is CLOSE (a FIN
// alone leaves it in CLOSE_WAIT), else nil for a clean end of stream.
// netpoll consumed the read error itself and does not pass it on.
func peerError(fd int) error {
	if fd < 0 {
		return nil
	}
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && v != 0 {
		return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.Errno(v))}
	}
	if info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil && info.State == tcpClose {
		return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	}
	return nil
}

// tcpClose is TCP_CLOSE from the kernel's include/net/tcp_states.h.
const tcpClose = 7

// lost delivers ConnectionLost, then ClientConnectionLost, exactly once;
// it runs as a callback of the queue.
func (c *conn) lost(err error) {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.finished = true
	c.backlog, c.pending, c.spare = nil, nil, nil
	c.mu.Unlock()
	func() {
		defer func() { _ = recover() }() // nothing left to abort
		c.proto.ConnectionLost(err)
	}()
	if c.client != nil {
		callFactory(func() { c.client.ClientConnectionLost(c.addr, err) })
	}
	c.r.mu.Lock()
	delete(c.r.conns, c)
	c.r.mu.Unlock()
	c.r.end()
}

// closeWith closes the connection now with err as its ConnectionLost error.
// force overrides a LoseConnection in progress (a panic, a shutdown).
func (c *conn) closeWith(err error, force bool) {
	c.mu.Lock()
	if c.finished || c.closed || c.closeSet && !(force && c.losing) {
		held := c.held && !c.finished
		c.held = false
		c.mu.Unlock()
		if held {
			c.run(func() { c.lost(err) })
		}
		return
	}
	c.closeSet, c.closeErr, c.losing = true, err, false
	c.pending = nil
	c.mu.Unlock()
	c.npc.Close()
}

// shutdown closes the connection for Reactor.Shutdown.
func (c *conn) shutdown() {
	c.mu.Lock()
	if c.closeSet && !c.losing && !c.held {
		c.mu.Unlock()
		c.npc.Close()
		return
	}
	c.mu.Unlock()
	c.closeWith(reactor.ErrShutdown, true)
}

// Write copies p into the pending bytes and makes sure a flusher runs.
func (c *conn) Write(p []byte) {
	if len(p) == 0 {
		return
	}
	c.mu.Lock()
	if c.closeSet || c.closed || c.finished {
		c.mu.Unlock()
		return
	}
	if c.pending == nil && c.spare != nil {
		c.pending, c.spare = c.spare, nil
	}
	c.pending = append(c.pending, p...)
	c.mu.Unlock()
	c.kickFlush()
}

// WriteSequence is Write of the concatenation of ps, queued at once.
func (c *conn) WriteSequence(ps [][]byte) {
	c.mu.Lock()
	if c.closeSet || c.closed || c.finished {
		c.mu.Unlock()
		return
	}
	if c.pending == nil && c.spare != nil {
		c.pending, c.spare = c.spare, nil
	}
	for _, p := range ps {
		c.pending = append(c.pending, p...)
	}
	c.mu.Unlock()
	c.kickFlush()
}

// kickFlush starts a flusher goroutine if there is something to flush (or
// a LoseConnection to finish) and no flusher runs or is about to.
func (c *conn) kickFlush() {
	c.mu.Lock()
	if c.flushing || c.taskFlush || c.closed || !(len(c.pending) > 0 || c.losing) {
		c.mu.Unlock()
		return
	}
	c.flushing = true
	c.mu.Unlock()
	c.r.track()
	go func() {
		defer c.r.end()
		c.flushLoop()
	}()
}

// track is begin for a goroutine that finishes a connection's work (its
// flusher): it may start during Shutdown, which waits for it too.
func (r *Reactor) track() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active++
}

// flushAfterTask runs on the OnRequest goroutine once DataReceived has
// returned: it flushes there, saving a goroutine per reply. Blocking in
// netpoll's Flush here delays only this connection's next DataReceived
// (netpoll keeps reading meanwhile), never the protocol's Write.
func (c *conn) flushAfterTask() {
	c.mu.Lock()
	c.taskFlush = false
	if c.flushing || c.closed || !(len(c.pending) > 0 || c.losing) {
		c.mu.Unlock()
		return
	}
	c.flushing = true
	c.mu.Unlock()
	c.flushLoop()
}

// flushLoop hands pending bytes to netpoll until none is left, then closes
// the connection if LoseConnection asked for it. The caller has set
// flushing; flushLoop clears it.
func (c *conn) flushLoop() {
	for {
		c.mu.Lock()
		if c.closed || c.closeSet && !c.losing {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		if len(c.pending) == 0 {
			c.flushing = false
			lose := c.losing
			c.mu.Unlock()
			if lose {
				c.npc.Close()
			}
			return
		}
		buf := c.pending
		c.pending = nil
		c.mu.Unlock()

		w := c.npc.Writer()
		_, err := w.WriteBinary(buf)
		if err == nil {
			// Flush returns once the kernel has every byte (or the
			// connection is closed), so buf is free again after it.
			err = w.Flush()
		}
		if err != nil {
			c.mu.Lock()
			c.flushing = false
			c.mu.Unlock()
			if c.npc.IsActive() {
				c.closeWith(&net.OpError{Op: "write", Net: "tcp", Err: err}, true)
			}
			return
		}
		c.mu.Lock()
		if cap(buf) <= spareCap && c.spare == nil && !c.finished {
			c.spare = buf[:0]
		}
		c.mu.Unlock()
	}
}

// LoseConnection flushes what is pending, then closes.
func (c *conn) LoseConnection() {
	c.mu.Lock()
	if c.finished || c.closeSet {
		c.mu.Unlock()
		return
	}
	if c.held {
		// The peer is gone already: finish now.
		c.closeSet = true
		c.held = false
		err := c.heldErr
		c.mu.Unlock()
		c.run(func() { c.lost(err) })
		return
	}
	c.closeSet, c.closeErr, c.losing = true, nil, true
	c.mu.Unlock()
	c.kickFlush()
}

// AbortConnection closes now and drops what is pending.
func (c *conn) AbortConnection() { c.closeWith(reactor.ErrConnectionAborted, true) }

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// PauseReading stops delivery. netpoll keeps reading (see the package doc).
func (c *conn) PauseReading() {
	c.mu.Lock()
	c.paused = true
	c.mu.Unlock()
}

// ResumeReading delivers what arrived while paused, then resumes.
func (c *conn) ResumeReading() {
	c.mu.Lock()
	if !c.paused {
		c.mu.Unlock()
		return
	}
	c.paused = false
	job := (len(c.backlog) > 0 || c.held) && !c.drainJob && !c.finished
	if job {
		c.drainJob = true
	}
	c.mu.Unlock()
	if job {
		c.run(c.deliverBacklog)
	}
}
