// Package gnet is the reactor back-end over github.com/panjf2000/gnet/v2,
// the outside reference among twistbench's engines.
//
// Every connection lives in the event loops of one gnet.Client per Reactor:
// gnet reads it, calls OnOpen, OnTraffic and OnClose on the loop that owns
// it (so the callbacks of one connection never overlap), and writes it with
// its own outbound buffers. What the back-end adds is only what the reactor
// contract asks for and gnet does not give, each worked around below with
// the reason at the spot:
//
//   - gnet's server Engine (gnet.Run) is not used. Its acceptor cannot be
//     closed apart from its connections (Engine.Stop ends them all, and
//     there is no way to drop one listener), it binds addresses itself and
//     cannot adopt a net.Listener, and it stops the whole engine on any
//     accept error other than EAGAIN, EINTR, ECONNRESET and ECONNABORTED,
//     running out of descriptors (EMFILE) included. So Listen and Serve
//     accept with Go's net package and hand each socket to the client's
//     event loops with Client.EnrollContext, gnet's documented way to adopt
//     a net.Conn; from then on every byte goes through gnet.
//   - Connect dials with Go's net.Dialer (gnet's Client.Dial takes no
//     context) and enrolls the socket the same way.
//   - gnet has no notification for "the outbound buffer has drained", and
//     its close writes what the kernel takes at once and drops the rest.
//     LoseConnection therefore closes only once OutboundBuffered is 0,
//     checked after each callback and, while bytes wait on a slow peer, on
//     a backing-off timer (100µs to 10ms).
//   - gnet always reads: there is no way to take a connection out of its
//     poller's read set. PauseReading therefore stops delivery, not
//     reading; what arrives while paused waits in gnet's inbound buffer
//     instead of the kernel's, and the peer feels no backpressure. A
//     peer's close seen while paused is held back too, and reported after
//     ResumeReading has delivered the bytes that preceded it, as a reactor
//     that had stopped reading would find it in the kernel.
//   - gnet closes a connection when the peer shuts down its write side, so
//     the optional reactor.HalfCloser is not implemented and a peer's
//     half-close ends the connection (ConnectionLost(nil)).
//   - AbortConnection closes through gnet, whose close still writes, without
//     blocking, what the kernel accepts of its outbound buffer before
//     closing; what this back-end had queued and not yet given to gnet is
//     dropped.
//
// Importing gnet starts two goroutines for the whole process: gnet creates
// its default worker pool (github.com/panjf2000/ants) in a package
// variable, and ants starts that pool's purge and clock goroutines at once.
// No Reactor starts or can stop them; EngineGoroutines names them for leak
// checks.
//
// gnet's logger is process-wide (gnet.WithLogger sets it for every engine);
// this back-end installs one that drops gnet's debug and info lines and
// passes warnings and errors to the standard log package.
package gnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/twistbench/twistbench/impls/reactor"
)

// spareCap bounds the write buffer a connection keeps for reuse between
// flushes, so that one 64 MiB write does not pin 64 MiB for the life of the
// connection.
const spareCap = 1 << 20

// Drain checks of a LoseConnection waiting on a slow peer back off from
// minDrainDelay to maxDrainDelay.
const (
	minDrainDelay = 100 * time.Microsecond
	maxDrainDelay = 10 * time.Millisecond
)

// EngineGoroutines names the functions of the goroutines that gnet runs for
// the whole process, whatever any Reactor does (see the package doc). A leak
// check passes each name to goleak.IgnoreAnyFunction.
func EngineGoroutines() []string {
	return []string{
		"github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers",
		"github.com/panjf2000/ants/v2.(*poolCommon).ticktock",
	}
}

// Reactor is a reactor.Reactor over gnet. Build it with New.
type Reactor struct {
	cli      *gnet.Client
	ctx      context.Context // ends at Shutdown: cancels dials in flight
	cancel   context.CancelFunc
	shutting atomic.Bool // the client is stopping: OnClose reports ErrShutdown

	mu        sync.Mutex
	closed    bool
	listeners map[*listener]struct{}
	conns     map[*conn]struct{}
	active    int           // accept loops, dials and drain checks running
	idle      chan struct{} // closed when active drops to 0 during Shutdown

	shutdownOnce sync.Once
	shutdownErr  error
}

var _ reactor.Reactor = (*Reactor)(nil)

// New starts a gnet client with one event loop per GOMAXPROCS.
func New() (reactor.Reactor, error) {
	r := &Reactor{
		listeners: make(map[*listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	cli, err := gnet.NewClient(&handler{r: r},
		gnet.WithNumEventLoop(runtime.GOMAXPROCS(0)),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogger(quietLogger{}),
	)
	if err != nil {
		r.cancel()
		return nil, fmt.Errorf("gnet: new client: %w", err)
	}
	if err := cli.Start(); err != nil {
		r.cancel()
		return nil, fmt.Errorf("gnet: start client: %w", err)
	}
	r.cli = cli
	return r, nil
}

// begin counts one more goroutine that Shutdown must wait for before it
// stops gnet. It fails once Shutdown has started.
func (r *Reactor) begin() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.active++
	return true
}

func (r *Reactor) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active--
	if r.active == 0 && r.idle != nil {
		close(r.idle)
		r.idle = nil
	}
}

func (r *Reactor) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Listen binds addr with Go's net package and serves f on it (see the
// package doc for why gnet's own acceptor is not used).
func (r *Reactor) Listen(addr string, f reactor.Factory) (reactor.Listener, error) {
	if f == nil {
		return nil, fmt.Errorf("gnet: listen %s: nil Factory", addr)
	}
	if r.isClosed() {
		return nil, reactor.ErrShutdown
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gnet: %w", err)
	}
	return r.Serve(ln, f)
}

// Serve accepts on ln and enrolls every connection in gnet's event loops.
func (r *Reactor) Serve(ln net.Listener, f reactor.Factory) (reactor.Listener, error) {
	if ln == nil {
		return nil, errors.New("gnet: Serve: nil net.Listener")
	}
	if f == nil {
		ln.Close()
		return nil, fmt.Errorf("gnet: serve %v: nil Factory", ln.Addr())
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

// Connect dials addr with Go's net.Dialer, which honours ctx, and enrolls
// the socket in gnet's event loops.
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
				err = fmt.Errorf("gnet: dial %s: %w (%v)", addr, ctx.Err(), err)
			case ctx.Err() == nil && r.ctx.Err() != nil:
				err = fmt.Errorf("gnet: dial %s: %w", addr, reactor.ErrShutdown)
			}
			callFactory(func() { f.ClientConnectionFailed(addr, err) })
			return
		}
		if err := r.adopt(nc, f, f, addr); err != nil {
			callFactory(func() { f.ClientConnectionFailed(addr, err) })
		}
	}()
}

// adopt builds the protocol for an established Go connection and enrolls
// the socket in gnet, which calls OnOpen (ConnectionMade) on the loop that
// will own it. An error means no protocol was built or it never started.
func (r *Reactor) adopt(nc net.Conn, f reactor.Factory, cf reactor.ClientFactory, addr string) error {
	local, remote := nc.LocalAddr(), nc.RemoteAddr()
	if r.isClosed() {
		nc.Close()
		return reactor.ErrShutdown
	}
	var p reactor.Protocol
	callFactory(func() { p = f.BuildProtocol(remote) })
	if p == nil {
		nc.Close()
		return nil
	}
	c := &conn{r: r, proto: p, client: cf, addr: addr, local: local, remote: remote, drainDelay: minDrainDelay}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		nc.Close()
		return reactor.ErrShutdown
	}
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	// EnrollContext duplicates the descriptor, closes nc, and returns once
	// OnOpen has run on the connection's loop.
	_, err := r.cli.EnrollContext(nc, c)
	c.mu.Lock()
	opened := c.opened
	c.mu.Unlock()
	if !opened {
		r.forget(c)
		if err == nil {
			err = errors.New("gnet: enroll: the event loop did not open the connection")
		}
		return fmt.Errorf("gnet: enroll %v: %w", remote, err)
	}
	return nil
}

func (r *Reactor) forget(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
}

// Shutdown closes the listeners, waits for accept loops and dials to end,
// then stops gnet's client, which closes every connection on its loop
// (ConnectionLost(ErrShutdown)) and joins the loops.
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
	var idle chan struct{}
	r.mu.Unlock()
	r.cancel()
	for _, l := range lns {
		l.Close()
	}
	// No enrollment may be in flight when the client stops: gnet's
	// EnrollContext waits for its loop forever if the loop has exited.
	r.mu.Lock()
	if r.active > 0 {
		idle = make(chan struct{})
		r.idle = idle
	}
	r.mu.Unlock()
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			return fmt.Errorf("gnet: shutdown: waiting for accept loops and dials: %w", ctx.Err())
		}
	}

	r.shutting.Store(true)
	stopped := make(chan error, 1)
	go func() { stopped <- r.cli.Stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			return fmt.Errorf("gnet: shutdown: %w", err)
		}
	case <-ctx.Done():
		return fmt.Errorf("gnet: shutdown: waiting for the event loops: %w", ctx.Err())
	}

	// What is left are connections the peer closed while they were paused
	// (held for ResumeReading), which gnet no longer knows.
	r.mu.Lock()
	left := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		left = append(left, c)
	}
	r.mu.Unlock()
	for _, c := range left {
		c.endHeld(reactor.ErrShutdown)
	}
	r.mu.Lock()
	n := len(r.conns)
	r.mu.Unlock()
	if n > 0 {
		return fmt.Errorf("gnet: shutdown: %d connections still delivering ConnectionLost", n)
	}
	return nil
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
// and connections already accepted stay in gnet's loops, untouched.
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

// handler is gnet's EventHandler: every method runs on the event loop that
// owns the connection.
type handler struct {
	gnet.BuiltinEventEngine
	r *Reactor
}

func (h *handler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c, _ := gc.Context().(*conn)
	if c == nil {
		return nil, gnet.Close
	}
	c.mu.Lock()
	c.gc = gc
	c.opened, c.open, c.inCallback = true, true, true
	c.mu.Unlock()
	c.call(func() { c.proto.ConnectionMade(c) })
	return nil, c.afterCallback(gc)
}

func (h *handler) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*conn)
	if c == nil {
		return gnet.Close
	}
	c.mu.Lock()
	c.inCallback = true
	deliver := !c.paused && !(c.closeSet && !c.losing)
	c.mu.Unlock()
	if deliver {
		// Next(-1) hands over gnet's read buffer (or what it kept while
		// paused): valid until this callback returns, as the contract
		// allows.
		if b, _ := gc.Next(-1); len(b) > 0 {
			c.call(func() { c.proto.DataReceived(b) })
		}
	}
	// While paused, returning without reading leaves the bytes to gnet,
	// which keeps them in the connection's inbound buffer.
	return c.afterCallback(gc)
}

func (h *handler) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, _ := gc.Context().(*conn)
	if c == nil {
		return gnet.None
	}
	c.mu.Lock()
	c.open = false
	if c.drainTimer != nil {
		c.drainTimer.Stop()
		c.drainTimer = nil
	}
	aborted := c.closeSet && !c.losing
	var lostErr error
	peer := false
	switch {
	case aborted:
		lostErr = c.closeErr
	case h.r.shutting.Load():
		lostErr = reactor.ErrShutdown
	case c.closeSet:
		lostErr = c.closeErr
	default:
		peer = true
		lostErr = peerError(err)
	}
	if peer && c.paused {
		// The peer hung up while we were paused. Had we stopped reading,
		// the kernel would hold its FIN behind the unread bytes until
		// ResumeReading; do the same, with the bytes gnet kept.
		if b, _ := gc.Next(-1); len(b) > 0 {
			c.heldInput = append([]byte(nil), b...)
		}
		c.held, c.heldErr = true, lostErr
		c.mu.Unlock()
		return gnet.None
	}
	c.mu.Unlock()
	c.finish(lostErr)
	return gnet.None
}

// peerError maps how gnet saw a connection end to the contract: an end of
// stream is a clean close (nil); anything else (a reset, a broken pipe) is
// returned as gnet gave it, an *os.SyscallError wrapping the errno.
func peerError(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	return &net.OpError{Op: "read", Net: "tcp", Err: err}
}

// conn is one connection: the Transport its protocol sees.
type conn struct {
	r      *Reactor
	proto  reactor.Protocol
	client reactor.ClientFactory // nil for an accepted connection
	addr   string                // what Connect was given
	local  net.Addr
	remote net.Addr

	mu         sync.Mutex
	gc         gnet.Conn // set by OnOpen
	opened     bool      // OnOpen has run
	open       bool      // OnOpen has run and OnClose has not
	inCallback bool      // the loop runs one of our callbacks and flushes after it
	// Closing: why we closed (closeSet), and how far it went.
	closeSet bool
	closeErr error
	losing   bool // LoseConnection: close once gnet's outbound buffer is empty
	finished bool // ConnectionLost has run or is running
	// Writing: bytes not yet given to gnet.
	out         []byte
	spare       []byte
	flushQueued bool // a Wake is on its way to the loop, which flushes
	drainTimer  *time.Timer
	drainDelay  time.Duration
	// Reading.
	paused     bool
	held       bool // the peer closed while paused: ConnectionLost waits for ResumeReading
	heldErr    error
	heldInput  []byte
	delivering bool // a goroutine is delivering what was held
}

var _ reactor.Transport = (*conn)(nil)

// call runs one Protocol callback and turns a panic into an abort of this
// connection with reactor.PanicError.
func (c *conn) call(f func()) {
	defer func() {
		if v := recover(); v != nil {
			c.mu.Lock()
			if c.held || !c.open {
				c.heldErr = reactor.PanicError(v)
			} else if !(c.closeSet && !c.losing) {
				c.closeSet, c.closeErr, c.losing = true, reactor.PanicError(v), false
				c.out = nil
			}
			c.mu.Unlock()
		}
	}()
	f()
}

// afterCallback runs on the loop after each of our callbacks: it gives gnet
// what the protocol wrote and tells gnet whether to close. It loops until
// nothing is left to give, because other goroutines may Write while gnet
// writes (their wake finds nothing to do), and the decision to close after
// LoseConnection must be taken under the same lock that found nothing left.
func (c *conn) afterCallback(gc gnet.Conn) gnet.Action {
	c.mu.Lock()
	c.inCallback = false
	c.flushQueued = false
	for {
		if c.closeSet && !c.losing {
			c.out = nil
			c.mu.Unlock()
			return gnet.Close
		}
		if !c.open {
			// Closed during Write. Close is then a no-op for gnet, and
			// keeps it from keeping unread bytes of a released connection.
			c.mu.Unlock()
			return gnet.Close
		}
		if len(c.out) == 0 {
			break
		}
		out := c.out
		c.out = nil
		c.mu.Unlock()
		// gnet writes what the kernel takes and copies the rest into its
		// outbound buffer, so out is ours again when Write returns. On a
		// write error gnet closes the connection (OnClose) right here.
		_, _ = gc.Write(out)
		c.mu.Lock()
		if cap(out) <= spareCap && c.spare == nil && !c.finished {
			c.spare = out[:0]
		}
	}
	losing := c.losing
	c.mu.Unlock()
	if losing {
		// No Write is accepted after LoseConnection, so c.out stays empty.
		if gc.OutboundBuffered() == 0 {
			return gnet.Close
		}
		c.scheduleDrainCheck()
	}
	return gnet.None
}

// scheduleDrainCheck wakes the loop later to see whether gnet's outbound
// buffer has drained; gnet has no callback for it (see the package doc).
func (c *conn) scheduleDrainCheck() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drainTimer != nil || !c.open {
		return
	}
	d := c.drainDelay
	c.drainDelay = min(2*d, maxDrainDelay)
	c.drainTimer = time.AfterFunc(d, func() {
		if !c.r.begin() {
			return // shutting down: gnet closes the connection itself
		}
		defer c.r.end()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.drainTimer = nil
		c.kickLocked()
	})
}

// kickLocked wakes the connection's loop, which then flushes, delivers
// what resuming allows and closes what is due. It is called with c.mu held:
// OnClose takes c.mu too, so no wake is sent after OnClose, and none after
// gnet has closed its pollers at Shutdown.
func (c *conn) kickLocked() {
	if c.inCallback || c.flushQueued || !c.open {
		return
	}
	c.flushQueued = true
	if err := c.gc.Wake(nil); err != nil {
		c.flushQueued = false
	}
}

// finish delivers ConnectionLost, then ClientConnectionLost, exactly once.
func (c *conn) finish(err error) {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.finished = true
	c.out, c.spare, c.heldInput = nil, nil, nil
	c.mu.Unlock()
	func() {
		defer func() { _ = recover() }() // nothing left to abort
		c.proto.ConnectionLost(err)
	}()
	if c.client != nil {
		callFactory(func() { c.client.ClientConnectionLost(c.addr, err) })
	}
	c.r.forget(c)
}

// releaseHeld delivers what a connection closed by the peer while paused
// kept, then ConnectionLost. gnet no longer knows the connection, so this
// runs on the caller's goroutine (ResumeReading's); delivering guards
// against a second caller.
func (c *conn) releaseHeld() {
	c.mu.Lock()
	if !c.held || c.paused || c.delivering || c.finished {
		c.mu.Unlock()
		return
	}
	c.delivering = true
	data := c.heldInput
	c.heldInput = nil
	c.mu.Unlock()
	if len(data) > 0 {
		c.call(func() { c.proto.DataReceived(data) })
	}
	c.mu.Lock()
	c.delivering = false
	if c.paused && c.held {
		c.mu.Unlock()
		return // paused again from DataReceived: the end waits once more
	}
	c.held = false
	err := c.heldErr
	c.mu.Unlock()
	c.finish(err)
}

// endHeld ends a held connection now with err, dropping what it kept.
func (c *conn) endHeld(err error) {
	c.mu.Lock()
	if !c.held || c.delivering || c.finished {
		c.mu.Unlock()
		return
	}
	c.held = false
	c.mu.Unlock()
	c.finish(err)
}

// Write copies p for the loop, which gives it to gnet after the running
// callback or on the wake sent here.
func (c *conn) Write(p []byte) {
	if len(p) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSet || !c.open || c.finished {
		return
	}
	if c.out == nil && c.spare != nil {
		c.out, c.spare = c.spare, nil
	}
	c.out = append(c.out, p...)
	c.kickLocked()
}

// WriteSequence is Write of the concatenation of ps, queued at once.
func (c *conn) WriteSequence(ps [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSet || !c.open || c.finished {
		return
	}
	if c.out == nil && c.spare != nil {
		c.out, c.spare = c.spare, nil
	}
	for _, p := range ps {
		c.out = append(c.out, p...)
	}
	if len(c.out) > 0 {
		c.kickLocked()
	}
}

// LoseConnection flushes what is pending, then closes.
func (c *conn) LoseConnection() {
	c.mu.Lock()
	if c.finished || c.closeSet {
		c.mu.Unlock()
		return
	}
	c.closeSet, c.closeErr, c.losing = true, nil, true
	if c.held {
		err := c.heldErr
		c.mu.Unlock()
		c.endHeld(err)
		return
	}
	c.kickLocked()
	c.mu.Unlock()
}

// AbortConnection closes now and drops what is pending.
func (c *conn) AbortConnection() {
	c.mu.Lock()
	if c.finished || c.closeSet && !c.losing {
		c.mu.Unlock()
		return
	}
	c.closeSet, c.closeErr, c.losing = true, reactor.ErrConnectionAborted, false
	c.out = nil
	if c.held {
		c.mu.Unlock()
		c.endHeld(reactor.ErrConnectionAborted)
		return
	}
	if !c.inCallback && c.open {
		// From inside a callback, afterCallback closes; from elsewhere,
		// the loop does. Either way gnet calls OnClose on the loop.
		_ = c.gc.Close()
	}
	c.mu.Unlock()
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// PauseReading stops delivery. gnet keeps reading (see the package doc).
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
	if c.held {
		c.mu.Unlock()
		c.releaseHeld()
		return
	}
	// The loop delivers what gnet kept on the next OnTraffic; a wake
	// makes one happen even if the peer sends nothing more. From inside a
	// callback the wake is queued behind it.
	if c.open {
		if c.inCallback || c.flushQueued {
			_ = c.gc.Wake(nil)
		} else {
			c.kickLocked()
		}
	}
	c.mu.Unlock()
}

// quietLogger drops gnet's debug and info lines (one per client start and
// stop) and passes the rest to the standard logger.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any)          {}
func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Warnf(format string, a ...any)  { log.Printf("gnet: warning: "+format, a...) }
func (quietLogger) Errorf(format string, a ...any) { log.Printf("gnet: error: "+format, a...) }
func (quietLogger) Fatalf(format string, a ...any) { log.Printf("gnet: fatal: "+format, a...) }
