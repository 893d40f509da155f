package bench

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/twistbench/twistbench/impls/reactor"
)

// miniReactor is the smallest reactor the launcher tests need: a goroutine
// per connection, server side only. The real back-ends are measured by the
// harness; this one lets bench's tests run before and apart from them.
type miniReactor struct {
	mu    sync.Mutex
	lns   []net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
	down  bool
}

func newMiniReactor() (reactor.Reactor, error) {
	return &miniReactor{conns: map[net.Conn]bool{}}, nil
}

func (r *miniReactor) Listen(addr string, f reactor.Factory) (reactor.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return r.Serve(ln, f)
}

func (r *miniReactor) Serve(ln net.Listener, f reactor.Factory) (reactor.Listener, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		ln.Close()
		return nil, reactor.ErrShutdown
	}
	r.lns = append(r.lns, ln)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			if r.down {
				r.mu.Unlock()
				c.Close()
				return
			}
			r.conns[c] = true
			r.wg.Add(1)
			r.mu.Unlock()
			go r.handle(c, f)
		}
	}()
	return ln, nil
}

func (r *miniReactor) handle(c net.Conn, f reactor.Factory) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		c.Close()
	}()
	p := f.BuildProtocol(c.RemoteAddr())
	if p == nil {
		return
	}
	t := &miniTransport{c: c}
	p.ConnectionMade(t)
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			p.DataReceived(buf[:n])
		}
		if err != nil {
			p.ConnectionLost(nil)
			return
		}
	}
}

func (r *miniReactor) Connect(_ context.Context, addr string, f reactor.ClientFactory) {
	f.ClientConnectionFailed(addr, errors.New("miniReactor: no client side"))
}

func (r *miniReactor) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.down = true
	for _, ln := range r.lns {
		ln.Close()
	}
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type miniTransport struct {
	mu sync.Mutex
	c  net.Conn
}

func (t *miniTransport) Write(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = t.c.Write(p)
}

func (t *miniTransport) WriteSequence(ps [][]byte) {
	for _, p := range ps {
		t.Write(p)
	}
}

func (t *miniTransport) LoseConnection() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.c.Close()
}
func (t *miniTransport) AbortConnection()     { t.LoseConnection() }
func (t *miniTransport) LocalAddr() net.Addr  { return t.c.LocalAddr() }
func (t *miniTransport) RemoteAddr() net.Addr { return t.c.RemoteAddr() }
func (t *miniTransport) PauseReading()        {}
func (t *miniTransport) ResumeReading()       {}

// miniEcho and miniPoetry are the protocols on top, as impls/echo and
// impls/poetry define them.
type miniEcho struct{ t reactor.Transport }

func (e *miniEcho) ConnectionMade(t reactor.Transport) { e.t = t }
func (e *miniEcho) DataReceived(b []byte)              { e.t.Write(b) }
func (e *miniEcho) ConnectionLost(error)               {}

type miniPoet struct{ poem []byte }

func (p *miniPoet) ConnectionMade(t reactor.Transport) { t.Write(p.poem); t.LoseConnection() }
func (p *miniPoet) DataReceived([]byte)                {}
func (p *miniPoet) ConnectionLost(error)               {}

var miniProtocols = Protocols{
	Echo: reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return new(miniEcho) }),
	Poetry: func(poem []byte) reactor.Factory {
		return reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return &miniPoet{poem: poem} })
	},
}
