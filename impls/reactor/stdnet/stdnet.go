// Package stdnet is the reactor back-end over Go's net package: a goroutine
// per connection, the way most Go servers are written. It is the baseline
// the event-loop back-ends are measured against, and the known-good
// implementation the conformance suite proves itself on, so it favours
// obvious correctness over speed.
//
// Each connection has two goroutines. The reader runs every Protocol
// callback of the connection (so they never overlap) and ends with
// ConnectionLost; the writer drains the outbound buffer, so that Write never
// blocks its caller on a slow peer. Closing the socket is what ends the
// reader's blocking Read; the reason for the close is recorded first, so the
// reader reports it.
package stdnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twistbench/twistbench/impls/reactor"
)

// New starts a reactor. It has no goroutines of its own until it listens or
// connects.
func New() (reactor.Reactor, error) {
	ctx, cancel := context.WithCancel(context.Background())
	return &Reactor{
		ctx:       ctx,
		cancel:    cancel,
		listeners: map[*listener]struct{}{},
		conns:     map[*conn]struct{}{},
	}, nil
}

var _ reactor.Reactor = (*Reactor)(nil)

// Reactor tracks every listener, connection and dial so that Shutdown can
// close them and wait for their goroutines.
type Reactor struct {
	ctx    context.Context // cancelled by Shutdown: ends dials and accept back-offs
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the reactor started

	mu        sync.Mutex
	closed    bool
	listeners map[*listener]struct{}
	conns     map[*conn]struct{}

	shutdownOnce sync.Once
	shutdownDone chan struct{}
}

// Listen binds addr and serves f on it.
func (r *Reactor) Listen(addr string, f reactor.Factory) (reactor.Listener, error) {
	if r.isClosed() {
		return nil, reactor.ErrShutdown
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stdnet: listen %s: %w", addr, err)
	}
	return r.Serve(ln, f)
}

// Serve takes ln over and accepts on it in its own goroutine.
func (r *Reactor) Serve(ln net.Listener, f reactor.Factory) (reactor.Listener, error) {
	l := &listener{r: r, ln: ln, f: f, done: make(chan struct{})}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		ln.Close()
		return nil, reactor.ErrShutdown
	}
	r.listeners[l] = struct{}{}
	r.wg.Add(1)
	r.mu.Unlock()
	go l.accept()
	return l, nil
}

// Connect dials addr in its own goroutine; Shutdown cancels a dial in
// progress.
func (r *Reactor) Connect(ctx context.Context, addr string, f reactor.ClientFactory) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		f.ClientConnectionFailed(addr, reactor.ErrShutdown)
		return
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		dctx, stop := context.WithCancel(ctx)
		defer stop()
		unhook := context.AfterFunc(r.ctx, stop)
		defer unhook()
		var d net.Dialer
		c, err := d.DialContext(dctx, "tcp", addr)
		if err != nil {
			if r.ctx.Err() != nil && ctx.Err() == nil {
				err = fmt.Errorf("%w: %w", reactor.ErrShutdown, err)
			}
			f.ClientConnectionFailed(addr, err)
			return
		}
		r.startConn(c, f, f, addr)
	}()
}

// Shutdown closes listeners and connections and waits for every goroutine.
func (r *Reactor) Shutdown(ctx context.Context) error {
	r.shutdownOnce.Do(func() {
		r.shutdownDone = make(chan struct{})
		r.mu.Lock()
		r.closed = true
		ls := make([]*listener, 0, len(r.listeners))
		for l := range r.listeners {
			ls = append(ls, l)
		}
		cs := make([]*conn, 0, len(r.conns))
		for c := range r.conns {
			cs = append(cs, c)
		}
		r.mu.Unlock()
		r.cancel()
		for _, l := range ls {
			l.Close()
		}
		for _, c := range cs {
			c.closeNow(reactor.ErrShutdown)
		}
		go func() {
			r.wg.Wait()
			close(r.shutdownDone)
		}()
	})
	select {
	case <-r.shutdownDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stdnet: shutdown: %w", ctx.Err())
	}
}

func (r *Reactor) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// startConn registers c and starts its goroutines; when the reactor is
// already shutting down the connection is closed at once.
func (r *Reactor) startConn(nc net.Conn, f reactor.Factory, cf reactor.ClientFactory, addr string) {
	c := &conn{r: r, nc: nc, f: f, cf: cf, addr: addr}
	c.cond = sync.NewCond(&c.mu)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		nc.Close()
		if cf != nil {
			cf.ClientConnectionFailed(addr, reactor.ErrShutdown)
		}
		return
	}
	r.conns[c] = struct{}{}
	r.wg.Add(2)
	r.mu.Unlock()
	go c.writeLoop()
	go c.readLoop()
}

func (r *Reactor) forget(c *conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

type listener struct {
	r    *Reactor
	ln   net.Listener
	f    reactor.Factory
	once sync.Once
	done chan struct{}
	err  error
}

func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting: closing the socket frees the port at once, and
// the accept goroutine ends on its own.
func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.err = l.ln.Close()
	})
	return nil
}

// accept runs until the listener is closed. Temporary failures, such as
// running out of descriptors (EMFILE), back off and retry instead of ending
// the listener: the descriptors come back when connections close.
func (l *listener) accept() {
	defer l.r.wg.Done()
	defer func() {
		l.r.mu.Lock()
		delete(l.r.listeners, l)
		l.r.mu.Unlock()
	}()
	backoff := time.Millisecond
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
			backoff = min(2*backoff, 100*time.Millisecond)
			continue
		}
		backoff = time.Millisecond
		l.r.startConn(c, l.f, nil, "")
	}
}

// conn states, in the order a connection goes through them.
const (
	open    = iota
	losing  // LoseConnection: flush, then close
	closing // the socket is closed or closing; reason is final
)

type conn struct {
	r    *Reactor
	nc   net.Conn
	f    reactor.Factory
	cf   reactor.ClientFactory // nil for accepted connections
	addr string                // dialled address, for the client factory

	mu         sync.Mutex
	cond       *sync.Cond // signals the writer (pending, state) and a paused reader
	state      int
	reason     error  // given to ConnectionLost
	pending    []byte // bytes not yet handed to the socket
	spare      []byte // the writer's previous buffer, reused
	halfClose  bool   // LoseWriteConnection: shut down writing after the flush
	paused     bool
	readClosed bool // peer EOF seen by a half-closeable protocol
}

var (
	_ reactor.Transport  = (*conn)(nil)
	_ reactor.HalfCloser = (*conn)(nil)
)

func (c *conn) LocalAddr() net.Addr  { return c.nc.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Write copies p into the outbound buffer and wakes the writer.
func (c *conn) Write(p []byte) {
	if len(p) == 0 {
		return
	}
	c.mu.Lock()
	if c.state == open && !c.halfClose {
		c.pending = append(c.pending, p...)
		c.cond.Broadcast()
	}
	c.mu.Unlock()
}

// WriteSequence appends every slice under one lock, so that concurrent
// writers cannot interleave inside the sequence.
func (c *conn) WriteSequence(ps [][]byte) {
	c.mu.Lock()
	if c.state == open && !c.halfClose {
		for _, p := range ps {
			c.pending = append(c.pending, p...)
		}
		c.cond.Broadcast()
	}
	c.mu.Unlock()
}

func (c *conn) LoseConnection() {
	c.mu.Lock()
	if c.state == open {
		c.state = losing
		c.cond.Broadcast()
	}
	c.mu.Unlock()
}

func (c *conn) LoseWriteConnection() {
	c.mu.Lock()
	if c.state == open {
		c.halfClose = true
		c.cond.Broadcast()
	}
	c.mu.Unlock()
}

// AbortConnection drops what is pending and resets the connection.
func (c *conn) AbortConnection() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		c.mu.Lock()
		if c.state != closing {
			tc.SetLinger(0) // RST: tell the peer the close was not clean
		}
		c.mu.Unlock()
	}
	c.closeNow(reactor.ErrConnectionAborted)
}

func (c *conn) PauseReading() {
	c.mu.Lock()
	c.paused = true
	c.mu.Unlock()
}

func (c *conn) ResumeReading() {
	c.mu.Lock()
	c.paused = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// closeNow records reason (unless a reason is final already), drops what is
// pending and closes the socket, which ends both goroutines.
func (c *conn) closeNow(reason error) {
	c.mu.Lock()
	if c.state == closing {
		c.mu.Unlock()
		return
	}
	c.state = closing
	c.reason = reason
	c.pending = nil
	c.cond.Broadcast()
	c.mu.Unlock()
	c.nc.Close()
}

// writeLoop hands pending bytes to the socket, and closes it once a
// LoseConnection has been flushed.
func (c *conn) writeLoop() {
	defer c.r.wg.Done()
	shutWrite := false
	for {
		c.mu.Lock()
		for len(c.pending) == 0 && c.state == open && (!c.halfClose || shutWrite) {
			c.cond.Wait()
		}
		if c.state == closing {
			c.mu.Unlock()
			return
		}
		if len(c.pending) == 0 {
			if c.state == losing {
				c.mu.Unlock()
				c.closeNow(nil)
				return
			}
			// Half-close requested and flushed.
			c.mu.Unlock()
			shutWrite = true
			if tc, ok := c.nc.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			continue
		}
		out := c.pending
		c.pending = c.spare[:0]
		c.mu.Unlock()

		_, err := c.nc.Write(out)

		c.mu.Lock()
		if cap(out) <= 1<<20 { // keep small buffers; let a 64 MiB one go
			c.spare = out[:0]
		} else {
			c.spare = nil
		}
		c.mu.Unlock()
		if err != nil {
			c.closeNow(err)
			return
		}
	}
}

// readLoop runs every protocol callback of the connection, in order.
func (c *conn) readLoop() {
	defer c.r.wg.Done()
	defer c.r.forget(c)

	p := c.build()
	if p == nil {
		c.closeNow(nil)
		return
	}
	lost := c.run(p)
	c.safely(func() { p.ConnectionLost(lost) })
	if c.cf != nil {
		c.safely(func() { c.cf.ClientConnectionLost(c.addr, lost) })
	}
}

func (c *conn) build() (p reactor.Protocol) {
	defer func() {
		if v := recover(); v != nil {
			p = nil
		}
	}()
	return c.f.BuildProtocol(c.nc.RemoteAddr())
}

// run delivers ConnectionMade and data until the connection closes, and
// returns the reason to give ConnectionLost.
func (c *conn) run(p reactor.Protocol) error {
	if err := c.call(func() { p.ConnectionMade(c) }); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		if !c.waitReadable() {
			break
		}
		n, err := c.nc.Read(buf)
		if n > 0 {
			if !c.waitReadable() {
				break
			}
			if perr := c.call(func() { p.DataReceived(buf[:n]) }); perr != nil {
				return perr
			}
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			if hp, ok := p.(reactor.HalfCloseableProtocol); ok {
				c.mu.Lock()
				c.readClosed = true
				c.mu.Unlock()
				if perr := c.call(hp.ReadConnectionLost); perr != nil {
					return perr
				}
				c.waitClosed()
				break
			}
			// The peer is done: flush what we still owe it, then close.
			c.LoseConnection()
			c.waitClosed()
			break
		}
		c.closeNow(fmt.Errorf("stdnet: read: %w", err))
		break
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// waitReadable blocks while reading is paused; false once the connection
// is closing.
func (c *conn) waitReadable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.paused && c.state != closing {
		c.cond.Wait()
	}
	return c.state != closing
}

func (c *conn) waitClosed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.state != closing {
		c.cond.Wait()
	}
}

// call runs a protocol callback; a panic aborts the connection and becomes
// the reason ConnectionLost hears.
func (c *conn) call(f func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = reactor.PanicError(v)
			if tc, ok := c.nc.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.closeNow(err)
		}
	}()
	f()
	return nil
}

// safely runs a final callback; a panic there has no connection left to
// abort and is dropped rather than taking the process down.
func (c *conn) safely(f func()) {
	defer func() { _ = recover() }()
	f()
}
